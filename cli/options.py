"""Option aliases shared by every command, so each is spelled and documented once."""

from pathlib import Path
from typing import Annotated

import typer

from rcid_tl.task_defaults import DEFAULT_N

DEFAULT_MODEL = "world-gpt2"  # the embedded teacher: runs offline; --model gpt2 for the real one

Model = Annotated[str, typer.Option(
    "--model", help="Embedded model (world-gpt2, world-qwen2: see `rcid-tl models`), local HF directory, or hub name.")]
Task = Annotated[str, typer.Option("--task", help="ioi | greater-than | pairs:FILE (JSONL/CSV: clean, corrupt, answer, wrong).")]
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
Corruption = Annotated[str, typer.Option("--corruption", help="IOI corruption: s2-io (seed 000) or abc (Wang et al.).")]
NoBos = Annotated[bool, typer.Option("--no-bos", help="Do not prepend the tokenizer's BOS token.")]
MetricName = Annotated[str, typer.Option(
    "--metric", help="task (the task's own metric) | ovr_prob_diff | ovr_prob (CausalQwen one-vs-rest probabilities).")]
