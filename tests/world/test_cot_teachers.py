"""Tests for the shipped CoT teachers (world-gpt2-cot, world-qwen2-cot): tokenizer, task skill, bridge parity, size."""

import json
from pathlib import Path

import pytest
import torch
from transformers import AutoModelForCausalLM

from rcid_tl.models.embedded import EMBEDDED_ROOT, embedded_names
from rcid_tl.models.loading import load_model
from rcid_tl.world.cot import CoTSplit, cot_examples
from rcid_tl.world.cot_eval import correct_answers, evaluate_cot, generate_answers
from rcid_tl.world.tokenizer import build_cot_tokenizer, load_tokenizer, world_vocab

TEACHERS = ("world-gpt2-cot", "world-qwen2-cot")


def _teacher(name: str) -> Path:
    path = EMBEDDED_ROOT / name
    if not (path / "model.safetensors").is_file():
        pytest.fail(f"embedded CoT teacher {name} is not built (see experiments/train_cot_teachers.py)")
    return path


@pytest.mark.parametrize("name", TEACHERS)
def test_shipped_tokenizer_is_the_cot_tokenizer_with_every_world_id(tmp_path: Path, name: str) -> None:
    build_cot_tokenizer().save_pretrained(tmp_path)
    assert (tmp_path / "tokenizer.json").read_text() == (_teacher(name) / "tokenizer.json").read_text()
    vocab = load_tokenizer(_teacher(name)).get_vocab()
    assert all(vocab[token] == i for token, i in world_vocab().items())


@pytest.mark.parametrize("name", TEACHERS)
def test_cot_teacher_reproduces_its_recorded_in_distribution_scores(name: str) -> None:
    # 48 problems from a seed no record used vs the 500-problem record: a binomial sd of at most 0.07, so 0.25 below
    # the record only fails for a model that lost the skill; perplexity likewise within 20%
    path = _teacher(name)
    recorded = json.loads((path / "training.json").read_text())["cot_scores"]["id"]
    model, tok = AutoModelForCausalLM.from_pretrained(path).eval(), load_tokenizer(path)
    scores = evaluate_cot(model, tok, cot_examples(CoTSplit.ID, 48, seed=7))
    assert scores.accuracy >= recorded["accuracy"] - 0.25 and scores.perplexity <= 1.2 * recorded["perplexity"]


@pytest.mark.parametrize("name", TEACHERS)
def test_bridge_and_hugging_face_generate_the_same_solutions(name: str) -> None:
    path = _teacher(name)
    examples = cot_examples(CoTSplit.OOD_LONGER, 6, seed=7)
    hf, bridge = AutoModelForCausalLM.from_pretrained(path).eval(), load_model(name)
    texts = generate_answers(hf, load_tokenizer(path), examples)
    assert generate_answers(bridge, bridge.tokenizer, examples) == texts
    assert correct_answers(texts, examples).shape == (6,)


def test_cot_teachers_are_listed_with_their_parent_scores() -> None:
    for name in TEACHERS:
        record = json.loads((_teacher(name) / "training.json").read_text())
        assert name in embedded_names() and record["parent"] == name.removesuffix("-cot")
        assert record["cot_scores"]["id"]["n"] == 500


def test_all_embedded_models_fit_the_size_budget() -> None:
    for name in TEACHERS:
        _teacher(name)
    total = sum(f.stat().st_size for name in embedded_names() for f in (EMBEDDED_ROOT / name).iterdir())
    assert total < 30 * 2**20
