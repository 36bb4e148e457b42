"""`rcid-tl consistency`: causal consistency of a student with its teacher."""

from pathlib import Path
from typing import Annotated, Optional

import typer
from rich.console import Console

from rcid_tl.checks import check_out
from rcid_tl.cli import options as o
from rcid_tl.cli.checkpoints import CheckpointSite, MaxSaturation, MinUnmodified, Ranking, TopK

Teacher = Annotated[str, typer.Option("--teacher", help="Teacher: embedded name, local HF directory or hub name.")]
Student = Annotated[str, typer.Option("--student", help="Student: a local HF directory (or any model spec).")]
CheckpointsOpt = Annotated[str, typer.Option(
    "--checkpoints", help="auto (select on the teacher: --top-k, --min-unmodified, --site) or a checkpoints.json.")]
LayerMapOpt = Annotated[str, typer.Option("--layer-map", help="proportional (relative depth) | cka (most similar).")]
HeadMapOpt = Annotated[str, typer.Option(
    "--head-map", help="causal (most similar effect profile, any layer/head, fitted on --fit-n other examples) | "
    "proportional (relative index) | attention (pattern) | activation (CKA of z).")]
AssignmentOpt = Annotated[str, typer.Option(
    "--assignment", help="many-to-one | one-to-one (Hungarian) | one-to-many (causal: sets noised together).")]
FitN = Annotated[int, typer.Option("--fit-n", help="Examples the causal map is fitted on (none measured).")]
FitTask = Annotated[Optional[str], typer.Option(
    "--fit-task", help="Task the causal map is fitted on (default: --task, another seed), e.g. "
                       "tinystories-pronoun:train when --task is a small held-out split.")]
Bootstrap = Annotated[int, typer.Option("--n-bootstrap", help="Bootstrap resamples of examples for the CI of mean r.")]


def consistency(
    student: Student, teacher: Teacher = o.DEFAULT_MODEL, task: o.Task = "ioi", n: o.N = None, seed: o.Seed = 0,
    checkpoints: CheckpointsOpt = "auto", top_k: TopK = 8, min_unmodified: MinUnmodified = None,
    site: CheckpointSite = "z", max_saturation: MaxSaturation = 0.9, ranking: Ranking = "effect",
    layer_map: LayerMapOpt = "proportional", head_map: HeadMapOpt = "causal", assignment: AssignmentOpt = "many-to-one",
    fit_n: FitN = 100, fit_task: FitTask = None, n_bootstrap: Bootstrap = 1000,
    batch_size: o.BatchSize = 64, out: o.Out = "runs/consistency", device: o.Device = "cpu",
    dtype: o.Dtype = "float32", corruption: o.Corruption = "s2-io", no_bos: o.NoBos = False,
) -> None:
    """Causal consistency of a student with its teacher.

    Noise teacher and student at each checkpoint (the student at the component that stands for it, with its own
    corrupt values) and correlate the per-example effects: Pearson r per checkpoint, mean r and a bootstrap CI;
    beside them the behavioural baseline r_out, each checkpoint's share of the effect, and the partial r controlling
    for both models' output differences, whose mean over unsaturated checkpoints is mechanistic r (and weighted by
    share). The default causal map is fitted on other examples than those measured.

    Example: rcid-tl consistency --teacher world-gpt2 --student runs/rcid-42/student --task ioi --n 100 --out runs/cons
    """
    check_out(out)
    # library imports are deferred so that --help and argument errors answer without loading TransformerLens
    from rcid_tl.consistency.run import AUTO, ConsistencyConfig, SelectionConfig, run_consistency
    from rcid_tl.hooks.names import parse_site
    from rcid_tl.sweeps.common import ModelSpec
    from rcid_tl.tasks.registry import TaskSpec

    config = ConsistencyConfig(
        teacher=ModelSpec(teacher, device, dtype), student=ModelSpec(student, device, dtype),
        task=TaskSpec(task, n=n, seed=seed, prepend_bos=not no_bos, corruption=corruption),
        checkpoints=checkpoints if checkpoints == AUTO else str(Path(checkpoints)),
        selection=SelectionConfig(top_k=top_k, min_unmodified=min_unmodified, site=parse_site(site),
                                  batch_size=batch_size, max_saturation=max_saturation, ranking=ranking),
        layer_map=layer_map, head_map=head_map, assignment=assignment, fit_n=fit_n, batch_size=batch_size,
        fit_task=None if fit_task is None else TaskSpec(fit_task, seed=seed, prepend_bos=not no_bos,
                                                        corruption=corruption),
        n_bootstrap=n_bootstrap, bootstrap_seed=seed,
    )
    result = run_consistency(config)
    from rcid_tl.parallel import world

    if not world().main:
        return  # under torchrun every rank computed its share; rank 0 writes and reports
    paths = result.save(out)
    console = Console(stderr=True, soft_wrap=True)
    number = lambda x, width=7: " " * (width - 5) + "undef" if x is None else f"{x:+{width}.3f}"  # noqa: E731
    console.print(f"{'teacher':>7} {'student':>7}  {'position':<10} {'r':>7} {'p':>9} {'share':>7} {'partial':>7}")
    for c in result.checkpoints:
        t = f"{c['teacher_layer']}" + ("" if c["head"] is None else f".{c['head']}")
        s = "+".join(label.split("@")[0].split(" ")[0] for label in c["student_sites"])
        p = "" if c["p_value"] is None else f"{c['p_value']:9.2e}"
        flag = "*" if c["saturated"] else " "
        console.print(f"{t:>7} {s:>7}  {c['position']:<10} {number(c['pearson_r'])} {p:>9} "
                      f"{number(c['saturation_teacher'])}{flag}{number(c['partial_r'])}")
    ci = lambda pair: " .. ".join(f"{x:+.3f}" for x in pair)  # noqa: E731
    console.print(f"mean r {result.mean_r:+.3f} (95% CI {ci(result.mean_r_ci)}) over {result.n_defined} of "
                  f"{len(result.checkpoints)} checkpoints; r_out {result.r_out:+.3f} (output agreement)")
    console.print(f"mechanistic r {result.mechanistic_r:+.3f} (95% CI {ci(result.mechanistic_r_ci)}) over "
                  f"{result.n_mechanistic} unsaturated checkpoints (* saturated); weighted by share "
                  f"{number(_finite(result.mechanistic_r_weighted), 6)}; the checkpoints carry "
                  f"{result.header['carried_share']:.2f} of the teacher's effect together")
    console.print(f"wrote {', '.join(map(str, paths))}")


def _finite(x: float) -> float | None:
    return x if x == x else None  # nan → None
