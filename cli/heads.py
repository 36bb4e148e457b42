"""`rcid-tl heads`: head scores on any model and task; Wang et al.'s IOI head classes on the IOI task."""

from typing import Annotated

import typer
from rich.console import Console

from rcid_tl.checks import check_out
from rcid_tl.cli import options as o

RepeatN = Annotated[int, typer.Option("--repeat-n", help="Random-token sequences for the attention scores.")]
RepeatLength = Annotated[int, typer.Option("--repeat-length", help="Tokens per sequence before it repeats.")]


def heads(
    model: o.Model = o.DEFAULT_MODEL, task: o.Task = "ioi", n: o.N = None, seed: o.Seed = 0,
    repeat_n: RepeatN = 20, repeat_length: RepeatLength = 20, batch_size: o.BatchSize = 64,
    out: o.Out = "runs/heads", device: o.Device = "cpu", dtype: o.Dtype = "float32",
    corruption: o.Corruption = "abc", no_bos: o.NoBos = False,
) -> None:
    """Score every head (IOI classes on IOI).

    Previous-token, duplicate-token and induction scores (on repeated random tokens) run on any model and task. On
    --task ioi also END→IO attention, copy, direct effect, S-inhibition, compensation and the IOI classes
    (heads.json feeds `knockout --classes`); on any other task each head's direct effect on the task's metric and
    its direct logit attribution, the IOI-only scores left empty and listed as skipped.

    Example: rcid-tl heads --model world-gpt2 --task ioi --out runs/heads
    """
    check_out(out)
    # library imports are deferred so that --help and argument errors answer without loading TransformerLens
    from rcid_tl.heads import HeadsConfig, find_head_classes
    from rcid_tl.sweeps.common import ModelSpec
    from rcid_tl.tasks.registry import TaskSpec

    config = HeadsConfig(
        model=ModelSpec(model, device, dtype),
        task=TaskSpec(task, n=n, seed=seed, prepend_bos=not no_bos, corruption=corruption),
        repeat_n=repeat_n, repeat_length=repeat_length, rows_per_forward=batch_size,
    )
    result = find_head_classes(config)
    from rcid_tl.parallel import world

    if not world().main:
        return  # under torchrun every rank computed its share; rank 0 writes and reports
    paths = result.save(out)
    found = "; ".join(f"{name}: {', '.join(h) or '-'}" for name, h in result.classes.items())
    console = Console(stderr=True, soft_wrap=True)
    if result.skipped:
        reasons = {}
        for name, why in result.skipped.items():
            reasons.setdefault(why, []).append(name)
        for why, names in reasons.items():
            console.print(f"skipped on task {task}: {', '.join(names)} ({why})")
        top = ", ".join(f"{h} ({v:+.3f})" for h, v in result.top("direct_effect"))
        console.print(f"largest direct effects on {result.header['metric']} (clean mean {result.baseline:.3f}): {top}")
    console.print(f"{found}; wrote {', '.join(map(str, paths))}")
