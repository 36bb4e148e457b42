"""Tests for CoT fine-tuning of a world teacher: grown embeddings, the mixed stream, resume, and the --tiny run."""

import dataclasses
import json
import sys
from pathlib import Path

import pytest
import torch
from transformers import AutoModelForCausalLM

from rcid_tl.errors import InputError
from rcid_tl.models.embedded import embedded_path
from rcid_tl.world.corpus import generate_corpus
from rcid_tl.world.cot import CoTSplit, cot_examples, encode_example
from rcid_tl.world.cot_training import (
    WORLD_SPACE_NUMBERS, CoTTrainConfig, grow_parent, mixed_rows, train_cot_teacher,
)
from rcid_tl.world.splits import Split
from rcid_tl.world.teachers import Arch
from rcid_tl.world.tokenizer import build_cot_tokenizer, world_vocab

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "experiments"))
from train_cot_teachers import config_for, main  # noqa: E402

TOK = build_cot_tokenizer()


@pytest.fixture(autouse=True)
def _one_thread():
    # bitwise reproducibility across runs needs the same reduction order, i.e. the same thread count
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


@pytest.mark.parametrize("parent", ["world-gpt2", "world-qwen2"])
def test_grown_parent_keeps_world_rows_and_gives_numbers_distinct_rows(parent: str) -> None:
    before = AutoModelForCausalLM.from_pretrained(embedded_path(parent)).get_input_embeddings().weight
    grown = grow_parent(parent, TOK)
    emb, n_world = grown.get_input_embeddings().weight, len(world_vocab())
    unseen = [n for n in range(100) if n not in WORLD_SPACE_NUMBERS]
    spaced = TOK.convert_tokens_to_ids([f" {n}" for n in unseen])
    kept = [i for i in range(n_world) if i not in spaced]
    assert emb.shape[0] == len(TOK) and torch.equal(emb[kept], before[kept])
    assert torch.equal(emb[spaced], before[TOK.convert_tokens_to_ids([f"{n:02d}" for n in unseen])])
    assert torch.allclose(emb[n_world:], before.mean(0).expand(len(TOK) - n_world, -1))
    assert grown.get_output_embeddings().weight.data_ptr() == emb.data_ptr()  # still tied
    # the parent's rows for " 5", " 23", ... had collapsed onto one vector: the reason for the copies
    assert torch.nn.functional.cosine_similarity(before[spaced[0]], before[spaced[-1]], dim=0) > 0.99


def test_world_corpus_writes_spaced_numbers_only_in_the_counting_range() -> None:
    docs = generate_corpus(config_for(Arch.GPT2, tiny=True, seed=0, steps=None).train.world, Split.TRAIN, 1500)
    seen = {t for ids in TOK(docs)["input_ids"] for t in ids}
    spaced = {n for n in range(100) if TOK.convert_tokens_to_ids(f" {n}") in seen}
    assert spaced == set(WORLD_SPACE_NUMBERS)


def test_mixed_stream_is_a_prefix_stream_with_both_kinds() -> None:
    cfg = config_for(Arch.GPT2, tiny=True, seed=0, steps=None)
    short, long = mixed_rows(cfg, TOK, 10), mixed_rows(cfg, TOK, 300)
    assert torch.equal(short, long[:10])
    flat = long.flatten().tolist()
    first_cot = encode_example(TOK, cot_examples(CoTSplit.TRAIN, 1)[0])[0][:-1]
    assert any(flat[i : i + len(first_cot)] == first_cot for i in range(len(flat)))  # CoT problem 0 is in it
    first_world = [TOK.eos_token_id] + TOK(generate_corpus(cfg.train.world, Split.TRAIN, 1)[0])["input_ids"]
    assert any(flat[i : i + len(first_world)] == first_world for i in range(len(flat)))  # and world document 0
    assert 0.2 < (long == TOK.convert_tokens_to_ids(" =")).sum() / (long == TOK.eos_token_id).sum() < 2


def test_resume_matches_uninterrupted_run(tmp_path: Path) -> None:
    cfg = config_for(Arch.QWEN2, tiny=True, seed=0, steps=6)
    cfg = dataclasses.replace(cfg, train=dataclasses.replace(cfg.train, eval_every=1000))  # no periodic evaluation
    train_cot_teacher(cfg, tmp_path / "straight", stop_after=4)
    train_cot_teacher(cfg, tmp_path / "resumed", stop_after=2)
    train_cot_teacher(cfg, tmp_path / "resumed", stop_after=4)
    a, b = (torch.load(tmp_path / run / "checkpoint.pt", weights_only=True)["model"] for run in ("straight", "resumed"))
    assert all(torch.equal(a[k], b[k]) for k in a)  # same data, same op order: bitwise equal
    with pytest.raises(InputError, match="different settings"):  # another run's settings never resume silently
        train_cot_teacher(CoTTrainConfig(parent=cfg.parent, train=cfg.train, cot_fraction=0.3), tmp_path / "resumed")


def test_tiny_script_run_writes_a_loadable_teacher_with_its_record(tmp_path: Path) -> None:
    main(["--arch", "gpt2", "--tiny", "--out", str(tmp_path)])
    model_dir = tmp_path / "gpt2" / "model"
    assert {"config.json", "model.safetensors", "tokenizer.json", "training.json", "TRAINING.md"} <= {
        p.name for p in model_dir.iterdir()}
    record = json.loads((model_dir / "training.json").read_text())
    assert set(record["cot_scores"]) == {"id", "ood-longer", "ood-pairs"} and record["cot_scores"]["id"]["n"] == 8
    assert record["parent"] == "world-gpt2" and record["steps"] == 4 and "ioi_acc" in record["scores"]
    assert record["parent_scores"] == json.loads((embedded_path("world-gpt2") / "training.json").read_text())["scores"]
    assert AutoModelForCausalLM.from_pretrained(model_dir).config.vocab_size == len(TOK)
