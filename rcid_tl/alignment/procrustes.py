"""Orthogonal Procrustes alignment of student to teacher representations, frozen for training."""

import torch
from jaxtyping import Float
from torch import Tensor, nn

EPS = 1e-8  # row norms below this are treated as zero rows (seed §5.3)


def fit_procrustes(student: Float[Tensor, "n d_s"], teacher: Float[Tensor, "n d_t"]) -> Float[Tensor, "d_t d_s"]:
    """W* = argmax tr(Wᵀ M) over W with orthonormal rows or columns, M = T̂ᵀ Ŝ, so `student @ W.T ≈ teacher`.

    Both sides are column-centred, then each row is scaled to unit norm (so a few large-norm rows do
    not dominate), then W* = U Vᴴ from the thin SVD M = U Σ Vᴴ. With d_s ≤ d_t, W* has orthonormal columns (an
    isometric embedding of student space into teacher space); with d_s > d_t, orthonormal rows."""
    if student.dim() != 2 or teacher.dim() != 2 or student.shape[0] != teacher.shape[0]:
        raise ValueError(f"Procrustes needs (n, d_s) and (n, d_t) over the same n rows, got "
                         f"{tuple(student.shape)} and {tuple(teacher.shape)}")
    if not (torch.isfinite(student).all() and torch.isfinite(teacher).all()):
        raise ValueError("Procrustes inputs contain NaN or inf")
    s, t = student.detach().double(), teacher.detach().double()
    s, t = s - s.mean(0, keepdim=True), t - t.mean(0, keepdim=True)
    s = s / s.norm(dim=-1, keepdim=True).clamp(min=EPS)  # (n, d_s)
    t = t / t.norm(dim=-1, keepdim=True).clamp(min=EPS)  # (n, d_t)
    u, _, vh = torch.linalg.svd(t.T @ s, full_matrices=False)  # M: (d_t, d_s)
    return (u @ vh).to(student.dtype)  # (d_t, d_s)


class ProcrustesMap(nn.Module):
    """A fixed student→teacher map x ↦ x W*ᵀ. W* is a buffer, not a parameter: optimisers never see it, it never
    requires gradients, and it is saved in the state dict."""

    weight: Tensor

    def __init__(self, weight: Float[Tensor, "d_t d_s"]) -> None:
        super().__init__()
        self.register_buffer("weight", weight.detach().clone().requires_grad_(False))

    @classmethod
    def fit(cls, student: Float[Tensor, "n d_s"], teacher: Float[Tensor, "n d_t"]) -> "ProcrustesMap":
        return cls(fit_procrustes(student, teacher))

    @property
    def d_student(self) -> int:
        return self.weight.shape[1]

    @property
    def d_teacher(self) -> int:
        return self.weight.shape[0]

    def forward(self, x: Float[Tensor, "... d_s"]) -> Float[Tensor, "... d_t"]:
        return x @ self.weight.T.to(x.dtype)
