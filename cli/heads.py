"""`rcid-tl heads`: Wang et al.'s IOI head classes found on any model."""

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
    """Score every head and sort the heads into IOI classes.

    Score every head (previous-token, duplicate-token, induction, END→IO attention, copy, direct effect,
    S-inhibition, compensation) and sort the heads into IOI classes; heads.json feeds `knockout --classes`.

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
    Console(stderr=True, soft_wrap=True).print(f"{found}; wrote {', '.join(map(str, paths))}")
