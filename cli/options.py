"""Option aliases shared by every command, so each is spelled and documented once."""

from pathlib import Path
from typing import Annotated, Optional

import typer

from rcid_tl.checks import check_count
from rcid_tl.errors import InputError
from rcid_tl.task_defaults import DEFAULT_N

DEFAULT_MODEL = "world-gpt2"  # the embedded teacher: runs offline; --model gpt2 for the real one

Model = Annotated[str, typer.Option(
    "--model", help="Embedded model (world-gpt2, world-qwen2: see `rcid-tl models`), local HF directory, or hub name.")]
Task = Annotated[str, typer.Option("--task", help=(
    "ioi | greater-than | tinystories-pronoun | tinystories-object (either with :train or :all; held-out prompts by "
    "default) | pairs:FILE (JSONL/CSV: clean, corrupt, answer, wrong)."))]
N = Annotated[int | None, typer.Option(
    "--n", "-n", help=f"Number of examples (default {DEFAULT_N}; pairs: the first N rows, default every row).",
    show_default=False)]
# -n as well: torchrun's own parser reads `--n` as an ambiguous abbreviation of its --nnodes/--nproc-per-node
Count = Annotated[int, typer.Option("--n", "-n", help="Number of task examples (pairs: the first N rows).")]
Seed = Annotated[int, typer.Option("--seed", help="Seed for sampling examples (and resample ablation).")]
Positions = Annotated[str, typer.Option("--positions", help="all, or named positions such as io,s2,end.")]
BatchSize = Annotated[int, typer.Option("--batch-size", help="Rows (site × example pairs) per forward pass.")]
TrainBatch = Annotated[int, typer.Option("--batch-size", help="Training examples per optimizer step.")]
Out = Annotated[Path, typer.Option("--out", help="Output directory (created; files written atomically).")]
Device = Annotated[str, typer.Option("--device", help="cpu, cuda, cuda:1, mps ...")]
Dtype = Annotated[str, typer.Option("--dtype", help="float32 | bfloat16 | float16")]
Corruption = Annotated[str, typer.Option("--corruption", help="IOI corruption: s2-io (S2 takes the IO name) or abc (Wang et al.).")]
NoBos = Annotated[bool, typer.Option("--no-bos", help="Do not prepend the tokenizer's BOS token.")]
MetricName = Annotated[str, typer.Option(
    "--metric", help="task (the task's own metric) | ovr_prob_diff | ovr_prob (CausalQwen one-vs-rest probabilities).")]

# The training options the three distillation commands (distill, distill-kv, distill-multiteacher) share
Teacher = Annotated[str, typer.Option("--teacher", help="Teacher: embedded name (world-gpt2), local HF dir or hub name.")]
Student = Annotated[Optional[str], typer.Option(
    "--student", help="Start from this student directory (default: a new one, a third of the teacher's depth, half its "
                      "width).")]
Steps = Annotated[int, typer.Option("--steps", help="Distillation optimizer steps.")]
Lr = Annotated[float, typer.Option("--lr", help="Peak AdamW learning rate (warm-up, then cosine decay).")]
EvalN = Annotated[int, typer.Option("--eval-n", help="Held-out task examples for evaluation.")]
SaveEvery = Annotated[int, typer.Option(
    "--save-every", help="Save the training state every N steps; re-running the command resumes from the last one.")]
# the spelling before --save-every: "checkpoint" on these commands means a causal site (--checkpoints)
OldSaveEvery = Annotated[Optional[int], typer.Option("--checkpoint-every", hidden=True)]
Precision = Annotated[str, typer.Option(
    "--precision", help="fp32 | bf16 (CUDA, CPU) | fp16 (CUDA): autocast for the forward and loss; weights stay fp32.")]

LOG_EVERY = 10  # training log interval (steps), lowered to the save interval when that is shorter


def save_every(new: int, old: int | None) -> int:
    """--save-every, or the deprecated --checkpoint-every where a command line still uses it."""
    if old is None:
        return new
    typer.echo("rcid-tl: note: --checkpoint-every is now --save-every", err=True)
    return old


def log_every(save: int, *, every: int | None = None) -> int:
    """The log interval for a run saving every `save` steps (and scoring its learning curve `every` steps): both must
    be multiples of it so resumed logs and learning curves line up. An InputError naming the options otherwise."""
    check_count(save, "--save-every")
    check_count(every, "--eval-every")
    interval = min(LOG_EVERY, save, every or save)
    if save % interval or (every or save) % interval:
        also = " and --eval-every" if every is not None else ""
        raise InputError(f"--save-every{also} must be multiples of the log interval ({interval}) so resumed logs line "
                         f"up, got {save}" + (f" and {every}" if every is not None else ""))
    return interval
