"""Causal consistency between real models: stories260K against itself is r = 1 (the known answer), with the causal
map fitted on the pronoun task's training prompts and measured on its held-out ones; a head-permuted copy is found
by the causal map."""

import pytest
import torch
from transformers import AutoModelForCausalLM

from rcid_tl.consistency.run import ConsistencyConfig, SelectionConfig, run_consistency
from rcid_tl.models.loading import load_model
from rcid_tl.sweeps.common import ModelSpec
from rcid_tl.tasks.registry import TaskSpec
from rcid_tl.validation.known import permuted_student
from rcid_tl.validation.students import save_student


def config(teacher: str, student: str) -> ConsistencyConfig:
    return ConsistencyConfig(
        teacher=ModelSpec(teacher), student=ModelSpec(student), task=TaskSpec("tinystories-pronoun", n=40),
        fit_task=TaskSpec("tinystories-pronoun:train"), fit_n=24, selection=SelectionConfig(top_k=3),
        n_bootstrap=50)


def test_stories260k_against_itself_is_one(stories, stories_dir):
    result = run_consistency(config(str(stories_dir), str(stories_dir)), stories, stories)
    assert result.mechanistic_r == pytest.approx(1.0, abs=1e-4)  # the same network: identical effect profiles
    assert result.r_out == pytest.approx(1.0, abs=1e-6)
    assert result.header["config"]["fit_task"] == "tinystories-pronoun:train"
    for c in result.checkpoints:  # each checkpoint is matched to itself
        assert (c["student_layer"], c["student_head"]) == (c["teacher_layer"], c["head"])


def test_permuted_stories260k_is_found_by_the_causal_map(stories, stories_dir, tmp_path):
    hf = AutoModelForCausalLM.from_pretrained(stories_dir, attn_implementation="eager").eval()
    known = permuted_student(hf, seed=0)
    ids = torch.randint(3, 500, (2, 12))
    with torch.no_grad():  # relabelling heads within key/value groups leaves the function exact (float sums)
        assert torch.allclose(known.model(ids).logits, hf(ids).logits, atol=1e-4)
    student = load_model(str(save_student(known, stories.tokenizer, tmp_path / "permuted")))
    result = run_consistency(config(str(stories_dir), str(tmp_path / "permuted")), stories, student)
    assert result.mechanistic_r == pytest.approx(1.0, abs=1e-3)
    for c in result.checkpoints:
        assert (c["student_layer"], c["student_head"]) in known.correspondence[c["teacher_layer"], c["head"]]
