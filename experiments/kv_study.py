"""KV-distillation study on the chain-of-thought task (issue 13 item 8): students trained with CE alone, CE + KV (MSE,
cosine), + attention weighting, + CKA, + CODI, over seeds; ID/OOD accuracy and perplexity with bootstrap CIs over
seeds, differences to CE, and the loss-scale diagnosis. Writes figures/kv_study.{json,md,html} (--name).

    OMP_NUM_THREADS=1 python experiments/kv_study.py --teacher world-gpt2-cot --out runs/kv_study

Each run is an ordinary `rcid-tl distill-kv` run in OUT/<arm>-<seed>; finished runs are reused and an
interrupted one resumes, so re-running the command continues the study. Two processes may share the arms
(`--arms ... --runs-only` each), then the full command writes the report from their runs.
"""

import argparse
import json
import logging
import shlex
import sys
from dataclasses import asdict
from pathlib import Path

import torch

from rcid_tl import __version__
from rcid_tl.artifacts import write_figure, write_json, write_text
from rcid_tl.distill.config import OptimConfig
from rcid_tl.kv.config import KVConfig, KVRunConfig
from rcid_tl.kv.diagnose import diagnosis_table, run_diagnosis
from rcid_tl.kv.run import TEST_SPLITS, load_pair, run_kv_distill, teacher_scores
from rcid_tl.stats import bootstrap_diff_ci, bootstrap_mean_ci, welch_test

NO_AUX = {"cka_weight": 0.0}
ARMS: dict[str, dict] = {  # cumulative on the MSE KV loss after the MSE-vs-cosine pair, as in the KV recipe's upgrades
    "ce": {"kv_weight": 0.0, **NO_AUX},
    "kv-mse": {"kv_loss": "mse", **NO_AUX},
    "kv-cosine": {"kv_loss": "cosine", **NO_AUX},
    "kv-mse+attn": {"kv_loss": "mse", "attention_weighted": True, **NO_AUX},
    "kv-mse+attn+cka": {"kv_loss": "mse", "attention_weighted": True, "cka_weight": 0.05},
    "kv-mse+attn+cka+codi": {"kv_loss": "mse", "attention_weighted": True, "cka_weight": 0.05, "codi_weight": 0.5},
    # on plain MSE KV: the teacher's attention instead of the student's, and R-KV compression of the teacher's cache
    "kv-mse+teacher-attn": {"kv_loss": "mse", "attention_weighted": True, "use_teacher_attention": True, **NO_AUX},
    "kv-mse+rkv8": {"kv_loss": "mse", "compression": 8, **NO_AUX},
    "kv-mse+rkv4": {"kv_loss": "mse", "compression": 4, **NO_AUX},
}


def run_config(args, arm: str, seed: int) -> KVRunConfig:
    kv = KVConfig(**ARMS[arm], attention_warmup=args.steps // 4)
    log_every = max(1, args.steps // 30)  # 30 log records and 3 learning-curve points per run
    return KVRunConfig(teacher=args.teacher, kv=kv, optim=OptimConfig(steps=args.steps, lr=args.lr,
                                                                      warmup=max(1, args.steps // 20)),
                       seed=seed, n_train=args.n_train, batch_size=args.batch_size, eval_n=args.eval_n,
                       curve_n=16, eval_every=10 * log_every, checkpoint_every=10 * log_every, log_every=log_every)


def finished(args, arm: str, seed: int) -> dict | None:
    """The run's metrics.json, or None if it has not finished."""
    path = args.out / f"{arm}-{seed}" / "metrics.json"
    return json.loads(path.read_text()) if path.is_file() else None


def finished_or_run(args, arm: str, seed: int, command: str) -> dict:
    """The run's metrics.json if it finished before, else the run (started or resumed)."""
    return finished(args, arm, seed) or run_kv_distill(run_config(args, arm, seed), args.out / f"{arm}-{seed}",
                                                       command=command)


def cached(path: Path, compute) -> dict:
    """The JSON at `path`, computed and written first if absent (a report re-run reuses the teacher's scores and
    the diagnosis, which do not depend on the students)."""
    if not path.is_file():
        write_json(path, compute())
    return json.loads(path.read_text())


def run_values(metrics: dict[str, list[dict]]) -> dict:
    """values[arm][split][measure]: the per-seed numbers of every run (test splits, and validation where scored)."""
    return {arm: {split: {key: [m["scores"][split][key] for m in runs] for key in ("accuracy", "perplexity")}
                  for split in runs[0]["scores"]} for arm, runs in metrics.items()}


def summarise(values: dict) -> dict:
    """Per arm and split: accuracy and perplexity means with bootstrap CIs over seeds, and each arm's difference to
    CE (bootstrap CI of the difference of means, and Welch's t-test)."""
    out: dict = {}
    for arm, splits in values.items():
        out[arm] = {}
        for split, measures in splits.items():
            row = {}
            for key, v in measures.items():
                row[key] = {"values": v, "ci": asdict(bootstrap_mean_ci(v))}
                if "ce" in values:
                    ce = values["ce"][split][key]
                    row[key]["diff_vs_ce"] = asdict(bootstrap_diff_ci(v, ce))
                    row[key]["welch_vs_ce"] = welch_test(v, ce).to_dict()
                if arm.startswith("kv-mse+") and "kv-mse" in values:  # what the stacked addition changes
                    mse = values["kv-mse"][split][key]
                    row[key]["diff_vs_kv_mse"] = asdict(bootstrap_diff_ci(v, mse))
                    row[key]["welch_vs_kv_mse"] = welch_test(v, mse).to_dict()
            out[arm][split] = row
    return out


def _p(welch: dict) -> str:
    return "n/a" if welch["p"] != welch["p"] else f"{welch['p']:.2g}"


def markdown(summary: dict, teacher: dict, diagnosis: str, header: str) -> str:
    splits = [s.value for s in TEST_SPLITS]
    lines = [header, "", "| arm | " + " | ".join(f"{s} acc [95% CI] | {s} ppl" for s in splits) + " |",
             "|---|" + "---|---|" * len(splits)]
    for arm, per_split in summary.items():
        cells = []
        for row in (per_split[s] for s in splits):
            a, p = row["accuracy"]["ci"], row["perplexity"]["ci"]
            cells += [f"{a['estimate']:.3f} [{a['low']:.3f}, {a['high']:.3f}]",
                      f"{p['estimate']:.2f} [{p['low']:.2f}, {p['high']:.2f}]"]
        lines.append(f"| {arm} | " + " | ".join(cells) + " |")
    lines.append("| teacher | " + " | ".join(f"{s['accuracy']:.3f} | {s['perplexity']:.2f}" for s in teacher.values())
                 + " |")
    lines += ["", "Differences to CE (ID test split, mean over seeds, bootstrap 95% CI, Welch's t-test p; validation "
                  "accuracy where the runs scored it):", ""]
    for arm, per_split in summary.items():
        if arm != "ce" and "ce" in summary:
            a, q = per_split["id"]["accuracy"], per_split["id"]["perplexity"]
            d, e = a["diff_vs_ce"], q["diff_vs_ce"]
            val = per_split.get("validation", {}).get("accuracy")
            lines.append(f"- {arm}: accuracy {d['estimate']:+.3f} [{d['low']:+.3f}, {d['high']:+.3f}] "
                         f"(p = {_p(a['welch_vs_ce'])}), perplexity {e['estimate']:+.2f} [{e['low']:+.2f}, "
                         f"{e['high']:+.2f}] (p = {_p(q['welch_vs_ce'])})"
                         + (f"; vs kv-mse {a['diff_vs_kv_mse']['estimate']:+.3f} (p = {_p(a['welch_vs_kv_mse'])})"
                            if "diff_vs_kv_mse" in a else "")
                         + (f"; validation accuracy {val['ci']['estimate']:.3f}" if val else ""))
    return "\n".join(lines + ["", "Loss-scale diagnosis (rcid-tl diagnose-losses, default student, KV arm "
                                  "kv-mse+attn+cka+codi weights):", "", "```", diagnosis, "```", ""])


def figure(summary: dict):
    import plotly.graph_objects as go
    from plotly.subplots import make_subplots

    fig = make_subplots(rows=1, cols=2, subplot_titles=("accuracy", "perplexity (reasoning + answer tokens)"))
    for split in next(iter(summary.values())):
        for col, key in ((1, "accuracy"), (2, "perplexity")):
            cis = [summary[arm][split][key]["ci"] for arm in summary]
            fig.add_bar(x=list(summary), y=[c["estimate"] for c in cis], name=f"{split} {key}", row=1, col=col,
                        error_y={"type": "data", "symmetric": False, "array": [c["high"] - c["estimate"] for c in cis],
                                 "arrayminus": [c["estimate"] - c["low"] for c in cis]})
    fig.update_layout(barmode="group", title="KV distillation on chain-of-thought arithmetic (mean over seeds, "
                                             "bootstrap 95% CI)", height=560)
    return fig


def restat(path: Path) -> None:
    """Rewrite report `path` (.json and .md) with statistics recomputed from the per-seed values it stores: reports
    written before the Welch tests were added get them from the same code as new ones."""
    report = json.loads(path.read_text())
    values = {arm: {split: {key: row[key]["values"] for key in ("accuracy", "perplexity")}
                    for split, row in splits.items()} for arm, splits in report["summary"].items()}
    report["summary"] = summarise(values)
    report["restat_command"] = shlex.join(["python", "experiments/kv_study.py", "--restat", str(path)])
    write_json(path, report)
    header = path.with_suffix(".md").read_text().split("\n\n| arm |")[0]
    write_text(path.with_suffix(".md"), markdown(report["summary"], report["teacher"],
                                                 diagnosis_table(report["diagnosis"]), header) + "\n")


def main(argv: list[str]) -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--teacher", default="world-gpt2-cot")
    p.add_argument("--out", type=Path, default=Path("runs/kv_study"))
    p.add_argument("--figures", type=Path, default=Path("figures"))
    p.add_argument("--name", default="kv_study", help="the report's file name in --figures (.json, .md, .html)")
    p.add_argument("--seeds", type=int, nargs="+", default=[1, 2, 3])
    p.add_argument("--arms", nargs="+", default=list(ARMS), choices=list(ARMS))
    p.add_argument("--steps", type=int, default=300)
    p.add_argument("--lr", type=float, default=3e-3)
    p.add_argument("--batch-size", type=int, default=16)
    p.add_argument("--n-train", type=int, default=2048)
    p.add_argument("--eval-n", type=int, default=100)
    p.add_argument("--runs-only", action="store_true", help="train and score the runs, write no report (a process "
                                                             "that takes a share of the arms)")
    p.add_argument("--finished-only", action="store_true", help="report the runs finished so far, train nothing")
    p.add_argument("--restat", type=Path, help="recompute the statistics (CIs, Welch p) of an existing report JSON "
                                               "from its per-seed values and rewrite its .json and .md; train nothing")
    args = p.parse_args(argv)
    if args.restat:
        restat(args.restat)
        return
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(message)s")
    logging.getLogger("rcid_tl.kv.objective").setLevel(logging.WARNING)  # per-step lines stay in the JSONL logs
    torch.set_num_threads(1)
    command = shlex.join(["python", "experiments/kv_study.py", *argv])
    arms = [a for a in ARMS if a in args.arms]  # in ARMS order; several processes may split the arms, then one
    # process with every arm reuses their finished runs and writes the figures
    if not args.finished_only:  # seed-major, so an interrupted study has every arm at its first seeds
        for seed in args.seeds:
            for arm in arms:
                finished_or_run(args, arm, seed, command)
    metrics = {arm: [finished(args, arm, seed) for seed in args.seeds] for arm in arms}
    metrics = {arm: [m for m in runs if m is not None] for arm, runs in metrics.items()}
    metrics = {arm: runs for arm, runs in metrics.items() if runs}
    if args.runs_only:
        return
    diag_config = run_config(args, "kv-mse+attn+cka+codi", args.seeds[0])
    diagnosis = cached(args.out / "diagnosis" / "diagnosis.json", lambda: run_diagnosis(diag_config, 5,
                                                                                        args.out / "diagnosis"))
    teacher = cached(args.out / f"teacher_scores_{args.eval_n}.json",
                     lambda: teacher_scores(load_pair(diag_config)[0], args.eval_n))
    summary = summarise(run_values(metrics))
    seeds = {arm: len(runs) for arm, runs in metrics.items()}
    header = (f"# KV distillation study\n\nTeacher {args.teacher}; finished seeds per arm {seeds}; "
              f"{args.steps} steps of "
              f"batch {args.batch_size} on {args.n_train} CoT training problems; {args.eval_n} test problems per "
              f"split. `{command}` (rcid_tl {__version__}).")
    result = {"rcid_tl_version": __version__, "command": command, "arms": ARMS, "args": vars(args) | {
        "out": str(args.out), "figures": str(args.figures)}, "summary": summary, "teacher": teacher,
        "diagnosis": diagnosis, "runs": {arm: [m["config"] | {"data": m["data"]} for m in ms]
                                         for arm, ms in metrics.items()}}
    write_json(args.figures / f"{args.name}.json", result)
    write_text(args.figures / f"{args.name}.md", markdown(summary, teacher, diagnosis_table(diagnosis), header) + "\n")
    write_figure(args.figures / f"{args.name}.html", figure(summary))


if __name__ == "__main__":
    main(sys.argv[1:])
