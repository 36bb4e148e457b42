"""R-KV teacher compression: the budget is kept, the most attended tokens win when redundancy is ignored, near-copies
are dropped when it counts, and tokens outside the reasoning segment are never selected."""

import pytest
import torch

from rcid_tl.errors import InputError
from rcid_tl.kv.compression import rkv_keep


def test_budget_and_highest_importance_tokens():
    g = torch.Generator().manual_seed(0)
    importance = torch.rand(3, 12, generator=g)
    keys = torch.randn(3, 12, 8, generator=g)
    segment = torch.zeros(3, 12, dtype=torch.bool)
    segment[:, 3:10] = True
    keep = rkv_keep(importance, keys, segment, budget=4, mix=1.0)
    assert keep.sum(-1).tolist() == [4, 4, 4]
    assert not (keep & ~segment).any()
    for row in range(3):
        inside = importance[row].masked_fill(~segment[row], -1)
        assert set(keep[row].nonzero().squeeze(1).tolist()) == set(inside.topk(4).indices.tolist())


def test_redundant_copies_are_dropped_and_short_segments_kept_whole():
    keys = torch.eye(6)[None].repeat(1, 1, 1)  # six orthogonal keys ...
    keys[0, 1] = keys[0, 0]  # ... except token 1, a copy of token 0
    importance = torch.tensor([[1.0, 1.0, 0.9, 0.9, 0.9, 0.9]])
    segment = torch.ones(1, 6, dtype=torch.bool)
    keep = rkv_keep(importance, keys, segment, budget=4, mix=0.1)
    assert not (keep[0, 0] and keep[0, 1])  # never both copies
    short = torch.zeros(1, 6, dtype=torch.bool)
    short[0, 2:4] = True
    assert rkv_keep(importance, keys, short, budget=4).nonzero()[:, 1].tolist() == [2, 3]


def test_bad_budget():
    with pytest.raises(InputError, match=r"--kv-compression budget must be ≥ 1 tokens, got 0"):
        rkv_keep(torch.rand(1, 3), torch.rand(1, 3, 2), torch.ones(1, 3, dtype=torch.bool), budget=0)
