"""Distil stories260K into a smaller Llama student with each method of `rcid-tl distill`, on teacher-generated
TinyStories text plus the pronoun task's training pairs, and compare the students with the teacher: held-out
pronoun accuracy and logit difference, perplexity on held-out teacher samples, and causal consistency (the default
causal head map, cross-fitted on training prompts; mechanistic r with r_out beside it). Controls: the teacher
against itself and an untrained student of the same shape.

    python experiments/tinystories_distill.py --seeds 0 --out figures/tinystories_distill

Each run is exactly `rcid-tl distill` with the options recorded in the JSON (`command`), then `rcid-tl consistency`
on its student; runs resume from `--runs`.
"""

import argparse
import json
import statistics
import time
from pathlib import Path

import torch

import rcid_tl
from rcid_tl.artifacts import write_json, write_text
from rcid_tl.consistency.run import ConsistencyConfig, run_consistency
from rcid_tl.distill.config import DistillConfig, OptimConfig
from rcid_tl.distill.run import run_distill
from rcid_tl.distill.data import PPL_LEN, PPL_ROWS
from rcid_tl.distill.evaluate import perplexity, task_scores
from rcid_tl.distill.teacher_text import Generation, TeacherText
from rcid_tl.models.loading import load_model
from rcid_tl.models.saving import save_hf_model
from rcid_tl.models.student import build_llama_student_for
from rcid_tl.progress import set_progress
from rcid_tl.sweeps.common import ModelSpec
from rcid_tl.tasks.registry import TaskSpec, build_task

TEACHER = "../shared/data/checkpoints/stories260K/hf"
METHODS = ("standard-kd", "fitnets", "informed-fitnets", "rcid")
TASK = "tinystories-pronoun"


def distill_config(method: str, seed: int, args) -> DistillConfig:
    return DistillConfig(
        teacher=args.teacher, method=method, task=TaskSpec(f"{TASK}:train", n=440, seed=seed),
        optim=OptimConfig(steps=args.steps, lr=args.lr, warmup=max(1, args.steps // 20)), seed=seed,
        batch_size=32, lam=1.0, top_k=8, text="teacher-text", mix_weight=args.mix_weight,
        pretrain=OptimConfig(steps=args.pretrain_steps, lr=args.lr, warmup=max(1, args.pretrain_steps // 20)),
        generation=Generation(n=args.gen_n, length=args.gen_len, seed=args.gen_seed),
        checkpoint_every=50, log_every=10)


def command(method: str, seed: int, args, out: Path) -> str:
    return (f"rcid-tl distill --teacher {args.teacher} --method {method} --task {TASK}:train --n 440 --seed {seed} "
            f"--steps {args.steps} --batch-size 32 --lr {args.lr:g} --text teacher-text --gen-n {args.gen_n} "
            f"--gen-len {args.gen_len} --gen-seed {args.gen_seed} --pretrain-steps {args.pretrain_steps} "
            f"--mix-weight {args.mix_weight:g} --out {out}")


def consistency(teacher: str, student: str) -> dict:
    """`rcid-tl consistency --task tinystories-pronoun --fit-task tinystories-pronoun:train` (the defaults)."""
    result = run_consistency(ConsistencyConfig(
        teacher=ModelSpec(teacher), student=ModelSpec(student), task=TaskSpec(TASK),
        fit_task=TaskSpec(f"{TASK}:train"))).to_json()
    keep = ("mechanistic_r", "mechanistic_r_ci", "mechanistic_r_weighted", "mean_r", "mean_r_ci", "r_out",
            "carried_share")
    per = [{"teacher": f"{c['teacher_layer']}.{c['head']}@{c['position']}", "student": c["student_sites"],
            "partial_r": c["partial_r"], "pearson_r": c["pearson_r"], "share": c["saturation_teacher"]}
           for c in result["checkpoints"]]
    return {k: result[k] for k in keep} | {"checkpoints": per}


def student_shape(out: Path) -> str:
    c = load_model(str(out / "student")).original_model.config
    n = sum(p.numel() for p in load_model(str(out / "student")).original_model.parameters())
    return (f"Llama, {c.num_hidden_layers} layers, d_model {c.hidden_size}, {c.num_attention_heads} heads "
            f"({c.num_key_value_heads} key/value), MLP {c.intermediate_size}, {n:,} parameters")


def untrained_scores(teacher, student, args) -> dict:
    """Held-out accuracy, logit difference and teacher-text perplexity of a student before any training."""
    dataset = build_task(TaskSpec(TASK, seed=999), teacher.tokenizer, teacher.cfg.n_ctx)
    rows = TeacherText(teacher, Generation(n=args.gen_n, length=args.gen_len, seed=args.gen_seed)).rows(
        teacher.tokenizer, PPL_ROWS, PPL_LEN, held_out=True)
    scores = task_scores(student, dataset)
    return {"accuracy": scores["accuracy"], "logit_diff": scores["metric_mean"],
            "perplexity": perplexity(student, rows)}


def row(metrics: dict, cons: dict) -> dict:
    return {"accuracy": metrics["accuracy"], "logit_diff": metrics["metric_mean"],
            "perplexity": metrics["perplexity"], "mechanistic_r": cons["mechanistic_r"],
            "mechanistic_r_ci": cons["mechanistic_r_ci"], "r_out": cons["r_out"], "mean_r": cons["mean_r"],
            "proportional_map_mechanistic_r": metrics["causal_consistency"]["mechanistic_r"]}


def markdown(result: dict) -> str:
    t = result["teacher"]
    lines = ["# Distilling stories260K on teacher-generated text", "",
             f"Student: {result['student_shape']}; {result['steps']} distillation steps after "
             f"{result['pretrain_steps']} steps of next-token training on {result['gen_n']} teacher samples of "
             f"{result['gen_len']} tokens (seed {result['gen_seed']}); pronoun pairs of the `:train` split. "
             "Accuracy and logit difference on the 72 held-out prompts; perplexity on 64 held-out teacher samples "
             "(another seed); consistency with the causal head map fitted on training prompts.", "",
             "| student | seed | accuracy | logit diff | train-split accuracy | perplexity | mechanistic r [95% CI] | "
             "r_out | mean r |", "|---|---|---|---|---|---|---|---|---|",
             f"| teacher (stories260K) | – | {t['accuracy']:.3f} | {t['logit_diff']:+.3f} | "
             f"{result['teacher_train']['accuracy']:.3f} | {t['perplexity']:.2f} | "
             f"{_r(result['controls']['teacher'])} | {result['controls']['teacher']['r_out']:+.3f} | "
             f"{result['controls']['teacher']['mean_r']:+.3f} |"]
    u = result["controls"]["untrained"]
    lines.append(f"| untrained student | {result['seeds'][0]} | {u['accuracy']:.3f} | {u['logit_diff']:+.3f} | – | "
                 f"{u['perplexity']:.2f} | {_r(u)} | {_num(u['r_out'])} | {_num(u['mean_r'])} |")
    for run in result["runs"]:
        lines.append(f"| {run['method']} | {run['seed']} | {run['accuracy']:.3f} | {run['logit_diff']:+.3f} | "
                     f"{run['train_accuracy']:.3f} | "
                     f"{run['perplexity']:.2f} | {_r(run)} | {_num(run['r_out'])} | {_num(run['mean_r'])} |")
    if len(result["seeds"]) > 1:
        lines += ["", "Mean over the seeds each method finished:", "", "| method | seeds | accuracy | logit diff | train-split accuracy | perplexity | "
                  "mechanistic r | r_out |", "|---|---|---|---|---|---|---|---|"]
        for method, m in result["summary"].items():
            lines.append(f"| {method} | {', '.join(map(str, m['seeds']))} | {m['accuracy']:.3f} | {m['logit_diff']:+.3f} | {m['train_accuracy']:.3f} | "
                         f"{m['perplexity']:.2f} | "
                         f"{_num(m['mechanistic_r'])} | {_num(m['r_out'])} |")
    return "\n".join(lines) + "\n"


def _num(x) -> str:
    return "undef" if x is None else f"{x:+.3f}"


def _r(m: dict) -> str:
    ci = m.get("mechanistic_r_ci") or [None, None]
    return f"{_num(m['mechanistic_r'])} [{_num(ci[0])}, {_num(ci[1])}]"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--teacher", default=TEACHER)
    parser.add_argument("--methods", default=",".join(METHODS))
    parser.add_argument("--seeds", default="0")
    parser.add_argument("--steps", type=int, default=300)
    parser.add_argument("--pretrain-steps", type=int, default=300)
    parser.add_argument("--lr", type=float, default=3e-3)
    parser.add_argument("--mix-weight", type=float, default=1.0)
    parser.add_argument("--gen-n", type=int, default=512)
    parser.add_argument("--gen-len", type=int, default=128)
    parser.add_argument("--gen-seed", type=int, default=0)
    parser.add_argument("--runs", type=Path, default=Path("runs/tinystories_distill"))
    parser.add_argument("--finished-only", action="store_true",
                        help="report only the runs already finished (their row.json), training none")
    parser.add_argument("--out", type=Path, required=True, help="writes OUT.json and OUT.md")
    args = parser.parse_args()
    torch.set_num_threads(1)
    set_progress(False)
    seeds = [int(s) for s in args.seeds.split(",")]
    runs = []
    for seed in seeds:
        for method in args.methods.split(","):
            out = args.runs / f"{method}-{seed}"
            if (out / "row.json").is_file():  # a finished run of this script: its row as it was written
                runs.append(json.loads((out / "row.json").read_text()))
                continue
            if args.finished_only:
                continue
            t0 = time.perf_counter()
            metrics = run_distill(distill_config(method, seed, args), out, command=command(method, seed, args, out))
            cons = consistency(args.teacher, str(out / "student"))
            runs.append({"method": method, "seed": seed, "command": command(method, seed, args, out),
                         "wall_s": round(time.perf_counter() - t0, 1), **row(metrics, cons), "consistency": cons,
                         "teacher_text": metrics["teacher_text"], "checkpoints": metrics["checkpoints"],
                         "teacher_scores": metrics["teacher_scores"], "student_shape": student_shape(out)})
            write_json(out / "row.json", runs[-1])
    teacher = load_model(args.teacher)
    train = build_task(TaskSpec(f"{TASK}:train"), teacher.tokenizer, teacher.cfg.n_ctx)
    for run in runs:  # the pairs it was trained on: does the student fit them (and fail only on new names)?
        scores = task_scores(load_model(str(args.runs / f"{run['method']}-{run['seed']}" / "student")), train)
        run["train_accuracy"], run["train_logit_diff"] = scores["accuracy"], scores["metric_mean"]
    teacher_train = task_scores(teacher, train)
    untrained_dir = save_hf_model(build_llama_student_for(teacher, seed=seeds[0]), args.runs / f"untrained-{seeds[0]}")
    first = runs[0]
    scores = untrained_scores(teacher, load_model(str(untrained_dir)), args)
    controls = {"teacher": consistency(args.teacher, args.teacher),
                "untrained": {**scores, **consistency(args.teacher, str(untrained_dir))}}
    summary = {m: {k: statistics.mean(r[k] for r in runs if r["method"] == m and r[k] is not None)
                   for k in ("accuracy", "logit_diff", "perplexity", "mechanistic_r", "r_out", "train_accuracy")}
               | {"seeds": [r["seed"] for r in runs if r["method"] == m]}
               for m in args.methods.split(",")}
    result = {"rcid_tl_version": rcid_tl.__version__, "teacher": args.teacher, "task": TASK, "seeds": seeds,
              "steps": args.steps, "pretrain_steps": args.pretrain_steps, "gen_n": args.gen_n,
              "gen_len": args.gen_len, "gen_seed": args.gen_seed, "mix_weight": args.mix_weight,
              "student_shape": first["student_shape"], "teacher_scores": first["teacher_scores"],
              "teacher": {"accuracy": first["teacher_scores"]["accuracy"],
                          "logit_diff": first["teacher_scores"]["metric_mean"],
                          "perplexity": first["teacher_scores"]["perplexity"]},
              "teacher_train": {"accuracy": teacher_train["accuracy"], "logit_diff": teacher_train["metric_mean"]},
              "controls": controls, "runs": runs, "summary": summary}
    write_json(args.out.with_suffix(".json"), result)
    write_text(args.out.with_suffix(".md"), markdown(result))
    print(markdown(result))


if __name__ == "__main__":
    main()
