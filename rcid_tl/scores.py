"""Answer scores on answer-position logits, by token id: the logit difference (Wang et al. 2023) and, over the 100
two-digit year tokens, the probability difference and cutoff sharpness (Hanna et al. 2023). The tasks' metrics
(`rcid_tl.metrics`) and the world teachers' evaluation (`rcid_tl.world.evaluate`) both score with these."""

import torch
from jaxtyping import Float, Int
from torch import Tensor


def logit_diff_of(logits: Float[Tensor, "batch d_vocab"], correct: Int[Tensor, " batch"],
                  wrong: Int[Tensor, " batch"]) -> Float[Tensor, " batch"]:
    """logit(correct) − logit(wrong) per example."""
    rows = torch.arange(logits.shape[0], device=logits.device)
    return logits[rows, correct.to(logits.device)] - logits[rows, wrong.to(logits.device)]


def year_probs(logits: Float[Tensor, "batch d_vocab"], year_ids: Int[Tensor, " 100"]) -> Float[Tensor, "batch 100"]:
    """p(YY) of each two-digit token, from a softmax over the full vocabulary (in float32)."""
    return logits.float().softmax(-1)[:, year_ids.to(logits.device)]


def prob_diff_of(years: Float[Tensor, "batch 100"], threshold: Int[Tensor, " batch"]) -> Float[Tensor, " batch"]:
    """Σ_{y>YY} p(y) − Σ_{y≤YY} p(y), YY the example's threshold."""
    greater = torch.arange(100, device=years.device)[None, :] > threshold.to(years.device)[:, None]  # (batch, 100)
    return (years * greater).sum(-1) - (years * ~greater).sum(-1)


def sharpness_of(years: Float[Tensor, "batch 100"], threshold: Int[Tensor, " batch"]) -> Float[Tensor, " batch"]:
    """p(YY+1) − p(YY−1) (clamped to the two-digit range)."""
    rows = torch.arange(years.shape[0], device=years.device)
    yy = threshold.to(years.device)
    return years[rows, (yy + 1).clamp(max=99)] - years[rows, (yy - 1).clamp(min=0)]
