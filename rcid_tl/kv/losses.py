"""KV-cache matching losses on 5-D caches [batch, layer, head, time, d_head]:
MSE, cosine ("Mercator": direction only), and the token weighting from detached attention maps.

Every loss first reduces to a per-token value (batch, time), then averages over tokens with weights that sum to one
per sequence (uniform over kept tokens, or attention importance), so the weighted and plain losses share a scale.
"""

from enum import Enum

import torch
import torch.nn.functional as F
from jaxtyping import Bool, Float
from torch import Tensor

from rcid_tl.distill.losses import EPS, check_finite
from rcid_tl.errors import InputError, parse_choice


class KVLoss(str, Enum):
    MSE = "mse"  # squared error per element: matches values and scale
    COSINE = "cosine"  # 1 − cos per (layer, head, token) vector: direction only, blind to scale


def parse_kv_loss(value: str) -> KVLoss:
    return parse_choice(KVLoss, value, "--kv-loss")


def per_token_kv_loss(
    student: Float[Tensor, "batch layer head time d_head"],
    teacher: Float[Tensor, "batch layer head time d_head"],
    kind: KVLoss,
) -> Float[Tensor, "batch time"]:
    """The loss of each token, averaged over layers, heads (and d_head for MSE); the teacher is detached."""
    if student.shape != teacher.shape:
        raise InputError(f"student cache {tuple(student.shape)} and teacher cache {tuple(teacher.shape)} differ; "
                         "project the student's first (KVDimensionProjector)")
    teacher = teacher.detach()
    if kind is KVLoss.MSE:
        return (student.float() - teacher.float()).pow(2).mean(dim=(1, 2, 4))
    return cosine_distance(student.float(), teacher.float()).mean(dim=(1, 2))  # over (batch, layer, head, time)


def cosine_distance(student: Float[Tensor, "*rest d_head"], teacher: Float[Tensor, "*rest d_head"]
                    ) -> Float[Tensor, " *rest"]:
    """1 − cos(student, teacher) per vector over the last axis: direction only, blind to scale (the multi-teacher
    "Mercator" term); the one cosine KV distance, reduced by `per_token_kv_loss` and the structural loss."""
    return 1 - F.cosine_similarity(student, teacher, dim=-1, eps=EPS)


def token_importance(
    attention: Float[Tensor, "batch *rest key_pos"], keep: Bool[Tensor, "batch key_pos"]
) -> Float[Tensor, "batch key_pos"]:
    """How much attention each key token receives, from a DETACHED attention map: 4-D (batch, head,
    query, key) and 3-D (batch, query, key) maps are averaged over heads and queries, a 2-D (batch, key) map is used
    as is; then restricted to `keep` and normalised to sum to one per sequence. Detached so the KV loss never
    trains the attention it is weighted by (that would fight the model's own attention objective)."""
    attn = attention.detach().float()
    if attn.dim() == 4:
        attn = attn.mean(dim=(1, 2))
    elif attn.dim() == 3:
        attn = attn.mean(dim=1)
    elif attn.dim() != 2:
        raise InputError(f"attention must be 2-D, 3-D or 4-D, got shape {tuple(attention.shape)}")
    if attn.shape != keep.shape:
        raise InputError(f"attention over {tuple(attn.shape)} tokens does not match the {tuple(keep.shape)} kept")
    attn = attn * keep
    return attn / attn.sum(-1, keepdim=True).clamp(min=EPS)


def uniform_weights(keep: Bool[Tensor, "batch time"]) -> Float[Tensor, "batch time"]:
    """Equal weight on every kept token of a sequence (the plain, unweighted loss)."""
    w = keep.float()
    return w / w.sum(-1, keepdim=True).clamp(min=1)


def kv_loss(
    student: Float[Tensor, "batch layer head time d_head"],
    teacher: Float[Tensor, "batch layer head time d_head"],
    weights: Float[Tensor, "batch time"],
    kind: KVLoss,
) -> Tensor:
    """Σ_t w_t·loss_t per sequence, averaged over the batch (`weights` from `uniform_weights` or
    `token_importance`, each row summing to one)."""
    per_token = per_token_kv_loss(student, teacher, kind)
    return check_finite(f"KV ({kind.value})", (per_token * weights.to(per_token.device)).sum(-1).mean())


class AttentionWeighting:
    """The schedule: the plain KV loss for the first `warmup` steps, then attention-weighted, with the source
    of the attention (student or teacher) fixed for the run; `label(step)` is the log's bracketed state."""

    def __init__(self, enabled: bool, warmup: int, use_teacher: bool) -> None:
        if warmup < 0:
            raise InputError(f"--attention-weighted-kv-warmup must be ≥ 0, got {warmup}")
        self.enabled, self.warmup, self.use_teacher = enabled, warmup, use_teacher

    def active(self, step: int) -> bool:
        return self.enabled and step >= self.warmup

    def label(self, step: int) -> str:
        """`Attn-warmup: N steps` (steps left) during warm-up, `Student-Attn-weighted` / `Teacher-Attn-weighted`
        after it, empty when weighting is off."""
        if not self.enabled:
            return ""
        if step < self.warmup:
            return f"Attn-warmup: {self.warmup - step} steps"
        return f"{'Teacher' if self.use_teacher else 'Student'}-Attn-weighted"
