"""Segment time warping: a teacher whose chain of thought has another length is read
at the student's positions by resampling each segment (prompt / reasoning / answer) of each example to the
student's length of that segment, from that example's own segment ids. Segments of equal length (prompt and answer
under teacher forcing) map one-to-one; only a segment whose length differs (the reasoning) is resampled."""

import torch
from jaxtyping import Float, Int
from torch import Tensor

from rcid_tl.errors import InputError

PAD_SEGMENT = -1  # segment id of padding positions: they get (student) or give (teacher) nothing


def _resample(n_s: int, n_t: int, soft: bool) -> Tensor:
    """[n_s, n_t] weights taking n_t evenly spaced points to n_s: student point i sits at teacher coordinate
    u = i·(n_t−1)/(n_s−1) (ends on ends), linearly interpolated (soft) or rounded to the nearest point (hard)."""
    if n_s == n_t:
        return torch.eye(n_s)
    u = torch.linspace(0, n_t - 1, n_s) if n_s > 1 else torch.tensor([(n_t - 1) / 2])
    out = torch.zeros(n_s, n_t)
    rows = torch.arange(n_s)
    if not soft:
        out[rows, u.round().long()] = 1.0
        return out
    low = u.floor().long().clamp(max=n_t - 1)
    high = (low + 1).clamp(max=n_t - 1)
    frac = u - low
    out[rows, low] += 1 - frac
    out[rows, high] += frac
    return out


def segment_warp(
    teacher_segments: Int[Tensor, "batch t_t"],
    student_segments: Int[Tensor, "batch t_s"],
    *,
    soft: bool = True,
) -> Float[Tensor, "batch t_s t_t"]:
    """Per example, a [t_s, t_t] matrix whose row i holds the teacher positions student position i reads: within each
    segment id the teacher's positions are resampled to the student's count (`_resample`), in order. Rows of student
    padding (`PAD_SEGMENT`) are zero. Every example uses its own segment ids, so a batch may mix lengths freely.

    A segment the student has and the teacher lacks is an InputError (there is nothing to read there)."""
    if teacher_segments.dim() != 2 or student_segments.dim() != 2 \
            or teacher_segments.shape[0] != student_segments.shape[0]:
        raise InputError(f"segment ids must be [batch, time] on both sides with one batch size, got "
                         f"{tuple(teacher_segments.shape)} and {tuple(student_segments.shape)}")
    batch, t_s = student_segments.shape
    out = torch.zeros(batch, t_s, teacher_segments.shape[1])
    for b in range(batch):
        for segment in student_segments[b].unique().tolist():
            if segment == PAD_SEGMENT:
                continue
            s_pos = (student_segments[b] == segment).nonzero().flatten()
            t_pos = (teacher_segments[b] == segment).nonzero().flatten()
            if len(t_pos) == 0:
                raise InputError(f"example {b}: the student has segment {segment} and the teacher does not")
            out[b, s_pos[:, None], t_pos[None]] = _resample(len(s_pos), len(t_pos), soft)
    return out
