"""Plotly figures of the study's experiments, each drawn from its saved result JSON alone."""

from typing import Any

import plotly.graph_objects as go
from plotly.subplots import make_subplots

from rcid_tl.heads.classes import CLASS_NAMES

COLOURS = {"standard-kd": "#1f77b4", "fitnets": "#ff7f0e", "informed-fitnets": "#2ca02c", "rcid": "#d62728",
           "teacher": "#444444"}


def _method(label: str) -> str:
    return next((m for m in COLOURS if label.startswith(m + "-")), label)


def _error(points: list[tuple[float, float, float]]) -> dict:
    """Asymmetric error bars from (estimate, low, high); missing bounds draw none."""
    ok = lambda v: v is not None and v == v  # noqa: E731
    return dict(type="data", symmetric=False, array=[h - e if ok(h) else 0 for e, _, h in points],
                arrayminus=[e - lo if ok(lo) else 0 for e, lo, _ in points])


def preservation_figure(result: dict[str, Any]) -> go.Figure:
    fig = make_subplots(rows=1, cols=2, subplot_titles=("mechanistic r (partial r, unsaturated heads)", "mean r"))
    for col, key in ((1, "mechanistic_r"), (2, "mean_r")):
        for method in dict.fromkeys(r["method"] for r in result["rows"]):
            mine = [r for r in result["rows"] if r["method"] == method]
            fig.add_trace(go.Scatter(
                x=[r["accuracy"] for r in mine], y=[r[key] for r in mine], mode="markers", name=method,
                marker={"color": COLOURS.get(method), "size": 10}, showlegend=col == 1, legendgroup=method,
                text=[f"seed {r['seed']}" for r in mine],
                error_y=_error([(r[key], *(r[f"{key}_ci"] or (None, None))) for r in mine])), row=1, col=col)
        fig.add_vline(x=result["rows"][0]["teacher_accuracy"], line_dash="dash", line_color="grey", row=1, col=col)
        fig.add_hline(y=0, line_color="lightgrey", row=1, col=col)
        fig.update_xaxes(title_text="student accuracy (dashed: teacher)", row=1, col=col)
    fig.update_layout(title="Experiment 1: accuracy vs causal consistency at the teacher's head checkpoints"
                            "<br><sub>error bars: 95% bootstrap CIs over examples</sub>", height=450)
    return fig


def comparison_figure(result: dict[str, Any]) -> go.Figure:
    keys = ("accuracy", "logit_diff", "mean_r", "mechanistic_r")
    fig = make_subplots(rows=1, cols=len(keys), subplot_titles=keys)
    per_method = result["ioi"]["per_method"]
    for col, key in enumerate(keys, start=1):
        for method, v in per_method.items():
            c = v[key]
            fig.add_trace(go.Bar(x=[method], y=[c["estimate"]], marker_color=COLOURS.get(method), name=method,
                                 showlegend=col == 1, error_y=_error([(c["estimate"], c["low"], c["high"])])),
                          row=1, col=col)
            seeds = [r[key] for r in result["ioi"]["rows"] if r["method"] == method]
            fig.add_trace(go.Scatter(x=[method] * len(seeds), y=seeds, mode="markers", showlegend=False,
                                     marker={"color": "black", "size": 5}), row=1, col=col)
        fig.update_xaxes(showticklabels=False, row=1, col=col)
    fig.update_layout(title="Experiment 2: four methods × seeds<br><sub>bars: mean over seeds with 95% bootstrap CI; "
                            "dots: seeds</sub>", height=450)
    return fig


def robustness_figure(result: dict[str, Any]) -> go.Figure:
    splits = list(result["teacher"]["relative"])
    fig = make_subplots(rows=1, cols=len(splits), subplot_titles=[f"{s}: accuracy ratio OOD / ID" for s in splits])
    for col, split in enumerate(splits, start=1):
        for method in dict.fromkeys(_method(r["label"]) for r in result["rows"]):
            mine = [r for r in result["rows"] if _method(r["label"]) == method]
            fig.add_trace(go.Scatter(x=[r.get("mechanistic_r") for r in mine],
                                     y=[r["relative"][split]["accuracy_ratio"] for r in mine], mode="markers",
                                     text=[r["label"] for r in mine], name=method, legendgroup=method,
                                     marker={"color": COLOURS.get(method), "size": 10}, showlegend=col == 1),
                          row=1, col=col)
        rho = next(c for c in result["correlations"] if c["consistency"] == "mechanistic_r" and c["split"] == split
                   and c["robustness"] == "accuracy_ratio")["rho"]
        fig.layout.annotations[col - 1].text += (f"<br>Spearman ρ = {rho['estimate']:.2f} "
                                                 f"[{rho['low']:.2f}, {rho['high']:.2f}]")
        fig.update_xaxes(title_text="mechanistic r", row=1, col=col)
    fig.update_layout(title="Experiment 3: consistency vs OOD robustness, one point per student", height=480,
                      margin={"t": 120})
    return fig


def retention_figure(result: dict[str, Any]) -> go.Figure:
    rows = result["rows"]
    fig = make_subplots(rows=1, cols=2, column_widths=[0.4, 0.6], subplot_titles=(
        "IOI classes: retention (blank: undefined)",
        "teacher circuit heads → mapped student heads (a different quantity)"))
    z = [[r["class_retention"][c]["retention"] for r in rows] for c in CLASS_NAMES]
    fig.add_trace(go.Heatmap(z=z, x=[r["student"] for r in rows], y=list(CLASS_NAMES), coloraxis="coloraxis"), 1, 1)
    if all(v is None for row in z for v in row):
        fig.add_annotation(text="every cell undefined (reasons in the table)",
                           xref="x domain", yref="y domain", x=0.5, y=0.5, showarrow=False)
    if result["teacher"].get("circuit"):
        names = list(result["teacher"]["circuit_effects"]["effects"])
        z = [[r["circuit_retention"][n]["retention"] for r in rows] for n in names]
        fig.add_trace(go.Heatmap(z=z, x=[r["student"] for r in rows], y=names, coloraxis="coloraxis",
                                 text=[[("–" if v is None else f"{v:.2f}") for v in row] for row in z],
                                 texttemplate="%{text}"), 1, 2)
    fig.update_layout(title="Experiment 4: component retention = student effect / teacher effect (mean ablation)",
                      coloraxis={"colorscale": "RdBu", "cmid": 1, "cmin": -1, "cmax": 3}, height=520)
    return fig


def purity_figure(result: dict[str, Any]) -> go.Figure:
    fig = make_subplots(rows=1, cols=2, subplot_titles=("h (residual stream)", "d = h_clean − h_corrupt"))
    curves = [("teacher", result["per_model"]["teacher"]["layers"])] + list(result["per_method"].items())
    for col, rep in ((1, "h"), (2, "d")):
        for name, layers in curves:
            keys = sorted((k for k in layers if k.startswith(rep + ":")), key=lambda k: int(k.split(":")[1]))
            depth = [(int(k.split(":")[1]) + 1) / len(keys) for k in keys]
            sel = [layers[k]["selectivity"] for k in keys]
            fig.add_trace(go.Scatter(x=depth, y=[s["estimate"] for s in sel], mode="lines+markers", name=name,
                                     line={"color": COLOURS.get(name)}, showlegend=col == 1, legendgroup=name,
                                     error_y=_error([(s["estimate"], s["low"], s["high"]) for s in sel])),
                          row=1, col=col)
        fig.update_xaxes(title_text="relative depth (layer + 1) / layers", row=1, col=col)
        fig.update_yaxes(title_text="selectivity = task − control accuracy", row=1, col=col)
    fig.update_layout(title="Experiment 5: information purity at `end`<br><sub>teacher: CI over folds; methods: "
                            "CI over seeds</sub>", height=450)
    return fig
