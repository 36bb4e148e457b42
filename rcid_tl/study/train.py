"""Training a study's students: one `run_distill` per (method, seed), `jobs` at a time (each in a process of its own
on one thread), or one after another in this process.

A finished run (metrics.json present) is kept and an interrupted one resumes from its own training state, so running
a study again completes it. A run in a process of its own logs to `<root>/<method>-<seed>.log`.
"""

import logging
import multiprocessing
import os
import sys
from concurrent.futures import ProcessPoolExecutor, as_completed
from dataclasses import dataclass
from pathlib import Path

import torch

from rcid_tl.distill.config import DistillConfig, OptimConfig
from rcid_tl.distill.methods import parse_method
from rcid_tl.distill.run import run_distill
from rcid_tl.errors import InputError
from rcid_tl.study.runs import StudentRun
from rcid_tl.tasks.registry import TaskSpec

SAVE_EVERY, LOG_EVERY = 50, 10  # training state and log intervals (`rcid-tl distill`'s defaults)


@dataclass(frozen=True)
class Recipe:
    """How every student of a study is distilled: all of its DistillConfig but the teacher, method and seed (the
    rest is `rcid-tl distill`'s defaults: s2-io corruption, temperature 2, auto checkpoints on z, the world corpus)."""

    task: str = "ioi"
    n: int = 4096  # distinct training examples
    steps: int = 1000
    batch_size: int = 32
    lr: float = 3e-3
    lam: float = 1.0
    top_k: int = 8
    eval_n: int = 200
    pretrain_steps: int = 300
    mix_weight: float = 0.0  # weight of a KL on general text mixed into each step (0: off)

    def config(self, teacher: str, method: str, seed: int) -> DistillConfig:
        """The DistillConfig of one student."""
        return DistillConfig(
            teacher=teacher, method=parse_method(method), task=TaskSpec(self.task, n=self.n, seed=seed),
            optim=OptimConfig(steps=self.steps, lr=self.lr, warmup=max(1, self.steps // 20)), seed=seed,
            batch_size=self.batch_size, lam=self.lam, top_k=self.top_k, mix_weight=self.mix_weight,
            pretrain=OptimConfig(steps=self.pretrain_steps, lr=self.lr, warmup=max(1, self.pretrain_steps // 20)),
            eval_n=self.eval_n, checkpoint_every=SAVE_EVERY, log_every=LOG_EVERY)

    def args(self) -> tuple[str, ...]:
        """The same recipe as `rcid-tl distill` options (what summaries and metrics.json's command record)."""
        args = ["--task", self.task, "--n", str(self.n), "--steps", str(self.steps), "--batch-size",
                str(self.batch_size), "--lr", str(self.lr), "--lambda", str(self.lam), "--top-k", str(self.top_k),
                "--eval-n", str(self.eval_n), "--pretrain-steps", str(self.pretrain_steps)]
        if self.mix_weight:
            args += ["--mix-weight", str(self.mix_weight)]
        return tuple(args)


# The full study on world-gpt2 (about 3 single-thread minutes a run): 300 steps of next-token pre-training on the world
# corpus, then 1,000 distillation steps of 32 IOI examples (4,096 distinct). General-text mixing is off: with a KL on
# world text at weight 1 in every step, 800 steps left StandardKD and FitNets students at chance.
FULL = Recipe()
# The mini-study: the same recipe with 80% of the steps and half the examples (at 400 steps and 120 pre-training steps
# no student learned IOI; at these settings FitNets does, as in the full study).
MINI = Recipe(n=2048, steps=800, eval_n=100)


def train_student(method: str, seed: int, teacher: str, root: Path, recipe: Recipe = FULL) -> StudentRun:
    """Train (or resume, or keep) one student in this process."""
    run = StudentRun(method, seed, Path(root) / f"{method}-{seed}")
    if not (run.path / "metrics.json").is_file():
        run_distill(recipe.config(teacher, method, seed), run.path, command=_command(run, teacher, recipe))
    return run


def train_students(methods, seeds, teacher: str, root: Path, recipe: Recipe = FULL, jobs: int = 2,
                   progress=None) -> list[StudentRun]:
    """Every (method, seed) run, `jobs` processes at a time (jobs = 1: one after another in this process);
    `progress(run)` after each finishes (or is found finished)."""
    runs = [StudentRun(m, s, Path(root) / f"{m}-{s}") for s in seeds for m in methods]
    done = progress or (lambda run: None)
    if jobs <= 1:
        for run in runs:
            done(train_student(run.method, run.seed, teacher, root, recipe))
        return runs
    context = multiprocessing.get_context("spawn")  # a fresh interpreter per worker, not a fork of this one
    with ProcessPoolExecutor(jobs, mp_context=context, initializer=_one_thread) as pool:
        todo = {}
        for run in runs:
            if (run.path / "metrics.json").is_file():
                done(run)
            else:
                config = recipe.config(teacher, run.method, run.seed)
                todo[pool.submit(_train_logged, run, config, _command(run, teacher, recipe))] = run
        for future in as_completed(todo):
            done(future.result())
    return runs


def _command(run: StudentRun, teacher: str, recipe: Recipe) -> str:
    """The `rcid-tl distill` command line that trains the same student (metrics.json records it)."""
    return " ".join(["rcid-tl distill --teacher", teacher, "--method", run.method, "--seed", str(run.seed),
                     *recipe.args(), "--out", str(run.path)])


def _one_thread() -> None:
    # each worker trains on one thread, as `jobs` single-thread runs side by side should
    os.environ.update(OMP_NUM_THREADS="1", MKL_NUM_THREADS="1", TOKENIZERS_PARALLELISM="false")
    torch.set_num_threads(1)


def _train_logged(run: StudentRun, config: DistillConfig, command: str) -> StudentRun:
    """In a worker process: `run_distill` with this process's output and the library's log lines in the run's log."""
    run.path.parent.mkdir(parents=True, exist_ok=True)
    log = run.path.parent / f"{run.label}.log"
    with log.open("a") as f:
        f.write(command + "\n")
        f.flush()
        os.dup2(f.fileno(), 1)
        os.dup2(f.fileno(), 2)
        handler = logging.StreamHandler(sys.stderr)
        handler.setFormatter(logging.Formatter("rcid-tl: %(message)s"))
        library = logging.getLogger("rcid_tl")
        library.addHandler(handler)
        library.setLevel(logging.INFO)
        try:
            run_distill(config, run.path, command=command)
        except Exception as err:
            raise InputError(f"training {run.label} failed ({err}); see {log}") from None
        finally:
            library.removeHandler(handler)
    return run

