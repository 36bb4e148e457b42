"""Linear CKA against the kernel (HSIC) formula with an explicit centring matrix, debiased CKA against the
brute-force U-statistic of Song et al. 2012, and the properties both should have."""

import itertools

import pytest
from jaxtyping import TypeCheckError
import torch

from rcid_tl.alignment.cka import debiased_cka, debiased_linear_cka, linear_cka

TOL = 1e-9  # float64 inside; independent formulas of the same quantity agree to rounding


def _hsic_kernel_cka(x: torch.Tensor, y: torch.Tensor) -> float:
    """CKA = HSIC(K, L) / sqrt(HSIC(K, K) HSIC(L, L)), HSIC(K, L) = tr(K H L H), H = I − 11ᵀ/n."""
    n = x.shape[0]
    h = torch.eye(n, dtype=torch.float64) - 1 / n
    k, l = x.double() @ x.double().T, y.double() @ y.double().T
    hsic = lambda a, b: torch.trace(a @ h @ b @ h)  # noqa: E731
    return float(hsic(k, l) / (hsic(k, k) * hsic(l, l)).sqrt())


def _u_statistic_hsic(k: torch.Tensor, l: torch.Tensor) -> float:
    """Song et al. 2012's unbiased HSIC as explicit sums over distinct index tuples (O(n⁴); tiny n only)."""
    n = k.shape[0]
    pairs = sum(k[i, j] * l[i, j] for i, j in itertools.permutations(range(n), 2)) / (n * (n - 1))
    triples = sum(k[i, j] * l[i, q] for i, j, q in itertools.permutations(range(n), 3)) / (n * (n - 1) * (n - 2))
    quads = sum(k[i, j] * l[q, r] for i, j, q, r in itertools.permutations(range(n), 4)) / (
        n * (n - 1) * (n - 2) * (n - 3))
    return float(pairs + quads - 2 * triples)


def _u_statistic_cka(x: torch.Tensor, y: torch.Tensor) -> float:
    k, l = x.double() @ x.double().T, y.double() @ y.double().T
    return _u_statistic_hsic(k, l) / (_u_statistic_hsic(k, k) * _u_statistic_hsic(l, l)) ** 0.5


def test_linear_cka_matches_the_kernel_formula():
    g = torch.Generator().manual_seed(1)
    x = torch.randn(20, 7, generator=g)
    y = x @ torch.randn(7, 5, generator=g) + 0.5 * torch.randn(20, 5, generator=g)
    assert linear_cka(x, y) == pytest.approx(_hsic_kernel_cka(x, y), abs=TOL)


def test_debiased_cka_matches_the_u_statistic():
    g = torch.Generator().manual_seed(2)
    x = torch.randn(7, 4, generator=g)
    y = x[:, :3] + 0.8 * torch.randn(7, 3, generator=g)
    assert debiased_linear_cka(x, y) == pytest.approx(_u_statistic_cka(x, y), abs=TOL)
    xg = x.clone().requires_grad_(True)
    tensor = debiased_cka(xg, y)  # the training losses' form: same estimator, with gradients
    assert tensor.item() == pytest.approx(_u_statistic_cka(x, y), abs=TOL)
    tensor.backward()
    assert torch.isfinite(xg.grad).all() and xg.grad.abs().sum() > 0


@pytest.mark.parametrize("cka", [linear_cka, debiased_linear_cka])
def test_invariances_and_identity(cka):
    g = torch.Generator().manual_seed(3)
    x = torch.randn(30, 6, generator=g, dtype=torch.float64)
    y = torch.randn(30, 9, generator=g, dtype=torch.float64) + x @ torch.randn(6, 9, generator=g,
                                                                                  dtype=torch.float64)
    q, _ = torch.linalg.qr(torch.randn(6, 6, generator=g, dtype=torch.float64))
    assert cka(x, x) == pytest.approx(1.0, abs=TOL)
    assert cka(x, 4.0 * x @ q + 2.0) == pytest.approx(1.0, abs=TOL)  # rotation, isotropic scale, shift
    assert cka(x, y) == pytest.approx(cka(y, x), abs=TOL)
    assert cka(x @ q, 0.1 * y) == pytest.approx(cka(x, y), abs=TOL)
    assert 0.0 < cka(x, y) < 1.0


def test_debiasing_removes_the_small_sample_bias():
    # independent representations, few inputs relative to the width: linear CKA is far from 0, debiased is near it
    g = torch.Generator().manual_seed(4)
    x, y = torch.randn(16, 200, generator=g), torch.randn(16, 200, generator=g)
    assert linear_cka(x, y) > 0.5
    assert abs(debiased_linear_cka(x, y)) < 0.1


def test_rejects_mismatched_or_too_few_rows():
    with pytest.raises((ValueError, TypeCheckError)):  # the shape check fires first when jaxtyping is on
        linear_cka(torch.randn(5, 2), torch.randn(6, 2))
    with pytest.raises(ValueError, match="at least 4"):
        debiased_linear_cka(torch.randn(3, 2), torch.randn(3, 2))
