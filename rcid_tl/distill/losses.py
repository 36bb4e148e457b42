"""Distillation loss terms as pure functions on tensors.

Each returns a scalar and checks that it is finite, so a diverging run stops with a message naming the term instead
of silently writing NaN weights.
"""

import torch
import torch.nn.functional as F
from jaxtyping import Bool, Float
from torch import Tensor, nn

EPS = 1e-8  # seed §7.6: norms are clamped here before dividing


def check_finite(name: str, value: Tensor) -> Tensor:
    """`value` unchanged, or a FloatingPointError naming the loss term that went non-finite."""
    if not torch.isfinite(value).all():
        raise FloatingPointError(
            f"{name} loss is {value.detach().flatten()[:1].item()} (non-finite); lower the learning rate or λ, "
            f"or check the inputs for NaN"
        )
    return value


def kd_loss(
    student_logits: Float[Tensor, "batch pos d_vocab"],
    teacher_logits: Float[Tensor, "batch pos d_vocab"],
    mask: Bool[Tensor, "batch pos"],
    temperature: float = 1.0,
) -> Tensor:
    """Hinton et al.'s temperature KL(p_T ‖ p_S), times T² so gradients keep their scale, averaged over the
    token positions where `mask` is true (padding and positions after the answer are left out)."""
    return check_finite("KL", _tempered_kl(student_logits, teacher_logits, mask, temperature))


def _tempered_kl(student_logits: Tensor, teacher_logits: Tensor, mask: Tensor, t: float) -> Tensor:
    log_p_s = F.log_softmax(student_logits.float() / t, dim=-1)
    log_p_t = F.log_softmax(teacher_logits.float() / t, dim=-1)
    per_token = (log_p_t.exp() * (log_p_t - log_p_s)).sum(-1)  # (batch, pos)
    return (per_token * mask).sum() / mask.sum().clamp(min=1) * t * t


def relative_mse(
    aligned: Float[Tensor, "n d_t"], target: Float[Tensor, "n d_t"]
) -> Tensor:
    """Mean over rows of ‖aligned − target‖² / ‖target‖²: representation matching that is scale-free like the RCID
    term, so one λ means about the same for every method and layer (raw residual norms grow with depth)."""
    err = (aligned - target).pow(2).sum(-1)  # (n,)
    return (err / target.pow(2).sum(-1).clamp(min=EPS)).mean()


def unit(x: Float[Tensor, "n d"]) -> Float[Tensor, "n d"]:
    return x / x.norm(dim=-1, keepdim=True).clamp(min=EPS)


def rcid_term(
    student_imprints: list[Float[Tensor, "batch d_s"]],
    teacher_imprints: list[Float[Tensor, "batch d_t"]],
    maps: list[nn.Module],
) -> Tensor:
    """Seed §2.3: mean over checkpoints of ‖W*d_S/‖W*d_S‖ − d_T/‖d_T‖‖², batch-averaged. The teacher imprints
    must be detached (precomputed); the student imprints carry gradients; each `maps[c]` applies the frozen W*."""
    terms = [
        (unit(w(d_s)) - unit(d_t.detach())).pow(2).sum(-1).mean()
        for d_s, d_t, w in zip(student_imprints, teacher_imprints, maps, strict=True)
    ]
    return check_finite("RCID", torch.stack(terms).mean())


def informed_fitnets_term(
    student_states: list[Float[Tensor, "batch d_s"]],
    teacher_states: list[Float[Tensor, "batch d_t"]],
    maps: list[nn.Module],
) -> Tensor:
    """Seed §5.5: the clean representation h at each causal checkpoint, through the same frozen W* as RCID,
    matched to the teacher's h (relative squared error), averaged over checkpoints. It differs from RCID only in
    matching h_clean instead of the normalised imprint d."""
    pairs = zip(student_states, teacher_states, maps, strict=True)
    terms = [relative_mse(w(h_s), h_t.detach()) for h_s, h_t, w in pairs]
    return check_finite("Informed FitNets", torch.stack(terms).mean())


def fitnets_term(
    student_states: list[Float[Tensor, "batch pos d_s"]],
    teacher_states: list[Float[Tensor, "batch pos d_t"]],
    projections: list[nn.Module],
    mask: Bool[Tensor, "batch pos"],
) -> Tensor:
    """FitNets (Romero et al. 2015): every mapped layer's full representation at every real token, through a
    projection (learned regressor or frozen W*), matched to the teacher's (relative squared error), averaged."""
    terms = [
        relative_mse(p(h_s[mask]), h_t.detach()[mask])
        for h_s, h_t, p in zip(student_states, teacher_states, projections, strict=True)
    ]
    return check_finite("FitNets", torch.stack(terms).mean())


def iit_term(
    student_patched: Float[Tensor, "batch checkpoint d_vocab"],
    teacher_patched: Float[Tensor, "batch checkpoint d_vocab"],
    temperature: float = 1.0,
) -> Tensor:
    """Interchange-intervention training (Geiger et al. 2022, "Inducing causal structure for interpretable neural
    networks"): KL(p_T ‖ p_S) between the teacher's and the student's answer distributions when each model's
    checkpoint activation on the clean prompt is replaced by its own on the corrupt prompt, with `kd_loss`'s
    temperature convention, averaged over examples and checkpoints. Zero when the student's aligned points play
    the teacher's causal role on these interventions, whatever their representations look like."""
    everywhere = torch.ones(student_patched.shape[:2], dtype=torch.bool, device=student_patched.device)
    return check_finite("IIT", _tempered_kl(student_patched, teacher_patched.detach(), everywhere, temperature))
