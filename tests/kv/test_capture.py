"""K/V capture on hook points (GQA: world-qwen2's 2 K/V heads beside 4 query heads), gradients on the student side
only, the head/dim projector, and one objective step reaching the student but not the teacher."""

import pytest
import torch

from rcid_tl.errors import InputError
from rcid_tl.kv.capture import kv_heads, read_kv
from rcid_tl.kv.config import KVConfig
from rcid_tl.kv.objective import KVObjective, deepest_pairs
from rcid_tl.kv.projection import KVDimensionProjector
from rcid_tl.models.loading import load_model
from rcid_tl.models.student import build_student_for, student_config_for
from rcid_tl.world.cot import positions_before_answer
from tests.kv.conftest import segmented


@pytest.fixture(scope="module")
def qwen():
    return load_model("world-qwen2")


def test_gqa_cache_has_the_kv_heads_and_equals_the_detached_cache(qwen):
    tokens = torch.randint(5, 900, (2, 9))
    states = read_kv(qwen, tokens, [0, 3], attention_layer=3, hidden_layers=[1], grad=False)
    assert kv_heads(qwen) == 2 and qwen.cfg.n_heads == 4
    assert states.keys.shape == states.values.shape == (2, 2, 2, 9, qwen.cfg.d_head)  # batch layer head time d_head
    assert states.attention.shape == (2, 4, 9, 9) and states.hidden[1].shape == (2, 9, qwen.cfg.d_model)
    _, cache = qwen.run_with_cache(tokens, names_filter=["blocks.3.attn.hook_k", "blocks.0.attn.hook_v"])
    torch.testing.assert_close(states.keys[:, 1], cache["blocks.3.attn.hook_k"].transpose(1, 2), rtol=0, atol=0)
    torch.testing.assert_close(states.values[:, 0], cache["blocks.0.attn.hook_v"].transpose(1, 2), rtol=0, atol=0)
    assert not states.keys.requires_grad


def test_student_capture_keeps_gradients(qwen):
    student = build_student_for(qwen, student_config_for(qwen, seed=0))
    states = read_kv(student, torch.randint(5, 900, (2, 6)), [0], hidden_layers=[0])
    states.keys.sum().backward()
    grads = [p.grad for p in student.parameters() if p.grad is not None]
    assert grads and any(g.abs().sum() > 0 for g in grads)


def test_layer_the_model_lacks(qwen):
    with pytest.raises(InputError, match=r"layer 4 is out of range; this model has layers 0..3"):
        read_kv(qwen, torch.randint(5, 900, (1, 4)), [4], grad=False)


def test_projector_maps_student_heads_onto_the_teachers():
    proj = KVDimensionProjector(2, student_heads=1, student_d_head=16, teacher_heads=2, teacher_d_head=24)
    cache = torch.randn(3, 2, 1, 5, 16)
    out = proj(cache)
    assert out.shape == (3, 2, 2, 5, 24)
    # token t of layer l depends only on the student's token t of layer l: a per-token linear map
    moved = cache.clone()
    moved[:, 1, :, 4] += 1
    diff = (proj(moved) - out).abs().sum(dim=(2, 4))  # (batch, layer, time)
    assert diff[:, 0].max() == 0 and diff[:, 1, :4].max() == 0 and diff[:, 1, 4].min() > 0
    same = KVDimensionProjector(2, 2, 24, 2, 24)
    assert same(out) is out and not list(same.parameters())


def test_objective_step_trains_the_student_and_projections_not_the_teacher(qwen):
    for p in qwen.parameters():
        p.requires_grad_(False)
    student = build_student_for(qwen, student_config_for(qwen, seed=0))
    config = KVConfig(kv_loss="cosine", attention_weighted=True, attention_warmup=0, codi_weight=0.5, compression=4)
    objective = KVObjective(qwen, student, config)
    batch = segmented()
    assert student.cfg.n_layers == 1 and objective.pairs == deepest_pairs(4, 1) == {0: 3}  # the deepest teacher layer
    loss, parts = objective(qwen, student, batch, step=0)
    loss.backward()
    assert {"ce", "kv", "cka", "codi"} <= parts.keys() and parts["attn_weighted"] == 1.0
    # 6 prompt + 4 of the 10 reasoning tokens + the answer (1 token in the padded row, 4 in the others)
    assert parts["kept_tokens"] == pytest.approx((11 + 14 + 14) / 3)
    assert all(p.grad is None for p in qwen.parameters())
    assert any(p.grad is not None and p.grad.abs().sum() > 0 for p in student.parameters())
    assert all(p.grad is not None for p in objective.k_projector.parameters())


def test_answer_start_is_one_past_the_position_before_the_answer():
    batch = segmented()
    torch.testing.assert_close(batch.answer_start.long(), positions_before_answer(batch.segments) + 1)
