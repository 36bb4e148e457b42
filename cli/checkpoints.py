"""`rcid-tl checkpoints`: causal checkpoint selection on a teacher."""

from typing import Annotated, Optional

import typer
from rich.console import Console

from rcid_tl.checks import check_out
from rcid_tl.cli import options as o

TopK = Annotated[int, typer.Option("--top-k", help="How many (layer, position) checkpoints to keep.")]
MinUnmodified = Annotated[Optional[int], typer.Option(
    "--min-unmodified", help="Quota of unmodified positions (e.g. IOI end); default half of --top-k.",
    show_default=False)]
CheckpointSite = Annotated[str, typer.Option(
    "--site", help="resid_pre | resid_mid | resid_post | attn_out | mlp_out | z (a checkpoint per head).")]
Ranking = Annotated[str, typer.Option(
    "--ranking", help="effect (share and spread of the output effect) | imprint (mean ‖h_clean − h_corrupt‖).")]
MaxSaturation = Annotated[float, typer.Option(
    "--max-saturation", help="Skip points whose noising moves the teacher's output this fraction of the whole "
    "corruption or more (they measure behaviour, not mechanism); inf keeps them.")]


def checkpoints(
    model: o.Model = o.DEFAULT_MODEL, task: o.Task = "ioi", n: o.N = None, seed: o.Seed = 0, top_k: TopK = 8,
    min_unmodified: MinUnmodified = None, site: CheckpointSite = "z", max_saturation: MaxSaturation = 0.9,
    ranking: Ranking = "effect", batch_size: o.BatchSize = 64,
    out: o.Out = "runs/checkpoints", device: o.Device = "cpu", dtype: o.Dtype = "float32",
    corruption: o.Corruption = "s2-io", no_bos: o.NoBos = False,
) -> None:
    """Select causal checkpoints on the teacher.

    Rank every (layer, position) — (layer, head, position) at z — by its effect on the output when noised alone
    (or by imprint norm) and keep the top k that do not saturate it, with a quota of unmodified positions; writes
    checkpoints.json (input to `rcid-tl consistency --checkpoints`).

    Example: rcid-tl checkpoints --model world-gpt2 --task ioi --top-k 8 --out runs/ckpt
    """
    check_out(out)
    # library imports are deferred so that --help and argument errors answer without loading TransformerLens
    from rcid_tl.consistency.run import CheckpointsConfig, SelectionConfig, run_checkpoints
    from rcid_tl.hooks.names import parse_site
    from rcid_tl.sweeps.common import ModelSpec
    from rcid_tl.tasks.registry import TaskSpec

    config = CheckpointsConfig(
        model=ModelSpec(model, device, dtype),
        task=TaskSpec(task, n=n, seed=seed, prepend_bos=not no_bos, corruption=corruption),
        selection=SelectionConfig(top_k=top_k, min_unmodified=min_unmodified, site=parse_site(site),
                                  batch_size=batch_size, max_saturation=max_saturation, ranking=ranking),
    )
    result = run_checkpoints(config)
    from rcid_tl.parallel import world

    if not world().main:
        return  # under torchrun every rank computed its share; rank 0 writes and reports
    paths = result.save(out)
    console = Console(stderr=True, soft_wrap=True)
    console.print(f"{'layer':>5} {'head':>4}  {'position':<10} {'mean ‖d‖':>10} {'share':>7} {'spread':>7}  modified")
    for c in result.checkpoints:
        head = "" if c.head is None else c.head
        share = "" if c.saturation is None else f"{c.saturation:.3f}"
        spread = "" if c.spread is None else f"{c.spread:.3f}"
        console.print(f"{c.layer:>5} {head:>4}  {c.position:<10} {c.mean_norm:>10.4f} {share:>7} {spread:>7}  "
                      f"{'yes' if c.modified else 'no'}")
    console.print(f"{len(result.checkpoints)} checkpoints at {result.meta['selection']['site']}; "
                  f"wrote {', '.join(map(str, paths))}")
