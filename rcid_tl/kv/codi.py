"""The CODI term (Shen et al. 2025; the KV recipe's self-distillation term): the student's hidden state at the
token before the answer matched to the teacher's there, on chosen layers, the teacher detached."""

import torch
from jaxtyping import Float, Int
from torch import Tensor, nn

from rcid_tl.distill.losses import EPS, check_finite


def before_answer(states: Float[Tensor, "batch pos d"], answer_start: Int[Tensor, " batch"]
                  ) -> Float[Tensor, "batch d"]:
    """Each row's hidden state at the position just before its first answer token (where the answer is decided)."""
    pos = (answer_start - 1).clamp(min=0).to(states.device)
    return states[torch.arange(states.shape[0], device=states.device), pos]


def codi_loss(
    student: list[Float[Tensor, "batch d_s"]],
    teacher: list[Float[Tensor, "batch d_t"]],
    projections: list[nn.Module],
) -> Tensor:
    """CODI's L1 distance normalised by the teacher's spread: mean |P·h_S − h_T| / std(h_T), averaged over layer
    pairs, P projecting the student into the teacher's width (learned). The normalisation keeps one weight
    meaningful across layers whose norms differ by orders of magnitude."""
    terms = []
    for h_s, h_t, p in zip(student, teacher, projections, strict=True):
        h_t = h_t.detach().float()
        terms.append((p(h_s.float()) - h_t).abs().mean() / h_t.std().clamp(min=EPS))
    return check_finite("CODI", torch.stack(terms).mean())
