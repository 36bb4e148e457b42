"""A training state in --out is data, never code: a planted pickle is refused without running, a damaged state and a
run folder made with other settings are each one line and exit 2, before any model loads."""

import contextlib
import pathlib
import pickle

import pytest
import torch

from rcid_tl.errors import InputError
from rcid_tl.world.teachers import TINY_SHAPES, Arch
from rcid_tl.world.training import TrainConfig, train_teacher
from tests.distill.test_cli import SMALL


class Plant:
    """Unpickling this creates `marker`: what a malicious state would do with a worse function."""

    def __init__(self, marker: pathlib.Path):
        self.marker = marker

    def __reduce__(self):
        return pathlib.Path.touch, (self.marker,)


def plant(path: pathlib.Path, marker: pathlib.Path, fmt: str) -> bytes:
    state = {"phase": "distill", "step": 1, "settings": "{}", "payload": Plant(marker)}
    path.parent.mkdir(parents=True, exist_ok=True)
    if fmt == "torch":
        torch.save(state, path)
    else:  # torch.load also reads plain (legacy) pickles
        path.write_bytes(pickle.dumps(state))
    with contextlib.suppress(RuntimeError):  # a plain pickle is no torch file: torch runs it, then says so
        torch.load(path, weights_only=False)  # the plant is live: an unsafe load runs it...
    assert marker.exists()
    marker.unlink()  # ...so its absence below means nothing ran it
    return path.read_bytes()


def one_error_line(run) -> str:
    assert run.code == 2, run.stderr
    lines = run.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("rcid-tl: error: "), run.stderr
    return lines[0]


@pytest.fixture
def no_model_loads(monkeypatch):
    """Fail the test if the run gets as far as loading models: these errors must come first."""
    def refuse(config):
        raise AssertionError("models were loaded before the state was checked")
    monkeypatch.setattr("rcid_tl.distill.run.prepare", refuse)


@pytest.mark.parametrize("fmt", ["torch", "pickle"])
def test_planted_state_is_refused_without_running(cli, tmp_path, no_model_loads, fmt):
    out, marker = tmp_path / "out", tmp_path / "pwned"
    before = plant(out / "train_state.pt", marker, fmt)
    line = one_error_line(cli("distill", *SMALL, "--out", out))
    assert f"cannot read {out / 'train_state.pt'}" in line and "delete it or choose another --out" in line
    assert not marker.exists()
    assert [p.name for p in out.iterdir()] == ["train_state.pt"] and (out / "train_state.pt").read_bytes() == before


DAMAGED = {
    "truncated": lambda good: good[: len(good) // 2],
    "empty": lambda good: b"",
    "not torch": lambda good: b"hello\n",
}


@pytest.mark.parametrize("kind", list(DAMAGED))
def test_damaged_state_is_one_line(cli, tmp_path, no_model_loads, kind):
    out = tmp_path / "out"
    out.mkdir()
    torch.save({"phase": "distill", "step": 1, "modules": {"w": torch.zeros(64)}}, out / "good.pt")
    (out / "train_state.pt").write_bytes(DAMAGED[kind]((out / "good.pt").read_bytes()))
    line = one_error_line(cli("distill", *SMALL, "--out", out))
    assert str(out / "train_state.pt") in line and "delete it or choose another --out" in line


def test_state_without_settings_is_one_line(cli, tmp_path, no_model_loads):
    out = tmp_path / "out"
    out.mkdir()
    torch.save({"phase": "distill", "step": 1}, out / "train_state.pt")  # readable, but not a state we can resume
    line = one_error_line(cli("distill", *SMALL, "--out", out))
    assert "is not a training state" in line and str(out / "train_state.pt") in line


def test_resume_with_other_settings_names_them(cli, tmp_path, monkeypatch):
    out = tmp_path / "out"

    def stop(*args, **kwargs):  # training is done and saved; skip evaluation
        raise KeyboardInterrupt

    monkeypatch.setattr("rcid_tl.distill.run._finish", stop)
    assert cli("distill", *SMALL, "--lambda", "1", "--out", out).code == 130
    monkeypatch.setattr("rcid_tl.distill.run.prepare", lambda config: pytest.fail("models loaded"))
    line = one_error_line(cli("distill", *SMALL, "--lambda", "0.5", "--out", out))
    assert line == (f"rcid-tl: error: --out {out} holds a run with different settings (lam: 1.0 → 0.5); use another "
                    "--out or delete it")
    line = one_error_line(cli("distill", *SMALL, "--lambda", "0.5", "--steps", "4", "--out", out))
    assert "lam: 1.0 → 0.5" in line and "optim.steps: 3 → 4" in line


def test_planted_teacher_checkpoint_is_refused_without_running(tmp_path):
    marker = tmp_path / "pwned"
    plant(tmp_path / "run" / "checkpoint.pt", marker, "torch")
    with pytest.raises(InputError, match="cannot read .*checkpoint.pt"):
        train_teacher(TrainConfig(shape=TINY_SHAPES[Arch.GPT2], steps=2, seq_len=16, warmup=1, log_every=1,
                                  checkpoint_every=1), tmp_path / "run")
    assert not marker.exists()
