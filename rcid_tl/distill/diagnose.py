"""Measurements that explain what the RCID term can and cannot do in a run: how much of the teacher's imprint the
frozen W* can reach, how its gradient relates to the task KL's, and what the imprints at the checkpoints are."""

from dataclasses import dataclass

import torch
from jaxtyping import Float
from torch import Tensor

from rcid_tl.distill.losses import unit
from rcid_tl.distill.methods import Objective
from rcid_tl.distill.targets import TeacherTargets
from rcid_tl.hooks.names import Site
from rcid_tl.interventions.read import at_positions, cache_hooks
from rcid_tl.models.loading import namer
from rcid_tl.tasks.base import Batch


def reachable(weight: Float[Tensor, "d_t d_s"], teacher_imprints: Float[Tensor, "n d_t"]) -> dict[str, float]:
    """How much of the teacher's unit imprints lies in the span of W* (the only directions W*·d_S can take).

    `fraction`: mean ‖P t̂‖² over examples (P the projection onto W*'s column space); `floor`: the smallest RCID
    term any student could reach with this W*, mean(2 − 2‖P t̂‖), since the best unit vector in the span is P t̂/‖P t̂‖.
    """
    q, _ = torch.linalg.qr(weight.double())  # (d_t, d_s): an orthonormal basis of the span
    t = unit(teacher_imprints.double())
    inside = (t @ q).norm(dim=-1)  # ‖P t̂‖ per example
    return {"fraction": float(inside.pow(2).mean()), "floor": float((2 - 2 * inside).mean())}


def _student_grads(objective: Objective, student, batch: Batch, targets: TeacherTargets, lam: float) -> Tensor:
    objective.lam = lam
    loss, _ = objective(student, batch, targets)
    params = [p for p in student.original_model.parameters() if p.requires_grad]
    grads = torch.autograd.grad(loss, params, allow_unused=True)  # e.g. the unembedding gets none from the term
    return torch.cat([torch.zeros_like(p).flatten() if g is None else g.flatten() for p, g in zip(params, grads)])


@dataclass(frozen=True)
class GradientSplit:
    kl_norm: float  # ‖∇L_KL‖ over the student's parameters
    term_norm: float  # ‖∇term‖ (λ = 1)
    cosine: float  # cos(∇L_KL, ∇term): negative means the term pulls against the task


def gradient_split(objective: Objective, student, batch: Batch, targets: TeacherTargets) -> GradientSplit:
    """The gradients of the task KL and of the method's term, separately, on one batch: ∇term = ∇(KL + term) − ∇KL
    from two identical forwards (the student is in eval mode, so they are deterministic)."""
    lam = objective.lam
    try:
        kl = _student_grads(objective, student, batch, targets, 0.0)
        term = _student_grads(objective, student, batch, targets, 1.0) - kl
    finally:
        objective.lam = lam
    cosine = torch.nn.functional.cosine_similarity(kl, term, dim=0)
    return GradientSplit(float(kl.norm()), float(term.norm()), float(cosine))


@torch.no_grad()
def imprint_profile(model, batch: Batch, layer: int, positions: list[str]) -> dict[str, float]:
    """Mean ‖h_clean − h_corrupt‖ of `model`'s resid_post at `layer`, per named position."""
    name = namer(model).name(Site.RESID_POST, layer)
    _, clean = cache_hooks(model, batch.clean, [name], batch.answer_pos)
    _, corrupt = cache_hooks(model, batch.corrupt, [name], batch.answer_pos)
    return {p: float((at_positions(clean[name], batch.position(p)) - at_positions(corrupt[name], batch.position(p)))
                     .norm(dim=-1).mean()) for p in positions}


@torch.no_grad()
def token_share(model, batch: Batch, layer: int, position: str) -> float:
    """Mean cosine between the imprint at (`layer`, `position`) and the imprint of the embedding alone there
    (clean token's embedding − corrupt token's): near 1 means the checkpoint carries the swapped token's identity,
    not something the model computed."""
    name = namer(model).name(Site.RESID_POST, layer)
    _, clean = cache_hooks(model, batch.clean, [name], batch.answer_pos)
    _, corrupt = cache_hooks(model, batch.corrupt, [name], batch.answer_pos)
    pos = batch.position(position)
    d = at_positions(clean[name], pos) - at_positions(corrupt[name], pos)
    embed = model.W_E
    rows = torch.arange(len(batch))
    e = embed[batch.clean[rows, pos]] - embed[batch.corrupt[rows, pos]]
    return float(torch.nn.functional.cosine_similarity(d, e.to(d.device), dim=-1).mean())
