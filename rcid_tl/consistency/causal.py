"""Causal consistency: the same Write on teacher and student — noising at a teacher checkpoint
and at the student's mapped layer, same position, each model patched with its *own* corrupt value — and the Pearson
correlation of the per-example effects Δ_T, Δ_S. r near 1: the student's output depends on that point of its
computation the way the teacher's does — unless the point carries the whole answer, where r is only the agreement of
the two models' outputs; `rcid_tl.consistency.saturation` separates the two (r_out, saturation, partial r, and the
summary `mechanistic_r` over non-saturated checkpoints)."""

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
from scipy import stats
from transformer_lens.model_bridge import TransformerBridge

from rcid_tl.artifacts import write_csv, write_figure, write_json
from rcid_tl.consistency.checkpoints import Checkpoint, modified_positions, reaches_answer
from rcid_tl.consistency.plots import consistency_figure
from rcid_tl.consistency.saturation import (
    SATURATED, bootstrap_partial, flat, mean_ci, partial_correlation, saturation_ratio,
)
from rcid_tl.errors import InputError
from rcid_tl.alignment.correspondence import Correspondence, site_label
from rcid_tl.alignment.heads import proportional_head_map
from rcid_tl.frames import consistency_frame
from rcid_tl.hooks.names import Head, Site
from rcid_tl.interventions.write import Direction, PatchSite, patch_sites, patch_together
from rcid_tl.metrics import RunMetrics, metric_for
from rcid_tl.models.loading import model_label, namer
from rcid_tl.plotting.titles import describe_run
from rcid_tl.stats import percentile_ci, rowwise_pearson
from rcid_tl.sweeps.common import result_header
from rcid_tl.tasks.base import ContrastiveDataset



@dataclass
class ConsistencyResult:
    """Per checkpoint: Δ_T and Δ_S per example, Pearson r and p, saturation and partial r; the mean r over
    checkpoints where r is defined, the behavioural baseline r_out, and `mechanistic_r` (the mean partial r over
    non-saturated checkpoints), each mean with a bootstrap CI over examples. `header` is the foundation's result
    header (config, examples, metrics)."""

    checkpoints: list[dict[str, Any]]
    mean_r: float  # nan when r is undefined at every checkpoint
    mean_r_ci: tuple[float, float]
    header: dict[str, Any] = field(default_factory=dict)
    r_out: float = math.nan  # Pearson of teacher vs student (clean − corrupt) metric differences
    mechanistic_r: float = math.nan  # nan when no checkpoint is both non-saturated and defined
    mechanistic_r_ci: tuple[float, float] = (math.nan, math.nan)
    # the same mean weighted by each checkpoint's share of the teacher's effect |mean Δ_T / mean(clean − corrupt)|
    mechanistic_r_weighted: float = math.nan

    @property
    def n_defined(self) -> int:
        return sum(c["pearson_r"] is not None for c in self.checkpoints)

    @property
    def n_mechanistic(self) -> int:
        return sum(c.get("partial_r") is not None and not c.get("saturated") for c in self.checkpoints)

    def to_json(self) -> dict[str, Any]:
        return {**self.header, "kind": "consistency", "checkpoints": self.checkpoints, "mean_r": _finite(self.mean_r),
                "mean_r_ci": [_finite(x) for x in self.mean_r_ci], "n_checkpoints_defined": self.n_defined,
                "r_out": _finite(self.r_out), "mechanistic_r": _finite(self.mechanistic_r),
                "mechanistic_r_ci": [_finite(x) for x in self.mechanistic_r_ci],
                "n_checkpoints_mechanistic": self.n_mechanistic,
                "mechanistic_r_weighted": _finite(self.mechanistic_r_weighted)}

    def save(self, out_dir: str | Path) -> list[Path]:
        out = Path(out_dir)
        rows = [(c["teacher_layer"], c["student_layer"], c["site"], c["position"], i, dt, ds)
                for c in self.checkpoints for i, (dt, ds) in enumerate(zip(c["delta_teacher"], c["delta_student"]))]
        header = ("teacher_layer", "student_layer", "site", "position", "example", "delta_teacher", "delta_student")
        return [
            write_json(out / "consistency.json", self.to_json()),
            write_csv(out / "consistency.csv", header, rows),
            *write_figure(out / "consistency", self.figure()),
        ]

    def figure(self):
        """Δ_student against Δ_teacher, one panel per checkpoint (a plotly Figure)."""
        return consistency_figure(self.checkpoints, self._title())

    def to_frame(self):
        """A tidy pandas DataFrame, one row per (checkpoint, example) (rcid_tl.frames)."""
        return consistency_frame(self)

    def _title(self) -> str:
        ci = lambda pair: ", ".join(f"{x:.3f}" for x in pair)  # noqa: E731
        return (f"Causal consistency (noising), mean r = {self.mean_r:.3f} [{ci(self.mean_r_ci)}], mechanistic r = "
                f"{self.mechanistic_r:.3f} [{ci(self.mechanistic_r_ci)}], r_out = {self.r_out:.3f}: "
                f"{describe_run(self.header)}")


def check_same_tokenizer(teacher: TransformerBridge, student: TransformerBridge) -> None:
    """InputError unless the student reads and writes the teacher's token ids (same vocabulary, same specials)."""
    t_vocab, s_vocab = teacher.tokenizer.get_vocab(), student.tokenizer.get_vocab()
    if len(t_vocab) != len(s_vocab):
        raise InputError(f"the student's tokenizer differs from the teacher's ({len(s_vocab)} vs {len(t_vocab)} "
                         f"tokens); a student must use its teacher's tokenizer")
    if t_vocab != s_vocab:
        differ = sum(s_vocab.get(token) != i for token, i in t_vocab.items())
        raise InputError(f"the student's tokenizer differs from the teacher's ({differ} of {len(t_vocab)} tokens "
                         f"have other ids); a student must use its teacher's tokenizer")
    for special in ("bos_token_id", "eos_token_id"):
        if getattr(teacher.tokenizer, special) != getattr(student.tokenizer, special):
            raise InputError(f"the student's tokenizer differs from the teacher's ({special} "
                             f"{getattr(student.tokenizer, special)} vs {getattr(teacher.tokenizer, special)})")
    if student.cfg.d_vocab < len(t_vocab):
        raise InputError(f"the student's vocabulary ({student.cfg.d_vocab}) is smaller than its tokenizer's "
                         f"({len(t_vocab)})")


def _check_inputs(teacher, student, dataset, checkpoints, layer_map, head_map, n_bootstrap, correspondence) -> None:
    check_same_tokenizer(teacher, student)
    if not checkpoints:
        raise InputError("no checkpoints to evaluate")
    if len(dataset) < 3:
        raise InputError(f"causal consistency needs at least 3 examples for a correlation, got {len(dataset)}")
    if n_bootstrap < 1:
        raise InputError(f"--n-bootstrap must be ≥ 1, got {n_bootstrap}")
    t_names, s_names = namer(teacher), namer(student)
    for c in checkpoints:
        t_names.check_layer(c.layer)
        dataset.check_positions([c.position])
        if correspondence is not None:
            if c.patch_site() not in correspondence.sites:
                raise InputError(f"the correspondence has no student site for teacher checkpoint {c.layer}"
                                 f"{'' if c.head is None else f'.{c.head}'}@{c.position}")
            continue
        if c.layer not in layer_map:
            raise InputError(f"the layer map has no student layer for teacher layer {c.layer}")
        try:
            s_names.check_layer(layer_map[c.layer])
        except InputError as err:
            raise InputError(f"student {err} (mapped from teacher layer {c.layer})") from None
        if c.head is not None:
            t_names.check_head(Head(c.layer, c.head))
            if (c.layer, c.head) not in head_map:
                raise InputError(f"the head map has no student head for teacher head {c.layer}.{c.head}")
            s_names.check_head(Head(layer_map[c.layer], head_map[c.layer, c.head]))


def _deltas(model: TransformerBridge, dataset: ContrastiveDataset, site_sets: Sequence[tuple[PatchSite, ...]],
            batch_size: int) -> tuple[np.ndarray, RunMetrics]:
    """Δ per (site set, example) over the whole dataset, `batch_size` examples at a time (bounding the cached
    values): single sites batched many per forward, sets of several sites noised together."""
    metric = metric_for(dataset)
    singles = [s[0] for s in site_sets if len(s) == 1]
    deltas, clean, corrupt = [], [], []
    for chunk in torch.arange(len(dataset)).split(batch_size):
        batch = dataset.batch(chunk.tolist())
        delta, metrics = patch_sites(model, batch, singles or [site_sets[0][0]], metric, Direction.NOISING,
                                     rows_per_forward=batch_size)
        single_rows = iter(delta)
        deltas.append(torch.stack([next(single_rows) if len(s) == 1 else patch_together(model, batch, s, metric)
                                   for s in site_sets]))
        clean.append(metrics.clean)
        corrupt.append(metrics.corrupt)
    runs = RunMetrics(clean=torch.cat(clean), corrupt=torch.cat(corrupt))
    return torch.cat(deltas, dim=1).double().numpy(), runs


def _pearson(x: np.ndarray, y: np.ndarray, why: str = "") -> tuple[float, float, str | None]:
    """scipy's Pearson r and two-sided p, or (nan, nan, note) when either side is constant (r undefined).
    (`causal_consistency` scores a student that is inert where the teacher is not as r = 0: see `_inert_student`.)"""
    constant = [name for name, v in (("Δ_teacher", x), ("Δ_student", y)) if flat(v)]  # an inert patch: noise
    if constant:
        return math.nan, math.nan, f"{' and '.join(constant)} constant over examples: r undefined{why}"
    r, p = stats.pearsonr(x, y)
    return float(r), float(p), None


def _inert_note(c: Checkpoint, student_layer: int, teacher, student, dataset: ContrastiveDataset) -> str:
    """Why a Δ may be identically zero: the point cannot reach the answer in that model (see `reaches_answer`)."""
    at_answer = all(e.positions[c.position] == e.answer_pos for e in dataset.examples)
    inert = [f"{who} layer {layer} is its last: {c.position} there cannot reach the answer"
             for who, layer, model in (("teacher", c.layer, teacher), ("student", student_layer, student))
             if not reaches_answer(Site(c.site), layer, model.cfg.n_layers, at_answer)]
    return f" ({'; '.join(inert)})" if inert else ""


def _bootstrap_mean_r(dt: np.ndarray, ds: np.ndarray, idx: np.ndarray, confidence: float) -> tuple[float, float]:
    """Percentile CI of the mean r over checkpoints, resampling examples (idx: (boot, n), the same resample for all
    checkpoints)."""
    x, y = dt[:, idx], ds[:, idx]  # (checkpoint, boot, n)
    r = np.where(flat(x) | flat(y), np.nan, rowwise_pearson(x, y))  # (checkpoint, boot); nan: copies of one example
    r = np.where(flat(ds)[:, None] & ~flat(dt)[:, None], 0.0, r)  # an inert student component: no shared effect
    return mean_ci(r, confidence)


def causal_consistency(
    teacher: TransformerBridge,
    student: TransformerBridge,
    dataset: ContrastiveDataset,
    checkpoints: Sequence[Checkpoint],
    layer_map: Mapping[int, int],
    *,
    head_map: Mapping[tuple[int, int], int] | None = None,
    correspondence: Correspondence | None = None,
    batch_size: int = 64,
    n_bootstrap: int = 1000,
    seed: int = 0,
    confidence: float = 0.95,
) -> ConsistencyResult:
    """Pearson(Δ_T, Δ_S) at each checkpoint, with Δ = metric(clean) − metric(patched) under noising
    and the student patched at `layer_map[layer]`, same site and position, with its own corrupt activations (at
    head `head_map[layer, head]` for a per-head checkpoint; default: the proportional head map), or at the student
    site(s) a `correspondence` gives for the checkpoint (several noised together), which overrides both maps.

    The mean is over checkpoints where r is defined (a constant Δ, e.g. a position the corruption cannot reach,
    leaves r undefined: reported as null with a note). The CI resamples examples `n_bootstrap` times (seeded)."""
    if head_map is None:
        head_map = proportional_head_map(teacher.cfg.n_heads, student.cfg.n_heads, layer_map)
    _check_inputs(teacher, student, dataset, checkpoints, layer_map, head_map, n_bootstrap, correspondence)
    t_sites = [(c.patch_site(),) for c in checkpoints]
    if correspondence is not None:
        s_sites = [correspondence.sites[c.patch_site()] for c in checkpoints]
    else:
        s_sites = [(c.patch_site(layer_map[c.layer], None if c.head is None else head_map[c.layer, c.head]),)
                   for c in checkpoints]
    dt, t_runs = _deltas(teacher, dataset, t_sites, batch_size)
    ds, s_runs = _deltas(student, dataset, s_sites, batch_size)
    out_t, out_s = ((runs.clean - runs.corrupt).double().numpy() for runs in (t_runs, s_runs))
    r_out = _pearson(out_t, out_s)[0]
    outputs = np.stack([out_t, out_s], axis=1)  # the covariates of the partial correlation
    idx = np.random.default_rng(seed).integers(0, len(dataset), size=(n_bootstrap, len(dataset)))  # (boot, n)
    boot_partial = bootstrap_partial(dt, ds, outputs, idx)  # (checkpoint, boot)
    inert_student = flat(ds) & ~flat(dt)  # the teacher responds here, the student's component does not
    boot_partial[inert_student] = 0.0
    modified = modified_positions(dataset)
    entries, defined, mechanistic = [], [], []
    for k, c in enumerate(checkpoints):
        first = s_sites[k][0]
        why = _inert_note(c, first.layer, teacher, student, dataset)
        r, p, note = _pearson(dt[k], ds[k], why)
        partial_r, partial_p = partial_correlation(dt[k], ds[k], outputs) if note is None else (math.nan,) * 2
        if inert_student[k]:
            # Pearson is undefined, but the answer is known: the student's component does nothing where the
            # teacher's carries an effect, so they share none of it. Leaving it out would score only what matches.
            r, partial_r, note = 0.0, 0.0, f"Δ_student constant where Δ_teacher varies: no shared effect, r = 0{why}"
        saturation = saturation_ratio(dt[k], out_t)
        saturated = bool(abs(saturation) >= SATURATED)
        scored = note is None or bool(inert_student[k])
        if scored:
            defined.append(k)
            if math.isfinite(partial_r) and not saturated:
                mechanistic.append(k)
        entries.append({
            "teacher_layer": c.layer, "student_layer": first.layer, "site": c.site, "position": c.position,
            "head": c.head, "student_head": first.head, "student_sites": [site_label(s) for s in s_sites[k]],
            "modified": modified[c.position], "delta_teacher": dt[k].tolist(), "delta_student": ds[k].tolist(),
            "pearson_r": r if scored else None, "p_value": None if note else p, "note": note,
            "r_out": _finite(r_out), "saturation_teacher": _finite(saturation),
            "saturation_student": _finite(saturation_ratio(ds[k], out_s)), "saturated": saturated,
            "partial_r": _finite(partial_r), "partial_p": _finite(partial_p),
            "partial_r_ci": [_finite(x) for x in percentile_ci(boot_partial[k], confidence)],
        })
    mean_r = float(np.mean([entries[k]["pearson_r"] for k in defined])) if defined else math.nan
    ci = _bootstrap_mean_r(dt[defined], ds[defined], idx, confidence)
    mechanistic_r = float(np.mean([entries[k]["partial_r"] for k in mechanistic])) if mechanistic else math.nan
    mechanistic_ci = mean_ci(boot_partial[mechanistic], confidence)
    weights = [abs(entries[k]["saturation_teacher"] or 0.0) for k in mechanistic]
    weighted = (float(np.average([entries[k]["partial_r"] for k in mechanistic], weights=weights))
                if mechanistic and sum(weights) > 0 else math.nan)
    header = result_header(model_label(teacher), dataset, int(dataset.config.get("seed", 0)), dataset.metric_name,
                           t_runs)
    header.update({
        "student": model_label(student), "student_metric_clean": s_runs.clean.tolist(),
        "student_metric_corrupt": s_runs.corrupt.tolist(),
        "config": {"direction": Direction.NOISING.value, "layer_map": {str(k): v for k, v in layer_map.items()},
                   "correspondence": None if correspondence is None else correspondence.to_json(),
                   "batch_size": batch_size, "n_bootstrap": n_bootstrap, "bootstrap_seed": seed,
                   "confidence": confidence},
    })
    header["config"]["saturated_at"] = SATURATED
    return ConsistencyResult(entries, mean_r, ci, header, r_out, mechanistic_r, mechanistic_ci, weighted)


def _finite(x: float) -> float | None:
    return x if math.isfinite(x) else None  # JSON has no NaN
