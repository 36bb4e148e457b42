"""Seeded, resumable next-token training of a world teacher, with a JSONL loss log and periodic task scores.

Given the same config and thread count, a run interrupted and resumed from its checkpoint ends with the same weights
as an uninterrupted run: the data for step t is fixed by the config (see `stream`) and nothing else is random.
"""

import json
import logging
import math
import time
from dataclasses import asdict, dataclass, field
from collections.abc import Callable
from pathlib import Path

import torch
from torch import Tensor
from tqdm.auto import tqdm
from transformers import PreTrainedModel

from rcid_tl.artifacts import atomic_dir, write_text, write_torch
from rcid_tl.distill.trainer import read_resumable
from rcid_tl.world.corpus import WorldConfig
from rcid_tl.world.evaluate import evaluate_teacher
from rcid_tl.world.record import write_loss_curve, write_training_record
from rcid_tl.world.splits import Split
from rcid_tl.world.stream import token_rows
from rcid_tl.world.teachers import GPT2_TEACHER, TeacherShape, build_teacher
from rcid_tl.world.tokenizer import build_tokenizer

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class TrainConfig:
    """Everything that determines the trained weights (AdamW, linear warm-up, cosine decay to `min_lr_ratio`)."""

    shape: TeacherShape = GPT2_TEACHER
    world: WorldConfig = field(default_factory=WorldConfig)
    seed: int = 0
    steps: int = 4000
    batch_size: int = 16
    seq_len: int = 128
    lr: float = 2e-3
    betas: tuple[float, float] = (0.9, 0.95)
    weight_decay: float = 0.1
    warmup: int = 150
    min_lr_ratio: float = 0.1
    grad_clip: float = 1.0
    log_every: int = 20
    checkpoint_every: int = 200
    eval_every: int = 250
    eval_prompts: int = 100
    final_eval_prompts: int = 400

    def __post_init__(self) -> None:
        if self.checkpoint_every % self.log_every:
            raise ValueError("checkpoint_every must be a multiple of log_every so resumed loss logs line up")
        if self.steps <= 0 or self.seq_len > self.shape.n_ctx:
            raise ValueError(f"need steps > 0 and seq_len <= n_ctx ({self.shape.n_ctx}), got {self.seq_len}")

    def lr_at(self, step: int) -> float:
        """Learning rate multiplier for optimizer step `step` (0-based)."""
        if step < self.warmup:
            return (step + 1) / self.warmup
        progress = (step - self.warmup) / max(1, self.steps - self.warmup)
        return self.min_lr_ratio + (1 - self.min_lr_ratio) * 0.5 * (1 + math.cos(math.pi * min(1.0, progress)))

    def to_dict(self) -> dict:
        d = asdict(self)
        d["shape"]["arch"] = self.shape.arch.value
        d["world"]["weights"] = [[k.value, w] for k, w in self.world.weights]
        return d


def _optimizer(model: PreTrainedModel, cfg: TrainConfig) -> torch.optim.AdamW:
    # no weight decay on biases, norms and (tied) embeddings' 1-D relatives
    decay = [p for p in model.parameters() if p.dim() >= 2]
    no_decay = [p for p in model.parameters() if p.dim() < 2]
    groups = [{"params": decay, "weight_decay": cfg.weight_decay}, {"params": no_decay, "weight_decay": 0.0}]
    return torch.optim.AdamW(groups, lr=cfg.lr, betas=cfg.betas)


_STATE_KEYS = {"model", "opt", "sched", "step", "elapsed_s", "config"}
# Settings that cannot change the trained weights, so a run may be resumed with new values.
_RESUMABLE_WITH_NEW = ("log_every", "checkpoint_every", "eval_every", "eval_prompts", "final_eval_prompts")


def _settings(cfg: TrainConfig) -> str:
    return json.dumps({k: v for k, v in cfg.to_dict().items() if k not in _RESUMABLE_WITH_NEW}, sort_keys=True)


def _save_checkpoint(path: Path, model, opt, sched, step: int, elapsed: float, settings: str) -> None:
    state = {"model": model.state_dict(), "opt": opt.state_dict(), "sched": sched.state_dict(), "step": step,
             "elapsed_s": elapsed, "config": settings}
    write_torch(path, state)  # atomic: an interrupted save never leaves a half-written checkpoint


def _load_checkpoint(path: Path, settings: str) -> dict:
    """The checkpoint at `path`, loaded without running code and checked to come from a run with `settings`."""
    return read_resumable(path, settings, keys=_STATE_KEYS, settings_key="config", kind="checkpoint",
                          remedy="delete it or train into another directory", other_run=str(path.parent),
                          other_remedy="train into another directory or delete it")


def _trim_log(path: Path, step: int) -> None:
    """Drop log records written after the checkpoint we resume from (and a line cut short by a kill mid-write)."""
    if path.exists():
        keep = [ln for ln in path.read_text().splitlines() if (at := _step_of(ln)) is not None and at <= step]
        write_text(path, "".join(ln + "\n" for ln in keep))


def _step_of(line: str) -> int | None:
    try:
        return json.loads(line)["step"]
    except (ValueError, KeyError, TypeError):
        return None


def train_teacher(cfg: TrainConfig, out_dir: str | Path, command: str = "", stop_after: int | None = None) -> Path:
    """Train (or resume) a teacher in `out_dir`; returns the final Hugging Face directory `out_dir/model`.

    `stop_after` ends this call after that many total steps (the checkpoint allows resuming); it does not change
    the schedule. The final directory holds config.json, model.safetensors, tokenizer files, training.json and
    TRAINING.md; `out_dir` keeps checkpoint.pt, metrics.jsonl and loss_curve.html.
    """
    out = Path(out_dir)
    torch.manual_seed(cfg.seed)
    tokenizer = build_tokenizer()
    model = build_teacher(cfg.shape, len(tokenizer), tokenizer.eos_token_id)

    def evaluate() -> dict:
        scores = evaluate_teacher(model, tokenizer, n=cfg.eval_prompts, draws=2)
        return {"eval": {k: v for k, v in scores.to_dict().items() if not k.endswith("by_relation")}}

    step, wall_s = run_training(
        model, cfg, out, _settings(cfg), cfg.shape.arch.value, evaluate, stop_after,
        lambda: token_rows(cfg.world, Split.TRAIN, tokenizer, cfg.steps * cfg.batch_size, cfg.seq_len))
    if step < cfg.steps:
        return out / "model"
    return _finish(model, tokenizer, cfg, out, command, wall_s)


def run_training(model: PreTrainedModel, cfg: TrainConfig, out: Path, settings: str, desc: str,
                 evaluate: Callable[[], dict], stop_after: int | None, make_rows: Callable[[], Tensor]
                 ) -> tuple[int, float]:
    """The next-token training loop of the world trainers, resumable from `out/checkpoint.pt` (a run with other
    `settings` is refused): AdamW with warm-up + cosine, clipping, `out/metrics.jsonl` (mean loss every `log_every`
    steps, `evaluate()`'s record every `eval_every` steps and at the end) and `out/loss_curve.html`. `make_rows()`
    gives the training rows, `steps × batch_size` of them (made after resuming, so the wall time includes them).
    Returns the steps done and the wall time in seconds, both counted over every resumed call."""
    out.mkdir(parents=True, exist_ok=True)
    ckpt_path, log_path = out / "checkpoint.pt", out / "metrics.jsonl"
    opt = _optimizer(model, cfg)
    sched = torch.optim.lr_scheduler.LambdaLR(opt, cfg.lr_at)
    step, elapsed = 0, 0.0
    if ckpt_path.exists():
        state = _load_checkpoint(ckpt_path, settings)
        model.load_state_dict(state["model"])
        opt.load_state_dict(state["opt"])
        sched.load_state_dict(state["sched"])
        step, elapsed = state["step"], state["elapsed_s"]
        log.info("resuming from step %d", step)
    _trim_log(log_path, step)
    t0, running = time.perf_counter() - elapsed, []  # wall time includes (re)generating the data
    rows = make_rows()
    end = cfg.steps if stop_after is None else min(cfg.steps, stop_after)
    model.train()
    with log_path.open("a") as log_file, tqdm(total=cfg.steps, initial=step, desc=desc) as bar:
        while step < end:
            batch = rows[step * cfg.batch_size : (step + 1) * cfg.batch_size]
            loss = model(batch, labels=batch).loss
            loss.backward()
            torch.nn.utils.clip_grad_norm_(model.parameters(), cfg.grad_clip)
            opt.step()
            sched.step()
            opt.zero_grad(set_to_none=True)
            step += 1
            running.append(loss.item())
            bar.update(1)
            record: dict = {}
            if step % cfg.log_every == 0:
                record |= {"loss": sum(running) / len(running), "lr": sched.get_last_lr()[0]}
                bar.set_postfix(loss=f"{record['loss']:.3f}")
                running = []
            if step % cfg.eval_every == 0 or step == cfg.steps:
                record |= evaluate()
            if record:
                record |= {"step": step, "tokens": step * cfg.batch_size * cfg.seq_len,
                           "elapsed_s": round(time.perf_counter() - t0, 2)}
                log_file.write(json.dumps(record) + "\n")
                log_file.flush()
            if step % cfg.checkpoint_every == 0 or step == end:
                _save_checkpoint(ckpt_path, model, opt, sched, step, time.perf_counter() - t0, settings)
    write_loss_curve(log_path, out / "loss_curve.html")
    return step, time.perf_counter() - t0


def _finish(model, tokenizer, cfg: TrainConfig, out: Path, command: str, wall_s: float) -> Path:
    scores = evaluate_teacher(model, tokenizer, n=cfg.final_eval_prompts)
    with atomic_dir(out / "model") as model_dir:  # weights and record appear together or not at all
        model.save_pretrained(model_dir)
        tokenizer.save_pretrained(model_dir)
        write_training_record(model_dir, cfg.to_dict(), scores.to_dict(), command=command, wall_s=wall_s,
                              n_params=sum(p.numel() for p in model.parameters()),
                              tokens=cfg.steps * cfg.batch_size * cfg.seq_len)
    return out / "model"
