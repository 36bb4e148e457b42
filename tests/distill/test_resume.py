"""Resume equivalence (issue item 5): a run stopped mid-way — once inside pre-training, once inside distillation —
and resumed ends with the same weights and the same log as a run that went straight through."""

import json
from dataclasses import replace

import pytest
import torch
from safetensors.torch import load_file

from rcid_tl.distill.config import OptimConfig
from rcid_tl.distill.methods import Method
from rcid_tl.distill.run import run_distill
from tests.distill.conftest import tiny_config

TOL = 1e-6  # the bound; same ops on the same thread count should in fact agree exactly


def _config(method: Method):
    return tiny_config(method, text="world", mix_weight=0.5, mix_rows=2, mix_len=16,
                       pretrain=OptimConfig(steps=3, lr=1e-3, warmup=1), pretrain_rows=2, pretrain_len=16)


@pytest.mark.parametrize("method", [Method.RCID, Method.FITNETS])
def test_killed_and_resumed_equals_uninterrupted(tmp_path, method):
    config = _config(method)
    straight = run_distill(config, tmp_path / "straight")
    if method is Method.RCID:
        assert run_distill(config, tmp_path / "resumed", stop_after=2) is None  # inside pre-training
    assert run_distill(config, tmp_path / "resumed", stop_after=6) is None  # inside distillation (step 3 of 6)
    state = torch.load(tmp_path / "resumed" / "train_state.pt", weights_only=True)  # plain data, no code
    assert (state["phase"], state["step"]) == ("distill", 3)
    assert json.loads(state["settings"])["lam"] == config.lam
    resumed = run_distill(config, tmp_path / "resumed")
    a = load_file(tmp_path / "straight" / "student" / "model.safetensors")
    b = load_file(tmp_path / "resumed" / "student" / "model.safetensors")
    assert a.keys() == b.keys()
    for key in a:
        assert torch.allclose(a[key], b[key], atol=TOL, rtol=0), key
    log = lambda d: [json.loads(x) for x in (tmp_path / d / "train_log.jsonl").read_text().splitlines()]  # noqa: E731
    strip = lambda rs: [{k: v for k, v in r.items() if k != "elapsed_s"} for r in rs]  # noqa: E731
    assert strip(log("straight")) == strip(log("resumed"))
    assert [r["phase"] for r in log("straight")].count("distill") == 6
    assert resumed["accuracy"] == straight["accuracy"]


def test_completed_run_is_not_retrained(tmp_path):
    config = tiny_config(Method.STANDARD_KD, optim=OptimConfig(steps=2, lr=1e-3, warmup=1))
    first = run_distill(config, tmp_path / "run")
    before = load_file(tmp_path / "run" / "student" / "model.safetensors")
    second = run_distill(config, tmp_path / "run")
    after = load_file(tmp_path / "run" / "student" / "model.safetensors")
    assert all(torch.equal(before[k], after[k]) for k in before)
    assert first["metric_mean"] == second["metric_mean"]


def test_settings_that_cannot_change_the_weights_may_change_on_resume(tmp_path):
    config = tiny_config(Method.STANDARD_KD, optim=OptimConfig(steps=4, lr=1e-3, warmup=1))
    straight = run_distill(config, tmp_path / "straight")
    assert run_distill(config, tmp_path / "run", stop_after=2) is None
    # how often states are saved and losses logged, and evaluation-only settings (see RESUMABLE_WITH_NEW)
    moved = replace(config, checkpoint_every=1, log_every=1, eval_n=5, n_bootstrap=20)
    resumed = run_distill(moved, tmp_path / "run")
    a = load_file(tmp_path / "straight" / "student" / "model.safetensors")
    b = load_file(tmp_path / "run" / "student" / "model.safetensors")
    assert all(torch.equal(a[k], b[k]) for k in a)
    assert resumed["n_eval"] == 5 and straight["n_eval"] == 6 and resumed["config"]["eval_n"] == 5
