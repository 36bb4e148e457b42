"""Per-example segment time warping: each example's own segment ids, prompt and answer kept, reasoning resampled."""

import numpy as np
import pytest
import torch

from rcid_tl.errors import InputError
from rcid_tl.multiteacher.tokens import align_time
from rcid_tl.multiteacher.warp import PAD_SEGMENT, segment_warp

P, R, A = 0, 1, 2


def segments(prompt: int, reasoning: int, answer: int, length: int) -> list[int]:
    ids = [P] * prompt + [R] * reasoning + [A] * answer
    return ids + [PAD_SEGMENT] * (length - len(ids))


def batch():
    """Two examples whose prompts, reasoning and answers all have different lengths; teacher reasoning is longer."""
    teacher = torch.tensor([segments(3, 9, 2, 16), segments(5, 6, 3, 16)])
    student = torch.tensor([segments(3, 4, 2, 11), segments(5, 2, 3, 11)])
    return teacher, student


def test_reasoning_is_linearly_resampled_per_example():
    teacher, student = batch()
    w = segment_warp(teacher, student)
    signal = torch.arange(16, dtype=torch.float32)  # a teacher "feature" equal to its position
    read = torch.einsum("bst,t->bs", w, signal)
    for b in range(2):
        t_pos = (teacher[b] == R).nonzero().flatten().numpy()
        s_pos = (student[b] == R).nonzero().flatten().numpy()
        # reference: numpy's interpolation of the teacher positions at evenly spaced coordinates, ends on ends
        expected = np.interp(np.linspace(0, len(t_pos) - 1, len(s_pos)), np.arange(len(t_pos)), t_pos)
        assert np.allclose(read[b, s_pos].numpy(), expected, atol=1e-5)  # float32 interpolation weights


def test_prompt_and_answer_are_kept_and_padding_is_empty():
    teacher, student = batch()
    w = segment_warp(teacher, student)
    for b in range(2):
        for seg in (P, A):
            s_pos = (student[b] == seg).nonzero().flatten()
            t_pos = (teacher[b] == seg).nonzero().flatten()
            assert torch.equal(w[b][s_pos][:, t_pos], torch.eye(len(s_pos)))
        pad = student[b] == PAD_SEGMENT
        assert w[b][pad].abs().sum() == 0
        assert torch.allclose(w[b][~pad].sum(1), torch.ones(int((~pad).sum())))


def test_each_example_uses_its_own_segments_not_the_first():
    """The seed's shortcut (example 0's segment ids for the whole batch) would misplace example 1's reasoning."""
    teacher, student = batch()
    own = segment_warp(teacher, student)
    shortcut = segment_warp(teacher[:1].expand(2, -1), student[:1].expand(2, -1))
    assert not torch.equal(own[1], shortcut[1])
    assert torch.equal(own[0], shortcut[0])


def test_hard_warp_is_one_hot_at_the_nearest_position():
    teacher, student = batch()
    w = segment_warp(teacher, student, soft=False)
    valid = student != PAD_SEGMENT
    assert torch.equal(w[valid].max(1).values, torch.ones(int(valid.sum())))
    assert torch.equal((w[valid] > 0).sum(1), torch.ones(int(valid.sum()), dtype=torch.long))


def test_warped_cache_keeps_the_five_dimensional_layout():
    teacher, student = batch()
    cache = torch.randn(2, 3, 2, 16, 8)
    out = align_time(cache, segment_warp(teacher, student))
    assert out.shape == (2, 3, 2, 11, 8)


def test_missing_teacher_segment_is_an_input_error():
    teacher = torch.tensor([segments(3, 0, 2, 8)])
    student = torch.tensor([segments(3, 2, 2, 8)])
    with pytest.raises(InputError, match="example 0: the student has segment 1 and the teacher does not"):
        segment_warp(teacher, student)
