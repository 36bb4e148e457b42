"""Rotary position embeddings (RoPE): a model's base θ and the rotation itself, as Llama/Qwen2 apply it."""

import torch
from jaxtyping import Float
from torch import Tensor

from rcid_tl.errors import InputError


def rotary_base(model) -> float | None:
    """The model's RoPE base θ, or None for a model without rotary embeddings (GPT-2's absolute positions)."""
    config = model.original_model.config
    params = getattr(config, "rope_parameters", None) or {}
    theta = params.get("rope_theta", getattr(config, "rope_theta", None))
    return None if theta is None else float(theta)


def rotate(x: Float[Tensor, "*batch time d_head"], base: float) -> Float[Tensor, "*batch time d_head"]:
    """RoPE in the Llama/Qwen2 "rotate half" layout: dims i and i + d/2 rotate by angle pos·θ^(−2i/d)."""
    time, d = x.shape[-2], x.shape[-1]
    if d % 2:
        raise InputError(f"rotary embeddings need an even head width, got {d}")
    inv_freq = 1.0 / base ** (torch.arange(0, d, 2, dtype=torch.float32, device=x.device) / d)
    angle = torch.arange(time, dtype=torch.float32, device=x.device)[:, None] * inv_freq
    cos, sin = torch.cat([angle.cos()] * 2, -1).to(x.dtype), torch.cat([angle.sin()] * 2, -1).to(x.dtype)
    first, second = x[..., : d // 2], x[..., d // 2 :]
    return x * cos + torch.cat([-second, first], -1) * sin
