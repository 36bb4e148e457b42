"""Task metrics: pure functions on answer-position logits returning one value per example (callers reduce)."""

from collections.abc import Callable
from contextlib import AbstractContextManager, nullcontext
from dataclasses import dataclass
from typing import Any

import torch
from jaxtyping import Float, Int
from torch import Tensor

from rcid_tl.causalqwen.bridge import inference_mode, is_causal_qwen
from rcid_tl.causalqwen.config import InferenceMode
from rcid_tl.errors import InputError
from rcid_tl.scores import logit_diff_of, prob_diff_of, sharpness_of, year_probs
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
    return logit_diff_of(logits, batch.correct, batch.wrong)


def prob_diff(logits: AnswerLogits, batch: Batch, year_ids: Int[Tensor, " 100"]) -> Float[Tensor, " batch"]:
    """Hanna et al. 2023: Σ_{y>YY} p(y) − Σ_{y≤YY} p(y) over the 100 two-digit tokens, p a full-vocabulary softmax."""
    if batch.threshold is None:
        raise ValueError("prob_diff needs Greater-Than examples (a YY threshold per example)")
    return prob_diff_of(year_probs(logits, year_ids), batch.threshold)


def cutoff_sharpness(logits: AnswerLogits, batch: Batch, year_ids: Int[Tensor, " 100"]) -> Float[Tensor, " batch"]:
    """Hanna et al. 2023: p(YY+1) − p(YY−1)."""
    return sharpness_of(year_probs(logits, year_ids), batch.threshold)


def metric_for(dataset: ContrastiveDataset) -> Metric:
    """The task's primary metric: probability difference for Greater-Than, logit difference otherwise."""
    if dataset.metric_name == "prob_diff":
        year_ids = torch.tensor(dataset.year_ids)
        return lambda logits, batch: prob_diff(logits, batch, year_ids)
    return logit_diff


# CausalQwen: one-vs-rest probabilities. They read the model's standard-mode logits, which are
# log P_OvR(y_k) (sweeps switch a CausalQwen model to standard mode for these, see `metric_readout` below).
# Each P_OvR is its own yes/no probability; they need not sum to one.
TASK_METRIC = "task"


def ovr_prob_diff(log_ovr: AnswerLogits, batch: Batch) -> Float[Tensor, " batch"]:
    """P_OvR(correct) − P_OvR(wrong)."""
    rows = torch.arange(log_ovr.shape[0], device=log_ovr.device)
    probs = log_ovr.float().exp()
    return probs[rows, batch.correct.to(log_ovr.device)] - probs[rows, batch.wrong.to(log_ovr.device)]


def ovr_prob(log_ovr: AnswerLogits, batch: Batch) -> Float[Tensor, " batch"]:
    """P_OvR(correct)."""
    rows = torch.arange(log_ovr.shape[0], device=log_ovr.device)
    return log_ovr.float().exp()[rows, batch.correct.to(log_ovr.device)]


OVR_METRICS: dict[str, Metric] = {"ovr_prob_diff": ovr_prob_diff, "ovr_prob": ovr_prob}
METRIC_CHOICES = (TASK_METRIC, *OVR_METRICS)


def check_metric_name(name: str) -> str:
    if name not in METRIC_CHOICES:
        raise InputError(f"unknown metric {name!r}; allowed: {', '.join(METRIC_CHOICES)}")
    return name


def metric_named(name: str, dataset: ContrastiveDataset) -> tuple[Metric, str]:
    """The metric `name` chooses ("task": the task's own) and the name results record it under."""
    if check_metric_name(name) == TASK_METRIC:
        return metric_for(dataset), dataset.metric_name
    return OVR_METRICS[name], name


def metric_readout(model: Any, metric_name: str) -> AbstractContextManager:
    """What a sweep wraps its forwards in for `metric_name`: OvR metrics read log P_OvR, CausalQwen's standard-mode
    logits, so the model is switched to standard mode; other metrics read the logits as they are."""
    if metric_name not in OVR_METRICS:
        return nullcontext()
    if not is_causal_qwen(model):
        raise InputError(f"metric {metric_name} reads one-vs-rest probabilities, which only a CausalQwen model has")
    return inference_mode(model, InferenceMode.STANDARD)
