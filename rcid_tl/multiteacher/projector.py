"""The structured head-wise projector ("anti-flatten"): maps a teacher cache
[batch, layer, H_t, time, D_t] to the student's [batch, layer, H_s, time, D_s] without ever flattening layers,
heads or time together: a head-mixing matrix [H_s, H_t] (expansion or aggregation), then a D_t → D_s projection
shared by all heads or one per student head."""

import torch
from jaxtyping import Float
from torch import Tensor, nn

from rcid_tl.errors import InputError


def expand_kv_heads(cache: Float[Tensor, "batch layer kv_head time d_head"], n_heads: int
                    ) -> Float[Tensor, "batch layer head time d_head"]:
    """A GQA cache with one entry per query head: query head h reads K/V head h // (H / H_kv), as in the model."""
    kv = cache.shape[2]
    if n_heads % kv:
        raise InputError(f"{n_heads} query heads cannot share {kv} key/value heads evenly")
    return cache.repeat_interleave(n_heads // kv, dim=2)


def uniform_head_mixing(n_in: int, n_out: int) -> Float[Tensor, "n_out n_in"]:
    """The uniform init: aggregation (n_in ≥ n_out) averages each contiguous group of input heads into one
    output head; expansion (n_in < n_out) copies input head ⌊h·n_in/n_out⌋ to output head h. Contiguous groups keep
    GQA's grouping: the query heads sharing a K/V head stay together."""
    w = torch.zeros(n_out, n_in)
    for h in range(n_out):
        if n_in >= n_out:
            start, stop = h * n_in // n_out, (h + 1) * n_in // n_out
            w[h, start:stop] = 1.0 / (stop - start)
        else:
            w[h, h * n_in // n_out] = 1.0
    return w


class HeadwiseProjector(nn.Module):
    """[B, L, H_t, T, D_t] → [B, L, H_s, T, D_s] in two structured steps; the 5-D layout is kept throughout.

    - head mixing (H_t → H_s): a learned [H_s, H_t] matrix, started at `uniform_head_mixing` (`init_uniform`) or
      at random with the same row scale;
    - dimension projection (D_t → D_s): one [D_t, D_s] matrix for all heads (`share_dim`) or one per student head.
    """

    def __init__(self, n_in_heads: int, d_in: int, n_out_heads: int, d_out: int, *, share_dim: bool = True,
                 init_uniform: bool = True) -> None:
        super().__init__()
        if min(n_in_heads, d_in, n_out_heads, d_out) < 1:
            raise InputError(f"projector sizes must be ≥ 1, got heads {n_in_heads}→{n_out_heads}, "
                             f"d_head {d_in}→{d_out}")
        self.shape_in, self.shape_out = (n_in_heads, d_in), (n_out_heads, d_out)
        self.share_dim = share_dim
        mixing = uniform_head_mixing(n_in_heads, n_out_heads)
        if not init_uniform:
            mixing = torch.randn(n_out_heads, n_in_heads) / n_in_heads ** 0.5
        self.head_mixing = nn.Parameter(mixing)
        n_proj = 1 if share_dim else n_out_heads
        # Identity where the widths agree (a same-shaped teacher starts as a pass-through); else a scaled Gaussian
        # that keeps the vectors' expected norm.
        eye = torch.eye(d_in, d_out).expand(n_proj, d_in, d_out)
        dim = eye.clone() if d_in == d_out else torch.randn(n_proj, d_in, d_out) / d_in ** 0.5
        self.dim_proj = nn.Parameter(dim)

    def forward(self, cache: Float[Tensor, "batch layer head_t time d_t"]
                ) -> Float[Tensor, "batch layer head_s time d_s"]:
        if cache.dim() != 5 or tuple(cache.shape[i] for i in (2, 4)) != self.shape_in:
            raise InputError(f"projector expects [batch, layer, {self.shape_in[0]}, time, {self.shape_in[1]}], "
                             f"got {tuple(cache.shape)}")
        mixed = torch.einsum("sh,blhtd->blstd", self.head_mixing, cache)  # (B, L, H_s, T, D_t)
        # shared: one (D_t, D_s) for every head (broadcast over the size-1 head axis); else one per student head
        return torch.einsum("blstd,sde->blste", mixed, self.dim_proj.expand(self.shape_out[0], -1, -1))
