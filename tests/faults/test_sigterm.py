"""SIGTERM (a scheduler's kill, or `kill PID`) mid-training: the last saved state is whole, and running the same
training again resumes from it and finishes with one unbroken log (the world teacher trainer: the project's one
training loop, rcid_tl.training, on a model small enough for a test)."""

import json
import signal
import subprocess
import sys
import time
from pathlib import Path

from rcid_tl.artifacts import LEFTOVER, read_torch
from rcid_tl.out_lock import claim_out, release_outs
from rcid_tl.world.teachers import TINY_SHAPES, Arch
from rcid_tl.world.training import TrainConfig, train_teacher

STEPS = 40
CONFIG = dict(steps=STEPS, batch_size=4, seq_len=16, warmup=2, log_every=1, checkpoint_every=1, eval_every=1000,
              eval_prompts=4, final_eval_prompts=4)
# the run in the second process: the same training, slowed to 50 ms a step so SIGTERM lands mid-run
RUN = f"""
import sys, time, torch
from torch.optim.optimizer import register_optimizer_step_post_hook
from rcid_tl.artifacts import LEFTOVER, read_torch
from rcid_tl.out_lock import claim_out, release_outs
from rcid_tl.world.teachers import TINY_SHAPES, Arch
from rcid_tl.world.training import TrainConfig, train_teacher
torch.set_num_threads(1)
register_optimizer_step_post_hook(lambda *args: time.sleep(0.05))
train_teacher(TrainConfig(shape=TINY_SHAPES[Arch.GPT2], **{CONFIG!r}), sys.argv[1])
"""


def leftovers(out: Path) -> list[Path]:
    return [p for p in out.iterdir() if LEFTOVER.fullmatch(p.name)]


def logged_steps(out: Path) -> list[int]:
    return [r["step"] for r in map(json.loads, (out / "metrics.jsonl").read_text().splitlines()) if "loss" in r]


def test_sigterm_mid_training_then_rerun_resumes_and_finishes(tmp_path):
    out = tmp_path / "run"
    proc = subprocess.Popen([sys.executable, "-c", RUN, str(out)], stderr=subprocess.PIPE, text=True,
                            cwd=Path(__file__).resolve().parents[2])
    deadline = time.monotonic() + 300  # the second process imports torch on a shared machine
    while proc.poll() is None and not ((out / "metrics.jsonl").exists() and len(logged_steps(out)) >= 3):
        assert time.monotonic() < deadline, "the run never logged a step"
        time.sleep(0.02)
    proc.send_signal(signal.SIGTERM)
    _, stderr = proc.communicate(timeout=60)
    assert proc.returncode == -signal.SIGTERM, stderr
    stopped_at = logged_steps(out)[-1]
    assert 3 <= stopped_at < STEPS and not (out / "model").exists()
    # the kill may land inside a save: the state file is whole, at most a hidden temp file lies beside it, and the
    # next run that claims this directory clears it
    assert {p.name for p in out.iterdir() if p.name.startswith(".")} <= {p.name for p in leftovers(out)}
    read_torch(out / "checkpoint.pt")
    claim_out(out)
    release_outs()
    assert not [p.name for p in out.iterdir() if p.name.startswith(".")]

    model = train_teacher(TrainConfig(shape=TINY_SHAPES[Arch.GPT2], **CONFIG), out)  # resumes from the state on disk
    assert (model / "model.safetensors").is_file()
    assert logged_steps(out) == list(range(1, STEPS + 1))
