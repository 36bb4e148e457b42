"""`rcid-tl distill`: train a student from a teacher on a task with one of the five logit/representation methods,
then evaluate it. The KV-cache objectives have commands of their own (`distill-kv`, `distill-multiteacher`)."""

from typing import Annotated, Optional

import typer
from rich.console import Console

from rcid_tl.checks import check_count, check_out
from rcid_tl.cli import options as o

Teacher = o.Teacher  # `rcid-tl evaluate` spells --teacher the same way
MethodOpt = Annotated[str, typer.Option("--method", help="standard-kd | fitnets | informed-fitnets | rcid | iit")]
Lambda = Annotated[float, typer.Option("--lambda", help="Weight λ of the method's term in L_KL + λ·term (≥ 0).")]
Temperature = Annotated[float, typer.Option("--temperature", help="KD temperature.")]
TopK = Annotated[int, typer.Option("--top-k", help="Causal checkpoints selected on the teacher (auto).")]
CheckpointSite = Annotated[str, typer.Option(
    "--checkpoint-site", help="Site of auto checkpoints (by effect): z (per head) | resid_post | attn_out | ...")]
Checkpoints = Annotated[str, typer.Option("--checkpoints", help="auto, or a checkpoints JSON file (rcid-tl checkpoints).")]
Text = Annotated[str, typer.Option("--text", help=(
    "General text: auto (world corpus on world teachers) | world | teacher-text (sampled from the teacher: "
    "--gen-n, --gen-len, --gen-seed) | none | FILE."))]
GenN = Annotated[Optional[int], typer.Option(
    "--gen-n", help="teacher-text: sequences sampled from the teacher (default 512).", show_default=False)]
GenLen = Annotated[Optional[int], typer.Option(
    "--gen-len", help="teacher-text: tokens per sequence, BOS included (default 128).", show_default=False)]
GenSeed = Annotated[Optional[int], typer.Option(
    "--gen-seed", help="teacher-text: sampling seed (default 0; held-out text uses another).", show_default=False)]
GenTemperature = Annotated[Optional[float], typer.Option(
    "--gen-temperature", help="teacher-text: sampling temperature (default 1).", show_default=False)]
MixWeight = Annotated[float, typer.Option("--mix-weight", help="Weight of a KL on general text mixed into each step (0: off).")]
Pretrain = Annotated[int, typer.Option("--pretrain-steps", help="Steps of next-token pre-training on general text first.")]
DeviceMap = Annotated[Optional[str], typer.Option(
    "--teacher-device-map", help="auto | balanced | sequential: spread a large teacher over this machine's GPUs "
                                 "(Accelerate's device_map; one process).")]
MaxSaturation = Annotated[float, typer.Option(
    "--max-saturation", help="Auto checkpoints skip teacher points whose noising moves the output this fraction of the "
                             "whole corruption or more; inf keeps them.")]
PerLayer = Annotated[bool, typer.Option(
    "--one-per-student-layer", help="Keep only the largest-imprint checkpoint of each student layer.")]
RefitEvery = Annotated[Optional[int], typer.Option(
    "--refit-every", help="Refit W* on the current student every N distillation steps (default: fitted once, frozen).")]
AllTokens = Annotated[bool, typer.Option("--kl-all-tokens", help="Task KL on every token, not only the answer position.")]
# the spellings before the KV objectives had commands of their own: refused with the command to use instead
OldObjective = Annotated[Optional[str], typer.Option("--objective", hidden=True)]
OldTeachers = Annotated[Optional[str], typer.Option("--teachers", hidden=True)]


def distill(
    teacher: o.Teacher = "world-gpt2", method: MethodOpt = "rcid", task: o.Task = "ioi", n: o.Count = 1024,
    seed: o.Seed = 42, student: o.Student = None, steps: o.Steps = 600, batch_size: o.TrainBatch = 32,
    lr: o.Lr = 3e-3, lam: Lambda = 1.0, temperature: Temperature = 2.0, top_k: TopK = 8, checkpoint_site: CheckpointSite = "z",
    checkpoints: Checkpoints = "auto", text: Text = "auto", mix_weight: MixWeight = 0.0, pretrain_steps: Pretrain = 0,
    eval_n: o.EvalN = 200, save_every: o.SaveEvery = 50, out: o.Out = "runs/distill", device: o.Device = "cpu",
    corruption: o.Corruption = "s2-io", kl_all_tokens: AllTokens = False, precision: o.Precision = "fp32",
    teacher_device_map: DeviceMap = None, max_saturation: MaxSaturation = 0.9,
    one_per_student_layer: PerLayer = False, refit_every: RefitEvery = None, gen_n: GenN = None,
    gen_len: GenLen = None, gen_seed: GenSeed = None, gen_temperature: GenTemperature = None,
    checkpoint_every: o.OldSaveEvery = None, objective: OldObjective = None, teachers: OldTeachers = None,
) -> None:
    """Distill a student: KD, FitNets, RCID or IIT.

    Trains a student of TEACHER with --method on --task, then writes OUT/student (a Hugging Face directory), OUT/metrics.json (accuracy,
    metric, perplexity, causal consistency) and OUT/train_log.jsonl. Re-running resumes.

    Example: rcid-tl distill --teacher world-gpt2 --method rcid --task ioi --seed 42 --steps 600 --out runs/rcid-42

    On teacher-generated text: rcid-tl distill --teacher DIR --task tinystories-pronoun:train --text teacher-text
    --pretrain-steps 300 --mix-weight 1 --out runs/rcid-ts

    Data-parallel: torchrun --nproc-per-node 2 -m rcid_tl.cli.app distill ... (--batch-size is the global batch).
    """
    from rcid_tl.errors import InputError

    _refuse_kv_spellings(objective, teachers)
    check_out(out)
    check_count(steps, "--steps")  # before OptimConfig, whose own message cannot name the option
    check_count(pretrain_steps, "--pretrain-steps", minimum=0)
    save_every = o.save_every(save_every, checkpoint_every)
    log_every = o.log_every(save_every)
    from rcid_tl.distill.config import DistillConfig, OptimConfig
    from rcid_tl.distill.teacher_text import TEACHER_TEXT, Generation
    from rcid_tl.distill.precision import check_precision
    from rcid_tl.distill.methods import parse_method
    from rcid_tl.distill.run import run_distill
    from rcid_tl.parallel import world
    from rcid_tl.tasks.registry import TaskSpec

    given = {"--gen-n": gen_n, "--gen-len": gen_len, "--gen-seed": gen_seed, "--gen-temperature": gen_temperature}
    unused = [name for name, value in given.items() if value is not None]
    if unused and text != TEACHER_TEXT:
        raise InputError(f"{unused[0]} sets how teacher-text is sampled; it needs --text teacher-text, got --text {text}")
    generation = Generation(**{k: v for k, v in (("n", gen_n), ("length", gen_len), ("seed", gen_seed),
                                                 ("temperature", gen_temperature)) if v is not None})
    config = DistillConfig(
        teacher=teacher, method=parse_method(method), task=TaskSpec(task, n=n, seed=seed, corruption=corruption),
        optim=OptimConfig(steps=steps, lr=lr, warmup=max(1, steps // 20)), seed=seed, student=student,
        batch_size=batch_size, lam=lam, temperature=temperature, kl_all_tokens=kl_all_tokens, top_k=top_k,
        checkpoint_site=checkpoint_site, checkpoints=checkpoints, text=text, max_saturation=None if max_saturation == float("inf") else max_saturation,
        one_per_student_layer=one_per_student_layer, refit_every=refit_every,
        mix_weight=mix_weight, pretrain=OptimConfig(steps=pretrain_steps, lr=lr, warmup=max(1, pretrain_steps // 20)),
        eval_n=eval_n, checkpoint_every=save_every, log_every=log_every, device=device, generation=generation,
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


def _refuse_kv_spellings(objective: str | None, teachers: str | None) -> None:
    """`--objective kv` and `--teachers` were the KV objectives' options of this command; they have their own now."""
    from rcid_tl.errors import InputError

    if teachers is not None:
        raise InputError("--teachers is not an option of the method objective: several teachers' KV caches are "
                         "`rcid-tl distill-multiteacher` (--teachers A,B)")
    if objective == "kv":
        raise InputError("--objective kv is not an objective of `rcid-tl distill`: KV-cache distillation is "
                         "`rcid-tl distill-kv`")
    if objective not in (None, "method"):
        raise InputError(f"unknown --objective {objective!r}; `rcid-tl distill` is the method objective "
                         "(KV caches: `rcid-tl distill-kv`, `rcid-tl distill-multiteacher`)")
