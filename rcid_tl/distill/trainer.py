"""A resumable training loop: AdamW, warm-up + cosine schedule, clipping, JSONL log, periodic checkpoints.

The loop never sees models or data, only `loss_at(step)`; batch t is fixed by the run's config (see `data_order`),
and the checkpoint holds weights, optimizer, scheduler, RNG states, the data order and the run's settings. So a run
killed and resumed ends with the same weights as one that ran straight through (given the same thread count), and
a run folder refuses to be resumed with other settings. Under torchrun the same loop runs data-parallel
(DistributedDataParallel), and a state saved by any number of processes resumes with any other number.
"""

import json
import logging
import math
import random
import time
from collections.abc import Callable
from contextlib import nullcontext
from pathlib import Path

import torch
from torch import Tensor, nn
from torch.nn.parallel import DistributedDataParallel

from rcid_tl.artifacts import read_torch, write_text, write_torch
from rcid_tl.distill.config import OptimConfig
from rcid_tl.distill.precision import Precision, autocast, grad_scaler
from rcid_tl.errors import InputError
from rcid_tl.parallel import mean_across, world
from rcid_tl.progress import track

LossFn = Callable[[int], tuple[Tensor, dict[str, float]]]
log = logging.getLogger(__name__)


def lr_factor(cfg: OptimConfig, step: int) -> float:
    """Learning-rate multiplier at optimizer step `step` (0-based): linear warm-up, cosine to min_lr_ratio."""
    if step < cfg.warmup:
        return (step + 1) / cfg.warmup
    progress = (step - cfg.warmup) / max(1, cfg.steps - cfg.warmup)
    return cfg.min_lr_ratio + (1 - cfg.min_lr_ratio) * 0.5 * (1 + math.cos(math.pi * min(1.0, progress)))


def make_optimizer(params: nn.Module, cfg: OptimConfig) -> tuple[torch.optim.AdamW, torch.optim.lr_scheduler.LambdaLR]:
    trainable = [p for p in params.parameters() if p.requires_grad]
    # no weight decay on biases and norm gains
    groups = [{"params": [p for p in trainable if p.dim() >= 2], "weight_decay": cfg.weight_decay},
              {"params": [p for p in trainable if p.dim() < 2], "weight_decay": 0.0}]
    opt = torch.optim.AdamW(groups, lr=cfg.lr, betas=(0.9, 0.95))
    return opt, torch.optim.lr_scheduler.LambdaLR(opt, lambda s: lr_factor(cfg, s))


STATE_KEYS = {"phase", "step", "modules", "opt", "sched", "order", "torch_rng", "python_rng", "settings"}


def save_state(path: Path, phase: str, step: int, modules: nn.Module, opt, sched, order: Tensor, settings: str,
               scaler: torch.amp.GradScaler | None = None) -> None:
    """Everything needed to resume, in types torch's weights-only loader accepts (the settings as JSON text); the
    loss scaler's state too when float16 training uses one."""
    state = {"phase": phase, "step": step, "modules": modules.state_dict(), "opt": opt.state_dict(),
             "sched": sched.state_dict(), "order": order, "torch_rng": torch.get_rng_state(),
             "python_rng": random.getstate(), "settings": settings}
    if scaler is not None and scaler.is_enabled():
        state["scaler"] = scaler.state_dict()
    write_torch(path, state)  # atomic: a kill during the save leaves the previous checkpoint intact


def load_state(path: Path, settings: str) -> dict | None:
    """The state saved at `path` (None if there is none), after checking that the run it belongs to had these
    `settings` (JSON); raises InputError naming the file or the settings that differ."""
    if not path.exists():
        return None
    return read_resumable(path, settings, keys=STATE_KEYS, settings_key="settings", kind="training state",
                          remedy="delete it or choose another --out",
                          other_run=f"--out {path.parent}", other_remedy="use another --out or delete it")


def read_resumable(path: Path, settings: str, *, keys: set[str], settings_key: str, kind: str, remedy: str,
                   other_run: str, other_remedy: str) -> dict:
    """A state file read without running code, holding `keys`, whose saved settings (JSON under `settings_key`)
    equal `settings`; anything else is an InputError: a damaged file or another kind of file (`remedy`), or a run
    with other settings (`other_run` names where, `other_remedy` what to do)."""
    state = read_torch(path, remedy=remedy)
    if not isinstance(state, dict) or not keys <= state.keys() or not isinstance(state[settings_key], str):
        raise InputError(f"{path} is not a {kind} this rcid-tl can resume; {remedy}")
    changes = setting_changes(json.loads(state[settings_key]), json.loads(settings))
    if changes:
        raise InputError(f"{other_run} holds a run with different settings ({', '.join(changes)}); {other_remedy}")
    return state


def setting_changes(saved: dict, now: dict, prefix: str = "") -> list[str]:
    """`key: saved → now` for each setting that differs, nested keys dotted (`optim.steps: 600 → 800`)."""
    changes = []
    for key in dict.fromkeys([*saved, *now]):
        a, b = saved.get(key, _UNSET), now.get(key, _UNSET)
        if isinstance(a, dict) and isinstance(b, dict):
            changes += setting_changes(a, b, f"{prefix}{key}.")
        elif a != b:
            changes.append(f"{prefix}{key}: {_show(a)} → {_show(b)}")
    return changes


_UNSET = object()


def _show(value) -> str:
    return "(unset)" if value is _UNSET else json.dumps(value, ensure_ascii=False)


def trim_log(path: Path, phase: str, step: int) -> None:
    """Drop log records of `phase` written after the checkpoint we resume from (and of any later phase)."""
    if not path.exists():
        return
    records = [r for r in map(_record, path.read_text().splitlines()) if r is not None]
    phases = list(dict.fromkeys(r["phase"] for r in records))
    later = set(phases[phases.index(phase) + 1 :]) if phase in phases else set()
    keep = [r for r in records if r["phase"] not in later and not (r["phase"] == phase and r["step"] > step)]
    write_text(path, "".join(json.dumps(r) + "\n" for r in keep))


def _record(line: str) -> dict | None:
    try:
        return json.loads(line)
    except ValueError:  # empty, or a line cut short by a kill mid-write: it is after the checkpoint anyway
        return None


class _Step(nn.Module):
    """`loss_at` as a module over the trained parameters, so DistributedDataParallel can own its forward: it
    averages the gradients over processes during backward (each process's loss is the mean over its equal share
    of the global batch, so the average is the single-process gradient)."""

    def __init__(self, modules: nn.Module, loss_at: LossFn, precision: Precision, device_type: str):
        super().__init__()
        self.modules_ = modules
        self.loss_at, self.precision, self.device_type = loss_at, precision, device_type

    def forward(self, step: int) -> tuple[Tensor, dict[str, float]]:
        with autocast(self.precision, self.device_type):
            return self.loss_at(step)


def train_loop(
    phase: str, modules: nn.Module, loss_at: LossFn, cfg: OptimConfig, order: Tensor, *, state_path: Path,
    log_path: Path, checkpoint_every: int, log_every: int, settings: str, resume: dict | None = None,
    stop_after: int | None = None, precision: Precision = Precision.FP32,
) -> int:
    """Run `phase` for `cfg.steps` steps over the parameters of `modules`, continuing from `resume` (a state from
    `load_state`) if it is of this phase; returns the steps done. Ctrl-C re-raises KeyboardInterrupt with a message
    naming the step a re-run resumes from.

    Under torchrun, `loss_at` gives each process's share of step t and the step runs under
    DistributedDataParallel; logged numbers are averaged over the processes, and only rank 0 writes the log and the
    states. `stop_after` ends this call early (a checkpoint is written there) without changing the schedule."""
    opt, sched = make_optimizer(modules, cfg)
    params = [p for p in modules.parameters() if p.requires_grad]
    device_type = params[0].device.type
    scaler = grad_scaler(precision, device_type)
    step = 0
    if resume is not None and resume["phase"] == phase:
        if not torch.equal(resume["order"], order):  # same settings, so only a change in rcid-tl itself gets here
            raise InputError(f"{state_path} was saved with another data order (by another rcid-tl version?); delete "
                             "it or choose another --out")
        modules.load_state_dict(resume["modules"])
        opt.load_state_dict(resume["opt"])
        sched.load_state_dict(resume["sched"])
        if "scaler" in resume:
            scaler.load_state_dict(resume["scaler"])
        torch.set_rng_state(resume["torch_rng"])
        random.setstate(resume["python_rng"])
        step = resume["step"]
        log.info("%s: resuming from step %d of %d", phase, step, cfg.steps)
    main = world().main
    if main:
        trim_log(log_path, phase, step)
    end = cfg.steps if stop_after is None else min(cfg.steps, stop_after)
    start, saved, t0, running = step, step, time.perf_counter(), []
    forward = _Step(modules, loss_at, precision, device_type)
    if world().distributed:
        # Some trained parameters get no gradient from some objectives (as in one process, where their grad stays
        # None and AdamW skips them), the same ones every step: a static graph lets DDP learn them once instead of
        # searching the graph each step. Buffers never change in training (eval mode), so none are re-broadcast.
        forward = DistributedDataParallel(forward, static_graph=True, broadcast_buffers=False)
    try:
        with log_path.open("a") if main else nullcontext() as log_file:
            for step in track(range(step, end), phase, total=end - step):
                loss, parts = forward(step)
                scaler.scale(loss).backward()
                scaler.unscale_(opt)  # clip the true gradients
                torch.nn.utils.clip_grad_norm_(params, cfg.grad_clip)
                scaler.step(opt)
                scaler.update()
                sched.step()
                opt.zero_grad(set_to_none=True)
                running.append({"loss": loss.item(), **parts})
                done = step + 1
                if done % log_every == 0 or done == end:
                    mean = mean_across({k: sum(r[k] for r in running) / len(running) for k in running[0]})
                    if main:
                        log_file.write(json.dumps({"phase": phase, "step": done, **mean, "lr": sched.get_last_lr()[0],
                                                   "elapsed_s": round(time.perf_counter() - t0, 3)}) + "\n")
                        log_file.flush()
                    running = []
                if (done % checkpoint_every == 0 or done == end) and main:
                    save_state(state_path, phase, done, modules, opt, sched, order, settings, scaler)
                    saved = done
    except KeyboardInterrupt:
        raise KeyboardInterrupt(f"re-run the same command to resume from {phase} step {saved}") from None
    return max(start, end)
