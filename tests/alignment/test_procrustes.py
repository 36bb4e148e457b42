"""Procrustes against scipy.linalg.orthogonal_procrustes on the same preprocessed data, for equal
widths and, through zero-padding the narrower side, for unequal ones; and the frozen holder module."""

import numpy as np
import pytest
from jaxtyping import TypeCheckError
import torch
from scipy.linalg import orthogonal_procrustes

from rcid_tl.alignment.procrustes import ProcrustesMap, fit_procrustes

TOL = 1e-10  # float64 throughout: two SVD routes to the same unique optimum agree to rounding


def _preprocess(x: torch.Tensor) -> np.ndarray:
    """Seed §5.3's preprocessing, written out independently: centre columns, then unit-norm rows."""
    x = x.numpy() - x.numpy().mean(0)
    return x / np.linalg.norm(x, axis=1, keepdims=True)


def _scipy_map(student: torch.Tensor, teacher: torch.Tensor) -> np.ndarray:
    """scipy's R minimising ‖A R − B‖ with A the student side zero-padded to a common width; W* should be the
    student rows of R, transposed (zero-padded columns of A never touch R's other rows)."""
    s, t = _preprocess(student), _preprocess(teacher)
    width = max(s.shape[1], t.shape[1])
    pad = lambda x: np.pad(x, ((0, 0), (0, width - x.shape[1])))  # noqa: E731
    r, _ = orthogonal_procrustes(pad(s), pad(t))
    return r[: s.shape[1], : t.shape[1]].T  # (d_t, d_s)


@pytest.mark.parametrize("d_s,d_t", [(8, 8), (5, 12), (12, 5)])
def test_matches_scipy(d_s, d_t):
    g = torch.Generator().manual_seed(d_s * 100 + d_t)
    student = torch.randn(40, d_s, generator=g, dtype=torch.float64)
    teacher = student[:, : min(d_s, d_t)] @ torch.randn(min(d_s, d_t), d_t, generator=g, dtype=torch.float64)
    teacher = teacher + 0.3 * torch.randn(40, d_t, generator=g, dtype=torch.float64)
    w = fit_procrustes(student, teacher)
    assert w.shape == (d_t, d_s)
    np.testing.assert_allclose(w.numpy(), _scipy_map(student, teacher), atol=TOL)
    small = min(d_s, d_t)  # orthonormal columns (d_s ≤ d_t) or rows (d_s > d_t)
    gram = w.T @ w if d_s <= d_t else w @ w.T
    torch.testing.assert_close(gram, torch.eye(small, dtype=torch.float64), atol=TOL, rtol=0)


def test_recovers_a_rotation_and_maps_student_onto_teacher():
    g = torch.Generator().manual_seed(0)
    student = torch.randn(64, 6, generator=g, dtype=torch.float64) + 3.0  # an offset: centring must remove it
    q, _ = torch.linalg.qr(torch.randn(6, 6, generator=g, dtype=torch.float64))
    teacher = 2.5 * student @ q.T - 1.0  # rotation, isotropic scale and shift
    w = fit_procrustes(student, teacher)
    torch.testing.assert_close(w, q, atol=TOL, rtol=0)
    centred = lambda x: x - x.mean(0)  # noqa: E731
    torch.testing.assert_close(2.5 * centred(student) @ w.T, centred(teacher), atol=1e-9, rtol=0)


def test_keeps_float32_and_rejects_bad_input():
    w = fit_procrustes(torch.randn(10, 4), torch.randn(10, 3))
    assert w.dtype == torch.float32 and w.shape == (3, 4)
    with pytest.raises((ValueError, TypeCheckError)):  # the shape check fires first when jaxtyping is on
        fit_procrustes(torch.randn(10, 4), torch.randn(9, 4))
    with pytest.raises(ValueError, match="NaN"):
        fit_procrustes(torch.full((4, 2), float("nan")), torch.randn(4, 2))


def test_map_is_a_frozen_buffer_gradients_reach_the_input_only():
    mapping = ProcrustesMap.fit(torch.randn(30, 4), torch.randn(30, 6))
    assert list(mapping.parameters()) == [] and "weight" in mapping.state_dict()
    assert not mapping.weight.requires_grad
    x = torch.randn(2, 3, 4, requires_grad=True)
    y = mapping(x)
    assert y.shape == (2, 3, 6)
    torch.testing.assert_close(y, x @ mapping.weight.T)
    y.square().sum().backward()
    assert x.grad is not None and mapping.weight.grad is None
    assert (mapping.d_student, mapping.d_teacher) == (4, 6)
