"""`rcid-tl diagnose-losses`: the scale of every KV-distillation loss term on a few chain-of-thought batches, each
term's share of the total, the effect of attention weighting, and recommended weights for the terms."""

from typing import Annotated, Optional

import typer

from rcid_tl.checks import check_count, check_out
from rcid_tl.cli import kv as k
from rcid_tl.cli import options as o

Batches = Annotated[int, typer.Option("--n-batches", help="CoT training batches to measure.")]
StudentOpt = Annotated[Optional[str], typer.Option(
    "--student", help="Student directory (default: a new student of the teacher's default shape).")]


def diagnose_losses(
    teacher: Annotated[str, typer.Option("--teacher", help="A chain-of-thought teacher (embedded name or directory).")]
    = "world-gpt2-cot",
    student: StudentOpt = None, n_batches: Batches = 5, batch_size: o.TrainBatch = 8, seed: o.Seed = 42,
    kv_loss: k.KVLossOpt = "mse", kv_weight: k.KVWeight = 1.0, attention_weighted_kv: k.AttnWeighted = False,
    use_teacher_attention: k.TeacherAttn = False, cka_weight: k.CKAWeight = 0.05, cka_layers: k.CKALayers = "middle",
    alignment: k.AlignmentOpt = "cka", codi_weight: k.CODIWeight = 0.0, codi_layers: k.CODILayers = "all",
    kv_compression: k.Compression = None, out: o.Out = "runs/diagnose", device: o.Device = "cpu",
) -> None:
    """Measure each KV loss term's scale before training.

    Measure each loss term (CE, KV plain and attention-weighted, CKA or contrastive, CODI) with these weights;
    prints the table and writes OUT/diagnosis.json and OUT/diagnosis.txt. Run it before training to set weights.

    Example: rcid-tl diagnose-losses --teacher world-gpt2-cot --n-batches 5 --codi-weight 0.5 --out runs/diag
    """
    check_out(out)
    check_count(n_batches, "--n-batches")
    check_count(batch_size, "--batch-size", minimum=2)
    from rcid_tl.distill.config import OptimConfig
    from rcid_tl.kv.config import KVRunConfig
    from rcid_tl.kv.diagnose import diagnosis_table, run_diagnosis

    kv = k.kv_config(kv_loss=kv_loss, kv_weight=kv_weight, attention_weighted_kv=attention_weighted_kv,
                     attention_weighted_kv_warmup=0, use_teacher_attention=use_teacher_attention,
                     cka_weight=cka_weight, cka_layers=cka_layers, alignment=alignment, codi_weight=codi_weight,
                     codi_layers=codi_layers, kv_compression=kv_compression)
    config = KVRunConfig(teacher=teacher, kv=kv, optim=OptimConfig(steps=1), student=student, seed=seed,
                         batch_size=batch_size, device=device)
    result = run_diagnosis(config, n_batches, out)
    typer.echo(diagnosis_table(result))
    typer.echo(f"wrote {out}/diagnosis.json")
