"""Training a study's students: one `rcid-tl distill` process per (method, seed), one thread each, `jobs` at a time.

A finished run (metrics.json present) is kept and an interrupted one resumes from its own training state, so running
a study again completes it. Each run's output goes to `<root>/<method>-<seed>.log`.
"""

import os
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from rcid_tl.errors import InputError
from rcid_tl.study.runs import StudentRun

# The full study on world-gpt2 (about 3 single-thread minutes a run): 300 steps of next-token pre-training on the world
# corpus, then 1,000 distillation steps of 32 IOI examples (4,096 distinct). General-text mixing is off: with a KL on
# world text at weight 1 in every step, 800 steps left StandardKD and FitNets students at chance.
FULL_ARGS = ("--task", "ioi", "--n", "4096", "--steps", "1000", "--batch-size", "32", "--lr", "3e-3", "--lambda", "1.0",
             "--top-k", "8", "--eval-n", "200", "--pretrain-steps", "300")
# The mini-study: the same recipe with 80% of the steps and half the examples (at 400 steps and 120 pre-training steps
# no student learned IOI; at these settings FitNets does, as in the full study).
MINI_ARGS = ("--task", "ioi", "--n", "2048", "--steps", "800", "--batch-size", "32", "--lr", "3e-3", "--lambda", "1.0",
             "--top-k", "8", "--eval-n", "100", "--pretrain-steps", "300")


def _command() -> list[str]:
    script = Path(sys.executable).parent / "rcid-tl"
    return [str(script)] if script.is_file() else [sys.executable, "-c", "from rcid_tl.cli.app import main; main()"]


def train_student(method: str, seed: int, teacher: str, root: Path, run_args=FULL_ARGS, extra=(),
                  in_process: bool = False) -> StudentRun:
    """Train (or resume, or keep) one student, in a process of its own (its output in the run's log) or in this
    one; an InputError naming the log when a process fails."""
    run = StudentRun(method, seed, Path(root) / f"{method}-{seed}")
    if (run.path / "metrics.json").is_file():
        return run
    args = ["distill", "--teacher", teacher, "--method", method, "--seed", str(seed), *run_args, *extra,
            "--out", str(run.path)]
    if in_process:
        from rcid_tl.cli.app import app

        app(args, standalone_mode=False)
        return run
    command = [*_command(), *args]
    env = {**os.environ, "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1", "TOKENIZERS_PARALLELISM": "false"}
    run.path.parent.mkdir(parents=True, exist_ok=True)
    log = run.path.parent / f"{run.label}.log"
    with log.open("a") as f:
        f.write(" ".join(command) + "\n")
        f.flush()
        code = subprocess.run(command, stdout=f, stderr=f, env=env).returncode
    if code != 0:
        raise InputError(f"training {run.label} failed (exit {code}); see {log}")
    return run


def train_students(methods, seeds, teacher: str, root: Path, run_args=FULL_ARGS, extra=(), jobs: int = 2,
                   progress=None) -> list[StudentRun]:
    """Every (method, seed) run, `jobs` processes at a time (jobs = 1: one after another in this process);
    `progress(run)` after each finishes."""
    def one(job: tuple[str, int]) -> StudentRun:
        run = train_student(*job, teacher, root, run_args, extra, in_process=jobs == 1)
        if progress is not None:
            progress(run)
        return run

    with ThreadPoolExecutor(max(1, jobs)) as pool:
        return list(pool.map(one, [(m, s) for s in seeds for m in methods]))
