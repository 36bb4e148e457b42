"""Figure titles that say what was measured: model, task and its corruption, metric, number of examples."""

from collections.abc import Mapping
from typing import Any


def describe_run(header: Mapping[str, Any]) -> str:
    """'world-gpt2 · ioi (s2-io corruption) · metric logit_diff · n = 50' from a result header
    (rcid_tl.sweeps.common.result_header)."""
    config = header.get("task_config", {})
    task = header.get("task", config.get("task", "?"))
    corruption = config.get("corruption")
    task_text = f"{task} ({corruption} corruption)" if corruption else str(task)
    n = len(header.get("examples", [])) or config.get("n", "?")
    model = header.get("model", "?")
    if header.get("student"):
        model = f"{model} → {header['student']}"
    return f"{model} · {task_text} · metric {header.get('metric', '?')} · n = {n}"


def titled(what: str, header: Mapping[str, Any], note: str) -> str:
    """A two-line plotly title: what was done and on which run, then how to read the colours or axes."""
    return f"{what}: {describe_run(header)}<br><sub>{note}</sub>"
