"""Causal checkpoint selection (seed 000 §2.4): rank every teacher (layer, position) by the mean norm of its imprint
d = h_clean − h_corrupt and keep the top k, with a quota of unmodified positions so they are not drowned out."""

import json
import logging
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import torch
from jaxtyping import Float
from torch import Tensor
from transformer_lens.model_bridge import TransformerBridge

from rcid_tl import __version__
from rcid_tl.artifacts import write_json
from rcid_tl.errors import InputError
from rcid_tl.hooks.names import Site, parse_site
from rcid_tl.interventions.read import at_positions, cache_hooks
from rcid_tl.interventions.write import PATCHABLE
from rcid_tl.models.loading import namer
from rcid_tl.progress import track
from rcid_tl.tasks.base import ContrastiveDataset

log = logging.getLogger(__name__)

# Below this mean norm an imprint is zero up to float error (e.g. IOI's `io` under the s2-io corruption: it comes
# before the only changed token, so causal attention keeps it identical); patching there changes nothing.
ZERO_NORM = 1e-6

# whole-vector sites only: a checkpoint names no head
CHECKPOINT_SITES = tuple(s for s in PATCHABLE if not s.per_head)


@dataclass(frozen=True)
class Checkpoint:
    """One causal checkpoint: a teacher hook point (site, layer) at a named per-example position.

    `modified` says whether the corruption changed the token there in any example: such positions carry a trivial
    embedding difference at low layers; unmodified ones only differ through what the model moved there."""

    layer: int
    position: str
    site: str
    mean_norm: float
    modified: bool

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
) -> Float[Tensor, "layer position"]:
    """Mean over examples of ‖h_clean − h_corrupt‖ at every (layer, named position), columns in the dataset's
    position order. One clean and one corrupt forward per batch, caching only `site` at each layer."""
    site = Site(site)
    if site not in CHECKPOINT_SITES:
        allowed = ", ".join(s.value for s in CHECKPOINT_SITES)
        raise InputError(f"site {site.value!r} cannot be a checkpoint site; allowed: {allowed}")
    if batch_size < 1:
        raise InputError(f"--batch-size must be ≥ 1, got {batch_size}")
    names = [namer(model).name(site, layer) for layer in range(model.cfg.n_layers)]
    totals = torch.zeros(len(names), len(dataset.position_names), dtype=torch.float64)
    rows = torch.arange(len(dataset))
    for chunk in track(rows.split(batch_size), "imprints"):
        batch = dataset.batch(chunk.tolist())
        _, clean = cache_hooks(model, batch.clean, names, batch.answer_pos)
        _, corrupt = cache_hooks(model, batch.corrupt, names, batch.answer_pos)
        for i, name in enumerate(names):
            for j, position in enumerate(dataset.position_names):
                pos = batch.position(position)
                d = at_positions(clean[name], pos) - at_positions(corrupt[name], pos)  # (batch, d_model)
                totals[i, j] += d.double().norm(dim=-1).sum().cpu()
    return (totals / len(dataset)).float()


def select_checkpoints(
    model: TransformerBridge,
    dataset: ContrastiveDataset,
    *,
    top_k: int = 8,
    site: Site = Site.RESID_POST,
    min_unmodified: int | None = None,
    batch_size: int = 64,
) -> list[Checkpoint]:
    """The top-`top_k` (layer, position) pairs by mean imprint norm (seed 000 §2.4), best first.

    Diversity: at least `min_unmodified` (default half of `top_k`) come from unmodified positions, the best of those
    first, and the rest are the best remaining of either kind. Zero imprints, and points whose patch cannot reach
    the answer (`reaches_answer`), are never chosen: their Write is a no-op. So fewer than `top_k` come back when
    fewer usable pairs exist, and the quota is only as full as the unmodified candidates allow (both logged)."""
    if top_k < 1:
        raise InputError(f"--top-k must be ≥ 1, got {top_k}")
    quota = top_k // 2 if min_unmodified is None else min_unmodified
    if not 0 <= quota <= top_k:
        raise InputError(f"--min-unmodified must be between 0 and --top-k ({top_k}), got {quota}")
    n_points = model.cfg.n_layers * len(dataset.position_names)
    if top_k > n_points:
        raise InputError(f"--top-k {top_k} asks for more checkpoints than exist: only {n_points} candidate (layer, "
                         f"position) points ({model.cfg.n_layers} layers × {len(dataset.position_names)} positions)")
    site = Site(site)
    norms = imprint_norms(model, dataset, site=site, batch_size=batch_size)
    modified = modified_positions(dataset)
    at_answer = {name: all(e.positions[name] == e.answer_pos for e in dataset.examples)
                 for name in dataset.position_names}
    n_layers = norms.shape[0]
    candidates = [
        Checkpoint(layer, position, site.value, float(norms[layer, j]), modified[position])
        for layer in range(n_layers) for j, position in enumerate(dataset.position_names)
        if norms[layer, j] > ZERO_NORM and reaches_answer(site, layer, n_layers, at_answer[position])
    ]
    candidates.sort(key=lambda c: -c.mean_norm)
    unmodified = [c for c in candidates if not c.modified][:quota]
    if len(unmodified) < quota:
        log.warning("only %d unmodified (layer, position) pairs have a non-zero imprint; quota was %d",
                    len(unmodified), quota)
    rest = [c for c in candidates if c not in unmodified][: top_k - len(unmodified)]
    chosen = sorted(unmodified + rest, key=lambda c: -c.mean_norm)
    if len(chosen) < top_k:
        log.warning("only %d (layer, position) pairs have a non-zero imprint that can reach the answer; asked for %d",
                    len(chosen), top_k)
    return chosen


def save_checkpoints(path: str | Path, checkpoints: Sequence[Checkpoint], meta: Mapping[str, Any]) -> Path:
    """Write checkpoints (and `meta`: model, task, how they were chosen) as JSON, atomically."""
    payload = {"rcid_tl_version": __version__, **dict(meta), "checkpoints": [c.to_dict() for c in checkpoints]}
    return write_json(Path(path), payload)


def load_checkpoints(path: str | Path, n_layers: int, position_names: Sequence[str]) -> list[Checkpoint]:
    """Checkpoints from a file `save_checkpoints` wrote (or a hand-written list of {layer, position[, site]}),
    checked against the model's depth and the task's positions; any problem is an InputError naming it."""
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
    return [_parse_entry(entry, i, path, n_layers, position_names) for i, entry in enumerate(entries)]


def _parse_entry(entry: Any, index: int, path: Path, n_layers: int, position_names: Sequence[str]) -> Checkpoint:
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
    return Checkpoint(layer, position, site.value, float(entry.get("mean_norm", float("nan"))),
                      bool(entry.get("modified", False)))
