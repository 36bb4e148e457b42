"""The one training loop on a toy objective: a run stopped and resumed equals one that went straight through
(weights, log, and the RNG stream the objective draws from), Ctrl-C names the step a re-run resumes from, and a
state of another data order is refused."""

import json
from dataclasses import dataclass

import pytest
import torch
from torch import nn

from rcid_tl.errors import InputError
from rcid_tl.training import StateFile, TrainLog, make_optimizer, phase_record, train, train_phase


@dataclass(frozen=True)
class Optim:
    steps: int = 7
    lr: float = 0.05
    weight_decay: float = 0.01
    warmup: int = 2
    min_lr_ratio: float = 0.1
    grad_clip: float = 1.0


X = torch.randn(64, 3, generator=torch.Generator().manual_seed(0))
Y = X @ torch.tensor([1.0, -2.0, 0.5]) + 0.3


def _model() -> nn.Module:
    torch.manual_seed(0)
    return nn.ModuleDict({"lin": nn.Linear(3, 1)})


def _loss(model: nn.Module):
    def loss_at(step: int):
        rows = slice(step * 8 % 64, step * 8 % 64 + 8)
        noise = 0.01 * torch.randn(8)  # draws from the global RNG: resuming must restore it
        err = model["lin"](X[rows])[:, 0] + noise - Y[rows]
        return (err ** 2).mean(), {"abs": err.abs().mean().item()}

    return loss_at


def _run(out, stop_after=None, loss=None):
    out.mkdir(parents=True, exist_ok=True)  # the caller's folder: the loop writes into it
    model = _model()
    state = StateFile(out / "state.pt", "{}", 2, phase="toy", order=torch.arange(7)).read()
    done = train_phase("toy", model, (loss or _loss)(model), Optim(), torch.arange(7), state_path=out / "state.pt",
                       log_path=out / "log.jsonl", checkpoint_every=2, log_every=2, settings="{}", resume=state,
                       stop_after=stop_after)
    return done, model


def _log(out):
    lines = (out / "log.jsonl").read_text().splitlines()
    return [{k: v for k, v in json.loads(x).items() if k != "elapsed_s"} for x in lines]


def test_stopped_and_resumed_equals_straight(tmp_path):
    done, straight = _run(tmp_path / "a")
    assert done == 7
    assert _run(tmp_path / "b", stop_after=4)[0] == 4  # at a log window's end, so the logs line up
    done, resumed = _run(tmp_path / "b")
    assert done == 7
    for a, b in zip(straight.parameters(), resumed.parameters()):
        assert torch.equal(a, b)  # same ops in the same order, the same noise: bitwise equal
    assert _log(tmp_path / "a") == _log(tmp_path / "b")
    assert [r["step"] for r in _log(tmp_path / "a")] == [2, 4, 6, 7]  # every 2 steps and at the end
    assert {"phase", "step", "loss", "abs", "lr"} == set(_log(tmp_path / "a")[0])


def test_ctrl_c_names_the_saved_step(tmp_path):
    def interrupted(model):
        loss_at = _loss(model)

        def at(step):
            if step == 5:
                raise KeyboardInterrupt
            return loss_at(step)

        return at

    with pytest.raises(KeyboardInterrupt, match="resume from toy step 4"):
        _run(tmp_path, loss=interrupted)
    assert torch.load(tmp_path / "state.pt", weights_only=True)["step"] == 4


def test_state_of_another_order_is_refused(tmp_path):
    _run(tmp_path, stop_after=2)
    model = _model()
    state_file = StateFile(tmp_path / "state.pt", "{}", 2, phase="toy", order=torch.arange(7).flip(0))
    opt, sched = make_optimizer(model, Optim())
    with pytest.raises(InputError, match="another data order"):
        train(_loss(model), model, opt, sched, steps=7, grad_clip=1.0, desc="toy", state_file=state_file,
              resume=state_file.read(), log=TrainLog(None, 1, phase_record("toy")))


def test_without_schedule_or_state_every_step_reports(tmp_path):
    model = _model()
    losses = []
    opt = torch.optim.SGD(model.parameters(), lr=0.1)
    train(_loss(model), model, opt, None, steps=5, grad_clip=10.0, desc="toy",
          log=TrainLog(None, 1, lambda done, window, lr, elapsed: losses.append((done, window["loss"], lr))))
    assert [d for d, _, _ in losses] == [1, 2, 3, 4, 5] and all(lr == 0.1 for _, _, lr in losses)
    assert losses[-1][1] < losses[0][1]
    assert list(tmp_path.iterdir()) == []  # nothing written
