"""Causal checkpoint selection: rank every teacher (layer, position) — or (layer, head, position) at the per-head
site `z` — and keep the top k, with a quota of unmodified positions so they are not drowned out, and (by default)
only points inside the mechanism: a point whose noising moves the output as far as the whole corruption does
(saturation ≥ `SATURATED`) measures behaviour.

Two rankings (`Ranking`): by **effect** (default) — what noising the point alone does to the teacher's output: its
share of the clean − corrupt difference, mean Δ / mean(clean − corrupt), and its per-example spread, std Δ / |mean
(clean − corrupt)|; points carrying neither (both below `MIN_EFFECT`) are dropped — or by **imprint**, the mean norm
of d = h_clean − h_corrupt (the RCID design's rule). A large imprint need not matter to the output: on world-gpt2's
IOI heads 7 of the 8 largest imprints carry no mean effect."""

import json
import logging
import math
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, replace
from enum import Enum
from pathlib import Path
from typing import Any

import torch
from jaxtyping import Float
from torch import Tensor
from transformer_lens.model_bridge import TransformerBridge

from rcid_tl import __version__
from rcid_tl.artifacts import write_json
from rcid_tl.consistency.saturation import SATURATED
from rcid_tl.errors import InputError
from rcid_tl.hooks.names import Site, parse_site
from rcid_tl.interventions.read import answer_forward, at_positions, cache_hooks
from rcid_tl.interventions.write import PATCHABLE, Direction, PatchSite, patch_sites, patch_together
from rcid_tl.metrics import RunMetrics, metric_for
from rcid_tl.models.loading import namer
from rcid_tl.progress import track
from rcid_tl.tasks.base import ContrastiveDataset

log = logging.getLogger(__name__)

# Below this mean norm an imprint is zero up to float error (e.g. IOI's `io` under the s2-io corruption: it comes
# before the only changed token, so causal attention keeps it identical); patching there changes nothing.
ZERO_NORM = 1e-6

CHECKPOINT_SITES = PATCHABLE  # a checkpoint at a per-head site (z) names its head
SATURATION_EXAMPLES = 128  # examples the saturation (and effect) of a candidate is measured on (the first ones)
MIN_EFFECT = 0.02  # a point whose effect share and spread are both below 2% of the whole effect carries neither


class Ranking(str, Enum):
    EFFECT = "effect"  # share of the clean − corrupt difference, and its per-example spread
    IMPRINT = "imprint"  # mean ‖h_clean − h_corrupt‖


@dataclass(frozen=True)
class Checkpoint:
    """One causal checkpoint: a teacher hook point (site, layer) at a named per-example position, and the head for
    per-head sites.

    `modified` says whether the corruption changed the token there in any example: such positions carry a trivial
    embedding difference at low layers; unmodified ones only differ through what the model moved there.
    `saturation` is mean Δ / mean(clean − corrupt) when that point alone is noised — its share of the effect —
    and `spread` std Δ / |mean(clean − corrupt)| (None: not measured)."""

    layer: int
    position: str
    site: str
    mean_norm: float
    modified: bool
    head: int | None = None
    saturation: float | None = None
    spread: float | None = None

    @property
    def effect(self) -> float | None:
        """How much of the teacher's effect the point carries: the larger of |share| and spread."""
        if self.saturation is None or self.spread is None:
            return None
        return max(abs(self.saturation), self.spread)

    def patch_site(self, layer: int | None = None, head: int | None = None) -> PatchSite:
        """The Write at this checkpoint, or at another model's `layer` (and `head`) for the same site and position."""
        return PatchSite(Site(self.site), self.layer if layer is None else layer, self.position,
                         self.head if head is None else head)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def modified_positions(dataset: ContrastiveDataset) -> dict[str, bool]:
    """Per named position, whether clean and corrupt differ there in at least one example."""
    return {name: any(e.modified[name] for e in dataset.examples) for name in dataset.position_names}


def reaches_answer(site: Site, layer: int, n_layers: int, at_answer: bool) -> bool:
    """Whether patching (site, layer) at a position can change the answer logits. Away from the answer position
    only a later attention layer can carry the change over, so the last block's resid_mid, attn_out, mlp_out and
    resid_post are inert there (their imprint may be large, but the Write is a no-op)."""
    return at_answer or Site(site) is Site.RESID_PRE or layer < n_layers - 1


def imprint_norms(
    model: TransformerBridge, dataset: ContrastiveDataset, *, site: Site = Site.RESID_POST, batch_size: int = 64
) -> Float[Tensor, "layer position *head"]:
    """Mean over examples of ‖h_clean − h_corrupt‖ at every (layer, named position), columns in the dataset's
    position order, and a last axis over heads for per-head sites. One clean and one corrupt forward per batch,
    caching only `site` at each layer."""
    site = Site(site)
    if site not in CHECKPOINT_SITES:
        allowed = ", ".join(s.value for s in CHECKPOINT_SITES)
        raise InputError(f"site {site.value!r} cannot be a checkpoint site; allowed: {allowed}")
    if batch_size < 1:
        raise InputError(f"--batch-size must be ≥ 1, got {batch_size}")
    names = [namer(model).name(site, layer) for layer in range(model.cfg.n_layers)]
    heads = (model.cfg.n_heads,) if site.per_head else ()
    totals = torch.zeros(len(names), len(dataset.position_names), *heads, dtype=torch.float64)
    rows = torch.arange(len(dataset))
    for chunk in track(rows.split(batch_size), "imprints"):
        batch = dataset.batch(chunk.tolist())
        _, clean = cache_hooks(model, batch.clean, names, batch.answer_pos)
        _, corrupt = cache_hooks(model, batch.corrupt, names, batch.answer_pos)
        for i, name in enumerate(names):
            for j, position in enumerate(dataset.position_names):
                pos = batch.position(position)
                d = at_positions(clean[name], pos) - at_positions(corrupt[name], pos)  # (batch, [head,] d)
                totals[i, j] += d.double().norm(dim=-1).sum(0).cpu()
    return (totals / len(dataset)).float()


def select_checkpoints(
    model: TransformerBridge,
    dataset: ContrastiveDataset,
    *,
    top_k: int = 8,
    site: Site = Site.RESID_POST,
    min_unmodified: int | None = None,
    batch_size: int = 64,
    max_saturation: float | None = SATURATED,
    ranking: Ranking = Ranking.EFFECT,
) -> list[Checkpoint]:
    """The top-`top_k` (layer, position) pairs — (layer, head, position) at `z` — by effect (default) or mean
    imprint norm (`ranking`), best first. By effect, points carrying less than `MIN_EFFECT` are never chosen.

    Diversity: at least `min_unmodified` (default half of `top_k`) come from unmodified positions, the best of those
    first, and the rest are the best remaining of either kind. Zero imprints, and points whose patch cannot reach
    the answer (`reaches_answer`), are never chosen: their Write is a no-op. With `max_saturation`, points whose
    teacher saturation is at or above it are skipped too (they carry the whole answer: consistency there is output
    agreement). So fewer than `top_k` come back when fewer usable points exist, and the quota is only as full as the
    unmodified candidates allow (both logged)."""
    if top_k < 1:
        raise InputError(f"--top-k must be ≥ 1, got {top_k}")
    quota = top_k // 2 if min_unmodified is None else min_unmodified
    if not 0 <= quota <= top_k:
        raise InputError(f"--min-unmodified must be between 0 and --top-k ({top_k}), got {quota}")
    site = Site(site)
    n_heads = model.cfg.n_heads if site.per_head else 1
    n_points = model.cfg.n_layers * n_heads * len(dataset.position_names)
    if top_k > n_points:
        raise InputError(f"--top-k {top_k} asks for more checkpoints than exist: only {n_points} candidate points "
                         f"({model.cfg.n_layers} layers × {len(dataset.position_names)} positions"
                         + (f" × {n_heads} heads)" if site.per_head else ")"))
    if max_saturation is not None and not max_saturation > 0:
        raise InputError(f"--max-saturation must be > 0, got {max_saturation}")
    norms = imprint_norms(model, dataset, site=site, batch_size=batch_size)
    norms = norms if site.per_head else norms[..., None]  # (layer, position, head)
    modified = modified_positions(dataset)
    at_answer = {name: all(e.positions[name] == e.answer_pos for e in dataset.examples)
                 for name in dataset.position_names}
    n_layers = norms.shape[0]
    candidates = [
        Checkpoint(layer, position, site.value, float(norms[layer, j, h]), modified[position],
                   h if site.per_head else None)
        for layer in range(n_layers) for j, position in enumerate(dataset.position_names) for h in range(n_heads)
        if norms[layer, j, h] > ZERO_NORM and reaches_answer(site, layer, n_layers, at_answer[position])
    ]
    if Ranking(ranking) is Ranking.EFFECT:
        return _by_effect(model, dataset, candidates, top_k, quota, max_saturation, batch_size)
    candidates.sort(key=lambda c: -c.mean_norm)
    usable = _Unsaturated(model, dataset, max_saturation, batch_size, chunk=2 * top_k)
    unmodified = usable.first([c for c in candidates if not c.modified], quota)
    if len(unmodified) < quota:
        log.warning("only %d unmodified points have a non-zero%s imprint; quota was %d",
                    len(unmodified), "" if max_saturation is None else ", unsaturated", quota)
    taken = {c.patch_site() for c in unmodified}
    rest = usable.first([c for c in candidates if c.patch_site() not in taken], top_k - len(unmodified))
    chosen = sorted(unmodified + rest, key=lambda c: -c.mean_norm)
    if len(chosen) < top_k:
        log.warning("only %d points have a non-zero imprint that can reach the answer%s; asked for %d",
                    len(chosen), "" if max_saturation is None else " without saturating it", top_k)
    return chosen


def _by_effect(model, dataset, candidates: list[Checkpoint], top_k: int, quota: int, max_saturation: float | None,
               batch_size: int) -> list[Checkpoint]:
    """Every candidate noised alone on the first `SATURATION_EXAMPLES` examples; the top k by effect among those
    that carry at least `MIN_EFFECT` and stay below `max_saturation`, with the unmodified quota."""
    batch = dataset.batch(list(range(min(len(dataset), SATURATION_EXAMPLES))))
    delta, runs = patch_sites(model, batch, [c.patch_site() for c in candidates], metric_for(dataset),
                              Direction.NOISING, batch_size)
    total = float((runs.clean - runs.corrupt).mean())
    if total == 0:
        raise InputError("the corruption does not change the teacher's output on average (mean clean − corrupt "
                         "is 0): no point can carry a share of it; choose another task or corruption")
    measured = [replace(c, saturation=float(d.mean()) / total, spread=float(d.std()) / abs(total))
                for c, d in zip(candidates, delta.double())]
    limit = math.inf if max_saturation is None else max_saturation
    usable = sorted((c for c in measured if c.effect >= MIN_EFFECT and abs(c.saturation) < limit),
                    key=lambda c: -c.effect)
    unmodified = [c for c in usable if not c.modified][:quota]
    if len(unmodified) < quota:
        log.warning("only %d unmodified points carry ≥ %.0f%% of the effect; quota was %d", len(unmodified),
                    100 * MIN_EFFECT, quota)
    taken = {c.patch_site() for c in unmodified}
    chosen = unmodified + [c for c in usable if c.patch_site() not in taken][: top_k - len(unmodified)]
    if len(chosen) < top_k:
        log.warning("only %d points carry ≥ %.0f%% of the effect without saturating it; asked for %d", len(chosen),
                    100 * MIN_EFFECT, top_k)
    return sorted(chosen, key=lambda c: -c.effect)


@torch.no_grad()
def carried_share(model: TransformerBridge, dataset: ContrastiveDataset, checkpoints: Sequence[Checkpoint],
                  runs: RunMetrics | None = None) -> float:
    """The share of the teacher's effect the checkpoints carry together: mean Δ with all of them noised in one
    forward over mean(clean − corrupt) (nan when that is 0). `runs`: the model's clean and corrupt metrics on
    `dataset` when already known (saves their forwards)."""
    batch, metric = dataset.batch(), metric_for(dataset)
    joint = patch_together(model, batch, [c.patch_site() for c in checkpoints], metric)
    if runs is None:
        runs = RunMetrics(clean=metric(answer_forward(model, batch.clean, batch.answer_pos), batch).cpu(),
                          corrupt=metric(answer_forward(model, batch.corrupt, batch.answer_pos), batch).cpu())
    total = float((runs.clean - runs.corrupt).mean())
    return float(joint.mean()) / total if total else math.nan


class _Unsaturated:
    """Candidates in order, keeping those whose teacher saturation is below `limit` (all, with `limit` None),
    measured lazily `chunk` candidates per sweep on the first `SATURATION_EXAMPLES` examples."""

    def __init__(self, model: TransformerBridge, dataset: ContrastiveDataset, limit: float | None, batch_size: int,
                 chunk: int) -> None:
        self.model, self.limit, self.batch_size, self.chunk = model, limit, batch_size, chunk
        self.batch = dataset.batch(list(range(min(len(dataset), SATURATION_EXAMPLES))))
        self.metric = metric_for(dataset)
        self.measured: dict[PatchSite, float] = {}

    def first(self, candidates: Sequence[Checkpoint], k: int) -> list[Checkpoint]:
        if self.limit is None:
            return list(candidates[:k])
        kept = []
        for start in range(0, len(candidates), self.chunk):
            part = candidates[start : start + self.chunk]
            self._measure([c.patch_site() for c in part])
            for c in part:
                saturation = self.measured[c.patch_site()]
                if abs(saturation) < self.limit:
                    kept.append(replace(c, saturation=saturation))
                if len(kept) == k:
                    return kept
        return kept

    def _measure(self, sites: list[PatchSite]) -> None:
        todo = [s for s in sites if s not in self.measured]
        if not todo:
            return
        delta, runs = patch_sites(self.model, self.batch, todo, self.metric, Direction.NOISING, self.batch_size)
        total = float((runs.clean - runs.corrupt).mean())
        for site, row in zip(todo, delta.mean(1).tolist()):
            self.measured[site] = row / total if total else float("nan")


def save_checkpoints(path: str | Path, checkpoints: Sequence[Checkpoint], meta: Mapping[str, Any]) -> Path:
    """Write checkpoints (and `meta`: model, task, how they were chosen) as JSON, atomically."""
    payload = {"rcid_tl_version": __version__, **dict(meta), "checkpoints": [c.to_dict() for c in checkpoints]}
    return write_json(Path(path), payload)


def load_checkpoints(path: str | Path, n_layers: int, position_names: Sequence[str], n_heads: int = 0
                     ) -> list[Checkpoint]:
    """Checkpoints from a file `save_checkpoints` wrote (or a hand-written list of {layer, position[, site, head]}),
    checked against the model's depth, heads and the task's positions; any problem is an InputError naming it."""
    path = Path(path)
    if not path.is_file():
        raise InputError(f"checkpoints file {str(path)!r} not found")
    try:
        payload = json.loads(path.read_text())
    except (json.JSONDecodeError, UnicodeDecodeError) as err:
        raise InputError(f"checkpoints file {str(path)!r} is not valid JSON: {err}") from None
    entries = payload.get("checkpoints") if isinstance(payload, dict) else payload
    if not isinstance(entries, list) or not entries:
        raise InputError(f"checkpoints file {str(path)!r} holds no checkpoints (expected a 'checkpoints' list)")
    return [_parse_entry(entry, i, path, n_layers, position_names, n_heads) for i, entry in enumerate(entries)]


def _parse_entry(entry: Any, index: int, path: Path, n_layers: int, position_names: Sequence[str],
                 n_heads: int) -> Checkpoint:
    where = f"checkpoint {index} in {str(path)!r}"
    if not isinstance(entry, dict) or "layer" not in entry or "position" not in entry:
        raise InputError(f"{where} needs 'layer' and 'position' fields, got {entry!r}")
    layer = entry["layer"]
    if not isinstance(layer, int) or isinstance(layer, bool) or not 0 <= layer < n_layers:
        raise InputError(f"{where}: layer {layer!r} is out of range; this model has layers 0..{n_layers - 1}")
    position = entry["position"]
    if position not in position_names:
        raise InputError(f"{where}: unknown position {position!r}; this task has: {', '.join(position_names)}")
    site = parse_site(str(entry.get("site", Site.RESID_POST.value)))
    if site not in CHECKPOINT_SITES:
        allowed = ", ".join(s.value for s in CHECKPOINT_SITES)
        raise InputError(f"{where}: site {site.value!r} cannot be a checkpoint site; allowed: {allowed}")
    head = entry.get("head")
    if site.per_head != (head is not None):
        raise InputError(f"{where}: site {site.value} {'needs a' if site.per_head else 'takes no'} 'head'")
    if head is not None and (not isinstance(head, int) or isinstance(head, bool) or not 0 <= head < n_heads):
        raise InputError(f"{where}: head {head!r} is out of range; this model has heads 0..{n_heads - 1}")
    saturation, spread = entry.get("saturation"), entry.get("spread")
    number = lambda x: float(x) if isinstance(x, (int, float)) and not isinstance(x, bool) else None  # noqa: E731
    return Checkpoint(layer, position, site.value, float(entry.get("mean_norm", float("nan"))),
                      bool(entry.get("modified", False)), head, number(saturation), number(spread))


def one_per_student_layer(checkpoints: Sequence[Checkpoint], layer_map: Mapping[int, int]) -> list[Checkpoint]:
    """The largest-imprint checkpoint among those whose teacher layer `layer_map` sends to each student layer, in
    the input's order: several teacher layers mapped to one student layer otherwise ask that one layer to hold
    several teacher imprints at once."""
    best: dict[int, Checkpoint] = {}
    for c in checkpoints:
        s = layer_map[c.layer]
        if s not in best or c.mean_norm > best[s].mean_norm:
            best[s] = c
    kept = set(map(id, best.values()))
    return [c for c in checkpoints if id(c) in kept]
