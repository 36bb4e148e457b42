"""Teacher KV compression in the style of R-KV (`--kv_method rkv`): within the reasoning segment keep the
tokens that are most attended to and least redundant (keys most unlike the segment's other keys), up to a budget;
the student then matches only the kept part of the teacher's cache."""

import torch
import torch.nn.functional as F
from jaxtyping import Bool, Float
from torch import Tensor

from rcid_tl.errors import InputError


def redundancy(keys: Float[Tensor, "batch time d"], segment: Bool[Tensor, "batch time"]) -> Float[Tensor, "batch time"]:
    """Each segment token's mean cosine similarity of its key to the segment's other keys (high: a near-copy)."""
    unit = F.normalize(keys.float(), dim=-1)
    sim = unit @ unit.transpose(1, 2)  # (batch, time, time)
    pair = segment[:, :, None] & segment[:, None, :] & ~torch.eye(keys.shape[1], dtype=torch.bool,
                                                                  device=keys.device)
    return (sim * pair).sum(-1) / pair.sum(-1).clamp(min=1)


def rkv_keep(
    importance: Float[Tensor, "batch time"],
    keys: Float[Tensor, "batch time d"],
    segment: Bool[Tensor, "batch time"],
    budget: int,
    mix: float = 0.5,
) -> Bool[Tensor, "batch time"]:
    """Which segment tokens to keep: per row the `budget` best by mix·importance − (1 − mix)·redundancy
    (importance normalised to [0, 1] within the segment); rows with at most `budget` segment tokens keep them all.
    `mix = 1` keeps the most attended tokens alone. Tokens outside the segment are not returned (callers keep
    them)."""
    if budget < 1:
        raise InputError(f"--kv-compression budget must be ≥ 1 tokens, got {budget}")
    if not 0 <= mix <= 1:
        raise InputError(f"R-KV mix must be in [0, 1], got {mix}")
    imp = importance.detach().float().masked_fill(~segment, 0)
    imp = imp / imp.amax(-1, keepdim=True).clamp(min=1e-12)
    score = mix * imp - (1 - mix) * redundancy(keys.detach(), segment)
    score = score.masked_fill(~segment, float("-inf"))
    k = min(budget, keys.shape[1])
    top = score.topk(k, dim=-1).indices
    keep = torch.zeros_like(segment).scatter(1, top, True)
    return keep & segment
