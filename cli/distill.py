"""`rcid-tl distill`: train a student from a teacher with one of the five methods, then evaluate it."""

from typing import Annotated, Optional

import typer
from rich.console import Console

from rcid_tl.checks import check_count, check_out
from rcid_tl.cli import kv as k
from rcid_tl.cli import multiteacher as mt
from rcid_tl.cli import options as o

Teacher = Annotated[str, typer.Option("--teacher", help="Teacher: embedded name (world-gpt2), local HF dir or hub name.")]
MethodOpt = Annotated[str, typer.Option("--method", help="standard-kd | fitnets | informed-fitnets | rcid | iit")]
StudentOpt = Annotated[Optional[str], typer.Option(
    "--student", help="Start from this student directory (default: a new one, a third of the teacher's depth, half its "
                      "width).")]
Steps = Annotated[int, typer.Option("--steps", help="Distillation optimizer steps.")]
Lr = Annotated[float, typer.Option("--lr", help="Peak AdamW learning rate (warm-up, then cosine decay).")]
Lambda = Annotated[float, typer.Option("--lambda", help="Weight λ of the method's term in L_KL + λ·term (≥ 0).")]
Temperature = Annotated[float, typer.Option("--temperature", help="KD temperature.")]
TopK = Annotated[int, typer.Option("--top-k", help="Causal checkpoints selected on the teacher (auto).")]
CheckpointSite = Annotated[str, typer.Option(
    "--checkpoint-site", help="Site of auto checkpoints (by effect): z (per head) | resid_post | attn_out | ...")]
Checkpoints = Annotated[str, typer.Option("--checkpoints", help="auto, or a checkpoints JSON file (rcid-tl checkpoints).")]
Text = Annotated[str, typer.Option("--text", help="General text: auto (world corpus on world teachers) | world | none | FILE.")]
MixWeight = Annotated[float, typer.Option("--mix-weight", help="Weight of a KL on general text mixed into each step (0: off).")]
Pretrain = Annotated[int, typer.Option("--pretrain-steps", help="Steps of next-token pre-training on general text first.")]
EvalN = Annotated[int, typer.Option("--eval-n", help="Held-out task examples for evaluation.")]
Every = Annotated[int, typer.Option("--checkpoint-every", help="Save a resumable training state every N steps.")]
PrecisionOpt = Annotated[str, typer.Option(
    "--precision", help="fp32 | bf16 (CUDA, CPU) | fp16 (CUDA): autocast for the forward and loss; weights stay fp32.")]
DeviceMap = Annotated[Optional[str], typer.Option(
    "--teacher-device-map", help="auto | balanced | sequential: spread a large teacher over this machine's GPUs "
                                 "(Accelerate's device_map; one process).")]
ObjectiveOpt = Annotated[str, typer.Option(
    "--objective", help="method: the --method on --task (default) | kv: KV-cache distillation on the chain-of-thought "
                        "task (--kv-* options; --n training problems).")]
MaxSaturation = Annotated[float, typer.Option(
    "--max-saturation", help="Auto checkpoints skip teacher points whose noising moves the output this fraction of the "
                             "whole corruption or more; inf keeps them.")]
PerLayer = Annotated[bool, typer.Option(
    "--one-per-student-layer", help="Keep only the largest-imprint checkpoint of each student layer.")]
RefitEvery = Annotated[Optional[int], typer.Option(
    "--refit-every", help="Refit W* on the current student every N distillation steps (default: fitted once, frozen).")]
AllTokens = Annotated[bool, typer.Option("--kl-all-tokens", help="Task KL on every token, not only the answer position.")]


def distill(
    teacher: Teacher = "world-gpt2", method: MethodOpt = "rcid", task: o.Task = "ioi", n: o.Count = 1024,
    seed: o.Seed = 42, student: StudentOpt = None, steps: Steps = 600, batch_size: o.TrainBatch = 32,
    lr: Lr = 3e-3, lam: Lambda = 1.0, temperature: Temperature = 2.0, top_k: TopK = 8, checkpoint_site: CheckpointSite = "z",
    checkpoints: Checkpoints = "auto", text: Text = "auto", mix_weight: MixWeight = 0.0, pretrain_steps: Pretrain = 0,
    eval_n: EvalN = 200, checkpoint_every: Every = 50, out: o.Out = "runs/distill", device: o.Device = "cpu",
    corruption: o.Corruption = "s2-io", kl_all_tokens: AllTokens = False, precision: PrecisionOpt = "fp32",
    teacher_device_map: DeviceMap = None, max_saturation: MaxSaturation = 0.9,
    one_per_student_layer: PerLayer = False, refit_every: RefitEvery = None,
    objective: ObjectiveOpt = "method", kv_loss: k.KVLossOpt = "mse", kv_weight: k.KVWeight = 1.0,
    attention_weighted_kv: k.AttnWeighted = False, attention_weighted_kv_warmup: k.AttnWarmup = 50,
    use_teacher_attention: k.TeacherAttn = False, cka_weight: k.CKAWeight = 0.05, cka_layers: k.CKALayers = "middle",
    alignment: k.AlignmentOpt = "cka", codi_weight: k.CODIWeight = 0.0, codi_layers: k.CODILayers = "all",
    kv_compression: k.Compression = None, eval_every: k.EvalEvery = 50,
    gradient_checkpointing: k.Checkpointing = False,
    teachers: mt.TeachersOpt = None, fusion: mt.FusionOpt = "fixed", teacher_weights: mt.WeightsOpt = None,
    projection: mt.ProjectionOpt = "structured", per_head_projection: mt.PerHeadOpt = False,
    random_head_init: mt.RandomInitOpt = False, time_alignment: mt.TimeOpt = "soft", layer_map: mt.LayerMapOpt = "ratio",
    alpha_k: mt.AlphaK = 1.0, alpha_v: mt.AlphaV = 1.0, alpha_attn: mt.AlphaAttn = 1.0,
    student_reasoning: mt.ReasoningOpt = "compressed",
) -> None:
    """Distill TEACHER into a student on a task; writes OUT/student (a Hugging Face directory), OUT/metrics.json
    (accuracy, metric, perplexity, causal consistency) and OUT/train_log.jsonl. Re-running resumes.

    Example: rcid-tl distill --teacher world-gpt2 --method rcid --task ioi --seed 42 --steps 600 --out runs/rcid-42

    Data-parallel: torchrun --nproc-per-node 2 -m rcid_tl.cli.app distill ... (--batch-size is the global batch).
    """
    check_out(out)
    check_count(steps, "--steps")  # before OptimConfig, whose own message cannot name the option
    check_count(pretrain_steps, "--pretrain-steps", minimum=0)
    if objective not in ("method", "kv"):
        from rcid_tl.errors import InputError

        raise InputError(f"unknown --objective {objective!r}; allowed: method, kv")
    if teachers is not None:
        return mt.run_multiteacher_objective(
            objective=objective, teachers=teachers, teacher_weights=teacher_weights, fusion=fusion,
            projection=projection, per_head_projection=per_head_projection, random_head_init=random_head_init,
            time_alignment=time_alignment, layer_map=layer_map, alpha_k=alpha_k, alpha_v=alpha_v,
            alpha_attn=alpha_attn, student_reasoning=student_reasoning, kv_weight=kv_weight, student=student, n=n,
            seed=seed, steps=steps, batch_size=batch_size, lr=lr, eval_n=eval_n, checkpoint_every=checkpoint_every,
            eval_every=eval_every, out=out, device=device)
    if objective == "kv":
        return k.run_kv_objective(
            teacher=teacher, student=student, n=n, seed=seed, steps=steps, batch_size=batch_size, lr=lr,
            eval_n=eval_n, checkpoint_every=checkpoint_every, out=out, device=device, precision=precision,
            eval_every=eval_every, gradient_checkpointing=gradient_checkpointing, kv_loss=kv_loss, kv_weight=kv_weight,
            attention_weighted_kv=attention_weighted_kv, attention_weighted_kv_warmup=attention_weighted_kv_warmup,
            use_teacher_attention=use_teacher_attention, cka_weight=cka_weight, cka_layers=cka_layers,
            alignment=alignment, codi_weight=codi_weight, codi_layers=codi_layers, kv_compression=kv_compression)
    from rcid_tl.distill.config import DistillConfig, OptimConfig
    from rcid_tl.distill.precision import check_precision
    from rcid_tl.distill.methods import parse_method
    from rcid_tl.distill.run import run_distill
    from rcid_tl.parallel import world
    from rcid_tl.tasks.registry import TaskSpec

    config = DistillConfig(
        teacher=teacher, method=parse_method(method), task=TaskSpec(task, n=n, seed=seed, corruption=corruption),
        optim=OptimConfig(steps=steps, lr=lr, warmup=max(1, steps // 20)), seed=seed, student=student,
        batch_size=batch_size, lam=lam, temperature=temperature, kl_all_tokens=kl_all_tokens, top_k=top_k,
        checkpoint_site=checkpoint_site, checkpoints=checkpoints, text=text, max_saturation=None if max_saturation == float("inf") else max_saturation,
        one_per_student_layer=one_per_student_layer, refit_every=refit_every,
        mix_weight=mix_weight, pretrain=OptimConfig(steps=pretrain_steps, lr=lr, warmup=max(1, pretrain_steps // 20)),
        eval_n=eval_n, checkpoint_every=checkpoint_every, log_every=min(10, checkpoint_every), device=device,
    )
    mode = check_precision(precision, device)  # the device is checked by the config
    import sys

    m = run_distill(config, out, command="rcid-tl " + " ".join(sys.argv[1:]), precision=mode,
                    teacher_device_map=teacher_device_map)
    if not world().main:
        return  # rank 0 reports
    cc = m["causal_consistency"]
    ci = ", ".join("nan" if x is None else f"{x:.3f}" for x in cc["mean_r_ci"])
    ppl = "n/a" if m["perplexity"] is None else f"{m['perplexity']:.2f}"
    value = lambda key: "nan" if cc.get(key) is None else f"{cc[key]:.3f}"  # noqa: E731
    Console(stderr=True, soft_wrap=True).print(
        f"{m['method']} seed {m['seed']}: accuracy {m['accuracy']:.3f}, {m['metric']} {m['metric_mean']:+.3f}, "
        f"perplexity {ppl}, causal consistency {value('mean_r')} [{ci}], mechanistic r {value('mechanistic_r')}, "
        f"r_out {value('r_out')}; wrote {out}")
