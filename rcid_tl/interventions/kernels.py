"""A GPT-2 or Qwen2 block's arithmetic as the bridge computes it, with fewer, fused kernels and no hook points: what
direct forwards (`rcid_tl.interventions.direct`) run between the hooks they fire. Each function computes the bridge's
function to float32 rounding (to 1e-10 in float64; tests/interventions/test_direct.py)."""

import math

import torch
import torch.nn.functional as F
from torch import Tensor


def original(bridge_module):
    """The HF module a bridge module wraps (itself where it wraps none)."""
    return getattr(bridge_module, "_original_component", bridge_module)


def attention(block, i: int, x: Tensor, d_head: int, rope, k_v, record, filled: bool = False) -> Tensor:
    """Block `i`'s attention on `x` up to `z` (batch, pos, head, d_head), before its hooks. Queries at every
    position, the last block's too: the same shapes as an unpatched run's, so a row nothing changes gives its logits
    bit for bit."""
    b, p, _ = x.shape
    q, k, v = (t.transpose(1, 2) for t in projections(block.attn, norm(block.ln1, x), d_head, rope))
    n_heads, n_kv = q.shape[1], k.shape[1]  # (batch, head, pos, d_head)
    if record is not None:
        record[i] = (k, v)
    if k_v is not None and filled:
        k_v[0][:, :, -p:], k_v[1][:, :, -p:] = k, v
        k, v = k_v
    elif k_v is not None:
        k, v = torch.cat([k_v[0], k], dim=-2), torch.cat([k_v[1], v], dim=-2)
    # grouped-query attention without repeating keys/values: the heads sharing one (adjacent, as HF repeats them)
    # stack their queries, (batch, kv_head, group · pos, d_head)
    q = q.reshape(b, n_kv, -1, d_head)
    scores = q @ k.transpose(-1, -2) * d_head ** -0.5  # (batch, kv_head, group · query_pos, key_pos)
    keys = k.shape[-2]
    future = torch.arange(keys, device=x.device)[None] > torch.arange(keys - p, keys, device=x.device)[:, None]
    # Qwen2's attention takes the softmax in float32 whatever the model's dtype; GPT-2's in the model's own
    softmax_dtype = torch.float32 if rope is not None else q.dtype
    grouped = scores.view(b, n_kv, -1, p, keys).masked_fill(future, float("-inf"))
    pattern = grouped.softmax(-1, dtype=softmax_dtype).to(q.dtype).view(scores.shape)
    return (pattern @ v).view(b, n_heads, p, d_head).transpose(1, 2)  # (batch, pos, head, d_head)


def projections(attn, h: Tensor, d_head: int, rope) -> tuple[Tensor, Tensor, Tensor]:
    """Queries, keys and values (batch, pos, head, d_head): GPT-2's from one matmul of its `c_attn`, Qwen2's from
    its q, k and v projections, queries and keys rotated."""
    b, p, _ = h.shape
    hf = original(attn)
    if hasattr(hf, "c_attn"):
        return tuple(t.view(b, p, -1, d_head) for t in hf.c_attn(h).split(hf.split_size, dim=-1))
    q, k, v = (original(m)(h).view(b, p, -1, d_head) for m in (attn.q, attn.k, attn.v))
    if rope is not None:
        cos, sin = (t.unsqueeze(2) for t in rope)
        q, k = rotary(q, cos, sin), rotary(k, cos, sin)
    return q, k, v


def rotary(x: Tensor, cos: Tensor, sin: Tensor) -> Tensor:
    """HF's x·cos + rotate_half(x)·sin, rotate_half(x) = (−x₂, x₁), without building rotate_half: x·cos, then
    each half gains its product with the sine in one fused kernel (rounding differs from HF's by about an ulp)."""
    half = x.shape[-1] // 2
    out = x * cos
    out[..., :half].addcmul_(x[..., half:], sin[..., :half], value=-1)
    out[..., half:].addcmul_(x[..., :half], sin[..., half:])
    return out


def norm(module, x: Tensor) -> Tensor:
    """The bridge's normalization without its hook points, in one fused kernel (the bridge normalizes step by step
    in Python in compatibility mode: the same function, rounding differs by about an ulp)."""
    hf = original(module)
    if getattr(module.config, "layer_norm_folding", False):
        return hf(x)
    if module.use_native_layernorm_autograd:  # the bridge calls HF's module (Qwen2's RMSNorm: eight kernels)
        # which normalizes in float32 whatever the model's dtype: one kernel where that is the model's
        if not (module.uses_rms_norm and x.dtype == torch.float32 and hasattr(hf, "variance_epsilon")):
            return hf(x)
        return F.rms_norm(x, (x.shape[-1],), hf.weight.to(x.dtype), hf.variance_epsilon)
    h = x if x.dtype in (torch.float32, torch.float64) else x.float()
    weight = (1.0 + module.weight) if module.uses_weight_offset else module.weight
    eps, shape = getattr(module.config, "eps", 1e-05), (h.shape[-1],)
    if module.uses_rms_norm:
        return F.rms_norm(h, shape, weight.to(h.dtype), eps).to(x.dtype)
    bias = getattr(hf, "bias", None)
    return F.layer_norm(h, shape, weight.to(h.dtype), None if bias is None else bias.to(h.dtype), eps).to(x.dtype)


def mlp(module, h: Tensor) -> Tensor:
    """The block's MLP from its HF modules (GPT-2's activation through `activation`)."""
    hf = original(module)
    if hasattr(module, "gate"):  # Qwen2: down(act(gate(h)) · up(h))
        return original(module.out)(hf.act_fn(original(module.gate)(h)) * original(getattr(module, "in"))(h))
    return original(module.out)(activation(hf.act, original(getattr(module, "in"))(h)))


def activation(act, x: Tensor) -> Tensor:
    """GPT-2's activation. HF's `NewGELUActivation` (gelu_new) is the tanh approximation of GELU written as six
    elementwise ops; 0.5·x·(1 + tanh(u)) = x·sigmoid(2u), u = √(2/π)(x + 0.044715x³), is the same function, and
    torch's sigmoid is vectorized where its tanh (also inside the fused tanh GELU) is not: about twice as fast, in
    place when no gradient is needed (rounding differs by about an ulp: ≤ 4.8e-7 on activations up to ±15, ≤ 1e-15
    in float64)."""
    if type(act).__name__ != "NewGELUActivation":
        return act(x)
    if torch.is_grad_enabled():
        return x * torch.sigmoid(x * (_GELU_CUBIC * x * x + _GELU_LINEAR))
    return (x * x).mul_(_GELU_CUBIC).add_(_GELU_LINEAR).mul_(x).sigmoid_().mul_(x)


_GELU_LINEAR = 2 * math.sqrt(2 / math.pi)  # 2u = x · (_GELU_LINEAR + _GELU_CUBIC · x²)
_GELU_CUBIC = _GELU_LINEAR * 0.044715
