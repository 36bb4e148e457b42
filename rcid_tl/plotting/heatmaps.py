"""Plotly figures for sweep results: mean effect per (layer, position) or per (layer, head)."""

from collections.abc import Sequence

import numpy as np
import plotly.graph_objects as go
from plotly.subplots import make_subplots


def layer_heatmap(
    values: np.ndarray, columns: Sequence[str], title: str, colorbar: str, column_title: str
) -> go.Figure:
    """A (layer × column) heatmap centred on zero (red: the intervention lowered the metric)."""
    bound = float(np.abs(values).max()) or 1.0
    figure = go.Figure(go.Heatmap(
        z=values, x=list(columns), y=list(range(values.shape[0])), colorscale="RdBu_r", zmid=0, zmin=-bound,
        zmax=bound, colorbar={"title": colorbar},
    ))
    figure.update_layout(title=title, xaxis_title=column_title, yaxis_title="layer", yaxis_autorange="reversed")
    return figure


def faceted_heatmaps(panels: dict[str, np.ndarray], title: str, colorbar: str) -> go.Figure:
    """One (layer × head) heatmap per position, sharing a colour scale."""
    bound = max(float(np.abs(v).max()) for v in panels.values()) or 1.0
    figure = make_subplots(rows=1, cols=len(panels), subplot_titles=list(panels), shared_yaxes=True)
    for i, values in enumerate(panels.values(), start=1):
        figure.add_trace(go.Heatmap(z=values, colorscale="RdBu_r", zmid=0, zmin=-bound, zmax=bound,
                                    showscale=i == 1, colorbar={"title": colorbar}), row=1, col=i)
        figure.update_xaxes(title_text="head", row=1, col=i)
    figure.update_yaxes(title_text="layer", autorange="reversed", row=1, col=1)
    figure.update_layout(title=title)
    return figure


def bar_chart(labels: Sequence[str], values: Sequence[float], title: str, axis: str) -> go.Figure:
    figure = go.Figure(go.Bar(x=list(labels), y=list(values)))
    figure.update_layout(title=title, xaxis_title="ablation", yaxis_title=axis)
    return figure


def attention_heatmap(pattern: np.ndarray, tokens: Sequence[str], title: str) -> go.Figure:
    """A (query × key) attention pattern, white at 0 and dark at 1, tokens on both axes (position-numbered, so
    repeated tokens stay apart)."""
    labels = [f"{i}: {t!r}" for i, t in enumerate(tokens)]
    figure = go.Figure(go.Heatmap(z=pattern, x=labels, y=labels, colorscale="Blues", zmin=0, zmax=1,
                                  colorbar={"title": "weight"}))
    figure.update_layout(title=title, xaxis_title="key (attended to)", yaxis_title="query (attending)",
                         yaxis_autorange="reversed")
    return figure
