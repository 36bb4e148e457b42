"""The one training loop: a loss-step callable's objective minimised with clipping, an optional schedule and loss
scaling, a JSONL log of windowed means, and resumable states saved every few steps.

The loop never sees models or data, only `loss_at(step)`; batch t is fixed by the caller's config, and the state
holds everything else that changes (weights, optimizer, scheduler and, where the layout has them, the RNG states),
so a run killed and resumed ends with the same weights as one that ran straight through (given the same thread
count). Under torchrun the same loop runs data-parallel (DistributedDataParallel), and a state saved by any number
of processes resumes with any other number.
"""

import json
import logging
import random
import time
from collections.abc import Callable
from contextlib import AbstractContextManager, nullcontext
from dataclasses import dataclass
from pathlib import Path

import torch
from torch import Tensor, nn
from torch.nn.parallel import DistributedDataParallel

from rcid_tl.artifacts import write_torch
from rcid_tl.errors import InputError
from rcid_tl.parallel import mean_across, world
from rcid_tl.progress import track
from rcid_tl.training.optim import Schedule, make_optimizer
from rcid_tl.training.state import RUN_STATE, StateLayout, read_state, trim_log

LossFn = Callable[[int], tuple[Tensor, dict[str, float]]]
# (steps done, the mean of each logged value over the window that ends here or None, learning rate, seconds) → the
# JSONL record to write at this step, or None
Record = Callable[[int, dict[str, float] | None, float, float], dict | None]
Scheduler = torch.optim.lr_scheduler.LRScheduler
logger = logging.getLogger(__name__)


def phase_record(phase: str) -> Record:
    """The record of runs writing into --out: `{"phase", "step", <window means>, "lr", "elapsed_s"}` per window."""

    def record(done: int, window: dict[str, float] | None, lr: float, elapsed: float) -> dict | None:
        if window is None:
            return None
        return {"phase": phase, "step": done, **window, "lr": lr, "elapsed_s": round(elapsed, 3)}

    return record


@dataclass(frozen=True)
class TrainLog:
    """Where and when the loop reports: every `every` steps (and at the end of the call if `at_end`) it averages
    the loss and the objective's parts over the window and asks `record` what to write to `path` (None: nothing is
    written; `record` sees every step, so it can add records of its own, e.g. evaluations)."""

    path: Path | None
    every: int
    record: Record
    at_end: bool = True


@dataclass(frozen=True)
class StateFile:
    """A run's state file: saved every `every` steps and at the end of each call, restored on resume. `phase` and
    `order` are stored where the layout has them: a state of another phase does not resume this one, and one with
    another data order is refused."""

    path: Path
    settings: str
    every: int
    layout: StateLayout = RUN_STATE
    phase: str | None = None
    order: Tensor | None = None

    def read(self) -> dict | None:
        """The saved state, checked against this run's settings (None if there is none); see `read_state`."""
        return read_state(self.path, self.settings, self.layout)

    def restore(self, state: dict, trained: "_Trained") -> int:
        """Load `state` into the trained modules, optimizer, scheduler (and scaler, RNGs); the step it was saved at,
        or 0 when it belongs to another phase."""
        fields = self.layout.fields
        if "phase" in fields and state["phase"] != self.phase:
            return 0
        if "order" in fields and not torch.equal(state["order"], self.order):  # same settings: only a code change
            raise InputError(f"{self.path} was saved with another data order (by another rcid-tl version?); "
                             f"{self.layout.remedy}")
        trained.modules.load_state_dict(state[self.layout.weights])
        trained.opt.load_state_dict(state["opt"])
        trained.sched.load_state_dict(state["sched"])
        if "scaler" in state:
            trained.scaler.load_state_dict(state["scaler"])
        if "torch_rng" in fields:
            torch.set_rng_state(state["torch_rng"])
            random.setstate(state["python_rng"])
        return state["step"]

    def save(self, step: int, trained: "_Trained", elapsed: float) -> None:
        """Everything needed to resume, in types torch's weights-only loader accepts (the settings as JSON text);
        the loss scaler's state too when float16 training uses one."""
        parts = {"phase": lambda: self.phase, "step": lambda: step, "opt": trained.opt.state_dict,
                 "sched": trained.sched.state_dict, "order": lambda: self.order, "torch_rng": torch.get_rng_state,
                 "python_rng": random.getstate, "elapsed_s": lambda: elapsed,
                 self.layout.weights: trained.modules.state_dict, self.layout.settings: lambda: self.settings}
        state = {name: parts[name]() for name in self.layout.fields}
        if trained.scaler.is_enabled():
            state["scaler"] = trained.scaler.state_dict()
        write_torch(self.path, state)  # atomic: a kill during the save leaves the previous state intact


@dataclass(frozen=True)
class _Trained:
    modules: nn.Module
    opt: torch.optim.Optimizer
    sched: Scheduler | None
    scaler: torch.amp.GradScaler


class _Step(nn.Module):
    """`loss_at` as a module over the trained parameters, so DistributedDataParallel can own its forward: it
    averages the gradients over processes during backward (each process's loss is the mean over its equal share
    of the global batch, so the average is the single-process gradient)."""

    def __init__(self, modules: nn.Module, loss_at: LossFn, autocast: Callable[[], AbstractContextManager]):
        super().__init__()
        self.modules_ = modules
        self.loss_at, self.autocast = loss_at, autocast

    def forward(self, step: int) -> tuple[Tensor, dict[str, float]]:
        with self.autocast():
            return self.loss_at(step)


def train(loss_at: LossFn, modules: nn.Module, opt: torch.optim.Optimizer, sched: Scheduler | None, *, steps: int,
          grad_clip: float, desc: str, stop_after: int | None = None, log: TrainLog | None = None,
          state_file: StateFile | None = None, resume: dict | None = None, clock: float | None = None,
          autocast: Callable[[str], AbstractContextManager] | None = None,
          scaler: Callable[[str], torch.amp.GradScaler] | None = None) -> int:
    """Minimise `loss_at(step)` for steps 0..`steps` over the trainable parameters of `modules` (each step: backward,
    clip to `grad_clip`, `opt` and `sched` step), continuing from `resume` (a state from `state_file.read()`);
    returns the steps done. `stop_after` ends this call early (a state is saved there) without changing the schedule.

    `autocast(device_type)` is the context the loss runs in and `scaler(device_type)` the loss scaler (mixed
    precision; float32 without them). `clock` is the `perf_counter` time the elapsed seconds count from (default:
    now). Ctrl-C in a run with a phase re-raises KeyboardInterrupt naming the step a re-run resumes from.

    Under torchrun, `loss_at` gives each process's share of step t and the step runs under DistributedDataParallel;
    logged numbers are averaged over the processes, and only rank 0 writes the log and the states."""
    params = [p for p in modules.parameters() if p.requires_grad]
    device_type = params[0].device.type
    trained = _Trained(modules, opt, sched, scaler(device_type) if scaler else torch.amp.GradScaler(
        device_type, enabled=False))
    phase = state_file.phase if state_file else None
    step = _resume(state_file, resume, trained, steps)
    main = world().main
    if main and log is not None and log.path is not None:
        trim_log(log.path, step, phase)
    end = steps if stop_after is None else min(steps, stop_after)
    start, saved, t0 = step, step, time.perf_counter() if clock is None else clock
    forward = _Step(modules, loss_at, (lambda: autocast(device_type)) if autocast else nullcontext)
    if world().distributed:
        # Some trained parameters get no gradient from some objectives (as in one process, where their grad stays
        # None and AdamW skips them), the same ones every step: a static graph lets DDP learn them once instead of
        # searching the graph each step. Buffers never change in training (eval mode), so none are re-broadcast.
        forward = DistributedDataParallel(forward, static_graph=True, broadcast_buffers=False)
    try:
        with _Reporter(log, main, t0, end) as report:
            for step in track(range(step, end), desc, total=end - step):
                loss, parts = forward(step)
                _update(loss, trained, params, grad_clip)
                done = step + 1
                report(done, loss, parts, sched.get_last_lr()[0] if sched is not None else opt.param_groups[0]["lr"])
                if state_file is not None and (done % state_file.every == 0 or done == end) and main:
                    state_file.save(done, trained, time.perf_counter() - t0)
                    saved = done
    except KeyboardInterrupt:
        if phase is None:
            raise
        raise KeyboardInterrupt(f"re-run the same command to resume from {phase} step {saved}") from None
    return max(start, end)


def _resume(state_file: StateFile | None, state: dict | None, trained: _Trained, steps: int) -> int:
    """The step training continues from: `state`'s, once restored, or 0."""
    if state is None or state_file is None:
        return 0
    step = state_file.restore(state, trained)
    if step and state_file.phase is not None:
        logger.info("%s: resuming from step %d of %d", state_file.phase, step, steps)
    elif step:
        logger.info("resuming from step %d", step)
    return step


class _Reporter:
    """The loop's log: the losses and parts of the steps since the last window, their means at each window's end
    (averaged over processes), and the records `log.record` makes of them, appended to `log.path` by rank 0."""

    def __init__(self, log: TrainLog | None, main: bool, t0: float, end: int):
        self.log, self.t0, self.end, self.running = log, t0, end, []
        self.writes = main and log is not None and log.path is not None
        self.file = None

    def __enter__(self) -> "_Reporter":
        if self.writes:
            self.file = self.log.path.open("a")
        return self

    def __exit__(self, *exc) -> None:
        if self.file is not None:
            self.file.close()

    def __call__(self, done: int, loss: Tensor, parts: dict[str, float], lr: float) -> None:
        if self.log is None:
            return
        self.running.append({"loss": loss.item(), **parts})
        window = None
        if done % self.log.every == 0 or (self.log.at_end and done == self.end):
            running, self.running = self.running, []
            window = mean_across({k: sum(r[k] for r in running) / len(running) for k in running[0]})
        record = self.log.record(done, window, lr, time.perf_counter() - self.t0)
        if record is not None and self.file is not None:
            self.file.write(json.dumps(record) + "\n")
            self.file.flush()


def _update(loss: Tensor, trained: _Trained, params: list[nn.Parameter], grad_clip: float) -> None:
    """One optimizer step on `loss` (scaled for float16; the clipping sees the true gradients)."""
    scaler = trained.scaler
    scaler.scale(loss).backward()
    scaler.unscale_(trained.opt)
    torch.nn.utils.clip_grad_norm_(params, grad_clip)
    scaler.step(trained.opt)
    scaler.update()
    if trained.sched is not None:
        trained.sched.step()
    trained.opt.zero_grad(set_to_none=True)


def train_phase(phase: str, modules: nn.Module, loss_at: LossFn, cfg: Schedule, order: Tensor, *, state_path: Path,
                log_path: Path, checkpoint_every: int, log_every: int, settings: str, resume: dict | None = None,
                stop_after: int | None = None, autocast: Callable[[str], AbstractContextManager] | None = None,
                scaler: Callable[[str], torch.amp.GradScaler] | None = None) -> int:
    """One phase of a run writing into --out (pre-training, distillation): `train` with AdamW and the warm-up +
    cosine schedule of `cfg`, states in `state_path` (`RUN_STATE`, holding `phase`, the data `order` and
    `settings`), records `{"phase", "step", ...}` in `log_path`; returns the steps done."""
    opt, sched = make_optimizer(modules, cfg)
    return train(loss_at, modules, opt, sched, steps=cfg.steps, grad_clip=cfg.grad_clip, desc=phase,
                 stop_after=stop_after, log=TrainLog(log_path, log_every, phase_record(phase)),
                 state_file=StateFile(state_path, settings, checkpoint_every, phase=phase, order=order),
                 resume=resume, autocast=autocast, scaler=scaler)
