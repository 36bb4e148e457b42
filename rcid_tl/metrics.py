"""Task metrics: pure functions on answer-position logits returning one value per example (callers reduce)."""

from collections.abc import Callable
from dataclasses import dataclass

import torch
from jaxtyping import Float, Int
from torch import Tensor

from rcid_tl.tasks.base import Batch, ContrastiveDataset

AnswerLogits = Float[Tensor, "batch d_vocab"]
Metric = Callable[[AnswerLogits, Batch], Float[Tensor, " batch"]]


@dataclass(frozen=True)
class RunMetrics:
    """Per-example metric on the unpatched clean and corrupt runs."""

    clean: Float[Tensor, " batch"]
    corrupt: Float[Tensor, " batch"]


def answer_logits(logits: Float[Tensor, "batch pos d_vocab"], answer_pos: Int[Tensor, " batch"]) -> AnswerLogits:
    """Each example's logits at its own answer position."""
    return logits[torch.arange(logits.shape[0], device=logits.device), answer_pos.to(logits.device)]


def logit_diff(logits: AnswerLogits, batch: Batch) -> Float[Tensor, " batch"]:
    """logit(correct) − logit(wrong) (Wang et al. 2023: logit(IO) − logit(S))."""
    rows = torch.arange(logits.shape[0], device=logits.device)
    return logits[rows, batch.correct.to(logits.device)] - logits[rows, batch.wrong.to(logits.device)]


def prob_diff(logits: AnswerLogits, batch: Batch, year_ids: Int[Tensor, " 100"]) -> Float[Tensor, " batch"]:
    """Hanna et al. 2023: Σ_{y>YY} p(y) − Σ_{y≤YY} p(y) over the 100 two-digit tokens, p a full-vocabulary softmax."""
    if batch.threshold is None:
        raise ValueError("prob_diff needs Greater-Than examples (a YY threshold per example)")
    probs = logits.float().softmax(-1)[:, year_ids.to(logits.device)]  # (batch, 100)
    years = torch.arange(100, device=logits.device)
    greater = years[None, :] > batch.threshold.to(logits.device)[:, None]  # (batch, 100)
    return (probs * greater).sum(-1) - (probs * ~greater).sum(-1)


def cutoff_sharpness(logits: AnswerLogits, batch: Batch, year_ids: Int[Tensor, " 100"]) -> Float[Tensor, " batch"]:
    """Hanna et al. 2023: p(YY+1) − p(YY−1)."""
    probs = logits.float().softmax(-1)[:, year_ids.to(logits.device)]
    rows = torch.arange(logits.shape[0], device=logits.device)
    yy = batch.threshold.to(logits.device)
    return probs[rows, (yy + 1).clamp(max=99)] - probs[rows, (yy - 1).clamp(min=0)]


def metric_for(dataset: ContrastiveDataset) -> Metric:
    """The task's primary metric: probability difference for Greater-Than, logit difference otherwise."""
    if dataset.metric_name == "prob_diff":
        year_ids = torch.tensor(dataset.year_ids)
        return lambda logits, batch: prob_diff(logits, batch, year_ids)
    return logit_diff
