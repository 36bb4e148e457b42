"""Head maps: proportional indices, and attention-pattern similarity finding each head's own copy."""

import pytest

from rcid_tl.alignment.heads import attention_head_map, proportional_head_map
from rcid_tl.errors import InputError
from rcid_tl.tasks.registry import TaskSpec, build_task


def test_proportional_head_map():
    assert proportional_head_map(4, 2, {0: 0, 1: 0}) == {(0, 0): 0, (0, 1): 0, (0, 2): 1, (0, 3): 1,
                                                         (1, 0): 0, (1, 1): 0, (1, 2): 1, (1, 3): 1}
    assert proportional_head_map(2, 4, {3: 1}) == {(3, 0): 0, (3, 1): 2}
    with pytest.raises(InputError, match="head counts must be ≥ 1"):
        proportional_head_map(0, 2, {0: 0})


def test_attention_head_map_finds_each_heads_own_copy(tiny_gpt2):
    dataset = build_task(TaskSpec("ioi", n=8, seed=4), tiny_gpt2.tokenizer)
    head_map = attention_head_map(tiny_gpt2, tiny_gpt2, dataset, {0: 0, 1: 1})
    assert head_map == {(layer, h): h for layer in range(2) for h in range(tiny_gpt2.cfg.n_heads)}
