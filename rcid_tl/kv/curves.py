"""Learning curves of a KV-distillation run, from its JSONL training log: each loss part and the learning-curve
accuracy against the step, as an offline figure."""

import json
from pathlib import Path

from plotly.subplots import make_subplots

from rcid_tl.artifacts import write_figure

LOSS_PARTS = ("loss", "ce", "kv", "cka", "contrastive", "codi")


def read_log(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


def write_learning_curves(log_path: Path, out: Path, title: str) -> list[Path]:
    """Two stacked panels: the loss parts (log scale) and the accuracy on the curve problems, by step."""
    records = read_log(log_path)
    steps = [r["step"] for r in records]
    fig = make_subplots(rows=2, cols=1, shared_xaxes=True, subplot_titles=("loss parts", "ID accuracy (curve set)"))
    for part in LOSS_PARTS:
        if records and part in records[0]:
            fig.add_scatter(x=steps, y=[r[part] for r in records], name=part, mode="lines", row=1, col=1)
    if records and "curve_accuracy" in records[0]:
        fig.add_scatter(x=[r["curve_step"] for r in records], y=[r["curve_accuracy"] for r in records],
                        name="accuracy", mode="lines+markers", row=2, col=1)
    fig.update_yaxes(type="log", row=1, col=1)
    fig.update_yaxes(range=[0, 1], row=2, col=1)
    fig.update_xaxes(title_text="step", row=2, col=1)
    fig.update_layout(title=title, height=640)
    return write_figure(out, fig)
