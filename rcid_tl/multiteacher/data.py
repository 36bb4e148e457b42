"""Chain-of-thought batches for several teachers and one student: each side's tokens and segments of its own text
(teacher forcing), and per teacher a [batch, T_s, T_t] alignment = segment warping ∘ character alignment, so a
teacher with another tokenizer and/or another length of reasoning is read at the student's positions.

The student may learn a compressed chain of thought (KaVa's setting: the teacher's full reasoning is distilled into
a shorter one): only each step's result is written (" 27 . 25 . The answer is" for " 23 + 4 = 27 . 27 - 2 = 25 .
The answer is"), so the reasoning segments differ in length per example and time warping has work to do."""

import re
from dataclasses import dataclass, replace
from enum import Enum
from functools import lru_cache

import torch
from torch import Tensor

from rcid_tl.multiteacher.tokens import char_alignment, hard_alignment
from rcid_tl.multiteacher.warp import segment_warp
from rcid_tl.world.cot import CoTExample, Segment, encode_example


class Reasoning(str, Enum):
    FULL = "full"  # the teachers' own format
    COMPRESSED = "compressed"  # results only


def compress(example: CoTExample) -> CoTExample:
    """The example with each worked step " x op b = r ." reduced to " r ."."""
    return replace(example, reasoning=re.sub(r" \d+ [+-] \d+ = (\d+) \.", r" \1 .", example.reasoning))


def student_examples(examples: list[CoTExample], reasoning: Reasoning) -> list[CoTExample]:
    return [compress(e) for e in examples] if Reasoning(reasoning) is Reasoning.COMPRESSED else list(examples)


@lru_cache(maxsize=None)
def encode_with_spans(tokenizer, example: CoTExample) -> tuple[list[int], list[int], list[tuple[int, int]]]:
    """`encode_example`'s ids and segments, plus each token's character span in `example.text` (the <|endoftext|>
    tokens get empty spans where they stand), for character alignment across tokenizers."""
    ids, segments = encode_example(tokenizer, example)
    spans, offset = [(0, 0)], 0  # the leading <|endoftext|>
    for piece in (example.prompt, example.reasoning, " " + example.answer):
        enc = tokenizer(piece, add_special_tokens=False, return_offsets_mapping=True)
        spans += [(offset + a, offset + b) for a, b in enc["offset_mapping"]]
        offset += len(piece)
    spans.append((offset, offset))  # the closing <|endoftext|>
    if len(spans) != len(ids):
        raise AssertionError(f"{len(spans)} spans for {len(ids)} tokens of {example.text!r}")
    return ids, segments, spans


@dataclass(frozen=True)
class Side:
    """One model's right-padded view of the batch: tokens and segment ids (Segment.PAD on padding)."""

    tokens: Tensor
    segments: Tensor

    @property
    def real(self) -> Tensor:
        return self.segments != Segment.PAD


def encode_side(tokenizer, examples: list[CoTExample]) -> Side:
    encoded = [encode_with_spans(tokenizer, e) for e in examples]
    width = max(len(ids) for ids, _, _ in encoded)
    pad = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else tokenizer.eos_token_id
    tokens = torch.full((len(examples), width), pad, dtype=torch.long)
    segments = torch.full((len(examples), width), int(Segment.PAD), dtype=torch.long)
    for row, (ids, segs, _) in enumerate(encoded):
        tokens[row, : len(ids)], segments[row, : len(ids)] = torch.tensor(ids), torch.tensor(segs)
    return Side(tokens, segments)


def teacher_alignment(student_tok, teacher_tok, student_examples: list[CoTExample],
                      teacher_examples: list[CoTExample], t_s: int, t_t: int, soft: bool) -> Tensor:
    """[batch, T_s, T_t]: per example `example_alignment`, zero-padded (padding reads and gives nothing)."""
    out = torch.zeros(len(teacher_examples), t_s, t_t)
    for b, (s_ex, t_ex) in enumerate(zip(student_examples, teacher_examples)):
        a = example_alignment(student_tok, teacher_tok, s_ex, t_ex, soft)
        out[b, : a.shape[0], : a.shape[1]] = a
    return out


@lru_cache(maxsize=None)
def example_alignment(student_tok, teacher_tok, student_example: CoTExample, teacher_example: CoTExample,
                      soft: bool) -> Tensor:
    """[T_s, T_t] for one example: the teacher's text is first re-read in the student's tokenization by character
    overlap (the identity when the tokenizers agree), then each segment is warped to the student's length; hard
    alignment keeps each row's largest entry (index alignment), soft keeps the interpolation. Cached: examples
    recur every epoch and the result depends on nothing else."""
    _, student_segments, _ = encode_with_spans(student_tok, student_example)
    _, segments_in_student_tok, spans = encode_with_spans(student_tok, teacher_example)
    _, _, teacher_spans = encode_with_spans(teacher_tok, teacher_example)
    chars = char_alignment(spans, teacher_spans)  # (T_{t→s}, T_t)
    warp = segment_warp(torch.tensor([segments_in_student_tok]), torch.tensor([student_segments]), soft=soft)[0]
    a = warp @ chars
    return a if soft else hard_alignment(a)
