"""A tiny chain-of-thought teacher (random 2-layer Qwen2 with grouped K/V heads over the CoT tokenizer), saved as a
Hugging Face directory, and hand-made segmented batches."""

from pathlib import Path

import pytest
import torch

from rcid_tl.kv.objective import SegmentBatch
from rcid_tl.world.cot import Segment


@pytest.fixture(scope="session")
def cot_teacher_dir(tmp_path_factory) -> Path:
    from rcid_tl.models.saving import save_hf_model
    from rcid_tl.models.student import StudentConfig, build_student
    from rcid_tl.world.tokenizer import build_cot_tokenizer

    tok = build_cot_tokenizer()
    teacher = build_student(StudentConfig("qwen2", n_layers=2, d_model=32, n_heads=4, n_kv_heads=2, seed=7), tok,
                            vocab_size=len(tok), n_ctx=128)
    return save_hf_model(teacher, tmp_path_factory.mktemp("kv") / "cot-teacher")


def segmented(batch: int = 3, time: int = 20, seed: int = 0) -> SegmentBatch:
    """Random tokens: 6 prompt, 10 reasoning, the rest answer; the first row right-padded by 3."""
    g = torch.Generator().manual_seed(seed)
    tokens = torch.randint(5, 900, (batch, time), generator=g)
    segments = torch.full((batch, time), int(Segment.ANSWER))
    segments[:, :6], segments[:, 6:16] = int(Segment.PROMPT), int(Segment.REASONING)
    segments[0, -3:] = int(Segment.PAD)
    return SegmentBatch(tokens, segments, segments != Segment.PAD)
