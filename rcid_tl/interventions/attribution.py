"""Attribution patching (AtP; Nanda 2023, Kramár et al. 2024 arXiv:2403.00745): the first-order estimate of every
site's patching effect from one forward and one backward of the patched-into run, as a prefilter for exact patching.

metric(patched) ≈ metric(target) + (a_source − a_target) · ∂metric/∂a |target, per example and site; the estimate
of Δ = metric(clean) − metric(patched) follows. Exact where the metric is linear in the site's activation; it can miss
effects through saturated attention or nonlinear MLPs (AtP*'s false negatives), hence `attribution+exact`.
"""

from collections.abc import Sequence

import torch
from jaxtyping import Float
from torch import Tensor
from transformer_lens.model_bridge import TransformerBridge

from rcid_tl.hooks.names import Site, hook_name
from rcid_tl.interventions import direct
from rcid_tl.interventions.hook_fns import keep_hook, leaf_hook
from rcid_tl.interventions.write import Direction, PatchSite
from rcid_tl.metrics import Metric, RunMetrics
from rcid_tl.models.loading import namer
from rcid_tl.stats import spearman  # also what sweeps.prefilter imports from here
from rcid_tl.tasks.base import Batch


def attribution_patch(
    model: TransformerBridge,
    batch: Batch,
    sites: Sequence[PatchSite],
    metric: Metric,
    direction: Direction = Direction.NOISING,
) -> tuple[Float[Tensor, "site batch"], RunMetrics]:
    """Estimated Δ per (site, example), same layout and meaning as `patch_sites`, plus the clean/corrupt metrics.
    Costs one forward of the source run and one forward and backward of the target run, whatever the site count."""
    names = namer(model)
    for s in sites:
        names.check_layer(s.layer)
    site_names = [names.name(s.site, s.layer) for s in sites]
    hook_names = sorted(set(site_names))
    noising = Direction(direction) is Direction.NOISING
    source_tokens, target_tokens = (batch.corrupt, batch.clean) if noising else (batch.clean, batch.corrupt)
    source_logits, source = direct.cache(model, source_tokens, hook_names, batch.answer_pos)
    # the target run's block-0 input is made a leaf, so every activation downstream carries a gradient whether or not
    # the model's parameters do, and no parameter gradient is ever computed
    root, acts = hook_name(Site.RESID_PRE, 0), {}
    hooks = [(root, leaf_hook), *((n, keep_hook(acts, n)) for n in hook_names)]
    with torch.enable_grad():
        target_logits = direct.answer_forward(model, target_tokens, batch.answer_pos, hooks)
        target_metric = metric(target_logits, batch)
        grads = torch.autograd.grad(target_metric.sum(), [acts[n] for n in hook_names])  # examples are independent
    grad_of = dict(zip(hook_names, grads))
    clean_logits, corrupt_logits = (target_logits, source_logits) if noising else (source_logits, target_logits)
    with torch.no_grad():
        metrics = RunMetrics(clean=metric(clean_logits, batch).cpu(), corrupt=metric(corrupt_logits, batch).cpu())
    rows, change = torch.arange(len(batch))[None, :], None
    for name in hook_names:  # every site of one hook point at once
        mine = [k for k, site_name in enumerate(site_names) if site_name == name]
        index = (rows, torch.stack([batch.position(sites[k].position) for k in mine]))  # (site, example) each
        if sites[mine[0]].head is not None:
            index = (*index, torch.tensor([sites[k].head for k in mine])[:, None])
        pick = lambda t: t.detach().cpu()[index]  # noqa: E731  (site, example, features)
        values = ((pick(source[name]) - pick(acts[name])) * pick(grad_of[name])).sum(-1)  # first-order Δmetric
        change = values.new_empty(len(sites), len(batch)) if change is None else change
        change[mine] = values
    return metrics.clean[None, :] - (target_metric.detach().cpu()[None, :] + change), metrics


def top_k_recall(estimate: Float[Tensor, " n"], exact: Float[Tensor, " n"], k: int) -> float:
    """Fraction of the k sites with the largest exact |Δ| that are also among the estimate's k largest |Δ|."""
    k = min(k, len(exact))
    top = lambda x: set(x.abs().topk(k).indices.tolist())  # noqa: E731
    return len(top(estimate) & top(exact)) / k


def agreement(estimate: Float[Tensor, " n"], exact: Float[Tensor, " n"], k: int = 10) -> dict[str, float]:
    """How well mean attribution scores rank sites like exact patching does (AtP as a prefilter needs the ranking)."""
    return {"spearman": spearman(estimate.detach().cpu(), exact.detach().cpu()), f"top{k}_recall": top_k_recall(estimate, exact, k), "k": k}
