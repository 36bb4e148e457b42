"""Smoke tests for teacher training: the loss falls, and checkpoint + resume reproduces an uninterrupted run."""

import json
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file
from transformers import AutoModelForCausalLM

from rcid_tl.world.teachers import TINY_SHAPES, Arch
from rcid_tl.world.tokenizer import load_tokenizer
from rcid_tl.world.training import TrainConfig, train_teacher

_TINY = dict(batch_size=8, seq_len=32, warmup=5, log_every=5, checkpoint_every=10, eval_every=1000,
             eval_prompts=16, final_eval_prompts=16)


@pytest.fixture(autouse=True)
def _one_thread():
    # bitwise reproducibility across runs needs the same reduction order, i.e. the same thread count
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


@pytest.mark.parametrize("arch", list(Arch))
def test_tiny_run_lowers_loss_and_saves_hf_directory(tmp_path: Path, arch: Arch) -> None:
    cfg = TrainConfig(shape=TINY_SHAPES[arch], steps=40, **_TINY)
    model_dir = train_teacher(cfg, tmp_path, command="test")
    losses = _losses(tmp_path)
    assert losses[-1] < losses[0] - 0.5
    assert {"config.json", "model.safetensors", "tokenizer.json", "tokenizer_config.json", "training.json",
            "TRAINING.md"} <= {p.name for p in model_dir.iterdir()}
    assert (tmp_path / "loss_curve.html").exists()
    model, tok = AutoModelForCausalLM.from_pretrained(model_dir), load_tokenizer(model_dir)
    ids = tok("When Mary and John went to the store, John gave a drink to", return_tensors="pt")["input_ids"]
    assert ids.shape == (1, 14)
    assert model(ids).logits.shape == (1, ids.shape[1], len(tok))
    record = json.loads((model_dir / "training.json").read_text())
    assert record["steps"] == 40 and record["command"] == "test"


def test_resume_matches_uninterrupted_run(tmp_path: Path) -> None:
    cfg = TrainConfig(shape=TINY_SHAPES[Arch.GPT2], steps=20, **_TINY)
    straight = train_teacher(cfg, tmp_path / "straight")
    assert train_teacher(cfg, tmp_path / "resumed", stop_after=10) == tmp_path / "resumed" / "model"
    assert not (tmp_path / "resumed" / "model").exists()
    resumed = train_teacher(cfg, tmp_path / "resumed")
    a, b = load_file(straight / "model.safetensors"), load_file(resumed / "model.safetensors")
    assert a.keys() == b.keys()
    for key in a:
        assert torch.equal(a[key], b[key]), key  # same data, same op order: bitwise equal
    assert _losses(tmp_path / "straight") == _losses(tmp_path / "resumed")


def _losses(run: Path) -> list[float]:
    return [json.loads(ln)["loss"] for ln in (run / "metrics.jsonl").read_text().splitlines()]
