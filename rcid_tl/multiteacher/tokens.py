"""Tokenizer alignment by character overlap: a soft [T_s, T_t] matrix saying how much of each
student token's characters each teacher token covers, built from fast tokenizers' offset mappings, and its
application to teacher K/V caches so a teacher with another tokenizer can be read at the student's positions."""

from collections.abc import Sequence

import torch
from jaxtyping import Float
from torch import Tensor

from rcid_tl.errors import InputError

Span = tuple[int, int]


def token_spans(tokenizer, text: str) -> list[Span]:
    """The character span of every token of `text` (a fast tokenizer's offset mapping, special tokens included)."""
    if not getattr(tokenizer, "is_fast", False):
        raise InputError(f"character alignment needs a fast tokenizer with offset mappings, got "
                         f"{type(tokenizer).__name__}")
    return [tuple(span) for span in tokenizer(text, return_offsets_mapping=True)["offset_mapping"]]


def _disjoint(spans: Sequence[Span]) -> list[Span]:
    """Each character owned by one token: a span starting inside the previous one starts where it ends. (The world
    tokenizer's normaliser maps the space it adds after a newline onto the newline, so " to" after "\n" overlaps
    it; without this an identical tokenization would not align to the identity.)"""
    out, end = [], 0
    for start, stop in spans:
        start = max(start, min(end, stop))
        out.append((start, stop))
        end = max(end, stop)
    return out


def char_alignment(student: Sequence[Span], teacher: Sequence[Span]) -> Float[Tensor, "t_s t_t"]:
    """A[i, j] = |chars(s_i) ∩ chars(t_j)| / |chars(s_i)|: the share of student token i's characters that teacher
    token j holds. Every row sums to 1. A token without characters (BOS, or a span the other side does not cover)
    takes the teacher token nearest its position, an empty teacher token at the same place first, so special tokens
    match special tokens. Identical tokenizations give the identity."""
    if not student or not teacher:
        raise InputError(f"character alignment needs tokens on both sides, got {len(student)} student and "
                         f"{len(teacher)} teacher tokens")
    s, t = _disjoint(student), _disjoint(teacher)
    s_start, s_stop = torch.tensor(s, dtype=torch.float64).T
    t_start, t_stop = torch.tensor(t, dtype=torch.float64).T
    overlap = (torch.minimum(s_stop[:, None], t_stop[None]) - torch.maximum(s_start[:, None], t_start[None])).clamp(
        min=0)
    rows = overlap.sum(1)
    for i in (rows == 0).nonzero().flatten().tolist():
        # nearest by start character; ties go to an empty teacher span (a special token), then to the earliest
        distance = (t_start - s_start[i]).abs() + 0.5 * (t_stop > t_start)
        overlap[i, int(distance.argmin())] = 1.0
    return (overlap / overlap.sum(1, keepdim=True)).float()


def off_diagonal_share(student: Sequence[Span], teacher: Sequence[Span]) -> Float[Tensor, " t_s"]:
    """Per student token, the share of its characters that `char_alignment` sends to teacher tokens whose span is
    not its own: 0 where the teacher has the same token (the identity's diagonal), 1 for a student " 23" read from a
    digit teacher's " 2" + "3". Measures how much work the alignment does for a pair of tokenizers."""
    a = char_alignment(student, teacher)
    s, t = _disjoint(student), _disjoint(teacher)
    same = torch.tensor([[float(sj == tj) for tj in t] for sj in s])
    return 1 - (a * same).sum(1)


def hard_alignment(soft: Float[Tensor, "*batch t_s t_t"]) -> Float[Tensor, "*batch t_s t_t"]:
    """The index alignment the soft one is ablated against: each student row keeps only its largest entry (one-hot),
    all-zero (padding) rows stay zero."""
    one_hot = torch.zeros_like(soft).scatter_(-1, soft.argmax(-1, keepdim=True), 1.0)
    return one_hot * (soft.sum(-1, keepdim=True) > 0)


def batch_char_alignment(student_tok, teacher_tok, texts: Sequence[str], t_s: int, t_t: int
                         ) -> Float[Tensor, "batch t_s t_t"]:
    """Per text, `char_alignment` of the two tokenizations, zero-padded to [t_s, t_t] (right padding: rows of
    student padding are zero, so padded positions receive nothing and are masked out of the loss)."""
    out = torch.zeros(len(texts), t_s, t_t)
    for b, text in enumerate(texts):
        a = char_alignment(token_spans(student_tok, text), token_spans(teacher_tok, text))
        if a.shape[0] > t_s or a.shape[1] > t_t:
            raise InputError(f"text {b} has {a.shape[0]} student / {a.shape[1]} teacher tokens, more than the "
                             f"{t_s} / {t_t} positions given")
        out[b, : a.shape[0], : a.shape[1]] = a
    return out


def align_time(cache: Float[Tensor, "batch layer head t_t d_head"], alignment: Float[Tensor, "batch t_s t_t"]
               ) -> Float[Tensor, "batch layer head t_s d_head"]:
    """Teacher K/V (or Q) read at the student's positions: each student position gets the alignment-weighted
    average of the teacher positions (a convex combination, since alignment rows sum to 1 or are padding zeros)."""
    if cache.dim() != 5 or alignment.dim() != 3 or alignment.shape[0] != cache.shape[0] \
            or alignment.shape[2] != cache.shape[3]:
        raise InputError(f"align_time needs a [batch, layer, head, t_t, d_head] cache and a [batch, t_s, t_t] "
                         f"alignment with matching batch and t_t, got {tuple(cache.shape)} and "
                         f"{tuple(alignment.shape)}")
    return torch.einsum("bst,blhtd->blhsd", alignment.to(cache.dtype), cache)
