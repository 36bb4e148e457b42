"""`rcid-tl distill-multiteacher --teachers A,B[,C]`: KV-cache distillation from several teachers at once, fused and
aligned to the student (structural KV loss, KaVa line)."""

from typing import Annotated, Optional

import typer

from rcid_tl.checks import check_count, check_out
from rcid_tl.cli import options as o
from rcid_tl.cli.kv import EvalEvery, KVCount, KVEvalN, KVWeight

TeachersOpt = Annotated[str, typer.Option(
    "--teachers", help="Teachers, comma-separated (embedded names or directories; the student takes the first one's "
                       "tokenizer and default shape).")]
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


def distill_multiteacher(
    teachers: TeachersOpt, student: o.Student = None, n: KVCount = 1024, seed: o.Seed = 42, steps: o.Steps = 600,
    batch_size: o.TrainBatch = 32, lr: o.Lr = 3e-3, eval_n: KVEvalN = 200, eval_every: EvalEvery = 50,
    save_every: o.SaveEvery = 50, out: o.Out = "runs/distill-multiteacher", device: o.Device = "cpu",
    kv_weight: KVWeight = 1.0, fusion: FusionOpt = "fixed", teacher_weights: WeightsOpt = None,
    projection: ProjectionOpt = "structured", per_head_projection: PerHeadOpt = False,
    random_head_init: RandomInitOpt = False, time_alignment: TimeOpt = "soft", layer_map: LayerMapOpt = "ratio",
    alpha_k: AlphaK = 1.0, alpha_v: AlphaV = 1.0, alpha_attn: AlphaAttn = 1.0,
    student_reasoning: ReasoningOpt = "compressed", checkpoint_every: o.OldSaveEvery = None,
) -> None:
    """Distill several teachers' KV caches, fused.

    CE plus the structural KV loss (K and V cosine, attention KL) against the teachers' caches, projected to the
    student, aligned in time and fused; writes OUT/student, OUT/metrics.json (accuracy per split, the fusion weights
    over training) and OUT/train_log.jsonl. Re-running resumes.

    Example: rcid-tl distill-multiteacher --teachers world-gpt2-cot,world-qwen2-cot --fusion similarity --out runs/mt
    """
    import sys

    from rich.console import Console

    from rcid_tl.distill.config import OptimConfig
    from rcid_tl.errors import InputError
    from rcid_tl.multiteacher.ablation import Arm
    from rcid_tl.multiteacher.loss import StructuralWeights
    from rcid_tl.multiteacher.run import MultiTeacherRunConfig, run_multiteacher

    check_out(out)
    check_count(steps, "--steps")
    save_every = o.save_every(save_every, checkpoint_every)
    log_every = o.log_every(save_every, every=eval_every)
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
    config = MultiTeacherRunConfig(arm, OptimConfig(steps=steps, lr=lr, warmup=max(1, steps // 20)), seed=seed,
                                   student=student, reasoning=student_reasoning, kv_weight=kv_weight,
                                   layer_map=layer_map, n_train=n, batch_size=batch_size, eval_n=eval_n,
                                   curve_n=min(32, eval_n), eval_every=eval_every, checkpoint_every=save_every,
                                   log_every=log_every, device=device)
    m = run_multiteacher(config, out, command="rcid-tl " + " ".join(sys.argv[1:]))
    scores = ", ".join(f"{split} accuracy {s['accuracy']:.3f} (perplexity {s['perplexity']:.2f})"
                       for split, s in m["scores"].items())
    final = m["routing"][-1]
    routing = ", ".join(f"{k[2:]} {v:.2f}" for k, v in final.items() if k.startswith("w_"))
    Console(stderr=True, soft_wrap=True).print(f"{len(names)} teachers, {arm.fusion.value} fusion, seed {seed}: "
                                               f"{scores}; final weights {routing}; wrote {out}")
