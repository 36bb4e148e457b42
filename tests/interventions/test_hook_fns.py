"""The hook-function factories on plain tensors: each edit against the same edit written out by hand, the identities
(replacing with the activation itself, adding zero), and the two ways of choosing positions."""

import torch

from rcid_tl.interventions.hook_fns import (
    add_at_hook, leaf_hook, masked_replace_hook, position_mask, record_hook, replace_hook, set_at_hook,
)
from rcid_tl.tasks import IOIConfig, build_ioi


def test_position_mask_every_row_and_one_example(gpt2_tokenizer):
    batch = build_ioi(IOIConfig(n=4, seed=0), gpt2_tokenizer).batch()
    assert position_mask(batch, None).shape == batch.clean.shape and position_mask(batch, None).all()
    mask = position_mask(batch, ("io", "end"))
    for e in range(len(batch)):
        expected = {int(batch.position("io")[e]), int(batch.position("end")[e])}
        assert set(mask[e].nonzero().flatten().tolist()) == expected
        assert torch.equal(position_mask(batch, ("io", "end"), torch.tensor([e]))[0], mask[e])  # one example's row


def test_edits_match_hand_written_ones():
    act = torch.randn(3, 5, 4, 2)  # (batch, pos, head, d_head)
    rows, pos, heads, values = torch.tensor([0, 2]), torch.tensor([1, 4]), torch.tensor([3, 0]), torch.randn(2, 2)
    expected = act.clone()
    expected[rows, pos, heads] = values
    assert torch.equal(set_at_hook(rows, pos, values, heads)(act, None), expected)
    expected = act.clone()
    expected[rows, pos] += torch.ones(2, 4, 2)
    assert torch.equal(add_at_hook(rows, pos, torch.ones(2, 4, 2))(act, None), expected)
    assert torch.equal(add_at_hook(rows, pos, torch.zeros(2, 4, 2))(act, None), act)  # adding zero: a no-op
    other = torch.randn_like(act)
    mask = torch.zeros(3, 5, 4, dtype=torch.bool)
    mask[1, 2, 3] = True
    expected = act.clone()
    expected[1, 2, 3] = other[1, 2, 3]
    assert torch.equal(masked_replace_hook(mask, other)(act, None), expected)
    assert torch.equal(masked_replace_hook(torch.ones(3, 5, 4, dtype=torch.bool), act)(other, None), act)
    assert torch.equal(replace_hook(other)(act, None), other)


def test_copies_unless_in_place_and_records_detached():
    act = torch.zeros(2, 3, 4)
    set_at_hook(torch.tensor([0]), torch.tensor([1]), torch.ones(1, 4))(act, None)
    assert not act.any()  # edited a copy
    set_at_hook(torch.tensor([0]), torch.tensor([1]), torch.ones(1, 4), in_place=True)(act, None)
    assert act[0, 1].eq(1).all()  # resid_mid's case: the tensor itself
    store: dict = {}
    grad = torch.randn(2, 3, requires_grad=True)
    assert record_hook(store, "x")(grad, None) is grad and not store["x"].requires_grad
    leaf = leaf_hook(grad * 2, None)
    assert leaf.is_leaf and leaf.requires_grad
