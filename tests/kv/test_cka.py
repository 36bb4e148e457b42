"""The CKA auxiliary loss: equal to the analysis module's debiased CKA, 1 on itself, invariant to orthogonal maps and
isotropic scaling, NaN-safe on constant inputs, differentiable; the contrastive variant and the layer selection."""

import pytest
import torch
import torch.nn.functional as F

from rcid_tl.alignment.cka import debiased_cka, debiased_linear_cka
from rcid_tl.errors import InputError
from rcid_tl.kv.cka import cka_loss, contrastive_alignment_loss, select_layers

TOL = 1e-9  # float64 throughout


@pytest.fixture
def reps():
    g = torch.Generator().manual_seed(0)
    return torch.randn(40, 6, generator=g), torch.randn(40, 9, generator=g)


def test_matches_the_alignment_modules_estimator(reps):
    x, y = reps
    mixed = torch.cat([x, y[:, :3]], 1)  # partly related, so CKA is far from 0 and 1
    assert debiased_cka(x, mixed).item() == pytest.approx(debiased_linear_cka(x, mixed), abs=TOL)
    assert debiased_cka(x, y).item() == pytest.approx(debiased_linear_cka(x, y), abs=TOL)


def test_itself_is_one_and_invariant_to_orthogonal_maps_and_scale(reps):
    x, _ = reps
    q = torch.linalg.qr(torch.randn(6, 6, generator=torch.Generator().manual_seed(3)))[0]
    assert debiased_cka(x, x).item() == pytest.approx(1.0, abs=TOL)
    assert debiased_cka(x, 7.5 * x @ q).item() == pytest.approx(1.0, abs=1e-7)  # float32 product before float64
    assert cka_loss([x], [x @ q]).item() == pytest.approx(0.0, abs=1e-6)


def test_constant_input_gives_a_finite_loss_and_gradient():
    x = torch.randn(10, 4, requires_grad=True)
    loss = cka_loss([x], [torch.ones(10, 3)])
    loss.backward()
    assert loss.item() == pytest.approx(1.0) and torch.isfinite(x.grad).all()


def test_gradient_flows_to_the_student_only(reps):
    x, y = reps
    x, y = x.clone().requires_grad_(True), y.clone().requires_grad_(True)
    cka_loss([x], [y]).backward()
    assert x.grad.abs().sum() > 0 and y.grad is None


def test_contrastive_is_infonce_over_the_batch(reps):
    x, y = reps
    s, t = x @ torch.randn(6, 9, generator=torch.Generator().manual_seed(4)), y
    logits = F.normalize(s, dim=-1) @ F.normalize(t, dim=-1).T / 0.1
    expected = F.cross_entropy(logits, torch.arange(40))
    assert contrastive_alignment_loss([s], [t]).item() == pytest.approx(expected.item(), abs=1e-5)


def test_layer_selection_and_its_errors():
    assert select_layers("middle", 4) == [2] and select_layers("last", 4) == [3] and select_layers("all", 2) == [0, 1]
    assert select_layers("2, 0", 4) == [0, 2]
    with pytest.raises(InputError, match=r"layer 4 is out of range; the student has layers 0..3"):
        select_layers("0,4", 4)
    with pytest.raises(InputError, match=r"bad layer selection 'first'"):
        select_layers("first", 4)
