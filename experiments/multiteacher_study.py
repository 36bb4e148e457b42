"""Multi-teacher KV distillation study on the chain-of-thought task (issue 14 item 8): one student shape, CE alone,
each teacher alone, two teachers with fixed weights or a learned router, flat vs structured projection, soft vs
hard time alignment; every arm at the same steps, examples and tokens (asserted) on one data split (hash asserted),
over seeds; ID/OOD accuracy and perplexity with bootstrap CIs and Welch tests against the fixed two-teacher arm,
and the learned router's weights. Writes figures/multiteacher_study.{json,md,html}.

    OMP_NUM_THREADS=1 python experiments/multiteacher_study.py --out runs/multiteacher_study

Each run is an ordinary multi-teacher run in OUT/<arm>-<seed>; finished runs are reused, an interrupted one resumes.
"""

import argparse
import json
import logging
import shlex
import sys
from dataclasses import replace
from pathlib import Path

import torch

from rcid_tl import __version__
from rcid_tl.artifacts import write_figure, write_json, write_text
from rcid_tl.distill.config import OptimConfig
from rcid_tl.kv.run import TEST_SPLITS
from rcid_tl.multiteacher.ablation import Arm, RunResult, run_ablation
from rcid_tl.kv.curves import read_log
from rcid_tl.multiteacher.controls import Compute, compare_arms, learning_curve_figure
from rcid_tl.multiteacher.fusion import RoutingLog
from rcid_tl.multiteacher.run import MultiTeacherRunConfig, run_multiteacher

BASELINE = "two-fixed"


def study_arms(gpt2: str, qwen2: str) -> list[Arm]:
    both = Arm(BASELINE, (gpt2, qwen2))
    return [
        replace(both, name="ce-only"),  # kv_weight 0: what the task data alone gives at this compute
        replace(both, name="single-gpt2", teachers=(gpt2,)),
        replace(both, name="single-qwen2", teachers=(qwen2,)),
        both,
        replace(both, name="two-learned", fusion="learned"),
        replace(both, name="two-flat", projection="flat"),
        replace(both, name="two-hard", soft_alignment=False),
    ]


def run_config(args, arm: Arm, seed: int) -> MultiTeacherRunConfig:
    log_every = max(1, args.steps // 20)
    return MultiTeacherRunConfig(
        arm, OptimConfig(steps=args.steps, lr=args.lr, warmup=max(1, args.steps // 20)), seed=seed,
        student_from=args.student_from or args.qwen2, kv_weight=0.0 if arm.name == "ce-only" else args.kv_weight,
        n_pool=args.n_pool,
        batch_size=args.batch_size, eval_n=args.eval_n, curve_n=16, eval_every=10 * log_every,
        checkpoint_every=10 * log_every, log_every=log_every)


def run_arm(args, command: str):
    def run(arm: Arm, seed: int) -> RunResult:
        out = args.out / f"{arm.name}-{seed}"
        path = out / "metrics.json"
        m = json.loads(path.read_text()) if path.is_file() else run_multiteacher(run_config(args, arm, seed), out,
                                                                                 command=command)
        logging.info("%s seed %d: ID accuracy %.3f", arm.name, seed, m["scores"]["id"]["accuracy"])
        curve = [{k: r[k] for k in ("step", "loss", "ce", "kv", "curve_accuracy") if k in r}
                 for r in read_log(out / "train_log.jsonl")]
        return RunResult(m["scores"]["id"]["accuracy"], Compute(**m["compute"]), m["split_hash"], m | {"curve": curve})

    return run


def summarise(result: dict) -> dict:
    """Per test split and measure: arm means with CIs and differences to the baseline (compare_arms)."""
    runs = result["runs"]
    out = {}
    for split in (s.value for s in TEST_SPLITS):
        for key in ("accuracy", "perplexity"):
            scores = {arm: [r["scores"][split][key] for r in per.values()] for arm, per in runs.items()}
            out[f"{split} {key}"] = compare_arms(scores, BASELINE)
    return out


def router_weights(result: dict) -> dict[str, list[dict]]:
    return {seed: r["routing"] for seed, r in result["runs"].get("two-learned", {}).items()}


def markdown(summary: dict, routers: dict, header: str) -> str:
    lines = [header, "", "| arm | " + " | ".join(f"{k} [95% CI]" for k in summary) + " |",
             "|---|" + "---|" * len(summary)]
    for arm in next(iter(summary.values())):
        cells = []
        for table in summary.values():
            m = table[arm]["mean"]
            cells.append(f"{m['estimate']:.3f} [{m['low']:.3f}, {m['high']:.3f}]")
        lines.append(f"| {arm} | " + " | ".join(cells) + " |")
    lines += ["", f"Against {BASELINE} (difference of means, bootstrap 95% CI, Welch p):", ""]
    for measure in ("id accuracy", "id perplexity"):
        for arm, row in summary[measure].items():
            if "vs_baseline" in row:
                d, w = row["vs_baseline"]["diff"], row["vs_baseline"]["welch"]
                lines.append(f"- {measure}, {arm}: {d['estimate']:+.3f} [{d['low']:+.3f}, {d['high']:+.3f}], "
                             f"p = {w['p']:.3g}")
    lines += ["", "Learned router, mean weight per teacher at the last logged step:", ""]
    for seed, rows in routers.items():
        last = rows[-1]
        lines.append(f"- seed {seed}: " + ", ".join(f"{k[2:]} {v:.3f}" for k, v in last.items() if k != "step"))
    return "\n".join(lines + [""])


def figure(summary: dict, routers: dict, teachers: list[str]):
    from plotly.subplots import make_subplots

    fig = make_subplots(rows=1, cols=2, subplot_titles=("ID accuracy (mean over seeds, 95% CI)",
                                                        "learned router: weight per teacher by step"))
    table = summary["id accuracy"]
    cis = [table[arm]["mean"] for arm in table]
    fig.add_bar(x=list(table), y=[c["estimate"] for c in cis], name="ID accuracy", row=1, col=1,
                error_y={"type": "data", "symmetric": False, "array": [c["high"] - c["estimate"] for c in cis],
                         "arrayminus": [c["estimate"] - c["low"] for c in cis]})
    for seed, rows in routers.items():
        log = RoutingLog(teachers, rows)
        for trace in log.figure("").data:
            fig.add_scatter(x=trace.x, y=trace.y, mode="lines", name=f"{trace.name}, seed {seed}", row=1, col=2)
    fig.update_yaxes(range=[0, 1], row=1, col=2)
    fig.update_layout(title="Multi-teacher KV distillation on chain-of-thought arithmetic", height=560)
    return fig


def main(argv: list[str]) -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--gpt2", default="world-gpt2-cot", help="MHA teacher")
    p.add_argument("--qwen2", default="world-qwen2-cot", help="GQA teacher")
    p.add_argument("--student-from", help="the model whose default student shape and tokenizer every arm's student "
                                          "takes (default: the GQA teacher)")
    p.add_argument("--out", type=Path, default=Path("runs/multiteacher_study"))
    p.add_argument("--figures", type=Path, default=Path("figures"))
    p.add_argument("--seeds", type=int, nargs="+", default=[1, 2, 3])
    p.add_argument("--arms", nargs="+", help="run only these arms (several processes may split them; one process "
                                             "with every arm then reuses their runs and writes the figures)")
    p.add_argument("--steps", type=int, default=120)
    p.add_argument("--lr", type=float, default=3e-3)
    p.add_argument("--kv-weight", type=float, default=1.0)
    p.add_argument("--batch-size", type=int, default=16)
    p.add_argument("--n-pool", type=int, default=1280)
    p.add_argument("--eval-n", type=int, default=100)
    args = p.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(message)s")
    torch.set_num_threads(1)
    command = shlex.join(["python", "experiments/multiteacher_study.py", *argv])
    arms = [a for a in study_arms(args.gpt2, args.qwen2) if not args.arms or a.name in args.arms]
    result = run_ablation(arms, args.seeds, run_arm(args, command), baseline=BASELINE if not args.arms else
                          arms[0].name)
    if args.arms:
        return
    summary = summarise(result)
    routers = router_weights(result)
    header = (f"# Multi-teacher KV distillation study\n\nTeachers {args.gpt2} (MHA) and {args.qwen2} (GQA); student: "
              f"{args.student_from or args.qwen2}'s default student shape; compressed student reasoning; "
              f"{len(args.seeds)} seeds; "
              f"{args.steps} steps of batch {args.batch_size} (tokens per seed, equal across arms: "
              f"{result['compute']}); data split {result['split_hash'][:12]}; {args.eval_n} test problems per split. "
              f"`{command}` (rcid_tl {__version__}).")
    write_json(args.figures / "multiteacher_study.json",
               {"rcid_tl_version": __version__, "command": command, "args": vars(args) | {
                   "out": str(args.out), "figures": str(args.figures)}, "summary": summary, "router": routers,
                "ablation": {k: v for k, v in result.items() if k != "runs"},
                "runs": {arm: {seed: {k: r[k] for k in ("scores", "routing", "curve", "compute", "split_hash",
                                                         "config", "layer_maps", "wall_s")} for seed, r in per.items()}
                         for arm, per in result["runs"].items()}})
    write_text(args.figures / "multiteacher_study.md", markdown(summary, routers, header))
    write_figure(args.figures / "multiteacher_study.html", figure(summary, routers, [args.gpt2, args.qwen2]))
    first = str(args.seeds[0])
    curves = {arm: per[first]["curve"] for arm, per in result["runs"].items()}
    for key in ("ce", "curve_accuracy"):
        write_figure(args.figures / f"multiteacher_study_{key}", learning_curve_figure(
            curves, key, f"learning curves ({key}), seed {first}"))


if __name__ == "__main__":
    main(sys.argv[1:])
