"""Scores on chain-of-thought problems: exact answer accuracy by greedy generation, perplexity of the solution.

Works on Hugging Face causal LMs and on TransformerBridge models alike: both are called as `model(input_ids)` on
unpadded or right-padded ids (causal attention leaves every real position untouched by right padding).
"""

import math
import re
from collections import defaultdict
from dataclasses import asdict, dataclass

import torch
from jaxtyping import Float, Int
from torch import Tensor
from transformers import PreTrainedTokenizerBase

from rcid_tl.world.cot import IGNORE_INDEX, CoTExample, Segment, cot_batch, encode_example

_ANSWER = re.compile(r"answer is\s*(-?[\d,]*\.?\d+)")


@dataclass(frozen=True)
class CoTScores:
    """`accuracy`: share of exact answers; `perplexity`: exp(mean loss) over reasoning + answer tokens."""

    accuracy: float
    perplexity: float
    n: int

    def to_dict(self) -> dict:
        return asdict(self)


def _logits(model, input_ids: Int[Tensor, "batch pos"]) -> Float[Tensor, "batch pos d_vocab"]:
    out = model(input_ids)
    return (out.logits if hasattr(out, "logits") else out).float()


def parse_answer(text: str) -> str | None:
    """The number after the first "answer is" in generated text, without thousands commas; None when absent."""
    match = _ANSWER.search(text)
    return match.group(1).replace(",", "") if match else None


@torch.no_grad()
def generate_answers(
    model, tokenizer: PreTrainedTokenizerBase, examples: list[CoTExample], batch_size: int = 64,
    max_new_tokens: int | None = None,
) -> list[str]:
    """Greedy continuations of each prompt (<|endoftext|> + prompt) up to <|endoftext|>, decoded.

    Prompts are grouped by token length, so batches need no padding and no attention mask. Without
    `max_new_tokens` the budget is the longest reference solution plus 8 tokens."""
    encoded = [encode_example(tokenizer, ex) for ex in examples]
    prompts = [[t for t, s in zip(ids, seg) if s == Segment.PROMPT] for ids, seg in encoded]
    if max_new_tokens is None:
        max_new_tokens = max(len(ids) - len(p) for (ids, _), p in zip(encoded, prompts)) + 8
    by_length: dict[int, list[int]] = defaultdict(list)
    for i, p in enumerate(prompts):
        by_length[len(p)].append(i)
    texts = [""] * len(examples)
    for indices in by_length.values():
        for start in range(0, len(indices), batch_size):
            chunk = indices[start : start + batch_size]
            new = _greedy(model, torch.tensor([prompts[i] for i in chunk]), tokenizer.eos_token_id, max_new_tokens)
            for i, row in zip(chunk, new.tolist()):
                texts[i] = tokenizer.decode(row[: row.index(tokenizer.eos_token_id)] if tokenizer.eos_token_id in row
                                            else row)
    return texts


def _greedy(model, ids: Int[Tensor, "batch pos"], eos: int, max_new_tokens: int) -> Int[Tensor, "batch new"]:
    # full forward each step (no cache): the teachers are tiny and this works unchanged on a TransformerBridge
    ids = ids.to(next(model.parameters()).device)
    new = ids.new_empty((ids.shape[0], 0))
    done = torch.zeros(ids.shape[0], dtype=torch.bool, device=ids.device)
    for _ in range(max_new_tokens):
        nxt = _logits(model, torch.cat([ids, new], 1))[:, -1].argmax(-1)
        nxt = torch.where(done, torch.full_like(nxt, eos), nxt)
        new = torch.cat([new, nxt[:, None]], 1)
        done |= nxt == eos
        if done.all():
            break
    return new.cpu()


@torch.no_grad()
def solution_losses(
    model, tokenizer: PreTrainedTokenizerBase, examples: list[CoTExample], batch_size: int = 64
) -> tuple[Float[Tensor, " batch"], Int[Tensor, " batch"]]:
    """Per example: summed next-token loss over reasoning + answer tokens (teacher-forced) and their count."""
    sums, counts, device = [], [], next(model.parameters()).device
    for start in range(0, len(examples), batch_size):
        batch = cot_batch(tokenizer, examples[start : start + batch_size])
        logits = _logits(model, batch.input_ids.to(device))[:, :-1]
        labels = batch.labels[:, 1:].to(device)
        loss = torch.nn.functional.cross_entropy(logits.transpose(1, 2), labels, ignore_index=IGNORE_INDEX,
                                                 reduction="none")
        sums.append(loss.sum(-1).cpu())
        counts.append((labels != IGNORE_INDEX).sum(-1).cpu())
    return torch.cat(sums), torch.cat(counts)


def correct_answers(texts: list[str], examples: list[CoTExample]) -> Tensor:
    """Per example 1.0 when the parsed answer equals the reference exactly, else 0.0 (a missing answer is wrong)."""
    return torch.tensor([float(parse_answer(t) == ex.answer) for t, ex in zip(texts, examples)])


def evaluate_cot(
    model, tokenizer: PreTrainedTokenizerBase, examples: list[CoTExample], batch_size: int = 64
) -> CoTScores:
    """Exact answer accuracy (greedy generation, answer parsed from "The answer is N") and solution perplexity.

    `model`: a Hugging Face causal LM or a TransformerBridge; left in the train/eval mode it came in."""
    was_training = model.training
    model.eval()
    try:
        texts = generate_answers(model, tokenizer, examples, batch_size)
        sums, counts = solution_losses(model, tokenizer, examples, batch_size)
    finally:
        model.train(was_training)
    return CoTScores(accuracy=correct_answers(texts, examples).mean().item(),
                     perplexity=math.exp(sums.sum().item() / counts.sum().item()), n=len(examples))

