"""AdamW with linear warm-up then cosine decay to a floor: the optimizer and learning-rate schedule of every run that
trains with a schedule (distillation, KV, multi-teacher, world teachers)."""

import math
from collections.abc import Callable
from typing import Protocol

import torch
from torch import nn


class Schedule(Protocol):
    """What the optimizer, the schedule and the loop's clipping read from a run's config (distillation's
    `OptimConfig`, the world trainer's `TrainConfig`)."""

    steps: int
    lr: float
    weight_decay: float
    warmup: int
    min_lr_ratio: float
    grad_clip: float


def lr_factor(cfg: Schedule, step: int) -> float:
    """Learning-rate multiplier at optimizer step `step` (0-based): linear warm-up, cosine to min_lr_ratio."""
    if step < cfg.warmup:
        return (step + 1) / cfg.warmup
    progress = (step - cfg.warmup) / max(1, cfg.steps - cfg.warmup)
    return cfg.min_lr_ratio + (1 - cfg.min_lr_ratio) * 0.5 * (1 + math.cos(math.pi * min(1.0, progress)))


def make_optimizer(module: nn.Module, cfg: Schedule, *, betas: tuple[float, float] = (0.9, 0.95),
                   lr_at: Callable[[int], float] | None = None
                   ) -> tuple[torch.optim.AdamW, torch.optim.lr_scheduler.LambdaLR]:
    """AdamW over the trainable parameters of `module` and its warm-up + cosine schedule (`lr_factor`).

    `lr_at` replaces the schedule's function by an equal one: the scheduler's saved state records what kind of
    callable it holds, so a run passes the one its saved states were written with (the world trainer, a bound
    method) to keep its state files unchanged."""
    trainable = [p for p in module.parameters() if p.requires_grad]
    # no weight decay on biases and norm gains
    groups = [{"params": [p for p in trainable if p.dim() >= 2], "weight_decay": cfg.weight_decay},
              {"params": [p for p in trainable if p.dim() < 2], "weight_decay": 0.0}]
    opt = torch.optim.AdamW(groups, lr=cfg.lr, betas=betas)
    return opt, torch.optim.lr_scheduler.LambdaLR(opt, lr_at or (lambda s: lr_factor(cfg, s)))
