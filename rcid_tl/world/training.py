"""Seeded, resumable next-token training of a world teacher, with a JSONL loss log and periodic task scores.

Given the same config and thread count, a run interrupted and resumed from its checkpoint ends with the same weights
as an uninterrupted run: the data for step t is fixed by the config (see `stream`) and nothing else is random.
"""

import time
from dataclasses import asdict, dataclass, field
from collections.abc import Callable
from pathlib import Path

import torch
from torch import Tensor
from transformers import PreTrainedModel

from rcid_tl.artifacts import atomic_dir
from rcid_tl.portable import write_tokenizer
from rcid_tl.training import StateFile, StateLayout, TrainLog, lr_factor, make_optimizer, settings_json, train
from rcid_tl.world.corpus import WorldConfig
from rcid_tl.world.evaluate import evaluate_teacher
from rcid_tl.world.record import write_loss_curve, write_training_record
from rcid_tl.world.splits import Split
from rcid_tl.world.stream import token_rows
from rcid_tl.world.teachers import GPT2_TEACHER, TeacherShape, build_teacher
from rcid_tl.world.tokenizer import build_tokenizer


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
        return lr_factor(self, step)

    def to_dict(self) -> dict:
        d = asdict(self)
        d["shape"]["arch"] = self.shape.arch.value
        d["world"]["weights"] = [[k.value, w] for k, w in self.world.weights]
        return d


# The checkpoint's layout: world teachers keep theirs in `out/checkpoint.pt`, without RNG states (nothing in training
# is random once the data stream is fixed).
TEACHER_STATE = StateLayout(
    fields=("model", "opt", "sched", "step", "elapsed_s", "config"), weights="model", settings="config",
    kind="checkpoint", remedy="delete it or train into another directory", other_run="{dir}",
    other_remedy="train into another directory or delete it")
# Settings that cannot change the trained weights, so a run may be resumed with new values.
RESUMABLE_WITH_NEW = ("log_every", "checkpoint_every", "eval_every", "eval_prompts", "final_eval_prompts")


def _settings(cfg: TrainConfig) -> str:
    return settings_json(cfg.to_dict(), RESUMABLE_WITH_NEW)


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
    """Next-token training of a world teacher through the shared loop, resumable from `out/checkpoint.pt` (a run
    with other `settings` is refused): AdamW with warm-up + cosine, clipping, `out/metrics.jsonl` (mean loss every
    `log_every` steps, `evaluate()`'s record every `eval_every` steps and at the end) and `out/loss_curve.html`.
    `make_rows()` gives the training rows, `steps × batch_size` of them (made after reading the checkpoint, so the
    wall time includes them). Returns the steps done and the wall time in seconds, both counted over every resumed
    call."""
    out.mkdir(parents=True, exist_ok=True)
    log_path = out / "metrics.jsonl"
    state_file = StateFile(out / "checkpoint.pt", settings, cfg.checkpoint_every, layout=TEACHER_STATE)
    opt, sched = make_optimizer(model, cfg, betas=cfg.betas, lr_at=cfg.lr_at)
    state = state_file.read()
    t0 = time.perf_counter() - (state["elapsed_s"] if state else 0.0)  # wall time includes (re)generating the data
    rows = make_rows()
    model.train()

    def loss_at(step: int) -> tuple[Tensor, dict[str, float]]:
        batch = rows[step * cfg.batch_size : (step + 1) * cfg.batch_size]
        return model(batch, labels=batch).loss, {}

    def record(done: int, window: dict[str, float] | None, lr: float, _elapsed: float) -> dict | None:
        line: dict = {}
        if window is not None:
            line |= {"loss": window["loss"], "lr": lr}
        if done % cfg.eval_every == 0 or done == cfg.steps:
            line |= evaluate()
        if not line:
            return None
        return line | {"step": done, "tokens": done * cfg.batch_size * cfg.seq_len,
                       "elapsed_s": round(time.perf_counter() - t0, 2)}  # after the evaluation

    step = train(loss_at, model, opt, sched, steps=cfg.steps, grad_clip=cfg.grad_clip, desc=desc,
                 stop_after=stop_after, log=TrainLog(log_path, cfg.log_every, record, at_end=False),
                 state_file=state_file, resume=state, clock=t0)
    write_loss_curve(log_path, out / "loss_curve.html")
    return step, time.perf_counter() - t0


def _finish(model, tokenizer, cfg: TrainConfig, out: Path, command: str, wall_s: float) -> Path:
    scores = evaluate_teacher(model, tokenizer, n=cfg.final_eval_prompts)
    with atomic_dir(out / "model") as model_dir:  # weights and record appear together or not at all
        model.save_pretrained(model_dir)
        write_tokenizer(tokenizer, model_dir)
        write_training_record(model_dir, cfg.to_dict(), scores.to_dict(), command=command, wall_s=wall_s,
                              n_params=sum(p.numel() for p in model.parameters()),
                              tokens=cfg.steps * cfg.batch_size * cfg.seq_len)
    return out / "model"
