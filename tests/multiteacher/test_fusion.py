"""Fusion weights: fixed (validated), similarity (softmax of cosine), learned router (sums to 1, gets gradients)."""

import pytest
import torch

from rcid_tl.errors import InputError
from rcid_tl.multiteacher.fusion import (
    LearnedRouter, RoutingLog, fixed_weights, fuse, parse_fusion, pooled_query, similarity_weights,
)


def test_router_weights_sum_to_one_and_receive_gradients():
    router = LearnedRouter(d_query=12, n_teachers=3)
    query = torch.randn(5, 12)
    w = router(query)
    assert w.shape == (5, 3)
    assert torch.allclose(w.sum(1), torch.ones(5))
    assert torch.allclose(w, torch.full((5, 3), 1 / 3))  # zero output layer: equal weights at the start
    caches = [torch.randn(5, 2, 2, 4, 3) for _ in range(3)]
    target = caches[2]
    loss = (fuse(caches, w) - target).square().mean()  # prefers teacher 2
    loss.backward()
    grads = [p.grad for p in router.parameters()]
    assert all(g is not None for g in grads) and router.net[-1].weight.grad.abs().sum() > 0
    opt = torch.optim.SGD(router.parameters(), lr=1.0)
    for _ in range(50):
        opt.zero_grad()
        (fuse(caches, router(query)) - target).square().mean().backward()
        opt.step()
    assert router(query)[:, 2].mean() > 0.5  # the router learned to prefer the matching teacher


def test_similarity_weights_are_the_softmax_of_cosines():
    query = torch.tensor([[1.0, 0.0]])
    prototypes = torch.tensor([[[2.0, 0.0], [0.0, 3.0], [-1.0, 0.0]]])
    w = similarity_weights(query, prototypes, temperature=0.5)
    expected = torch.softmax(torch.tensor([1.0, 0.0, -1.0]) / 0.5, 0)
    assert torch.allclose(w[0], expected)


def test_fixed_weights_normalise_and_reject_bad_values():
    assert torch.allclose(fixed_weights([3.0, 1.0], 2), torch.tensor([[0.75, 0.25]] * 2))
    with pytest.raises(InputError, match="teacher weights must be finite, ≥ 0 and not all 0, got \\[0.5, -0.5\\]"):
        fixed_weights([0.5, -0.5], 1)
    with pytest.raises(InputError, match="unknown fusion 'mean'; allowed: fixed, similarity, learned"):
        parse_fusion("mean")


def test_fuse_is_the_per_example_weighted_sum():
    caches = [torch.randn(2, 1, 1, 3, 4) for _ in range(2)]
    w = torch.tensor([[1.0, 0.0], [0.25, 0.75]])
    out = fuse(caches, w)
    assert torch.equal(out[0], caches[0][0])
    assert torch.allclose(out[1], 0.25 * caches[0][1] + 0.75 * caches[1][1])


def test_pooled_query_averages_valid_positions_of_the_last_layer():
    q = torch.randn(1, 2, 2, 3, 4)
    valid = torch.tensor([[True, True, False]])
    expected = q[0, -1, :, :2].mean(1).flatten()  # heads concatenated
    assert torch.allclose(pooled_query(q, valid)[0], expected)


def test_routing_log_keeps_each_teachers_weight_by_step():
    records = [{"step": 10, "loss": 1.0, "w_a": 0.3, "w_b": 0.7}, {"step": 20, "loss": 0.9, "w_a": 0.6, "w_b": 0.4}]
    log = RoutingLog(["a", "b"], records)
    assert log.rows == [{"step": 10, "w_a": 0.3, "w_b": 0.7}, {"step": 20, "w_a": 0.6, "w_b": 0.4}]
    assert [list(trace.y) for trace in log.figure("routing").data] == [[0.3, 0.6], [0.7, 0.4]]
