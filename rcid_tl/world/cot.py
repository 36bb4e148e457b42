"""Chain-of-thought arithmetic in the synthetic world: seeded problems, ID/OOD splits, per-token segments, batches.

A problem ("Q: Mary had 23 cats . Then Mary found 4 more . Then Mary gave 2 away . How many cats does Mary have now ?
A:") is solved step by step (" 23 + 4 = 27 . 27 - 2 = 25 . The answer is") and closed by the answer (" 25").
Every value stays in 0..MAX_VALUE, so every number is one world token. Needs `build_cot_tokenizer()` (or any
tokenizer for GSM8K-format data, see `rcid_tl.world.gsm8k`).
"""

import random
from dataclasses import dataclass
from enum import Enum, IntEnum
from typing import NamedTuple

import torch
from jaxtyping import Int
from torch import Tensor
from transformers import PreTrainedTokenizerBase

from rcid_tl.errors import InputError
from rcid_tl.world.lexicon import NAMES
from rcid_tl.world.relations import RELATIONS

MAX_VALUE = 30  # ~450 distinct (value, op, operand) facts: learnable by the small teachers in minutes
START_VALUES = range(2, MAX_VALUE + 1)
OPERANDS = range(1, 10)
ANIMALS_PLURAL: tuple[str, ...] = tuple(plural for _, plural in RELATIONS["plural"])
ADD_TEMPLATES = ("Then {name} found {b} more .", "Then {name} got {b} more .")
SUB_TEMPLATES = ("Then {name} gave {b} away .", "Then {name} gave {b} to {other} .")
IGNORE_INDEX = -100  # labels of tokens that are not predicted (Hugging Face's and torch's cross-entropy default)


class CoTSplit(str, Enum):
    """TRAIN: teacher training. ID: same distribution, its own random stream. OOD_LONGER: 3-4 operations instead of
    1-2. OOD_PAIRS: 1-2 operations whose every step (value, op, operand) is held out of TRAIN and ID."""

    TRAIN = "train"
    ID = "id"
    OOD_LONGER = "ood-longer"
    OOD_PAIRS = "ood-pairs"


class Segment(IntEnum):
    """Per-token segment ids; PAD marks right padding in a batch."""

    PAD = -1
    PROMPT = 0  # the leading <|endoftext|>, the question and "A:"
    REASONING = 1  # the worked steps and "The answer is"
    ANSWER = 2  # the answer's tokens and the closing <|endoftext|>


Step = tuple[int, str, int]  # (value before, "+" or "-", operand)


def _held_out_steps() -> frozenset[Step]:
    """A fixed tenth of all (value, op, operand) steps: never used by TRAIN or ID, only by OOD_PAIRS.

    "Unseen numbers" for a word-level model means unseen *combinations*: every number token, operand and result of
    a held-out step still occurs in training, only that arithmetic fact ("17 + 6 = 23") never does.
    """
    rng = random.Random("cot-held-out-steps")
    steps = [(x, op, b) for x in range(MAX_VALUE + 1) for op in "+-" for b in OPERANDS]
    return frozenset(s for s in steps if rng.random() < 0.1)


HELD_OUT_STEPS: frozenset[Step] = _held_out_steps()


@dataclass(frozen=True)
class CoTExample:
    """One problem as text pieces: `prompt` + `reasoning` + `answer` is the full solved problem.

    `prompt` ends with "A:", `reasoning` starts with a space and ends with "The answer is", `answer` is the bare
    number as a string ("25"); `n_steps` counts the operations (GSM8K: the reasoning lines)."""

    prompt: str
    reasoning: str
    answer: str
    n_steps: int

    @property
    def text(self) -> str:
        return f"{self.prompt}{self.reasoning} {self.answer}"


def _result(x: int, op: str, b: int) -> int:
    return x + b if op == "+" else x - b


def _sample_steps(rng: random.Random, n_ops: int, held_out: bool) -> tuple[int, list[Step]]:
    """A start value and `n_ops` steps with every value in 0..MAX_VALUE, all held out or none (rejection sampling)."""
    while True:
        x, steps = rng.choice(START_VALUES), []
        for _ in range(n_ops):
            options = [(x, op, b) for op in "+-" for b in OPERANDS
                       if 0 <= _result(x, op, b) <= MAX_VALUE and ((x, op, b) in HELD_OUT_STEPS) == held_out]
            if not options:
                break
            steps.append(rng.choice(options))
            x = _result(*steps[-1])
        if len(steps) == n_ops:
            return steps[0][0], steps


def _example(rng: random.Random, n_ops: int, held_out: bool) -> CoTExample:
    start, steps = _sample_steps(rng, n_ops, held_out)
    name, other = rng.sample(NAMES, 2)
    animals = rng.choice(ANIMALS_PLURAL)
    sentences = [f"{name} had {start} {animals} ."]
    for _, op, b in steps:
        sentences.append(rng.choice(ADD_TEMPLATES if op == "+" else SUB_TEMPLATES).format(name=name, b=b, other=other))
    sentences.append(f"How many {animals} does {name} have now ?")
    work = " ".join(f"{x} {op} {b} = {_result(x, op, b)} ." for x, op, b in steps)
    answer = _result(*steps[-1])
    return CoTExample(prompt=f"Q: {' '.join(sentences)} A:", reasoning=f" {work} The answer is", answer=str(answer),
                      n_steps=n_ops)


def cot_examples(split: CoTSplit | str, n: int, seed: int = 0, start: int = 0) -> list[CoTExample]:
    """Problems start..start+n-1 of `split`; problem i depends only on (split, seed, i), so streams extend."""
    try:
        split = CoTSplit(split)
    except ValueError:
        raise InputError(f"unknown CoT split {split!r}; allowed: {', '.join(s.value for s in CoTSplit)}") from None
    if n < 0 or start < 0:
        raise InputError(f"number and start of CoT examples must be >= 0, got {n} and {start}")
    ops = (3, 4) if split is CoTSplit.OOD_LONGER else (1, 2)
    out = []
    for i in range(start, start + n):
        rng = random.Random(f"cot:{split.value}:{seed}:{i}")
        out.append(_example(rng, rng.choice(ops), held_out=split is CoTSplit.OOD_PAIRS))
    return out


def encode_example(tokenizer: PreTrainedTokenizerBase, example: CoTExample) -> tuple[list[int], list[int]]:
    """Token ids of <|endoftext|> + prompt + reasoning + " answer" + <|endoftext|>, and their segment ids.

    Each piece is tokenized on its own (the world tokenizer gives the same ids as the whole text), so segment
    boundaries are exact token boundaries."""
    eos = tokenizer.eos_token_id
    if eos is None:
        raise InputError("the tokenizer has no eos token; CoT examples are closed by one")
    pieces = [(Segment.PROMPT, [eos] + _ids(tokenizer, example.prompt)),
              (Segment.REASONING, _ids(tokenizer, example.reasoning)),
              (Segment.ANSWER, _ids(tokenizer, " " + example.answer) + [eos])]
    ids = [t for _, piece in pieces for t in piece]
    segments = [int(seg) for seg, piece in pieces for _ in piece]
    return ids, segments


def _ids(tokenizer: PreTrainedTokenizerBase, text: str) -> list[int]:
    ids = tokenizer(text, add_special_tokens=False)["input_ids"]
    if tokenizer.unk_token_id is not None and tokenizer.unk_token_id in ids:
        raise InputError(f"the tokenizer does not know every word of {text!r}; use build_cot_tokenizer()")
    return ids


class CoTBatch(NamedTuple):
    """Right-padded token batch (padding: pad id, attention 0, segment PAD, label IGNORE_INDEX).

    `labels` equal `input_ids` on REASONING and ANSWER tokens and IGNORE_INDEX elsewhere, unshifted (Hugging Face
    convention: the loss at position t predicts labels[t] from the logits at t - 1)."""

    input_ids: Int[Tensor, "batch pos"]
    attention_mask: Int[Tensor, "batch pos"]
    segment_ids: Int[Tensor, "batch pos"]
    labels: Int[Tensor, "batch pos"]


def cot_batch(tokenizer: PreTrainedTokenizerBase, examples: list[CoTExample]) -> CoTBatch:
    """Tokenize `examples` once into a right-padded CoTBatch (see `encode_example` for the token layout)."""
    if not examples:
        raise InputError("cot_batch needs at least one example")
    encoded = [encode_example(tokenizer, ex) for ex in examples]
    width = max(len(ids) for ids, _ in encoded)
    pad = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else tokenizer.eos_token_id
    input_ids = torch.full((len(examples), width), pad, dtype=torch.long)
    segment_ids = torch.full((len(examples), width), int(Segment.PAD), dtype=torch.long)
    for row, (ids, segments) in enumerate(encoded):
        input_ids[row, : len(ids)] = torch.tensor(ids)
        segment_ids[row, : len(ids)] = torch.tensor(segments)
    attention_mask = (segment_ids != Segment.PAD).long()
    predicted = (segment_ids == Segment.REASONING) | (segment_ids == Segment.ANSWER)
    labels = torch.where(predicted, input_ids, torch.full_like(input_ids, IGNORE_INDEX))
    return CoTBatch(input_ids, attention_mask, segment_ids, labels)


def positions_before_answer(segment_ids: Int[Tensor, "batch pos"]) -> Int[Tensor, " batch"]:
    """Per row, the position of the last token before the ANSWER segment (the token whose output predicts the
    answer: "is" in "The answer is"), e.g. where CODI matches hidden states."""
    is_answer = segment_ids == Segment.ANSWER
    if not is_answer.any(-1).all():
        raise InputError("every row needs an ANSWER segment to find the position before it")
    return is_answer.long().argmax(-1) - 1
