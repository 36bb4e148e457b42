"""The CKA auxiliary loss: 1 − debiased linear CKA between student and teacher hidden states of the
same tokens, on chosen layers, plus the contrastive alignment variant; differentiable on the student side."""

import torch
import torch.nn.functional as F
from torch import Tensor

from rcid_tl.alignment.cka import debiased_cka
from rcid_tl.distill.losses import check_finite
from rcid_tl.errors import InputError


def cka_loss(student: list[Tensor], teacher: list[Tensor]) -> Tensor:
    """Mean over the selected layer pairs of 1 − CKA(student rows, teacher rows); each entry is (n, d) over the
    same n tokens, the teacher detached. Near 1 for unrelated representations, 0 for aligned ones."""
    terms = [1 - debiased_cka(s, t.detach()) for s, t in zip(student, teacher, strict=True)]
    return check_finite("CKA", torch.stack(terms).mean().float())


def contrastive_alignment_loss(student: list[Tensor], teacher: list[Tensor], temperature: float = 0.1) -> Tensor:
    """The contrastive variant: InfoNCE where each projected student token must pick its own teacher token among
    the batch's (cosine logits / temperature), averaged over layer pairs. Needs student rows already in the
    teacher's width (a projection)."""
    terms = []
    for s, t in zip(student, teacher, strict=True):
        logits = F.normalize(s.float(), dim=-1) @ F.normalize(t.detach().float(), dim=-1).T / temperature
        terms.append(F.cross_entropy(logits, torch.arange(len(s), device=s.device)))
    return check_finite("contrastive alignment", torch.stack(terms).mean())


def select_layers(spec: str, n_layers: int) -> list[int]:
    """Student layers named by `spec`: `middle` (n // 2), `last`, `all`, or a comma list (`0,2`), range-checked."""
    if spec == "middle":
        return [n_layers // 2]
    if spec == "last":
        return [n_layers - 1]
    if spec == "all":
        return list(range(n_layers))
    parts = [p.strip() for p in spec.split(",")]
    if not parts or not all(p.isdigit() for p in parts):
        raise InputError(f"bad layer selection {spec!r}; allowed: middle, last, all, or a comma list like 0,2")
    layers = sorted({int(p) for p in parts})
    if layers[-1] >= n_layers:
        raise InputError(f"layer {layers[-1]} is out of range; the student has layers 0..{n_layers - 1}")
    return layers
