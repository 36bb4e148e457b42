"""Structural KV loss: K and V matched by direction (1 − cosine, scale-free), Q matched through
what it does, the attention it puts on K: KL(teacher attention ‖ student attention) with each map computed from
its own Q and K. Separate weights α_k, α_v, α_attn make K-only / V-only / K+V / +attention ablations one config."""

from dataclasses import dataclass

from jaxtyping import Bool, Float
from torch import Tensor

from rcid_tl.checks import check_real
from rcid_tl.errors import InputError
from rcid_tl.kv.losses import cosine_distance
from rcid_tl.multiteacher.rope import attention


@dataclass(frozen=True)
class StructuralWeights:
    """α_k, α_v, α_attn (all ≥ 0, not all 0)."""

    k: float = 1.0
    v: float = 1.0
    attn: float = 1.0

    def __post_init__(self) -> None:
        for name in ("k", "v", "attn"):
            check_real(getattr(self, name), f"alpha_{name}")
        if self.k == self.v == self.attn == 0:
            raise InputError("alpha_k, alpha_v and alpha_attn are all 0: the structural loss would be empty")


def masked_mean(values: Float[Tensor, "batch layer head time"], valid: Bool[Tensor, "batch time"]) -> Tensor:
    """Mean over layers, heads and the valid (non-padding) positions."""
    weight = valid[:, None, None, :].to(values.dtype).expand_as(values)
    return (values * weight).sum() / weight.sum().clamp(min=1)


def attention_kl(p_teacher: Float[Tensor, "batch layer head time time"],
                 p_student: Float[Tensor, "batch layer head time time"], valid: Bool[Tensor, "batch time"]) -> Tensor:
    """Σ_k p_t log(p_t / p_s) per query, averaged over valid queries. KL(teacher ‖ student), the distillation
    direction: the student is penalised for missing keys the teacher attends to; keys the teacher gives 0 add 0."""
    log_ratio = p_teacher.clamp(min=1e-12).log() - p_student.clamp(min=1e-12).log()
    return masked_mean((p_teacher * log_ratio).sum(-1), valid)


def structural_kv_loss(
    student: tuple[Tensor, Tensor, Tensor],
    teacher: tuple[Tensor, Tensor, Tensor],
    valid: Bool[Tensor, "batch time"],
    weights: StructuralWeights = StructuralWeights(),
    rotary_base: float | None = None,
) -> tuple[Tensor, dict[str, float]]:
    """α_k·(1 − cos K) + α_v·(1 − cos V) + α_attn·KL(A_t ‖ A_s) on (Q, K, V) caches in the student's shape
    ([batch, layer, head, time, d_head]; K/V may have fewer, GQA heads). The teacher side is not detached here:
    its raw caches come from a no-grad forward, but the aligner's projections and the router that made it from them
    learn through this loss. Attention on both sides uses the student's rotary base (see rope.py). Returns the total
    and each part's value."""
    (s_q, s_k, s_v), (t_q, t_k, t_v) = student, teacher
    for s, t, name in ((s_q, t_q, "Q"), (s_k, t_k, "K"), (s_v, t_v, "V")):
        if s.shape != t.shape:
            raise InputError(f"student and aligned teacher {name} differ in shape: {tuple(s.shape)} vs "
                             f"{tuple(t.shape)}")
    parts: dict[str, Tensor] = {}
    if weights.k:
        parts["k_cos"] = masked_mean(cosine_distance(s_k, t_k), valid)
    if weights.v:
        parts["v_cos"] = masked_mean(cosine_distance(s_v, t_v), valid)
    if weights.attn:
        parts["attn_kl"] = attention_kl(attention(t_q, t_k, valid, rotary_base),
                                        attention(s_q, s_k, valid, rotary_base), valid)
    alpha = {"k_cos": weights.k, "v_cos": weights.v, "attn_kl": weights.attn}
    total = sum(alpha[name] * value for name, value in parts.items())
    return total, {name: float(value.detach()) for name, value in parts.items()}
