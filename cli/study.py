"""`rcid-tl study`: the mini-study (four methods' students, the study's five experiments, summary.md)."""

from typing import Annotated

import typer
from rich.console import Console

from rcid_tl.checks import check_model_path, check_out
from rcid_tl.cli import options as o
from rcid_tl.errors import InputError

Teacher = Annotated[str, typer.Option("--teacher", help="Teacher: embedded name or local HF directory.")]
Steps = Annotated[int, typer.Option("--steps", help="Distillation steps per student.")]
PretrainSteps = Annotated[int, typer.Option("--pretrain-steps", help="Next-token pre-training steps per student.")]
Examples = Annotated[int, typer.Option("--n", "-n", help="Distinct IOI training examples per student.")]
Jobs = Annotated[int, typer.Option("--jobs", help="Students trained at a time (one process and thread each).")]
StudentSeed = Annotated[int, typer.Option("--seed", help="Seed of the students (initialisation and data order).")]
Scale = Annotated[float, typer.Option("--scale", help="Multiplies every measurement's example count (0 < s ≤ 4).")]


def study(
    teacher: Teacher = o.DEFAULT_MODEL, out: o.Out = "runs/study", seed: StudentSeed = 42, steps: Steps = 800,
    pretrain_steps: PretrainSteps = 300, n: Examples = 2048, jobs: Jobs = 2, scale: Scale = 1.0,
) -> None:
    """Train four methods' students and run the RCID study.

    Train StandardKD, FitNets, Informed FitNets and RCID students of the teacher (one seed, fewer steps than the
    full study), run the five experiments on them (circuit preservation, method comparison, consistency vs
    robustness, component retention, information purity) and write summary.md with each experiment's table, and its
    JSON and figures.

    Example: rcid-tl study --teacher world-gpt2 --out runs/study
    """
    check_model_path(teacher)
    check_out(out)
    for value, name in ((steps, "--steps"), (n, "--n"), (jobs, "--jobs")):
        if value < 1:
            raise InputError(f"{name} must be ≥ 1, got {value}")
    if pretrain_steps < 0:
        raise InputError(f"--pretrain-steps must be ≥ 0, got {pretrain_steps}")
    if not 0 < scale <= 4:
        raise InputError(f"--scale must be in (0, 4], got {scale}")
    # library imports are deferred so that --help and argument errors answer without loading TransformerLens
    import dataclasses

    from rcid_tl.study.mini import MINI_SIZES, StudyConfig, run_study
    from rcid_tl.study.train import MINI

    recipe = dataclasses.replace(MINI, steps=steps, pretrain_steps=pretrain_steps, n=n, batch_size=min(32, n),
                                 eval_n=max(6, round(100 * scale)))
    smallest = {"consistency": 12, "robustness": 6, "retention": 6, "probes": 40}  # probes: 5 folds of 8
    sizes = dataclasses.replace(MINI_SIZES, **{k: max(low, round(getattr(MINI_SIZES, k) * scale))
                                               for k, low in smallest.items()})
    config = StudyConfig(teacher=teacher, seed=seed, recipe=recipe, sizes=sizes, jobs=jobs)
    summary = run_study(config, out)
    Console(stderr=True, soft_wrap=True).print(f"wrote {summary} and the experiments' JSON and figures beside it")
