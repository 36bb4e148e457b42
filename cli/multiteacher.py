"""The multi-teacher options of `rcid-tl distill --objective kv --teachers A,B[,C]`, spelled once, and the builder
of their run config."""

from typing import Annotated, Optional

import typer

TeachersOpt = Annotated[Optional[str], typer.Option(
    "--teachers", help="KV objective from several teachers, comma-separated (embedded names or directories; the "
                       "student takes the first one's tokenizer and default shape).")]
FusionOpt = Annotated[str, typer.Option(
    "--fusion", help="How teachers' aligned caches combine: fixed (--teacher-weights) | similarity (softmax of the "
                     "cosine to each teacher's query) | learned (an MLP router on the student's query).")]
WeightsOpt = Annotated[Optional[str], typer.Option(
    "--teacher-weights", help="Fixed fusion weights, one per teacher, comma-separated (default: equal).")]
ProjectionOpt = Annotated[str, typer.Option(
    "--projection", help="Teacher → student cache projection: structured (head mixing + d_head map, 5-D) | flat.")]
PerHeadOpt = Annotated[bool, typer.Option(
    "--per-head-projection", help="Structured: one d_head map per student head instead of one shared map.")]
RandomInitOpt = Annotated[bool, typer.Option(
    "--random-head-init", help="Structured: start head mixing at random instead of uniform group averages.")]
TimeOpt = Annotated[str, typer.Option(
    "--time-alignment", help="soft (interpolated segment warping and character overlap) | hard (index alignment).")]
LayerMapOpt = Annotated[str, typer.Option(
    "--layer-map", help="ratio | cka (top-2 by CKA, precomputed on the teacher split) | FILE[,FILE] (one saved map "
                        "per teacher).")]
AlphaK = Annotated[float, typer.Option("--alpha-k", help="Weight of the K cosine term (≥ 0).")]
AlphaV = Annotated[float, typer.Option("--alpha-v", help="Weight of the V cosine term (≥ 0).")]
AlphaAttn = Annotated[float, typer.Option("--alpha-attn", help="Weight of the attention KL term (≥ 0).")]
ReasoningOpt = Annotated[str, typer.Option(
    "--student-reasoning", help="compressed (each step's result only; teachers keep full reasoning) | full.")]


def run_multiteacher_objective(*, objective: str, teachers: str, teacher_weights: str | None, fusion: str,
                               projection: str, per_head_projection: bool, random_head_init: bool,
                               time_alignment: str, layer_map: str, alpha_k: float, alpha_v: float,
                               alpha_attn: float, student_reasoning: str, kv_weight: float, student: str | None,
                               n: int, seed: int, steps: int, batch_size: int, lr: float, eval_n: int,
                               checkpoint_every: int, eval_every: int, out, device: str) -> None:
    """`rcid-tl distill --objective kv --teachers ...`: CE + structural KV loss against the fused, aligned teachers."""
    import sys

    from rich.console import Console

    from rcid_tl.distill.config import OptimConfig
    from rcid_tl.errors import InputError
    from rcid_tl.multiteacher.ablation import Arm
    from rcid_tl.multiteacher.loss import StructuralWeights
    from rcid_tl.multiteacher.run import MultiTeacherRunConfig, run_multiteacher

    if objective != "kv":
        raise InputError("--teachers distils several teachers' KV caches; add --objective kv")
    if time_alignment not in ("soft", "hard"):
        raise InputError(f"unknown --time-alignment {time_alignment!r}; allowed: soft, hard")
    names = tuple(t.strip() for t in teachers.split(",") if t.strip())
    weights = None
    if teacher_weights is not None:
        try:
            weights = tuple(float(w) for w in teacher_weights.split(","))
        except ValueError:
            raise InputError(f"--teacher-weights {teacher_weights!r} is not a comma-separated list of numbers") \
                from None
    arm = Arm("cli", names, fusion=fusion, fixed_weights=weights, projection=projection,
              share_dim=not per_head_projection, init_uniform=not random_head_init,
              soft_alignment=time_alignment == "soft", alphas=StructuralWeights(alpha_k, alpha_v, alpha_attn))
    log_every = min(10, checkpoint_every, eval_every)
    config = MultiTeacherRunConfig(arm, OptimConfig(steps=steps, lr=lr, warmup=max(1, steps // 20)), seed=seed,
                                   student=student, reasoning=student_reasoning, kv_weight=kv_weight,
                                   layer_map=layer_map, n_pool=n, batch_size=batch_size, eval_n=eval_n,
                                   curve_n=min(32, eval_n), eval_every=eval_every, checkpoint_every=checkpoint_every,
                                   log_every=log_every, device=device)
    m = run_multiteacher(config, out, command="rcid-tl " + " ".join(sys.argv[1:]))
    scores = ", ".join(f"{split} accuracy {s['accuracy']:.3f} (perplexity {s['perplexity']:.2f})"
                       for split, s in m["scores"].items())
    final = m["routing"][-1]
    routing = ", ".join(f"{k[2:]} {v:.2f}" for k, v in final.items() if k.startswith("w_"))
    Console(stderr=True, soft_wrap=True).print(f"{len(names)} teachers, {arm.fusion.value} fusion, seed {seed}: "
                                               f"{scores}; final weights {routing}; wrote {out}")
