"""What known-answer students are checked with, on plain Hugging Face forwards: IOI accuracy and logit difference,
and how alike two heads' attention patterns are (to pick a pair whose merge keeps behaviour)."""

from dataclasses import dataclass

import torch
from jaxtyping import Float, Int
from torch import Tensor
from transformers import PreTrainedModel, PreTrainedTokenizerBase

from rcid_tl.metrics import answer_logits, metric_for
from rcid_tl.tasks.base import ContrastiveDataset
from rcid_tl.tasks.registry import TaskSpec, build_task
from rcid_tl.validation.students import attn_shape, head_weights


@dataclass(frozen=True)
class TaskScore:
    """Accuracy (logit difference > 0) and mean logit difference on clean prompts."""

    accuracy: float
    logit_diff: float


def ioi_dataset(model: PreTrainedModel, tokenizer: PreTrainedTokenizerBase, n: int, seed: int) -> ContrastiveDataset:
    return build_task(TaskSpec("ioi", n=n, seed=seed), tokenizer, model.config.max_position_embeddings)


def hf_answer_logits(model: PreTrainedModel, tokens: Int[Tensor, "batch pos"], answer_pos: Int[Tensor, " batch"]
                   ) -> Float[Tensor, "batch d_vocab"]:
    """Logits at each row's answer position. Batches are right-padded after the answer position, so under causal
    attention the padding never reaches it and no attention mask is needed."""
    return answer_logits(model(input_ids=tokens).logits, answer_pos)


@torch.no_grad()
def task_score(model: PreTrainedModel, dataset: ContrastiveDataset, batch_size: int = 128) -> TaskScore:
    metric = metric_for(dataset)
    values = []
    for rows in torch.arange(len(dataset)).split(batch_size):
        batch = dataset.batch(rows.tolist())
        values.append(metric(hf_answer_logits(model, batch.clean, batch.answer_pos), batch).float())
    v = torch.cat(values)
    return TaskScore(accuracy=(v > 0).float().mean().item(), logit_diff=v.mean().item())


@dataclass(frozen=True)
class HeadPair:
    """Two heads of one layer and how alike their attention patterns are (1: identical on every query)."""

    layer: int
    keep: int
    drop: int
    similarity: float


@torch.no_grad()
def pattern_similarity(model: PreTrainedModel, dataset: ContrastiveDataset) -> Float[Tensor, "layer head head"]:
    """1 − total-variation distance between two heads' attention rows, averaged over the clean prompts' queries up
    to the answer position (later rows see padding)."""
    batch = dataset.batch()
    patterns = model(input_ids=batch.clean, output_attentions=True).attentions  # layer × (batch, head, q, k)
    pos = torch.arange(batch.clean.shape[1])
    real = (pos[None, :] <= batch.answer_pos[:, None]).float()  # (batch, q)
    sims = []
    for a in patterns:
        tv = 0.5 * (a[:, :, None] - a[:, None, :]).abs().sum(-1)  # (batch, head, head, q)
        sims.append(1 - (tv * real[:, None, None]).sum((0, 3)) / real.sum())
    return torch.stack(sims)


def most_similar_heads(model: PreTrainedModel, tokenizer: PreTrainedTokenizerBase, *, n: int = 64, seed: int = 0
                       ) -> HeadPair:
    """The two heads of one layer whose attention patterns on IOI prompts are most alike: merging them
    (`merge_heads`) moves the least. `keep` is the one with the larger OV norm, whose own pattern then rules."""
    shape = attn_shape(model.config)
    sims = pattern_similarity(model, ioi_dataset(model, tokenizer, n, seed))
    pairs = [(sims[l, a, b].item(), l, a, b) for l in range(shape.n_layers)
             for a in range(shape.n_heads) for b in range(a + 1, shape.n_heads)]
    similarity, layer, a, b = max(pairs)
    keep, drop = sorted((a, b), key=lambda h: -_ov_norm(model, layer, h))
    return HeadPair(layer, keep, drop, similarity)


@torch.no_grad()
def _ov_norm(model: PreTrainedModel, layer: int, head: int) -> float:
    kv = head // attn_shape(model.config).group
    return (head_weights(model, layer, "v", kv)[0] @ head_weights(model, layer, "o", head)[0]).norm().item()
