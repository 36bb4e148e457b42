"""`rcid-tl patch`: activation patching sweep."""

from typing import Annotated

import typer
from rich.console import Console

from rcid_tl.checks import check_out
from rcid_tl.cli import options as o
from rcid_tl.errors import InputError, parse_choice

Site = Annotated[str, typer.Option("--site", help="resid_pre | resid_mid | resid_post | z | attn_out | mlp_out")]
Layers = Annotated[str, typer.Option("--layers", help="all, or a comma list such as 0,3.")]
DirectionOpt = Annotated[str, typer.Option("--direction", help="noising (corrupt into clean) | denoising.")]
MethodOpt = Annotated[str, typer.Option(
    "--method", help="exact | attribution (first-order estimate, one forward+backward) | attribution+exact "
    "(estimate, then patch the --top largest exactly).")]
Top = Annotated[int, typer.Option("--top", help="Sites attribution+exact patches exactly.")]
ChunkSize = Annotated[int | None, typer.Option(
    "--batch-size", "--chunk-size", help="Rows (site × example pairs) per forward pass; default: as many as fit in "
    "a quarter of the free memory (GPU memory on --device cuda).")]


def patch(
    model: o.Model = o.DEFAULT_MODEL, task: o.Task = "ioi", n: o.N = None, seed: o.Seed = 0,
    site: Site = "resid_post", layers: Layers = "all", positions: o.Positions = "all",
    direction: DirectionOpt = "noising", batch_size: ChunkSize = None, out: o.Out = "runs/patch",
    device: o.Device = "cpu", dtype: o.Dtype = "float32", corruption: o.Corruption = "s2-io", no_bos: o.NoBos = False,
    metric: o.MetricName = "task", method: MethodOpt = "exact", top: Top = 10,
) -> None:
    """Activation patching at each (layer, position).

    Patch the residual stream (or per-head z) at each (layer, position); Δ = metric(clean) − metric(patched).

    Example: rcid-tl patch --model world-gpt2 --task ioi --n 50 --site resid_pre --positions io,s2,end --out runs/p
    """
    check_out(out)
    # library imports are deferred so that --help and argument errors answer without loading TransformerLens
    from rcid_tl.hooks.names import parse_site
    from rcid_tl.interventions.write import Direction
    from rcid_tl.sweeps.common import ModelSpec
    from rcid_tl.sweeps.patch import PatchConfig, run_patch
    from rcid_tl.sweeps.prefilter import Method
    from rcid_tl.tasks.registry import TaskSpec

    if direction not in {d.value for d in Direction}:
        raise InputError(f"unknown direction {direction!r}; allowed: noising, denoising")
    config = PatchConfig(
        model=ModelSpec(model, device, dtype),
        task=TaskSpec(task, n=n, seed=seed, prepend_bos=not no_bos, corruption=corruption),
        site=parse_site(site), layers=layers, positions=positions, direction=Direction(direction),
        rows_per_forward=batch_size, metric=metric, method=parse_choice(Method, method, "--method"), top=top,
    )
    result = run_patch(config)
    from rcid_tl.parallel import world

    if not world().main:
        return  # under torchrun every rank computed its share; rank 0 writes and reports
    paths = result.save(out)
    best = max(result.effects, key=lambda e: abs(e["mean"]))
    where = f"layer {best['layer']} {best['position']}" + (f" head {best['head']}" if "head" in best else "")
    Console(stderr=True, soft_wrap=True).print(f"largest mean Δ {best['mean']:+.4f} at {where}; wrote {', '.join(map(str, paths))}")
