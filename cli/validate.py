"""`rcid-tl validate`: the known-answer suite for causal-consistency instruments."""

from typing import Annotated, Optional

import typer
from rich.console import Console

from rcid_tl.checks import check_out
from rcid_tl.cli import options as o

IOI_FINETUNE_STEPS = 100  # the circuit-ablated fine-tune on IOI when --finetune-steps is not given

Teacher = Annotated[str, typer.Option("--teacher", help="Teacher: embedded name or local HF directory (gpt2/qwen2/llama).")]
FitN = Annotated[int, typer.Option("--fit-n", help="Examples the causal maps are fitted on (none measured).")]
Sigmas = Annotated[str, typer.Option("--sigmas", help="Weight-noise ladder, × each tensor's std, increasing.")]
FinetuneSteps = Annotated[Optional[int], typer.Option(
    "--finetune-steps", help="Steps of the circuit-ablated IOI fine-tune (0 leaves that case out; default "
                             f"{IOI_FINETUNE_STEPS} on IOI, 0 on other tasks).", show_default=False)]
FitTask = Annotated[Optional[str], typer.Option(
    "--fit-task", help="Task the causal maps are fitted on (default: --task, another seed), e.g. "
                       "tinystories-pronoun:train when --task is a small held-out split.")]
Bootstrap = Annotated[int, typer.Option("--n-bootstrap", help="Bootstrap resamples per consistency CI.")]
Instruments = Annotated[str, typer.Option(
    "--instruments", help="Comma-separated: proportional, attention, activation, causal, causal-1:1 (default all).")]


def validate(
    teacher: Teacher = o.DEFAULT_MODEL, task: o.Task = "ioi", fit_task: FitTask = None, n: o.Count = 200,
    seed: o.Seed = 999, top_k: Annotated[int, typer.Option(
        "--top-k", help="Head checkpoints (chosen by effect).")] = 8, fit_n: FitN = 100, sigmas: Sigmas = "0.02,0.1,0.3,1",
    finetune_steps: FinetuneSteps = None, n_bootstrap: Bootstrap = 200, instruments: Instruments = "all",
    out: o.Out = "runs/validate",
) -> None:
    """Check the consistency instruments on known answers.

    Check each consistency instrument against students with a known answer.

    The students: the teacher itself, its heads relabelled, value heads rotated and rescaled, a weight-noise ladder,
    random weights, two heads merged, the circuit ablated and fine-tuned around. Writes validation.{json,csv,md}.

    Example: rcid-tl validate --teacher world-gpt2 --out runs/validate

    Any model and task: rcid-tl validate --teacher DIR --task tinystories-pronoun --fit-task tinystories-pronoun:train
    """
    check_out(out)
    from rcid_tl.errors import InputError

    try:
        ladder = tuple(float(s) for s in sigmas.split(","))
    except ValueError:
        raise InputError(f"--sigmas must be comma-separated numbers, got {sigmas!r}") from None
    # library imports are deferred so that --help and argument errors answer without loading TransformerLens
    from rcid_tl.validation.suite import INSTRUMENTS, ValidateConfig, run_validation

    known = {i.name: i for i in INSTRUMENTS}
    chosen = list(known) if instruments == "all" else [name.strip() for name in instruments.split(",")]
    unknown = [name for name in chosen if name not in known]
    if unknown:
        raise InputError(f"unknown instrument {unknown[0]!r}; allowed: {', '.join(known)}")
    if finetune_steps is None:
        finetune_steps = IOI_FINETUNE_STEPS if task == "ioi" else 0
    config = ValidateConfig(teacher=teacher, task=task, fit_task=fit_task, n=n, task_seed=seed, top_k=top_k, fit_n=fit_n, sigmas=ladder,
                            finetune_steps=finetune_steps, n_bootstrap=n_bootstrap,
                            instruments=tuple(known[name] for name in chosen))
    result = run_validation(config, out)
    paths = result.save(out)
    console = Console(stderr=True, soft_wrap=True)
    console.print(result.markdown())
    console.print(f"wrote {', '.join(map(str, paths))}")
