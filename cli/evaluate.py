"""`rcid-tl evaluate`: task accuracy and metric, held-out perplexity and causal consistency of any student."""

from typing import Annotated

import typer
from rich.console import Console

from rcid_tl.checks import check_out
from rcid_tl.cli import options as o
from rcid_tl.cli.distill import Checkpoints, Teacher, Text, TopK

StudentDir = Annotated[str, typer.Option("--student", help="Student: a local HF directory (or any model spec).")]


def evaluate(
    teacher: Teacher = "world-gpt2", student: StudentDir = "", task: o.Task = "ioi", n: o.Count = 200, seed: o.Seed = 999,
    checkpoints: Checkpoints = "auto", top_k: TopK = 8, text: Text = "auto", batch_size: o.BatchSize = 64,
    out: o.Out = "runs/evaluate", device: o.Device = "cpu", corruption: o.Corruption = "s2-io",
) -> None:
    """Evaluate a student against its teacher.

    Evaluate STUDENT against TEACHER on held-out task examples; writes OUT/evaluation.json.

    Example: rcid-tl evaluate --teacher world-gpt2 --student runs/rcid-42/student --task ioi --n 200 --out runs/ev
    """
    check_out(out)
    from rcid_tl.distill.evaluate import EvalConfig, run_evaluate
    from rcid_tl.errors import InputError
    from rcid_tl.tasks.registry import TaskSpec

    if not student:
        raise InputError("--student is required (a student directory)")
    config = EvalConfig(teacher=teacher, student=student, task=TaskSpec(task, n=n, seed=seed, corruption=corruption),
                        checkpoints=checkpoints, top_k=top_k, text=text, batch_size=batch_size, device=device)
    result = run_evaluate(config, out)
    s, cc = result["student"], result["consistency"]
    ppl = "n/a" if s["perplexity"] is None else f"{s['perplexity']:.2f}"
    value = lambda key: "nan" if cc.get(key) is None else f"{cc[key]:.3f}"  # noqa: E731
    Console(stderr=True, soft_wrap=True).print(
        f"accuracy {s['accuracy']:.3f}, {s['metric']} {s['metric_mean']:+.3f}, perplexity {ppl}, causal consistency "
        f"{value('mean_r')}, mechanistic r {value('mechanistic_r')}, r_out {value('r_out')}; wrote "
        f"{out}/evaluation.json")
