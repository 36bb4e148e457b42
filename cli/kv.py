"""`rcid-tl distill-kv`: KV-cache distillation of one teacher on the chain-of-thought task; its KV options (shared
with `rcid-tl diagnose-losses`, spelled once) and the builder of their config."""

from typing import Annotated, Optional

import typer

from rcid_tl.checks import check_count, check_out
from rcid_tl.cli import options as o

KVLossOpt = Annotated[str, typer.Option("--kv-loss", help="KV loss: mse | cosine (direction only, scale-free).")]
KVWeight = Annotated[float, typer.Option("--kv-weight", help="Weight of the KV loss (≥ 0).")]
AttnWeighted = Annotated[bool, typer.Option(
    "--attention-weighted-kv", help="Weight tokens of the KV loss by the (detached) attention they receive.")]
AttnWarmup = Annotated[int, typer.Option(
    "--attention-weighted-kv-warmup", help="Steps of the plain KV loss before attention weighting starts.")]
TeacherAttn = Annotated[bool, typer.Option(
    "--use-teacher-attention", help="Weight by the teacher's attention instead of the student's.")]
CKAWeight = Annotated[float, typer.Option("--cka-weight", help="Weight of the 1 − CKA auxiliary loss (0: off).")]
CKALayers = Annotated[str, typer.Option("--cka-layers", help="Student layers for CKA: middle | last | all | 0,2.")]
AlignmentOpt = Annotated[str, typer.Option(
    "--alignment", help="Auxiliary hidden-state alignment: cka | contrastive (InfoNCE through a learned projection).")]
CODIWeight = Annotated[float, typer.Option(
    "--codi-weight", help="Weight of the CODI term: hidden states before the answer matched to the teacher's "
                          "(0: off).")]
CODILayers = Annotated[str, typer.Option("--codi-layers", help="Student layers for CODI: all | middle | last | 0,2.")]
Compression = Annotated[Optional[int], typer.Option(
    "--kv-compression", help="R-KV: keep this many reasoning tokens of the teacher's cache (default: all).")]
EvalEvery = Annotated[int, typer.Option(
    "--eval-every", help="Score the student on min(32, --eval-n) ID problems every N steps (learning curve).")]
CoTTeacher = Annotated[str, typer.Option(
    "--teacher", help="A chain-of-thought teacher: embedded name (world-gpt2-cot), local HF dir or hub name.")]
KVCount = Annotated[int, typer.Option("--n", "-n", help="Chain-of-thought training problems.")]
KVEvalN = Annotated[int, typer.Option("--eval-n", help="Held-out problems scored per test split.")]
Checkpointing = Annotated[bool, typer.Option(
    "--gradient-checkpointing", help="Recompute the student's blocks in backward to save GPU memory (CUDA only).")]


def kv_config(*, kv_loss: str, kv_weight: float, attention_weighted_kv: bool, attention_weighted_kv_warmup: int,
              use_teacher_attention: bool, cka_weight: float, cka_layers: str, alignment: str, codi_weight: float,
              codi_layers: str, kv_compression: int | None):
    """The validated KVConfig of these options (an InputError naming the bad one)."""
    from rcid_tl.kv.config import KVConfig

    return KVConfig(kv_loss=kv_loss, kv_weight=kv_weight, attention_weighted=attention_weighted_kv,
                    attention_warmup=attention_weighted_kv_warmup, use_teacher_attention=use_teacher_attention,
                    cka_weight=cka_weight, cka_layers=cka_layers, alignment=alignment, codi_weight=codi_weight,
                    codi_layers=codi_layers, compression=kv_compression)


def distill_kv(
    teacher: CoTTeacher = "world-gpt2-cot", student: o.Student = None, n: KVCount = 1024, seed: o.Seed = 42,
    steps: o.Steps = 600, batch_size: o.TrainBatch = 32, lr: o.Lr = 3e-3, eval_n: KVEvalN = 200,
    eval_every: EvalEvery = 50, save_every: o.SaveEvery = 50, out: o.Out = "runs/distill-kv", device: o.Device = "cpu",
    precision: o.Precision = "fp32", gradient_checkpointing: Checkpointing = False,
    kv_loss: KVLossOpt = "mse", kv_weight: KVWeight = 1.0, attention_weighted_kv: AttnWeighted = False,
    attention_weighted_kv_warmup: AttnWarmup = 50, use_teacher_attention: TeacherAttn = False,
    cka_weight: CKAWeight = 0.05, cka_layers: CKALayers = "middle", alignment: AlignmentOpt = "cka",
    codi_weight: CODIWeight = 0.0, codi_layers: CODILayers = "all", kv_compression: Compression = None,
    checkpoint_every: o.OldSaveEvery = None,
) -> None:
    """Distill one teacher's KV cache (KaVa).

    CE plus the KV terms on the chain-of-thought arithmetic task, through the shared trainer; writes OUT/student,
    OUT/metrics.json (ID and OOD accuracy and perplexity), OUT/train_log.jsonl and OUT/learning_curves.html.
    Re-running resumes.

    Example: rcid-tl distill-kv --teacher world-gpt2-cot --kv-loss cosine --attention-weighted-kv --out runs/kv-42
    """
    check_out(out)
    check_count(steps, "--steps")
    save_every = o.save_every(save_every, checkpoint_every)
    log_every = o.log_every(save_every, every=eval_every)
    import sys

    from rich.console import Console

    from rcid_tl.distill.config import OptimConfig
    from rcid_tl.distill.precision import check_precision
    from rcid_tl.kv.config import KVRunConfig
    from rcid_tl.kv.run import run_kv_distill

    kv = kv_config(kv_loss=kv_loss, kv_weight=kv_weight, attention_weighted_kv=attention_weighted_kv,
                   attention_weighted_kv_warmup=attention_weighted_kv_warmup,
                   use_teacher_attention=use_teacher_attention, cka_weight=cka_weight, cka_layers=cka_layers,
                   alignment=alignment, codi_weight=codi_weight, codi_layers=codi_layers, kv_compression=kv_compression)
    config = KVRunConfig(teacher=teacher, kv=kv, student=student, seed=seed, n_train=n,
                         optim=OptimConfig(steps=steps, lr=lr, warmup=max(1, steps // 20)), batch_size=batch_size,
                         eval_n=eval_n, curve_n=min(32, eval_n), eval_every=eval_every,
                         checkpoint_every=save_every, log_every=log_every,
                         gradient_checkpointing=gradient_checkpointing, device=device)
    mode = check_precision(precision, device)
    m = run_kv_distill(config, out, command="rcid-tl " + " ".join(sys.argv[1:]), precision=mode)
    scores = ", ".join(f"{split} accuracy {s['accuracy']:.3f} (perplexity {s['perplexity']:.2f})"
                       for split, s in m["scores"].items())
    Console(stderr=True, soft_wrap=True).print(f"kv seed {seed}: {scores}; wrote {out}")
