"""KV losses against direct torch.nn.functional computations, token importance from 2-D/3-D/4-D attention, the
detach that keeps the KV loss out of the attention's gradient, and the warm-up switch."""

import pytest
import torch
import torch.nn.functional as F

from rcid_tl.errors import InputError
from rcid_tl.kv.losses import (AttentionWeighting, KVLoss, kv_loss, parse_kv_loss, token_importance,
                               uniform_weights)

TOL = 1e-5  # float32 means over a few hundred O(1) terms, summed in another order


@pytest.fixture
def caches():
    g = torch.Generator().manual_seed(0)
    s, t = torch.randn(2, 3, 2, 5, 4, generator=g), torch.randn(2, 3, 2, 5, 4, generator=g)
    keep = torch.tensor([[1, 1, 1, 1, 0], [1, 1, 1, 1, 1]], dtype=torch.bool)
    return s, t, keep


def test_mse_is_the_mean_squared_error_over_kept_tokens(caches):
    s, t, keep = caches
    # per sequence: mean over its kept tokens of F.mse_loss over (layer, head, d_head); then mean over the batch
    per_row = [F.mse_loss(s[b][..., keep[b], :], t[b][..., keep[b], :]) for b in range(2)]
    expected = torch.stack(per_row).mean()
    assert kv_loss(s, t, uniform_weights(keep), KVLoss.MSE).item() == pytest.approx(expected.item(), abs=TOL)


def test_cosine_is_one_minus_cosine_similarity_and_ignores_scale(caches):
    s, t, keep = caches
    per_row = [(1 - F.cosine_similarity(s[b][..., keep[b], :], t[b][..., keep[b], :], dim=-1)).mean()
               for b in range(2)]
    got = kv_loss(s, t, uniform_weights(keep), KVLoss.COSINE)
    assert got.item() == pytest.approx(torch.stack(per_row).mean().item(), abs=TOL)
    scaled = kv_loss(100 * s, t, uniform_weights(keep), KVLoss.COSINE)  # Mercator: direction only
    assert scaled.item() == pytest.approx(got.item(), abs=TOL)
    plain = uniform_weights(keep)
    assert kv_loss(100 * s, t, plain, KVLoss.MSE) > 50 * kv_loss(s, t, plain, KVLoss.MSE)


@pytest.mark.parametrize("dims", [2, 3, 4])
def test_importance_averages_heads_and_queries_then_normalises(dims):
    g = torch.Generator().manual_seed(1)
    attn4 = torch.rand(2, 3, 5, 5, generator=g)
    keep = torch.tensor([[1, 1, 1, 0, 1], [1, 1, 1, 1, 1]], dtype=torch.bool)
    attn = {4: attn4, 3: attn4.mean(1), 2: attn4.mean((1, 2))}[dims]
    received = attn4.mean((1, 2)) * keep
    expected = received / received.sum(-1, keepdim=True)
    torch.testing.assert_close(token_importance(attn, keep), expected)


def test_weighted_loss_is_the_importance_weighted_sum(caches):
    s, t, keep = caches
    w = token_importance(torch.rand(2, 5, 5), keep)
    per_token = (s - t).pow(2).mean(dim=(1, 2, 4))
    expected = (per_token * w).sum(-1).mean()
    assert kv_loss(s, t, w, KVLoss.MSE).item() == pytest.approx(expected.item(), abs=TOL)


def test_the_weights_are_detached_so_no_gradient_reaches_the_attention(caches):
    s, t, keep = caches
    s = s.clone().requires_grad_(True)
    logits = torch.randn(2, 2, 5, 5, requires_grad=True)
    attn = logits.softmax(-1)  # as if the student's own pattern
    loss = kv_loss(s, t, token_importance(attn, keep), KVLoss.MSE)
    loss.backward()
    assert s.grad is not None and s.grad.abs().sum() > 0
    assert logits.grad is None  # the loss built no path into the attention
    # without the detach, the same weighted loss would have sent a gradient into the attention logits
    manual = ((s - t).pow(2).mean(dim=(1, 2, 4)) * attn.mean((1, 2))).sum()
    manual.backward()
    assert logits.grad is not None and logits.grad.abs().sum() > 0


def test_warm_up_switches_at_its_step_and_labels_the_state():
    w = AttentionWeighting(enabled=True, warmup=3, use_teacher=False)
    assert [w.active(s) for s in range(5)] == [False, False, False, True, True]
    assert w.label(0) == "Attn-warmup: 3 steps" and w.label(3) == "Student-Attn-weighted"
    assert AttentionWeighting(True, 0, True).label(0) == "Teacher-Attn-weighted"
    assert not AttentionWeighting(False, 0, False).active(10) and AttentionWeighting(False, 0, False).label(9) == ""


def test_bad_inputs_are_one_line_errors(caches):
    s, t, keep = caches
    with pytest.raises(InputError, match=r"unknown --kv-loss 'l1'; allowed: mse, cosine"):
        parse_kv_loss("l1")
    with pytest.raises(InputError, match=r"must be 2-D, 3-D or 4-D"):
        token_importance(torch.rand(2, 1, 1, 5, 5), keep)
    # under runtime shape checks jaxtyping rejects the mismatch first (a TypeError); otherwise the loss does
    with pytest.raises((InputError, TypeError), match=r"project the student's first|head"):
        kv_loss(s[:, :, :1], t, uniform_weights(keep), KVLoss.MSE)
    with pytest.raises(InputError, match=r"warmup must be ≥ 0"):
        AttentionWeighting(True, -1, False)
