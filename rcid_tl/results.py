"""Results in notebooks: `load_result(path)` reads any saved result JSON back into its result object, and each result
becomes a tidy pandas DataFrame (one row per measured value, run facts in `frame.attrs`)."""

import dataclasses
import json
import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pandas as pd

from rcid_tl.errors import InputError

KINDS = ("patch", "knockout", "consistency", "checkpoints", "evaluation", "distill")


def load_result(path: str | Path) -> Any:
    """The result object saved at `path`: PatchResult, KnockoutResult, ConsistencyResult, CheckpointsResult, or a
    StudentEvaluation (evaluation.json of `rcid-tl evaluate`, metrics.json of `rcid-tl distill`). Files written
    before results recorded their "kind" are recognised by their keys."""
    path = Path(path)
    if not path.is_file():
        raise InputError(f"result file {str(path)!r} not found")
    try:
        payload = json.loads(path.read_text())
    except (json.JSONDecodeError, UnicodeDecodeError) as err:
        raise InputError(f"result file {str(path)!r} is not valid JSON: {err}") from None
    if not isinstance(payload, dict):
        raise InputError(f"result file {str(path)!r} is not an rcid-tl result (a JSON object)")
    kind = payload.get("kind") or _infer_kind(payload, path)
    if kind not in KINDS:
        raise InputError(f"result file {str(path)!r} has unknown kind {kind!r}; allowed: {', '.join(KINDS)}")
    return _READERS[kind](payload)


def _infer_kind(payload: dict[str, Any], path: Path) -> str:
    if "effects" in payload and "direction" in payload:
        return "patch"
    if "ablations" in payload:
        return "knockout"
    if "mean_r" in payload and "checkpoints" in payload:
        return "consistency"
    if "selection" in payload and "checkpoints" in payload:
        return "checkpoints"
    if "causal_consistency" in payload and "method" in payload:
        return "distill"
    if "consistency" in payload and "student" in payload:
        return "evaluation"
    raise InputError(f"result file {str(path)!r} is not an rcid-tl result (no kind, and its keys match none)")


def _without(payload: dict[str, Any], *keys: str) -> dict[str, Any]:
    return {k: v for k, v in payload.items() if k not in {"kind", *keys}}


def _read_patch(payload: dict[str, Any]):
    from rcid_tl.sweeps.patch import PatchResult

    return PatchResult(_without(payload, "direction", "effects"), payload["direction"], payload["effects"])


def _read_knockout(payload: dict[str, Any]):
    from rcid_tl.hooks.names import Head
    from rcid_tl.sweeps.knockout import KnockoutResult

    heads = [Head.parse(h) for a in payload["ablations"] for h in a["heads"]]
    # files without the model's shape: the heads ablated bound it (exact for --all-heads, the one grid drawn)
    n_layers = payload.get("n_layers") or max(h.layer for h in heads) + 1
    n_heads = payload.get("n_heads") or max(h.head for h in heads) + 1
    return KnockoutResult(_without(payload, "method", "ablations", "n_layers", "n_heads"), payload["method"],
                          payload["ablations"], n_layers, n_heads)


def _read_consistency(payload: dict[str, Any]):
    from rcid_tl.consistency.causal import ConsistencyResult

    nan = lambda x: math.nan if x is None else x  # noqa: E731  (saved JSON writes NaN as null)
    # every saved summary that is a field of the result (mean_r, its CI, and what newer versions add) goes back into
    # it; the counts derived from the checkpoints (n_checkpoints_*) are recomputed, everything else is the header
    fields = {f.name for f in dataclasses.fields(ConsistencyResult)} - {"checkpoints", "header"}
    summaries = {k: tuple(map(nan, v)) if k.endswith("_ci") else nan(v) for k, v in payload.items() if k in fields}
    header = {k: v for k, v in _without(payload, "checkpoints", *fields).items() if not k.startswith("n_checkpoints_")}
    return ConsistencyResult(payload["checkpoints"], header=header, **summaries)


def _read_checkpoints(payload: dict[str, Any]):
    from rcid_tl.consistency.checkpoints import Checkpoint
    from rcid_tl.consistency.run import CheckpointsResult

    return CheckpointsResult([Checkpoint(**c) for c in payload["checkpoints"]],
                             _without(payload, "checkpoints", "rcid_tl_version"))


@dataclass(frozen=True)
class StudentEvaluation:
    """A student scored against its teacher: `rcid-tl evaluate`'s evaluation.json or `rcid-tl distill`'s
    metrics.json, as saved (`payload`)."""

    payload: dict[str, Any]

    @property
    def consistency(self) -> dict[str, Any]:
        return self.payload.get("consistency") or self.payload["causal_consistency"]

    def to_frame(self) -> pd.DataFrame:
        """One row per causal checkpoint: where it sits in teacher and student, and Pearson r of their effects."""
        columns = ("teacher_layer", "student_layer", "site", "position", "modified", "pearson_r", "p_value")
        frame = pd.DataFrame([{c: cp.get(c) for c in columns} for cp in self.consistency["checkpoints"]],
                             columns=list(columns))
        frame["pearson_r"] = frame["pearson_r"].astype(float)
        frame.attrs.update({k: v for k, v in self.payload.items() if isinstance(v, (str, int, float))})
        frame.attrs["mean_r"] = self.consistency["mean_r"]
        return frame

    def figure(self):
        from rcid_tl.plotting.heatmaps import bar_chart

        frame = self.to_frame()
        labels = [f"T{t}→S{s} {p}" for t, s, p in zip(frame.teacher_layer, frame.student_layer, frame.position)]
        ci = ", ".join("nan" if x is None else f"{x:.3f}" for x in self.consistency["mean_r_ci"])
        mean_r = self.consistency["mean_r"]
        p = self.payload
        n = p.get("n_eval", p.get("task_config", {}).get("n", "?"))
        title = (f"Causal consistency: {p.get('teacher', '?')} → {p.get('student', p.get('method', 'student'))} · "
                 f"{p.get('task', '?')} · n = {n}<br><sub>mean r = {'nan' if mean_r is None else f'{mean_r:.3f}'} [{ci}]; Pearson r of teacher "
                 f"and student effects per checkpoint</sub>")
        figure = bar_chart(labels, frame["pearson_r"].tolist(), title, "Pearson r")
        figure.update_xaxes(title_text="checkpoint (teacher layer → student layer, position)")
        return figure


_READERS = {"patch": _read_patch, "knockout": _read_knockout, "consistency": _read_consistency,
            "checkpoints": _read_checkpoints, "evaluation": StudentEvaluation, "distill": StudentEvaluation}


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
    from rcid_tl.plotting.heatmaps import layer_heatmap

    frame = cie_frame(cie)
    grid = frame.pivot_table(index="layer", columns="head", values="mean_delta_logprob", aggfunc="mean")
    title = (f"Function-vector heads: AIE over {frame.relation.nunique()} relations · "
             f"n = {int(frame.n.iloc[0])} trials each<br><sub>mean Δ log p(answer) when the head's clean mean output "
             "is put into corrupted prompts; red: the head carries the task</sub>")
    return layer_heatmap(grid.to_numpy(), [str(h) for h in grid.columns], title, "AIE (Δ log-prob)", "head")
