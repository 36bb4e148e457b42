"""Placement options in one process: the precision a device can train in, bfloat16 autocast on the CPU, a teacher
loaded through Accelerate's device map (all on the CPU here) and their one-line errors."""

import json

import pytest
import torch
from safetensors.torch import load_file

from rcid_tl.distill.config import OptimConfig
from rcid_tl.distill.methods import Method
from rcid_tl.distill.precision import Precision, check_precision
from rcid_tl.distill.run import run_distill
from rcid_tl.errors import InputError
from rcid_tl.models import load_model
from rcid_tl.models.placement import check_device_map, load_dispatched
from tests.distill.conftest import tiny_config


def test_precision_is_checked_against_the_device():
    assert check_precision("bf16", "cpu") is Precision.BF16
    with pytest.raises(InputError, match=r"^--precision fp16 is not available on cpu; there: fp32, bf16$"):
        check_precision("fp16", "cpu")
    with pytest.raises(InputError, match=r"^unknown --precision 'half'; allowed: fp32, bf16, fp16$"):
        check_precision("half", "cpu")


def test_bad_precision_on_the_command_line_is_one_line(cli, tmp_path):
    run = cli("distill", "--precision", "fp16", "--out", tmp_path / "run")
    assert run.code == 2
    assert run.stderr.strip() == "rcid-tl: error: --precision fp16 is not available on cpu; there: fp32, bf16"
    assert not (tmp_path / "run").exists()


def test_bf16_autocast_trains_close_to_fp32_but_not_equal(tmp_path):
    config = tiny_config(Method.STANDARD_KD, optim=OptimConfig(steps=2, lr=1e-3, warmup=1))
    full = run_distill(config, tmp_path / "fp32")
    half = run_distill(config, tmp_path / "bf16", precision=Precision.BF16)
    assert half["precision"] == "bf16" and full["precision"] == "fp32"
    b = load_file(tmp_path / "bf16/student/model.safetensors")
    assert all(v.dtype == torch.float32 and torch.isfinite(v).all() for v in b.values())  # weights stay fp32
    first = [json.loads((tmp_path / d / "train_log.jsonl").read_text().splitlines()[0])["loss"]
             for d in ("fp32", "bf16")]
    # the first step's loss is the same weights' forward in two precisions: bfloat16 keeps 8 mantissa bits (~0.4%
    # per rounding), so it differs (autocast is on) by well under 5%
    assert 1e-6 < abs(first[1] - first[0]) / abs(first[0]) < 5e-2, first


def test_a_changed_precision_is_a_changed_setting(tmp_path):
    config = tiny_config(Method.STANDARD_KD, optim=OptimConfig(steps=2, lr=1e-3, warmup=1))
    assert run_distill(config, tmp_path / "run", stop_after=1) is None
    with pytest.raises(InputError, match=r"precision: \(unset\) → \"bf16\""):
        run_distill(config, tmp_path / "run", precision=Precision.BF16)


def test_a_dispatched_teacher_gives_the_same_logits():
    tokens = torch.tensor([[1, 5, 9, 20, 33, 7]])
    dispatched, plain = load_dispatched("world-gpt2", "auto"), load_model("world-gpt2")
    assert torch.equal(dispatched(tokens), plain(tokens))  # same weights, same device (no GPU here): same ops


def test_unknown_device_map_is_one_line():
    with pytest.raises(InputError, match=r"^unknown device map 'everywhere'; allowed: auto, balanced, "):
        check_device_map("everywhere")
