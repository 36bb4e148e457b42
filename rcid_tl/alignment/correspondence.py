"""Teacher→student correspondence by causal role, cross-fitted.

Which student component stands for a teacher component decides what causal consistency measures: a relabelled copy
of the teacher (its heads permuted) is the same computation, yet index maps pair each of its heads with another. Here
each teacher site (layer[, head], position) is paired with the student site(s) whose per-example effect profile — Δ
= metric(clean) − metric(noised) over a set of examples — correlates best with the teacher's: every student layer and
head at the same site kind and named position is a candidate (so the map covers heads and layers; positions are the
task's named positions, which teacher and student read from the same tokens).

Selecting the best of many candidates on the examples consistency is then measured on would inflate r (the maximum
of many noisy correlations is positive even when nothing is shared). So the map is **fitted on its own examples**
(`fit_examples`: another task seed, with every prompt that also occurs in the measured set removed) and consistency
is measured on the others. Each teacher component is matched by its *unique* role — its profile net of every other
teacher component's at the same site kind and position (`unique_role_correlations`) — so that a student component
doing the work of two teacher components is found by both. `match_profiles` is the selection step alone, on plain arrays.

One-to-one (Hungarian assignment: no student component stands for two teacher components), many-to-one (each
teacher site its best student site; two teacher heads merged into one student head both find it) and one-to-many
(a teacher site ↔ a set of student sites noised together, grown greedily while the joint profile fits better).
"""

from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from typing import Any

import numpy as np
import torch
from scipy.optimize import linear_sum_assignment
from transformer_lens.model_bridge import TransformerBridge

from rcid_tl.errors import InputError
from rcid_tl.hooks.names import Site
from rcid_tl.interventions.write import Direction, PatchSite, patch_sites, patch_together
from rcid_tl.metrics import metric_for
from rcid_tl.tasks.base import ContrastiveDataset
from rcid_tl.stats import residuals
from rcid_tl.tasks.registry import TaskSpec, build_task

GROUP_GAIN = 0.05  # a one-to-many group grows only while each added student site raises the fit r by this much
MAX_GROUP = 3  # at most this many student sites stand for one teacher site


@dataclass(frozen=True)
class Correspondence:
    """Per teacher site, the student sites that stand for it (noised together); how the map was chosen, on which
    examples, and each pairing's fit r (Pearson of the two effect profiles on the fit examples)."""

    sites: dict[PatchSite, tuple[PatchSite, ...]]
    method: str
    fit_r: dict[PatchSite, float] = field(default_factory=dict)
    meta: dict[str, Any] = field(default_factory=dict)

    def to_json(self) -> dict[str, Any]:
        return {"method": self.method, **self.meta,
                "pairs": [{"teacher": site_label(t), "student": [site_label(s) for s in ss],
                           "fit_r": _finite(self.fit_r.get(t))} for t, ss in self.sites.items()]}


def site_label(site: PatchSite) -> str:
    """'2.1@end' for a head, 'L3 resid_post@s2' otherwise."""
    if site.head is not None:
        return f"{site.layer}.{site.head}@{site.position}"
    return f"L{site.layer} {Site(site.site).value}@{site.position}"


def profile_correlations(teacher: np.ndarray, student: np.ndarray) -> np.ndarray:
    """Pearson r of every teacher profile (m, n) with every student profile (c, n): (m, c); 0 where a profile is
    constant (an inert site shares nothing)."""
    t = teacher - teacher.mean(-1, keepdims=True)
    s = student - student.mean(-1, keepdims=True)
    norms = np.linalg.norm(t, axis=-1)[:, None] * np.linalg.norm(s, axis=-1)[None, :]
    with np.errstate(invalid="ignore", divide="ignore"):
        r = (t @ s.T) / norms
    return np.where(norms > 0, r, 0.0)


def unique_role_correlations(teacher: np.ndarray, student: np.ndarray, context: np.ndarray | None = None,
                             own: Sequence[int | None] | None = None) -> np.ndarray:
    """Per teacher profile i (m, n), the partial Pearson r of every student profile (c, n) with it given the other
    teacher profiles: what each teacher component does that the others do not. A student component that does the
    work of two teacher components (two heads merged into one) correlates with the larger one's profile only; net
    of that one it matches the smaller one too. `context` (k, n): the profiles of every teacher component that
    could share a role (e.g. all heads at the position); `own[i]`: teacher i's row in it, left out of its own
    covariates. Without context the other teacher profiles are the covariates; with one profile and no context
    this is `profile_correlations`."""
    teacher, student = np.asarray(teacher, float), np.asarray(student, float)
    if context is None:
        context, own = teacher, list(range(len(teacher)))
    context = np.asarray(context, float)
    out = np.empty((len(teacher), len(student)))
    for i in range(len(teacher)):
        others = np.delete(context, [own[i]] if own[i] is not None else [], axis=0).T  # (n, k): the covariates
        if others.shape[1] == 0:
            out[i] = profile_correlations(teacher[i:i + 1], student)[0]
            continue
        t, _ = residuals(teacher[i], others)
        s, _ = residuals(student, np.broadcast_to(others, (len(student), *others.shape)))
        out[i] = profile_correlations(t[None], s)[0]
    return out


def match_profiles(teacher: np.ndarray, student: np.ndarray, *, one_to_one: bool = False,
                   allowed: np.ndarray | None = None, unique: bool = True, context: np.ndarray | None = None,
                   own: Sequence[int | None] | None = None) -> tuple[list[int], np.ndarray]:
    """The student profile chosen for each teacher profile — the highest r (signed: consistency asks for effects
    that move together), or the Hungarian assignment maximising the summed r with `one_to_one` — and the (m, c) r
    matrix: partial r given the other teacher profiles (`unique_role_correlations`; `context`, `own`: see there),
    or plain Pearson r with `unique=False`. `allowed` (m, c) bool marks compatible pairs. One-to-one with fewer
    students than teachers: the teachers left over take their best student."""
    teacher, student = np.asarray(teacher, float), np.asarray(student, float)
    r = unique_role_correlations(teacher, student, context, own) if unique else profile_correlations(teacher, student)
    score = np.where(allowed, r, -np.inf) if allowed is not None else r
    best = score.argmax(-1)
    if one_to_one:
        rows, cols = linear_sum_assignment(np.where(np.isfinite(score), score, -1e6), maximize=True)
        for i, j in zip(rows, cols):
            if np.isfinite(score[i, j]):
                best[i] = j
    return [int(j) for j in best], r


def candidate_sites(model: TransformerBridge, teacher_sites: Sequence[PatchSite]) -> list[PatchSite]:
    """Every student site of the same kind and position as some teacher site: all layers, and all heads at
    per-head sites."""
    kinds = sorted({(Site(s.site), s.position) for s in teacher_sites}, key=lambda k: (k[0].value, k[1]))
    heads = range(model.cfg.n_heads)
    return [PatchSite(site, layer, position, h if site.per_head else None)
            for site, position in kinds for layer in range(model.cfg.n_layers)
            for h in (heads if site.per_head else [None])]


def causal_correspondence(
    teacher: TransformerBridge, student: TransformerBridge, fit: ContrastiveDataset,
    teacher_sites: Sequence[PatchSite], *, one_to_one: bool = False, one_to_many: bool = False,
    batch_size: int = 64,
) -> Correspondence:
    """Match each teacher site to the student site(s) with the most similar effect profile on the `fit` examples
    (which must not be the examples consistency is measured on: see the module docstring)."""
    if len(fit) < 3:
        raise InputError(f"a causal map needs at least 3 fit examples, got {len(fit)}")
    teacher_sites = list(dict.fromkeys(teacher_sites))
    candidates = candidate_sites(student, teacher_sites)
    # every teacher component at the checkpoints' site kinds and positions: the roles a checkpoint's is netted of
    context_sites = candidate_sites(teacher, teacher_sites)
    context = _profiles(teacher, fit, context_sites, batch_size)
    dt = context[[context_sites.index(t) for t in teacher_sites]]
    ds = _profiles(student, fit, candidates, batch_size)
    allowed = np.array([[(Site(c.site), c.position) == (Site(t.site), t.position) for c in candidates]
                        for t in teacher_sites])
    if len(context_sites) >= len(fit) // 2:  # too many covariates for the fit examples: net of the checkpoints only
        context, own = None, None
    else:
        own = [context_sites.index(t) for t in teacher_sites]
    best, r = match_profiles(dt, ds, one_to_one=one_to_one, allowed=allowed, context=context, own=own)
    sites = {t: (candidates[j],) for t, j in zip(teacher_sites, best)}
    fit_r = {t: float(r[i, j]) for i, (t, j) in enumerate(zip(teacher_sites, best))}
    if one_to_many:
        for i, t in enumerate(teacher_sites):
            order = [j for j in np.argsort(-np.where(allowed[i], r[i], -np.inf)) if allowed[i, j]]
            sites[t], fit_r[t] = _grow(student, fit, dt[i], [candidates[j] for j in order])
    mode = "one-to-many" if one_to_many else "one-to-one" if one_to_one else "many-to-one"
    meta = {"assignment": mode, "fit_examples": len(fit), "fit_task_seed": fit.config.get("seed"),
            "fit_clean_ids": [list(e.clean_ids) for e in fit.examples], "n_candidates": len(candidates)}
    return Correspondence(sites, "causal", fit_r, meta)


def fit_examples(task: TaskSpec, measured: ContrastiveDataset, n: int, tokenizer, n_ctx: int,
                 seed_offset: int = 1) -> ContrastiveDataset:
    """`n` examples of `task` drawn with another seed, none of whose clean prompts occurs in `measured`: the
    examples a map is fitted on, so that consistency measured on `measured` is not inflated by the selection."""
    seen = {e.clean_ids for e in measured.examples}
    spec = replace(task, n=n + len(measured), seed=task.seed + seed_offset)  # room for the duplicates dropped
    drawn = build_task(spec, tokenizer, n_ctx)
    kept = tuple(e for e in drawn.examples if e.clean_ids not in seen)[:n]
    if len(kept) < min(n, 3):
        raise InputError(f"only {len(kept)} fit examples differ from the measured ones; asked for {n}")
    return replace(drawn, examples=kept, config={**dict(drawn.config), "n": len(kept), "fit_for_seed": task.seed})


def _grow(student, fit, teacher_profile, ordered: list[PatchSite]) -> tuple[tuple[PatchSite, ...], float]:
    """Greedy one-to-many from the best single match: add the next-best student site while the plain r of the
    jointly noised profile with the teacher's rises by `GROUP_GAIN` (so the recorded fit r is the plain r)."""
    metric = metric_for(fit)
    batch = fit.batch()
    alone = patch_together(student, batch, [ordered[0]], metric).double().numpy()
    group, best = [ordered[0]], float(profile_correlations(teacher_profile[None], alone[None])[0, 0])
    for site in ordered[1:MAX_GROUP * 2]:
        if len(group) == MAX_GROUP:
            break
        joint = patch_together(student, batch, [*group, site], metric).double().numpy()
        r = float(profile_correlations(teacher_profile[None], joint[None])[0, 0])
        if r >= best + GROUP_GAIN:
            group, best = [*group, site], r
    return tuple(group), best


def _profiles(model: TransformerBridge, dataset: ContrastiveDataset, sites: Sequence[PatchSite],
              batch_size: int) -> np.ndarray:
    """Δ per (site, example) under noising, `batch_size` examples at a time."""
    metric = metric_for(dataset)
    chunks = [patch_sites(model, dataset.batch(chunk.tolist()), sites, metric, Direction.NOISING,
                          rows_per_forward=batch_size)[0]
              for chunk in torch.arange(len(dataset)).split(batch_size)]
    return torch.cat(chunks, dim=1).double().numpy()


def _finite(x: float | None) -> float | None:
    return x if x is not None and np.isfinite(x) else None
