"""Rotary position embeddings for attention recomputed from captured Q and K, and how teachers with other RoPE bases
(or none: GPT-2's learned absolute positions) are handled.

On the bridge, `hook_q` / `hook_k` fire on the projections' outputs, before rotary is applied (checked in the tests:
`hook_k` equals `k_proj` of the normed residual, and `attention` below with the model's base reproduces
`hook_pattern`). So captured K/Q carry no position phase: the K/V cosine terms compare content vectors, and a
teacher's RoPE base never enters them. Only the attention term needs positions; there the aligned teacher Q/K
(already mapped to the student's heads, width and positions) are rotated with the student's base at the student's
positions, exactly as the student's own Q/K are, so both attention maps are expressed in one positional scheme and
no base conversion (NTK or otherwise) is needed.
"""

import torch
from jaxtyping import Bool, Float
from torch import Tensor

from rcid_tl.errors import InputError
from rcid_tl.models.rope import rotate
from rcid_tl.multiteacher.projector import expand_kv_heads


def attention(
    q: Float[Tensor, "batch layer head time d_head"],
    k: Float[Tensor, "batch layer kv_head time d_head"],
    valid: Bool[Tensor, "batch time"],
    base: float | None = None,
) -> Float[Tensor, "batch layer head time time"]:
    """Causal softmax(q·kᵀ/√d) per layer and head, rotary applied first when `base` is given; GQA K is expanded to
    the query heads; keys at padding positions get no weight (queries at padding are the caller's to mask)."""
    if q.dim() != 5 or k.dim() != 5 or q.shape[-1] != k.shape[-1] or q.shape[3] != k.shape[3]:
        raise InputError(f"attention needs [batch, layer, head, time, d_head] Q and K of one width and length, "
                         f"got {tuple(q.shape)} and {tuple(k.shape)}")
    if base is not None:
        q, k = rotate(q, base), rotate(k, base)
    k = expand_kv_heads(k, q.shape[2])
    scores = torch.einsum("blhqd,blhkd->blhqk", q, k) / q.shape[-1] ** 0.5
    time = q.shape[3]
    causal = torch.ones(time, time, dtype=torch.bool, device=q.device).tril()
    allowed = causal & valid[:, None, None, None, :]
    # every query keeps at least itself, so no row is all -inf (padding queries are masked out by the loss)
    allowed = allowed | torch.eye(time, dtype=torch.bool, device=q.device)
    return scores.masked_fill(~allowed, float("-inf")).softmax(-1)
