"""Writing an experiment's result: JSON (with the package version), then its Markdown table and figure (offline
HTML, PNG where a browser engine exists), both regenerated from that JSON alone by `render`."""

import json
from pathlib import Path
from typing import Any

from rcid_tl import __version__
from rcid_tl.artifacts import write_figure, write_json, write_text
from rcid_tl.study import figures, tables
from rcid_tl.study.experiments import Experiment

RENDERERS = {
    Experiment.PRESERVATION: (tables.preservation_markdown, figures.preservation_figure),
    Experiment.COMPARISON: (tables.comparison_markdown, figures.comparison_figure),
    Experiment.ROBUSTNESS: (tables.robustness_markdown, figures.robustness_figure),
    Experiment.RETENTION: (tables.retention_markdown, figures.retention_figure),
    Experiment.PURITY: (tables.purity_markdown, figures.purity_figure),
}


def save_experiment(prefix: str | Path, experiment: Experiment | int, result: dict[str, Any]) -> list[Path]:
    """`prefix`.json (its "experiment" field: the experiment's number), then `render`."""
    prefix = Path(prefix)
    number = int(Experiment(experiment))
    written = write_json(prefix.with_suffix(".json"), {"rcid_tl_version": __version__, "experiment": number, **result})
    return [written, *render(prefix)]


def render(prefix: str | Path) -> list[Path]:
    """`prefix`.md and the figure from `prefix`.json."""
    prefix = Path(prefix)
    result = json.loads(prefix.with_suffix(".json").read_text())
    markdown, figure = RENDERERS[Experiment(result["experiment"])]
    return [write_text(prefix.with_suffix(".md"), markdown(result)), *write_figure(prefix, figure(result))]
