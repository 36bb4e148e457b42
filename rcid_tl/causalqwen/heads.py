"""The causal head: abduction h → U, action U → S, one-vs-rest S → P(y_k).

Each network carries TransformerLens `HookPoint`s on what it produces. On a plain Hugging Face model they are
identities; on a bridge (`rcid_tl.causalqwen.bridge`) they are the named causal-head hook points.
"""

import math

import torch
import torch.nn.functional as F
from jaxtyping import Float
from torch import Tensor, nn
from transformer_lens.hook_points import HookPoint

from rcid_tl.causalqwen.cauchy import CauchyMath
from rcid_tl.causalqwen.config import AbductionInit, CausalQwen2Config

SCALE_FLOOR = 1e-6  # keeps scales > 0 when softplus underflows


class AbductionNetwork(nn.Module):
    """Infers the individual U ~ Cauchy(loc_U, scale_U) behind each position's hidden state."""

    def __init__(self, config: CausalQwen2Config):
        super().__init__()
        self.config = config
        self.loc_net = nn.Linear(config.hidden_size, config.causal_size, bias=True)
        self.scale_net = nn.Linear(config.hidden_size, config.causal_size, bias=True)
        self.hook_loc_U = HookPoint()
        self.hook_scale_U = HookPoint()
        self.reset_parameters()

    @torch.no_grad()
    def reset_parameters(self) -> None:
        """Identity: loc_U = h, so the action network starts as the original unembedding; scale_net's weight is 0
        and its bias γ_init, a wide and input-independent initial uncertainty (CausalQwen repository)."""
        if self.config.abduction_init_strategy == AbductionInit.IDENTITY.value:
            self.loc_net.weight.copy_(torch.eye(self.config.causal_size, self.config.hidden_size))
            self.scale_net.weight.zero_()
        else:
            nn.init.xavier_uniform_(self.loc_net.weight)
            nn.init.xavier_uniform_(self.scale_net.weight)
            self.scale_net.weight.mul_(0.1)
        self.loc_net.bias.zero_()
        # softplus⁻¹(γ) so that scale_U starts at exactly γ_init (for γ = 10 this is 10 − 4.5e-5)
        gamma = self.config.gamma_init
        self.scale_net.bias.fill_(gamma + math.log(-math.expm1(-gamma)))

    def forward(
        self, hidden: Float[Tensor, "*batch d_model"]
    ) -> tuple[Float[Tensor, "*batch causal"], Float[Tensor, "*batch causal"]]:
        loc_U = self.hook_loc_U(self.loc_net(hidden))
        scale_U = self.hook_scale_U(F.softplus(self.scale_net(hidden)) + SCALE_FLOOR)
        return loc_U, scale_U


class ActionNetwork(nn.Module):
    """Maps U to the decision scores S = W·U + b over the vocabulary, by Cauchy linear stability.

    W and b are the model's `lm_head` (copied from the source Qwen2), passed in at call time: that keeps them where
    Hugging Face (`get_output_embeddings`) and TransformerLens (`unembed`) look for the unembedding. This module
    owns the exogenous noise b_noise (CausalQwen repository): an independent Cauchy(0, |b_noise|) added to U, which
    by stability widens the scale to scale_U + |b_noise| and leaves the location alone.
    """

    def __init__(self, config: CausalQwen2Config):
        super().__init__()
        self.config = config
        self.b_noise = nn.Parameter(torch.empty(config.causal_size))
        self.hook_loc_S = HookPoint()
        self.hook_scale_S = HookPoint()
        self.reset_parameters()

    @torch.no_grad()
    def reset_parameters(self) -> None:
        self.b_noise.fill_(self.config.b_noise_init)

    def noisy_scale(self, scale_U: Float[Tensor, "*batch causal"]) -> Float[Tensor, "*batch causal"]:
        return scale_U + self.b_noise.abs()

    def forward(
        self, loc_U: Float[Tensor, "*batch causal"], scale_U: Float[Tensor, "*batch causal"], unembed: nn.Module
    ) -> tuple[Float[Tensor, "*batch d_vocab"], Float[Tensor, "*batch d_vocab"]]:
        loc_S = self.hook_loc_S(unembed(loc_U))  # = CauchyMath.linear_loc(loc_U, W, b), through the unembed hooks
        # the floor matters for an all-zero row of W (e.g. a padding token's): S_k is then a point mass, and
        # P(S_k > t_k) would be 0/0 at loc_S,k = t_k
        scale_S = CauchyMath.linear_scale(self.noisy_scale(scale_U), unembed.weight) + SCALE_FLOOR
        scale_S = self.hook_scale_S(scale_S)
        return loc_S, scale_S

    def sampled_decision(
        self, loc_U: Float[Tensor, "*batch causal"], scale_U: Float[Tensor, "*batch causal"], unembed: nn.Module
    ) -> Float[Tensor, "*batch d_vocab"]:
        """Causal mode: draw one individual u ~ Cauchy(loc_U, scale_U + |b_noise|), then act
        deterministically, W·u + b."""
        return unembed(CauchyMath.sample(loc_U, self.noisy_scale(scale_U)))


class OvRClassifier(nn.Module):
    """One-vs-rest: token k is "on" when S_k exceeds its learned threshold t_k,
    P(y_k) = ½ + atan((loc_S,k − t_k)/scale_S,k)/π.

    Unlike a softmax the probabilities are independent yes/no answers and need not sum to one."""

    def __init__(self, config: CausalQwen2Config):
        super().__init__()
        self.config = config
        self.thresholds = nn.Parameter(torch.empty(config.vocab_size))
        self.hook_probs = HookPoint()
        self.reset_parameters()

    @torch.no_grad()
    def reset_parameters(self) -> None:
        self.thresholds.fill_(self.config.ovr_threshold_init)

    def forward(
        self, loc_S: Float[Tensor, "*batch d_vocab"], scale_S: Float[Tensor, "*batch d_vocab"]
    ) -> Float[Tensor, "*batch d_vocab"]:
        return self.hook_probs(CauchyMath.survival(loc_S, scale_S, self.thresholds))
