"""AtP*'s QK-fix (Kramár et al. 2024, arXiv:2403.00745 §3.1.1): attribution patching of a head's key or query at one
position through the exact change of that head's attention pattern, where plain AtP linearises through the softmax.

Plain AtP estimates a key patch as (k_source − k_target)·∂metric/∂k, which is ≈ 0 through a saturated softmax even
when the patch moves the attention. The fix recomputes the head's pattern exactly with the one patched key column
(or query row) against the target run's other queries and keys, and takes ∂metric/∂pattern · Δpattern: still first
order in the pattern, exact in the scores. Costs one softmax per affected row on top of plain AtP's runs.
"""

from collections.abc import Sequence
from dataclasses import dataclass

import torch
from jaxtyping import Float
from torch import Tensor
from transformer_lens.model_bridge import TransformerBridge

from rcid_tl.errors import InputError
from rcid_tl.hooks.names import Site, hook_name
from rcid_tl.interventions.hook_fns import leaf_hook
from rcid_tl.interventions.read import answer_forward, cache_hooks, capture
from rcid_tl.interventions.write import Direction
from rcid_tl.metrics import Metric, RunMetrics
from rcid_tl.models.loading import namer
from rcid_tl.models.rope import rotary_base, rotate
from rcid_tl.tasks.base import Batch


@dataclass(frozen=True)
class KeyQuerySite:
    """A head's key (`Site.K`, `head` a key/value head, shared by a group of query heads on GQA models) or query
    (`Site.Q`, `head` a query head) at a named per-example position."""

    site: Site
    layer: int
    position: str
    head: int

    def __post_init__(self) -> None:
        if self.site not in (Site.K, Site.Q):
            raise InputError(f"site {Site(self.site).value!r} is not a key or query site; allowed: k, q")


def key_query_attribution(
    model: TransformerBridge, batch: Batch, sites: Sequence[KeyQuerySite], metric: Metric,
    direction: Direction = Direction.NOISING, qk_fix: bool = True,
) -> tuple[Float[Tensor, "site batch"], RunMetrics]:
    """Estimated Δ = metric(clean) − metric(patched) per (site, example), as `attribution_patch` lays it out.
    `qk_fix`: AtP*'s estimate through the exactly recomputed pattern; False: plain AtP, gradient × Δk (or Δq).
    A key site's estimate sums over the query heads of its key/value group (they all read the patched key)."""
    names, cfg = namer(model), model.cfg
    n_kv = getattr(cfg, "n_key_value_heads", None) or cfg.n_heads
    for s in sites:
        names.check_layer(s.layer)
        limit = n_kv if s.site is Site.K else cfg.n_heads
        if not 0 <= s.head < limit:
            raise InputError(f"head {s.head} of {s.site.value} is out of range; "
                             f"layer {s.layer} has heads 0..{limit - 1}")
        batch.position(s.position)
    layers = sorted({s.layer for s in sites})
    qk_names = [hook_name(kind, layer) for layer in layers for kind in (Site.Q, Site.K)]
    graded = [hook_name(Site.PATTERN, layer) for layer in layers] if qk_fix else qk_names
    noising = Direction(direction) is Direction.NOISING
    source_tokens, target_tokens = (batch.corrupt, batch.clean) if noising else (batch.clean, batch.corrupt)
    source_logits, source = cache_hooks(model, source_tokens, qk_names, batch.answer_pos)
    with (torch.enable_grad(), model.hooks(fwd_hooks=[(hook_name(Site.RESID_PRE, 0), leaf_hook)]),
          capture(model, sorted({*qk_names, *graded})) as acts):
        target_logits = answer_forward(model, target_tokens, batch.answer_pos)
        target_metric = metric(target_logits, batch)
        grads = dict(zip(graded, torch.autograd.grad(target_metric.sum(), [acts[n] for n in graded])))
    clean_logits, corrupt_logits = (target_logits, source_logits) if noising else (source_logits, target_logits)
    with torch.no_grad():
        metrics = RunMetrics(clean=metric(clean_logits, batch).cpu(), corrupt=metric(corrupt_logits, batch).cpu())
        target = {n: acts[n].detach() for n in qk_names}
        scores = {layer: _scores(model, target, layer) for layer in layers} if qk_fix else {}
        estimates = []
        for s in sites:
            pos = batch.position(s.position).to(cfg.device)
            if qk_fix:
                change = _pattern_change_attribution(model, s, pos, source, target, scores[s.layer],
                                                     grads[hook_name(Site.PATTERN, s.layer)])
            else:
                name, rows = hook_name(s.site, s.layer), torch.arange(len(batch), device=cfg.device)
                change = ((source[name] - target[name]) * grads[name])[rows, pos, s.head].sum(-1)
            estimates.append(metrics.clean - (target_metric.detach().cpu() + change.cpu()))
    return torch.stack(estimates), metrics


def _rotated(model: TransformerBridge, x: Float[Tensor, "batch pos head d_head"]) -> Tensor:
    """(batch, head, pos, d_head), with rotary applied at each position where the model has it (hook_q/hook_k fire
    before rotary on the bridge)."""
    x = x.transpose(1, 2)
    base = rotary_base(model)
    return x if base is None else rotate(x, base)


def _scores(model: TransformerBridge, acts: dict[str, Tensor], layer: int) -> Float[Tensor, "batch head pos pos"]:
    """The target run's causal attention scores of `layer` (−inf above the diagonal), GQA keys shared by their group;
    the batches are right-padded and run without an attention mask, so causality is the only mask."""
    q = _rotated(model, acts[hook_name(Site.Q, layer)])
    keys = acts[hook_name(Site.K, layer)]  # (batch, pos, kv_head, d_head)
    k = _rotated(model, keys).repeat_interleave(q.shape[1] // keys.shape[2], dim=1)
    scores = q @ k.transpose(-1, -2) / q.shape[-1] ** 0.5
    width = scores.shape[-1]
    future = torch.ones(width, width, dtype=torch.bool, device=scores.device).triu(1)
    return scores.masked_fill(future, float("-inf"))


def _pattern_change_attribution(model, site: KeyQuerySite, pos: Tensor, source: dict, target: dict,
                                scores: Tensor, grad_pattern: Tensor) -> Float[Tensor, " batch"]:
    """∂metric/∂pattern · (pattern with the site's key column or query row patched − target pattern), per example."""
    name = hook_name(site.site, site.layer)
    rows = torch.arange(len(pos), device=pos.device)
    delta = torch.zeros_like(target[name][:, :, site.head])  # (batch, pos, d_head): the patch, at `pos` only
    delta[rows, pos] = source[name][rows, pos, site.head] - target[name][rows, pos, site.head]
    delta = _rotated(model, delta[:, :, None])[:, 0]  # rotary is linear at a fixed position
    q_heads = scores.shape[1]
    if site.site is Site.K:
        group = q_heads // target[name].shape[2]
        heads = slice(site.head * group, (site.head + 1) * group)
        q = _rotated(model, target[hook_name(Site.Q, site.layer)])[:, heads]  # (batch, group, pos, d_head)
        column_change = q @ delta[rows, pos][:, None, :, None] / q.shape[-1] ** 0.5  # (batch, group, pos, 1)
        new = scores[:, heads].clone()
        new[rows, :, :, pos] += column_change[..., 0]  # −inf above the diagonal stays −inf
        change = new.softmax(-1) - scores[:, heads].softmax(-1)
        return (grad_pattern[:, heads] * change).sum((1, 2, 3))
    group = q_heads // target[hook_name(Site.K, site.layer)].shape[2]
    k = _rotated(model, target[hook_name(Site.K, site.layer)])[:, site.head // group]  # (batch, pos, d_head)
    row = scores[rows, site.head, pos]  # (batch, key_pos)
    new_row = row + (k @ delta[rows, pos][:, :, None])[..., 0] / k.shape[-1] ** 0.5
    change = new_row.softmax(-1) - row.softmax(-1)
    return (grad_pattern[rows, site.head, pos] * change).sum(-1)
