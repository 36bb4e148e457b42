"""Fixtures for checkpoint and consistency tests: runtime shape checks on the package, a tiny IOI set, a 1-layer
student of the tiny GPT-2 saved as an HF directory (the `rcid-tl` runner is in tests/conftest.py)."""

import jaxtyping

jaxtyping.install_import_hook(["rcid_tl.consistency"], "beartype.beartype")

from pathlib import Path  # noqa: E402

import pytest  # noqa: E402

from rcid_tl.models.saving import save_hf_model  # noqa: E402
from rcid_tl.models.student import StudentConfig, build_student  # noqa: E402
from rcid_tl.tasks.registry import TaskSpec, build_task  # noqa: E402


@pytest.fixture(scope="session")
def ioi_abc(tiny_gpt2):
    """IOI with Wang et al.'s ABC corruption: io, s1, s2 modified; s1+1 and end unmodified but reachable."""
    return build_task(TaskSpec("ioi", n=6, seed=1, corruption="abc"), tiny_gpt2.tokenizer)


@pytest.fixture(scope="session")
def ioi_s2(tiny_gpt2):
    """IOI with the study's s2-io corruption: only s2 changes, so io, s1 and s1+1 see no difference at all."""
    return build_task(TaskSpec("ioi", n=6, seed=2), tiny_gpt2.tokenizer)


@pytest.fixture(scope="session")
def student_dir(tiny_gpt2, tmp_path_factory) -> Path:
    """A random 1-layer, 32-wide GPT-2 student with the teacher's tokenizer, saved as a standard HF directory."""
    config = StudentConfig(n_layers=1, d_model=32, n_heads=2, seed=3)
    student = build_student(config, tiny_gpt2.tokenizer, vocab_size=tiny_gpt2.cfg.d_vocab, n_ctx=tiny_gpt2.cfg.n_ctx)
    return save_hf_model(student, tmp_path_factory.mktemp("student") / "tiny-student")
