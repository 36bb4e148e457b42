"""Write (seed 000 §2.1, §5.1): activation patching at (layer, per-example position), many sites per forward.

Noising (default, seed 000): the corrupt run's value goes into the clean run. Denoising: clean into corrupt. The
effect is Δ = metric(clean) − metric(patched) per example. Sites are batched by expanding the batch: each row of a
forward is one (site, example) pair, and one hook per hook point edits only the rows it owns.
"""

from collections.abc import Sequence
from dataclasses import dataclass
from enum import Enum

import torch
from jaxtyping import Float
from torch import Tensor
from transformer_lens.model_bridge import TransformerBridge

from rcid_tl.errors import InputError
from rcid_tl.hooks.names import Site
from rcid_tl.interventions.read import answer_forward, at_positions, cache_hooks
from rcid_tl.metrics import Metric, RunMetrics
from rcid_tl.models.loading import namer
from rcid_tl.progress import track
from rcid_tl.tasks.base import Batch

PATCHABLE = (Site.RESID_PRE, Site.RESID_MID, Site.RESID_POST, Site.Z, Site.ATTN_OUT, Site.MLP_OUT)


class Direction(str, Enum):
    NOISING = "noising"  # corrupt value into the clean run
    DENOISING = "denoising"  # clean value into the corrupt run


@dataclass(frozen=True)
class PatchSite:
    """Where to patch: a hook point (site, layer), a named per-example position, and a head for per-head sites."""

    site: Site
    layer: int
    position: str
    head: int | None = None

    def __post_init__(self) -> None:
        if self.site not in PATCHABLE:
            allowed = ", ".join(s.value for s in PATCHABLE)
            raise InputError(f"site {self.site.value!r} cannot be patched here; allowed: {allowed}")
        if (self.head is None) == self.site.per_head:
            raise InputError(f"site {self.site.value} {'needs' if self.site.per_head else 'takes no'} head index")


def patch_sites(
    model: TransformerBridge,
    batch: Batch,
    sites: Sequence[PatchSite],
    metric: Metric,
    direction: Direction = Direction.NOISING,
    rows_per_forward: int = 64,
) -> tuple[Float[Tensor, "site batch"], RunMetrics]:
    """Δ per (site, example) for every site, plus the clean/corrupt metrics. Exact: each row is its own forward's
    worth of computation; only the batching differs from patching one site at a time."""
    names = namer(model)
    for s in sites:
        names.check_layer(s.layer)
        if s.head is not None and not 0 <= s.head < model.cfg.n_heads:
            raise InputError(f"head {s.layer}.{s.head} is out of range; this model has heads 0..{model.cfg.n_heads - 1}")
        batch.position(s.position)
    hook_names = sorted({names.name(s.site, s.layer) for s in sites})
    clean_logits, clean_cache = cache_hooks(model, batch.clean, hook_names, batch.answer_pos)
    corrupt_logits, corrupt_cache = cache_hooks(model, batch.corrupt, hook_names, batch.answer_pos)
    metrics = RunMetrics(clean=metric(clean_logits, batch).cpu(), corrupt=metric(corrupt_logits, batch).cpu())
    noising = Direction(direction) is Direction.NOISING
    source, target = (corrupt_cache, batch.clean) if noising else (clean_cache, batch.corrupt)
    values = [_site_values(source[names.name(s.site, s.layer)], batch, s) for s in sites]  # each (batch, ...)

    n = len(batch.clean)
    rows = [(i, e) for i in range(len(sites)) for e in range(n)]
    patched = torch.empty(len(rows))
    chunks = [rows[k : k + rows_per_forward] for k in range(0, len(rows), rows_per_forward)]
    for k, chunk in enumerate(track(chunks, "patching")):
        patched[k * rows_per_forward : k * rows_per_forward + len(chunk)] = _patched_metric(
            model, batch, sites, values, chunk, target, metric, names
        )
    return metrics.clean[None, :].cpu() - patched.view(len(sites), n), metrics


def _site_values(acts: Tensor, batch: Batch, site: PatchSite) -> Tensor:
    values = at_positions(acts, batch.position(site.position))  # (batch, d) or (batch, head, d_head)
    return values[:, site.head] if site.head is not None else values


def _patched_metric(model, batch, sites, values, chunk, target, metric, names) -> Tensor:
    device = model.cfg.device
    site_of = torch.tensor([i for i, _ in chunk])
    example_of = torch.tensor([e for _, e in chunk])
    hooks = []
    for name in sorted({names.name(sites[i].site, sites[i].layer) for i, _ in chunk}):
        mine = [r for r, (i, _) in enumerate(chunk) if names.name(sites[i].site, sites[i].layer) == name]
        hooks.append((name, _row_patch_hook(sites, values, batch, site_of, example_of, torch.tensor(mine), device)))
    sub = batch.take(example_of)
    with torch.no_grad(), model.hooks(fwd_hooks=hooks):
        logits = answer_forward(model, target[example_of], sub.answer_pos)
    return metric(logits, sub).cpu()


def _row_patch_hook(sites, values, batch, site_of, example_of, rows, device):
    """A hook that overwrites, for each of its `rows`, the activation at that row's example position (and head)."""
    pos = torch.stack([batch.position(sites[int(site_of[r])].position)[example_of[r]] for r in rows])
    heads = [sites[int(site_of[r])].head for r in rows]
    new = torch.stack([values[int(site_of[r])][example_of[r]] for r in rows]).to(device)
    rows, pos = rows.to(device), pos.to(device)

    def hook(act: Tensor, hook) -> Tensor:
        act = act.clone()  # never edit the bridge's view in place
        if heads[0] is None:
            act[rows, pos] = new.to(act.dtype)
        else:
            act[rows, pos, torch.tensor(heads, device=device)] = new.to(act.dtype)
        return act

    return hook
