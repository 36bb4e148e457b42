"""`rcid-tl knockout`: head ablation."""

from pathlib import Path
from typing import Annotated, Optional

import typer
from rich.console import Console

from rcid_tl.checks import check_out
from rcid_tl.cli import options as o
from rcid_tl.errors import parse_choice

Heads = Annotated[Optional[str], typer.Option("--heads", help="A head set knocked out together, e.g. 9.9,10.0.")]
Class = Annotated[Optional[str], typer.Option(
    "--class", help="An IOI head class, e.g. name-mover: GPT-2 small's published heads, or from --classes.")]
ClassesFile = Annotated[Optional[Path], typer.Option(
    "--classes", help="heads.json from `rcid-tl heads`: look --class up there (needed off GPT-2 small).")]
AllHeads = Annotated[bool, typer.Option("--all-heads", help="Knock out every head, one at a time.")]
MethodOpt = Annotated[str, typer.Option("--method", help="zero | mean (per template) | resample (same template).")]
ReferenceN = Annotated[Optional[int], typer.Option(
    "--reference-n", help="Examples in the reference distribution of mean/resample (a separate sample). "
    "[default: enough for ≥ 50 per template and answer position]", show_default=False)]
ReferenceSeed = Annotated[Optional[int], typer.Option(
    "--reference-seed", help="Seed of the reference distribution. [default: derived from --seed, never equal to it]",
    show_default=False)]
ReferenceOpt = Annotated[str, typer.Option("--reference", help="Run whose z feeds mean/resample: corrupt | clean.")]


def knockout(
    model: o.Model = o.DEFAULT_MODEL, task: o.Task = "ioi", n: o.N = None, seed: o.Seed = 0,
    heads: Heads = None, head_class: Class = None, classes: ClassesFile = None, all_heads: AllHeads = False,
    method: MethodOpt = "mean",
    reference: ReferenceOpt = "corrupt", reference_n: ReferenceN = None, reference_seed: ReferenceSeed = None,
    positions: o.Positions = "all", batch_size: o.BatchSize = 64,
    out: o.Out = "runs/knockout", device: o.Device = "cpu", dtype: o.Dtype = "float32",
    corruption: o.Corruption = "s2-io", no_bos: o.NoBos = False, metric: o.MetricName = "task",
) -> None:
    """Ablate attention heads; the metric change.

    Ablate attention heads (at hook_z) and record the metric change per example.

    Example: rcid-tl knockout --model world-gpt2 --task ioi --heads 0.2,1.1,2.1 --method mean --out runs/k
    """
    check_out(out)
    # library imports are deferred so that --help and argument errors answer without loading TransformerLens
    from rcid_tl.interventions.knockout import Method, Reference
    from rcid_tl.sweeps.common import ModelSpec
    from rcid_tl.sweeps.knockout import KnockoutConfig, run_knockout
    from rcid_tl.tasks.registry import TaskSpec

    config = KnockoutConfig(
        model=ModelSpec(model, device, dtype),
        task=TaskSpec(task, n=n, seed=seed, prepend_bos=not no_bos, corruption=corruption),
        heads=heads, head_class=head_class, all_heads=all_heads, method=parse_choice(Method, method, "--method"),
        reference=parse_choice(Reference, reference, "--reference"), positions=positions, rows_per_forward=batch_size,
        metric=metric, reference_n=reference_n, reference_seed=reference_seed, classes_file=classes,
    )
    result = run_knockout(config)
    from rcid_tl.parallel import world

    if not world().main:
        return  # under torchrun every rank computed its share; rank 0 writes and reports
    paths = result.save(out)
    top = max(result.ablations, key=lambda a: abs(a["mean"]))
    Console(stderr=True, soft_wrap=True).print(
        f"largest mean Δ {top['mean']:+.4f} for heads {','.join(top['heads'])}; wrote {', '.join(map(str, paths))}")
