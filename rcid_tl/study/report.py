"""Writing an experiment's result: JSON (with the package version), then its Markdown table and figure (offline
HTML, PNG where a browser engine exists), both regenerated from that JSON alone by `render`."""

import json
from pathlib import Path
from typing import Any

from rcid_tl import __version__
from rcid_tl.artifacts import write_figure, write_json, write_text
from rcid_tl.study import figures, tables

RENDERERS = {
    1: (tables.exp1_markdown, figures.exp1_figure), 2: (tables.exp2_markdown, figures.exp2_figure),
    3: (tables.exp3_markdown, figures.exp3_figure), 4: (tables.exp4_markdown, figures.exp4_figure),
    5: (tables.exp5_markdown, figures.exp5_figure),
}


def save_experiment(prefix: str | Path, number: int, result: dict[str, Any]) -> list[Path]:
    """`prefix`.json, then `render`."""
    prefix = Path(prefix)
    written = write_json(prefix.with_suffix(".json"), {"rcid_tl_version": __version__, "experiment": number, **result})
    return [written, *render(prefix)]


def render(prefix: str | Path) -> list[Path]:
    """`prefix`.md and the figure from `prefix`.json."""
    prefix = Path(prefix)
    result = json.loads(prefix.with_suffix(".json").read_text())
    markdown, figure = RENDERERS[result["experiment"]]
    return [write_text(prefix.with_suffix(".md"), markdown(result)), *write_figure(prefix, figure(result))]
