"""The teacher cache returns, bit for bit, the caches a teacher forward of the batch gives at its real positions,
zeros at padding, and runs the teacher only for batches with an unseen problem."""

import pytest
import torch

from rcid_tl.models.loading import load_model
from rcid_tl.multiteacher.data import encode_side
from rcid_tl.multiteacher.objective import read_qkv
from rcid_tl.multiteacher.teacher_cache import TeacherCache
from rcid_tl.world.cot_streams import CoTStream, stream_examples


@pytest.mark.parametrize("name", ["world-gpt2-cot-digits", "world-qwen2-cot"])  # MHA and GQA
def test_cached_caches_equal_a_forward_of_each_batch(name, monkeypatch):
    teacher = load_model(name)
    examples = stream_examples(CoTStream.STUDENT, 12)
    cache = TeacherCache(teacher)
    calls = []
    forward = teacher.forward
    monkeypatch.setattr(teacher, "forward", lambda *a, **k: calls.append(1) or forward(*a, **k))
    batches = [examples[:6], examples[6:], examples[3:9], examples[::-2]]  # the last two only revisit problems
    for i, batch in enumerate(batches):
        side = encode_side(teacher.tokenizer, batch)
        got = cache.batch(side.tokens, side.real)
        assert len(calls) - i == min(i + 1, 2)  # less the i reference forwards below
        with torch.no_grad():
            _, *want = read_qkv(teacher, side.tokens)
        real = side.real[:, None, None, :, None]
        for g, w in zip(got, want):
            assert g.shape == w.shape
            # causal attention: a real position does not depend on padding or on the other rows, bit for bit
            assert torch.equal(g * real, w * real)
            assert not (g * ~real).any()
