"""The CKA auxiliary loss (seed 001 §1.2): 1 − debiased linear CKA between student and teacher hidden states of the
same tokens, on chosen layers, plus the contrastive alignment variant; differentiable on the student side."""

import torch
import torch.nn.functional as F
from jaxtyping import Float
from torch import Tensor

from rcid_tl.distill.losses import check_finite
from rcid_tl.errors import InputError

HSIC_FLOOR = 1e-12  # a constant representation has HSIC(X, X) = 0; CKA is then undefined, and the loss is 1


def _unbiased_hsic(k: Tensor, l: Tensor) -> Tensor:
    """Song et al. 2012's unbiased HSIC on Gram matrices, as in `rcid_tl.alignment.cka` but kept differentiable
    and on the Grams' device (that module detaches and returns floats, for analysis)."""
    n = k.shape[0]
    off = 1 - torch.eye(n, dtype=k.dtype, device=k.device)
    k, l = k * off, l * off  # zero diagonals, out of place so autograd sees it
    trace = (k * l).sum()
    middle = k.sum() * l.sum() / ((n - 1) * (n - 2))
    cross = 2 * (k.sum(0) * l.sum(0)).sum() / (n - 2)  # 1ᵀKL1 for symmetric K, L
    return (trace + middle - cross) / (n * (n - 3))


def debiased_cka(x: Float[Tensor, "n d_x"], y: Float[Tensor, "n d_y"]) -> Tensor:
    """Debiased linear CKA (Nguyen et al. 2021) as a tensor with gradients, in float64 (Gram sums lose digits in
    float32); NaN-safe: 0 when either side is constant. Invariant to orthogonal maps and isotropic scale."""
    if x.dim() != 2 or y.dim() != 2 or x.shape[0] != y.shape[0] or x.shape[0] < 4:
        raise InputError(f"CKA needs two (n, d) matrices over the same n ≥ 4 tokens, got {tuple(x.shape)} and "
                         f"{tuple(y.shape)}")
    x, y = x.double(), y.double()
    k, l = x @ x.T, y @ y.T
    xy, xx, yy = _unbiased_hsic(k, l), _unbiased_hsic(k, k), _unbiased_hsic(l, l)
    denom = (xx.clamp(min=HSIC_FLOOR) * yy.clamp(min=HSIC_FLOOR)).sqrt()
    cka = xy / denom
    return torch.where((xx > HSIC_FLOOR) & (yy > HSIC_FLOOR), cka, torch.zeros_like(cka))


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
