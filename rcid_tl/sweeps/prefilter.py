"""How a patching sweep gets its effects: exact patching, attribution patching alone, or attribution as a prefilter
with the top candidates patched exactly (Kramár et al. 2024's recommended use of AtP)."""

from collections.abc import Sequence
from dataclasses import dataclass
from enum import Enum
from typing import Any

import torch
from jaxtyping import Bool, Float
from torch import Tensor
from transformer_lens.model_bridge import TransformerBridge

from rcid_tl.interventions.attribution import attribution_patch, spearman, top_k_recall
from rcid_tl.interventions.write import Direction, PatchSite, patch_sites
from rcid_tl.metrics import Metric, RunMetrics
from rcid_tl.tasks.base import Batch


class Method(str, Enum):
    EXACT = "exact"  # every site patched exactly
    ATTRIBUTION = "attribution"  # every site estimated to first order (one forward and backward in all)
    ATTRIBUTION_EXACT = "attribution+exact"  # estimated, then the `top` largest |mean estimate| patched exactly


@dataclass(frozen=True)
class SweepEffects:
    """Δ per (site, example): exact where `exact` is set, the attribution estimate elsewhere."""

    delta: Float[Tensor, "site batch"]
    metrics: RunMetrics
    exact: Bool[Tensor, " site"]
    attribution: Float[Tensor, "site batch"] | None
    agreement: dict[str, Any] | None  # estimate vs exact on the verified sites (attribution+exact only)


def sweep_effects(
    model: TransformerBridge, batch: Batch, sites: Sequence[PatchSite], metric: Metric, direction: Direction,
    rows_per_forward: int | None, method: Method, top: int,
) -> SweepEffects:
    """The sweep's effects by `method`; `top` is how many candidates attribution+exact verifies."""
    method = Method(method)
    if method is Method.EXACT:
        delta, metrics = patch_sites(model, batch, sites, metric, direction, rows_per_forward)
        return SweepEffects(delta, metrics, torch.ones(len(sites), dtype=torch.bool), None, None)
    estimate, metrics = attribution_patch(model, batch, sites, metric, direction)
    if method is Method.ATTRIBUTION:
        return SweepEffects(estimate, metrics, torch.zeros(len(sites), dtype=torch.bool), estimate, None)
    chosen = estimate.mean(1).abs().topk(min(top, len(sites))).indices
    verified, _ = patch_sites(model, batch, [sites[int(i)] for i in chosen], metric, direction, rows_per_forward)
    delta, exact = estimate.clone(), torch.zeros(len(sites), dtype=torch.bool)
    delta[chosen], exact[chosen] = verified, True
    return SweepEffects(delta, metrics, exact, estimate, verified_agreement(estimate[chosen], verified))


def verified_agreement(estimate: Float[Tensor, "site batch"], exact: Float[Tensor, "site batch"]) -> dict[str, Any]:
    """Agreement of mean estimates with exact Δ over the verified sites: Spearman, top-k overlap (k = half of them,
    at most 10) and the largest absolute error. Sites never verified are not compared."""
    est, ex = estimate.mean(1), exact.mean(1)
    k = max(1, min(10, len(ex) // 2))
    return {"verified": len(ex), "spearman": spearman(est, ex) if len(ex) > 1 else None,
            "k": k, "top_k_overlap": top_k_recall(est, ex, k), "max_abs_error": float((est - ex).abs().max())}
