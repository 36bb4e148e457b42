"""Linear CKA (Kornblith et al. 2019) and its debiased form (Nguyen et al. 2021, from Song et al. 2012's unbiased
HSIC): how similar two sets of representations of the same n inputs are, invariant to rotation and scale. The one
HSIC/CKA of the package: floats for analysis, and the debiased CKA as a differentiable tensor for training losses."""

import torch
from jaxtyping import Float
from torch import Tensor

from rcid_tl.errors import InputError

HSIC_FLOOR = 1e-12  # a constant representation has HSIC(X, X) = 0; CKA is then undefined


def _check(x: Tensor, y: Tensor, least: int) -> tuple[Tensor, Tensor]:
    if x.dim() != 2 or y.dim() != 2 or x.shape[0] != y.shape[0]:
        raise InputError(f"CKA needs two (n, d) matrices over the same n inputs, got {tuple(x.shape)} and "
                         f"{tuple(y.shape)}")
    if x.shape[0] < least:
        raise InputError(f"this CKA needs at least {least} inputs, got {x.shape[0]}")
    # float64: the Frobenius norms of d×d cross-covariances lose digits in float32
    return x.double(), y.double()


def linear_cka(x: Float[Tensor, "n d_x"], y: Float[Tensor, "n d_y"]) -> float:
    """‖Yᶜᵀ Xᶜ‖²_F / (‖Xᶜᵀ Xᶜ‖_F ‖Yᶜᵀ Yᶜ‖_F) on column-centred X, Y: 1 for representations equal up to rotation
    and isotropic scale, near 0 for unrelated ones (but biased upwards when n is small relative to d)."""
    x, y = _check(x.detach(), y.detach(), 2)
    x, y = x - x.mean(0), y - y.mean(0)
    cross = (y.T @ x).norm() ** 2
    return float(cross / ((x.T @ x).norm() * (y.T @ y).norm()))


def unbiased_hsic(k: Float[Tensor, "n n"], l: Float[Tensor, "n n"]) -> Tensor:
    """Song et al. 2012's unbiased HSIC estimator on symmetric Gram matrices (their diagonals are ignored);
    differentiable, on the Grams' device."""
    n = k.shape[0]
    off = 1 - torch.eye(n, dtype=k.dtype, device=k.device)
    k, l = k * off, l * off  # zero diagonals, out of place so autograd sees it
    ones = torch.ones(n, dtype=k.dtype, device=k.device)
    trace = (k * l).sum()  # tr(K L) for symmetric K, L
    middle = (ones @ k @ ones) * (ones @ l @ ones) / ((n - 1) * (n - 2))
    cross = 2 * (ones @ k @ l @ ones) / (n - 2)
    return (trace + middle - cross) / (n * (n - 3))


def _debiased_hsics(x: Tensor, y: Tensor) -> tuple[Tensor, Tensor, Tensor]:
    """HSIC(K, L), HSIC(K, K), HSIC(L, L) of the linear Grams; the estimator is invariant to centring, so none."""
    k, l = x @ x.T, y @ y.T  # (n, n)
    return unbiased_hsic(k, l), unbiased_hsic(k, k), unbiased_hsic(l, l)


def debiased_linear_cka(x: Float[Tensor, "n d_x"], y: Float[Tensor, "n d_y"]) -> float:
    """Linear CKA with the unbiased HSIC estimator in place of the plug-in one: ≈ 0 in expectation for independent
    representations even when n ≪ d (needs n ≥ 4). Can be slightly negative."""
    xy, xx, yy = _debiased_hsics(*_check(x.detach(), y.detach(), 4))
    return float(xy / (xx * yy).sqrt())


def debiased_cka(x: Float[Tensor, "n d_x"], y: Float[Tensor, "n d_y"]) -> Float[Tensor, ""]:
    """`debiased_linear_cka` as a float64 tensor with gradients, for training losses; NaN-safe: 0 when either side
    is constant (where the float version is undefined)."""
    xy, xx, yy = _debiased_hsics(*_check(x, y, 4))
    cka = xy / (xx.clamp(min=HSIC_FLOOR) * yy.clamp(min=HSIC_FLOOR)).sqrt()
    return torch.where((xx > HSIC_FLOOR) & (yy > HSIC_FLOOR), cka, torch.zeros_like(cka))
