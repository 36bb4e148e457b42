"""Cauchy arithmetic the causal head is built on: linear stability, the CDF, sampling.

If U_j ~ Cauchy(μ_j, γ_j) independently, then Σ_j W_kj U_j + b_k ~ Cauchy(Σ_j W_kj μ_j + b_k, Σ_j |W_kj| γ_j):
locations map linearly, scales through |W|. This is what lets the action network carry a whole distribution
over decisions with two matrix products and no sampling.
"""

import math

import torch
import torch.nn.functional as F
from jaxtyping import Float
from torch import Tensor


class CauchyMath:
    """Static helpers; every function is exact (no Monte Carlo) except `sample`."""

    @staticmethod
    def linear_loc(
        loc: Float[Tensor, "*batch d_in"], weight: Float[Tensor, "d_out d_in"], bias: Tensor | None = None
    ) -> Float[Tensor, "*batch d_out"]:
        """Location of W·U + b."""
        return F.linear(loc, weight, bias)

    @staticmethod
    def linear_scale(
        scale: Float[Tensor, "*batch d_in"], weight: Float[Tensor, "d_out d_in"]
    ) -> Float[Tensor, "*batch d_out"]:
        """Scale of W·U + b: |W|·γ (a bias shifts a Cauchy, it never widens it)."""
        return F.linear(scale, weight.abs())

    @staticmethod
    def sample(loc: Tensor, scale: Tensor, generator: torch.Generator | None = None) -> Tensor:
        """One draw of Cauchy(loc, scale) per element, by inverting the CDF: loc + scale·tan(π(u − ½))."""
        u = torch.rand(loc.shape, generator=generator, dtype=loc.dtype, device=loc.device)
        return loc + scale * torch.tan(math.pi * (u - 0.5))

    @staticmethod
    def survival(loc: Tensor, scale: Tensor, threshold: Tensor) -> Tensor:
        """P(S > threshold) = ½ + atan((loc − threshold)/scale)/π, always in (0, 1) for finite inputs."""
        return torch.atan2(torch.ones_like(loc), -(loc - threshold) / scale) / math.pi

    @staticmethod
    def log_survival_pair(loc: Tensor, scale: Tensor, threshold: Tensor) -> tuple[Tensor, Tensor]:
        """(log P(S > t), log P(S ≤ t)) without cancellation.

        ½ + atan(z)/π equals atan2(1, −z)/π, and its complement atan2(1, z)/π. Written that way a probability
        near 0 is computed as the small angle itself (≈ 1/|z|) instead of as ½ − (½ − ε), so its log stays
        finite and accurate; the clamp only guards z = ±inf.
        """
        z = (loc - threshold) / scale
        one = torch.ones_like(z)
        tiny = torch.finfo(z.dtype).tiny
        log_pi = math.log(math.pi)
        return (torch.atan2(one, -z).clamp_min(tiny).log() - log_pi,
                torch.atan2(one, z).clamp_min(tiny).log() - log_pi)
