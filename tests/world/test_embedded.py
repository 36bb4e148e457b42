"""Tests for the shipped world teachers: tokenizer in sync with the generator, size budget, and task behaviour."""

import filecmp
import json
from pathlib import Path

import pytest
import torch
from transformers import AutoModelForCausalLM

from rcid_tl.heads.circuit import circuit_tasks, relative_changes
from rcid_tl.hooks.names import Head
from rcid_tl.models.loading import load_model
from rcid_tl.world import HELD_OUT_NAMES, IOI_TRAIN_TEMPLATES, build_tokenizer, load_tokenizer, save_tokenizer
from rcid_tl.world.evaluate import gt_eval_prompts, ioi_eval_prompts, greater_than_scores, ioi_scores, relation_accuracy
from rcid_tl.world.years import GT_TRAIN_FORMATS

EMBEDDED = Path(__file__).resolve().parents[2] / "rcid_tl" / "embedded"
TEACHERS = ("world-gpt2", "world-qwen2")


def _teacher(name: str) -> Path:
    path = EMBEDDED / name
    if not (path / "model.safetensors").is_file():
        pytest.fail(f"embedded teacher {name} is not built (see experiments/train_teachers.py)")
    return path


@pytest.mark.parametrize("name", TEACHERS)
def test_shipped_tokenizer_matches_the_generator(tmp_path: Path, name: str) -> None:
    # a change to the word lists must come with retrained teachers, or token ids silently shift
    save_tokenizer(tmp_path)
    assert filecmp.cmp(tmp_path / "tokenizer.json", _teacher(name) / "tokenizer.json", shallow=False)
    assert len(load_tokenizer(_teacher(name))) == len(build_tokenizer())


def test_embedded_teachers_fit_the_size_budget() -> None:
    total = sum(f.stat().st_size for name in TEACHERS for f in _teacher(name).iterdir())
    assert total < 30 * 2**20


@pytest.mark.parametrize("name", TEACHERS)
def test_embedded_teacher_solves_the_tasks(name: str) -> None:
    # small samples, loose bounds: the full held-out numbers are in each TRAINING.md
    path = _teacher(name)
    model, tok = AutoModelForCausalLM.from_pretrained(path).eval(), load_tokenizer(path)
    ld = ioi_scores(model, tok, ioi_eval_prompts(7, "test", HELD_OUT_NAMES, IOI_TRAIN_TEMPLATES, 32))
    assert (ld > 0).float().mean() >= 0.9 and ld.mean() > 3.0
    prob_diff, sharpness = greater_than_scores(model, tok, gt_eval_prompts(7, "test", GT_TRAIN_FORMATS, 32))
    assert prob_diff.mean() > 0.5 and sharpness.mean() > 0
    assert relation_accuracy(model, tok, "capital", shots=5, seed=7, draws=2) >= 0.75


@pytest.mark.parametrize("name", TEACHERS)
def test_loading_by_name_and_by_path_give_identical_logits(name: str) -> None:
    by_name, by_path = load_model(name), load_model(str(_teacher(name)))
    tokens = torch.tensor([by_name.tokenizer.encode("When Mary and John went to the store, John gave a drink to")])
    with torch.no_grad():
        assert torch.equal(by_name(tokens), by_path(tokens))


@pytest.mark.parametrize("name", TEACHERS)
def test_shipped_ioi_circuit_reproduces_on_fresh_prompts(name: str) -> None:
    # circuit.json was found with seed 0 (experiments/ioi_circuit.py); seed 7 draws other prompts and other reference
    # means. Its recorded IOI effect must reproduce within 0.1 (the 60-prompt estimate's spread is a few hundredths),
    # it stays specific (Greater-Than and relations within 25%), and `meets_criteria` (an IOI cut ≥ 50%) holds
    # exactly when the recorded cut says so.
    record = json.loads((_teacher(name) / "circuit.json").read_text())
    assert 1 <= len(record["circuit"]) <= 6
    assert min(g["min_group_size"] for g in record["reference_groups"].values()) >= 50
    model = load_model(name)
    _, (change,), _ = relative_changes(model, circuit_tasks(model, n=60, seed=7),
                                       [[Head.parse(h) for h in record["circuit"]]])
    assert change["ioi"] == pytest.approx(record["circuit_effects"]["ioi"], abs=0.1)
    assert abs(change["greater-than"]) <= 0.25 and abs(change["relations"]) <= 0.25
    assert record["meets_criteria"] == (record["circuit_effects"]["ioi"] <= -0.5)
