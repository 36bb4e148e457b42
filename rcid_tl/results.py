"""Results in notebooks: `load_result(path)` reads any saved result JSON back into its result object, and each result
becomes a tidy pandas DataFrame (one row per measured value, run facts in `frame.attrs`; see `rcid_tl.frames`).

This module sits above the analyses whose results it reads back (sweeps, consistency); they know nothing of it."""

import dataclasses
import json
import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pandas as pd

from rcid_tl.consistency.causal import ConsistencyResult
from rcid_tl.consistency.checkpoints import Checkpoint
from rcid_tl.consistency.run import CheckpointsResult
from rcid_tl.errors import InputError
from rcid_tl.hooks.names import Head
from rcid_tl.result_schema import check_result
from rcid_tl.plotting.heatmaps import bar_chart
from rcid_tl.sweeps.knockout import KnockoutResult
from rcid_tl.sweeps.patch import PatchResult

KINDS = ("patch", "knockout", "consistency", "checkpoints", "evaluation", "distill")


def load_result(path: str | Path) -> Any:
    """The result object saved at `path`: PatchResult, KnockoutResult, ConsistencyResult, CheckpointsResult, or a
    StudentEvaluation (evaluation.json of `rcid-tl evaluate`, metrics.json of `rcid-tl distill`). Files written
    before results recorded their "kind" are recognised by their keys."""
    path = Path(path)
    if not path.is_file():
        raise InputError(f"result file {str(path)!r} not found")
    try:
        payload = json.loads(path.read_text(encoding="utf-8"))
    except (json.JSONDecodeError, UnicodeDecodeError) as err:
        raise InputError(f"result file {str(path)!r} is not valid JSON: {err}") from None
    except RecursionError:  # nested deeper than Python's parser goes: no result is
        raise InputError(f"result file {str(path)!r} is not an rcid-tl result (nested too deeply)") from None
    except OSError as err:
        raise InputError(f"result file {str(path)!r} cannot be read ({err.strerror or err})") from None
    if not isinstance(payload, dict):
        raise InputError(f"result file {str(path)!r} is not an rcid-tl result (a JSON object)")
    kind = payload.get("kind") or _infer_kind(payload, path)
    if not isinstance(kind, str) or kind not in KINDS:
        raise InputError(f"result file {str(path)!r} has unknown kind {kind!r} (field kind); allowed: "
                         f"{', '.join(KINDS)}")
    check_result(kind, payload, path)  # every field the reader and the frame use, so neither fails on a bad file
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


def _read_patch(payload: dict[str, Any]) -> PatchResult:
    return PatchResult(_without(payload, "direction", "effects"), payload["direction"], payload["effects"])


def _read_knockout(payload: dict[str, Any]) -> KnockoutResult:
    heads = [Head.parse(h) for a in payload["ablations"] for h in a["heads"]]
    # files without the model's shape: the heads ablated bound it (exact for --all-heads, the one grid drawn)
    n_layers = payload.get("n_layers") or max(h.layer for h in heads) + 1
    n_heads = payload.get("n_heads") or max(h.head for h in heads) + 1
    return KnockoutResult(_without(payload, "method", "ablations", "n_layers", "n_heads"), payload["method"],
                          payload["ablations"], n_layers, n_heads)


def _read_consistency(payload: dict[str, Any]) -> ConsistencyResult:
    nan = lambda x: math.nan if x is None else x  # noqa: E731  (saved JSON writes NaN as null)
    # every saved summary that is a field of the result (mean_r, its CI, and what newer versions add) goes back into
    # it; the counts derived from the checkpoints (n_checkpoints_*) are recomputed, everything else is the header
    fields = {f.name for f in dataclasses.fields(ConsistencyResult)} - {"checkpoints", "header"}
    summaries = {k: tuple(map(nan, v)) if k.endswith("_ci") else nan(v) for k, v in payload.items() if k in fields}
    header = {k: v for k, v in _without(payload, "checkpoints", *fields).items() if not k.startswith("n_checkpoints_")}
    return ConsistencyResult(payload["checkpoints"], header=header, **summaries)


def _read_checkpoints(payload: dict[str, Any]) -> CheckpointsResult:
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
