"""Results as tidy pandas DataFrames: one row per measured value, the run's facts in `frame.attrs`. The result
classes' `to_frame()` and `figure()` call these; `rcid_tl.results.load_result` reads saved results back."""

import math
from typing import Any

import pandas as pd

from rcid_tl.plotting.heatmaps import layer_heatmap


def frame_attrs(header: dict[str, Any], **extra: Any) -> dict[str, Any]:
    """The facts shared by every row of a result's frame (model, task, metric, n, seed ...)."""
    facts = {k: header[k] for k in ("model", "student", "task", "metric", "seed") if k in header}
    facts["n"] = len(header.get("examples", []))
    corruption = header.get("task_config", {}).get("corruption")
    if corruption:
        facts["corruption"] = corruption
    return {**facts, **extra}


def patch_frame(result) -> pd.DataFrame:
    """One row per (site, layer, [head,] position, example): Δ = metric(clean) − metric(patched)."""
    per_head = "head" in result.effects[0]
    rows = [{"site": e["site"], "layer": e["layer"], **({"head": e["head"]} if per_head else {}),
             "position": e["position"], "example": i, "delta": d}
            for e in result.effects for i, d in enumerate(e["per_example"])]
    frame = pd.DataFrame(rows)
    frame.attrs.update(frame_attrs(result.header, direction=result.direction))
    return frame


def knockout_frame(result) -> pd.DataFrame:
    """One row per (ablated head set, example): the metric with the heads ablated and Δ = clean − ablated."""
    rows = [{"heads": ",".join(a["heads"]),
             "positions": a["positions"] if a["positions"] == "all" else ",".join(a["positions"]),
             "example": i, "metric": m, "delta": d}
            for a in result.ablations for i, (m, d) in enumerate(zip(a["metric"], a["delta"]))]
    frame = pd.DataFrame(rows)
    frame.attrs.update(frame_attrs(result.header, method=result.method))
    return frame


def consistency_frame(result) -> pd.DataFrame:
    """One row per (checkpoint, example): the teacher's and the student's effect, and the checkpoint's Pearson r."""
    rows = [{"teacher_layer": c["teacher_layer"], "student_layer": c["student_layer"], "site": c["site"],
             "position": c["position"], "modified": c["modified"],
             "pearson_r": math.nan if c["pearson_r"] is None else c["pearson_r"], "example": i,
             "delta_teacher": dt, "delta_student": ds}
            for c in result.checkpoints for i, (dt, ds) in enumerate(zip(c["delta_teacher"], c["delta_student"]))]
    frame = pd.DataFrame(rows)
    frame.attrs.update(frame_attrs(result.header, mean_r=result.mean_r))
    return frame


def checkpoints_frame(result) -> pd.DataFrame:
    """One row per selected checkpoint, in selection order."""
    frame = pd.DataFrame([c.to_dict() for c in result.checkpoints],
                         columns=["layer", "position", "site", "mean_norm", "modified"])
    frame.attrs.update({k: result.meta[k] for k in ("model", "task") if k in result.meta})
    return frame


def cie_frame(cie: dict) -> pd.DataFrame:
    """Function-vector head scores: one row per (relation, layer, head), its CIE as Δ log-prob and Δ p over n
    trials (rcid_tl.fv.ranking.HeadScore)."""
    return pd.DataFrame([{"relation": q, "layer": s.layer, "head": s.head, "n": s.n,
                          "mean_delta_logprob": s.mean_delta_logprob, "mean_delta_p": s.mean_delta_p}
                         for q, scores in cie.items() for s in scores])


def aie_figure(cie: dict):
    """The AIE, the mean CIE (Δ log-prob) over relations, as a (layer × head) heatmap."""
    frame = cie_frame(cie)
    grid = frame.pivot_table(index="layer", columns="head", values="mean_delta_logprob", aggfunc="mean")
    title = (f"Function-vector heads: AIE over {frame.relation.nunique()} relations · "
             f"n = {int(frame.n.iloc[0])} trials each<br><sub>mean Δ log p(answer) when the head's clean mean output "
             "is put into corrupted prompts; red: the head carries the task</sub>")
    return layer_heatmap(grid.to_numpy(), [str(h) for h in grid.columns], title, "AIE (Δ log-prob)", "head")
