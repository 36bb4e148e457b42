"""The method comparison on the embedded teacher: the four methods × seeds 42, 123, 456, each a `rcid-tl distill`
run, then one table (JSON, CSV, Markdown) and a figure of accuracy, logit difference, perplexity and causal
consistency.

    python experiments/distill_study.py --out runs/distill_study --results figures/distill_study --jobs 2
    python experiments/distill_study.py --out runs/distill_study --results figures/distill_study --collect-only
    python experiments/distill_study.py --results figures/distill_study --replot   # the figure only, from the JSON
    python experiments/distill_study.py --out runs/distill_study --results figures/distill_study --consistency-report

The consistency report re-measures every student at the old default checkpoints (the top 8 by imprint norm,
saturated ones included) and tabulates mean r, r_out and mechanistic r side by side (RESULTS_consistency.md/.json).

Each run is a `run_distill` in a process of its own on one thread (`--jobs` at a time); a finished run (metrics.json
present) is skipped and an interrupted one resumes from its own training state, so re-running the command completes a
study.
"""

import argparse
import dataclasses
import json
import statistics
import subprocess
import sys
from pathlib import Path

from rcid_tl.artifacts import write_csv, write_json, write_text
from rcid_tl.study.train import FULL, train_students

METHODS = ("standard-kd", "fitnets", "informed-fitnets", "rcid")
SEEDS = (42, 123, 456)


def collect(out: Path) -> list[dict]:
    rows = []
    for method in METHODS:
        for seed in SEEDS:
            path = out / f"{method}-{seed}" / "metrics.json"
            if not path.exists():
                continue
            m = json.loads(path.read_text())
            cc = m["causal_consistency"]
            rows.append({
                "method": method, "seed": seed, "accuracy": m["accuracy"], "logit_diff": m["metric_mean"],
                "perplexity": m["perplexity"], "mean_r": cc["mean_r"], "ci_low": cc["mean_r_ci"][0],
                "ci_high": cc["mean_r_ci"][1], "mechanistic_r": cc.get("mechanistic_r"),
                "mech_ci_low": (cc.get("mechanistic_r_ci") or [None, None])[0],
                "mech_ci_high": (cc.get("mechanistic_r_ci") or [None, None])[1],
                "n_mechanistic": cc.get("n_checkpoints_mechanistic"), "r_out": cc.get("r_out"), "wall_s": m["wall_s"],
                "r_per_checkpoint": {f"L{c['teacher_layer']}:{c['position']}": c["pearson_r"]
                                     for c in cc["checkpoints"]},
                "teacher": m["teacher_scores"],
            })
    return rows


REPORT_ARGS = ["--task", "ioi", "--n", "200", "--seed", "999", "--top-k", "8", "--max-saturation", "inf"]


def consistency_report(args: argparse.Namespace) -> list[dict]:
    """`rcid-tl consistency` for every finished student at the top-8 checkpoints, saturated ones kept."""
    script = Path(sys.executable).parent / "rcid-tl"
    rows = []
    for method in METHODS:
        for seed in SEEDS:
            run = args.out / f"{method}-{seed}"
            if not (run / "metrics.json").exists():
                continue
            out = run / "consistency-top8"
            if not (out / "consistency.json").exists():
                subprocess.run([str(script), "consistency", "--teacher", args.teacher, "--student",
                                str(run / "student"), *REPORT_ARGS, "--out", str(out)], check=True,
                               stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
            c = json.loads((out / "consistency.json").read_text())
            rows.append({"method": method, "seed": seed, "mean_r": c["mean_r"], "mean_r_ci": c["mean_r_ci"],
                         "r_out": c["r_out"], "mechanistic_r": c["mechanistic_r"],
                         "mechanistic_r_ci": c["mechanistic_r_ci"],
                         "n_checkpoints": len(c["checkpoints"]), "n_saturated": sum(k["saturated"] for k in c["checkpoints"]),
                         "n_mechanistic": c["n_checkpoints_mechanistic"]})
    return rows


def report_markdown(rows: list[dict]) -> str:
    f = lambda x: "–" if x is None else f"{x:+.3f}"  # noqa: E731
    ci = lambda pair: f"[{f(pair[0])}, {f(pair[1])}]"  # noqa: E731
    lines = ["| method | seed | mean r [95% CI] (8 checkpoints) | r_out | saturated | mechanistic r [95% CI] (k) |",
             "|---|---|---|---|---|---|"]
    lines += [f"| {r['method']} | {r['seed']} | {f(r['mean_r'])} {ci(r['mean_r_ci'])} | {f(r['r_out'])} | "
              f"{r['n_saturated']} of {r['n_checkpoints']} | {f(r['mechanistic_r'])} {ci(r['mechanistic_r_ci'])} "
              f"({r['n_mechanistic']}) |" for r in rows]
    return "\n".join(lines) + "\n"


def summarise(rows: list[dict]) -> list[dict]:
    summary = []
    for method in METHODS:
        mine = [r for r in rows if r["method"] == method]
        if not mine:
            continue
        entry = {"method": method, "n_seeds": len(mine)}
        for key in ("accuracy", "logit_diff", "perplexity", "mean_r", "mechanistic_r", "r_out"):
            values = [r[key] for r in mine if r[key] is not None]
            entry[key] = statistics.fmean(values) if values else None
            entry[f"{key}_sd"] = statistics.stdev(values) if len(values) > 1 else 0.0
        summary.append(entry)
    return summary


def markdown(rows: list[dict], summary: list[dict]) -> str:
    f = lambda x, p=3: "–" if x is None else f"{x:.{p}f}"  # noqa: E731
    lines = ["| method | seed | accuracy | logit diff | perplexity | mean r [95% CI] | mechanistic r [95% CI] (k) "
             "| r_out |", "|---|---|---|---|---|---|---|---|"]
    lines += [f"| {r['method']} | {r['seed']} | {f(r['accuracy'])} | {f(r['logit_diff'], 2)} | {f(r['perplexity'], 1)} "
              f"| {f(r['mean_r'])} [{f(r['ci_low'])}, {f(r['ci_high'])}] | {f(r.get('mechanistic_r'))} "
              f"[{f(r.get('mech_ci_low'))}, {f(r.get('mech_ci_high'))}] ({r.get('n_mechanistic', '–')}) "
              f"| {f(r.get('r_out'))} |" for r in rows]
    lines += ["", "| method | accuracy | logit diff | perplexity | mean r | mechanistic r | r_out |",
              "|---|---|---|---|---|---|---|"]
    lines += [f"| {s['method']} | {f(s['accuracy'])} ± {f(s['accuracy_sd'])} | {f(s['logit_diff'], 2)} ± "
              f"{f(s['logit_diff_sd'], 2)} | {f(s['perplexity'], 1)} ± {f(s['perplexity_sd'], 1)} | {f(s['mean_r'])} ± "
              f"{f(s['mean_r_sd'])} | {f(s.get('mechanistic_r'))} ± {f(s.get('mechanistic_r_sd'))} | "
              f"{f(s.get('r_out'))} ± {f(s.get('r_out_sd'))} |" for s in summary]
    lines += ["", "mean r: Pearson(Δ_T, Δ_S) averaged over checkpoints; mechanistic r: the partial r controlling for "
              "both models' output differences, averaged over the k unsaturated checkpoints; r_out: the correlation "
              "of the two models' output differences alone (the behavioural baseline)."]
    if rows:
        t = rows[0]["teacher"]
        lines += ["", f"Teacher on the same examples: accuracy {f(t['accuracy'])}, "
                      f"logit diff {f(t['metric_mean'], 2)}, "
                      f"perplexity {f(t['perplexity'], 2)}."]
    return "\n".join(lines) + "\n"


# one colour per method in every panel (plotly would restart its colour cycle in each panel)
COLOURS = {"standard-kd": "#1f77b4", "fitnets": "#ff7f0e", "informed-fitnets": "#2ca02c", "rcid": "#d62728"}
PANELS = (("accuracy", "accuracy", "accuracy"), ("logit_diff", "logit difference", "metric_mean"),
          ("perplexity", "perplexity (log)", "perplexity"), ("mean_r", "mean r", None),
          ("mechanistic_r", "mechanistic r", None))
INTERVALS = {"mean_r": ("ci_low", "ci_high"), "mechanistic_r": ("mech_ci_low", "mech_ci_high")}


def figure(rows: list[dict], run_args: list[str]):
    """One panel per measure, one point per seed with its method's colour, the teacher as a dashed line."""
    import plotly.graph_objects as go
    from plotly.subplots import make_subplots

    fig = make_subplots(rows=1, cols=len(PANELS), subplot_titles=[t for _, t, _ in PANELS], horizontal_spacing=0.07)
    for col, (key, _, teacher_key) in enumerate(PANELS, start=1):
        for method in METHODS:
            mine = [r for r in rows if r["method"] == method and r.get(key) is not None]
            error = None
            if key in INTERVALS:
                low, high = INTERVALS[key]
                error = dict(type="data", symmetric=False, array=[(r[high] or r[key]) - r[key] for r in mine],
                             arrayminus=[r[key] - (r[low] or r[key]) for r in mine])
            fig.add_trace(go.Scatter(x=[method] * len(mine), y=[r[key] for r in mine], mode="markers", error_y=error,
                                     marker={"color": COLOURS[method], "size": 9}, legendgroup=method,
                                     text=[f"seed {r['seed']}" for r in mine], name=method, showlegend=col == 1),
                          row=1, col=col)
        if teacher_key and rows:
            fig.add_hline(y=rows[0]["teacher"][teacher_key], line_dash="dash", line_color="grey", row=1, col=col)
        fig.update_xaxes(showticklabels=False, row=1, col=col)  # the legend names the methods
    fig.update_yaxes(type="log", row=1, col=3)
    option = dict(zip(run_args[::2], run_args[1::2]))
    fig.update_layout(
        title=(f"world-gpt2 → 2×64 student on IOI (s2-io corruption), {len({r['seed'] for r in rows})} seeds per "
               f"method<br><sub>evaluated on n = {option.get('--eval-n', '?')} held-out examples after "
               f"{option.get('--steps', '?')} steps; metric: logit difference;<br>mean r over checkpoints, mechanistic r = partial r over unsaturated ones; error bars: 95% bootstrap CIs; "
               "dashed: the teacher</sub>"),
        height=480, autosize=True, margin={"t": 130},
        legend={"orientation": "h", "yanchor": "top", "y": -0.08, "xanchor": "center", "x": 0.5},
    )
    return fig


def replot(results: Path) -> list[Path]:
    """The figure again from a saved study table (no training)."""
    from rcid_tl.artifacts import write_figure

    saved = json.loads(results.with_suffix(".json").read_text())
    return write_figure(results, figure(saved["runs"], saved["run_args"]))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--teacher", default="world-gpt2")
    parser.add_argument("--out", type=Path, default=Path("runs/distill_study"), help="one directory per run")
    parser.add_argument("--results", type=Path, default=Path("figures/distill_study"), help="table and figure prefix")
    parser.add_argument("--jobs", type=int, default=2, help="runs at a time (each on one thread)")
    parser.add_argument("--collect-only", action="store_true")
    parser.add_argument("--replot", action="store_true", help="only redraw the figure from RESULTS.json")
    parser.add_argument("--consistency-report", action="store_true",
                        help="only re-measure the finished students at the top-8 checkpoints (saturated kept)")
    parser.add_argument("--mix-weight", type=float, default=FULL.mix_weight,
                        help="weight of a KL on general text mixed into every step (0: off)")
    args = parser.parse_args()
    recipe = dataclasses.replace(FULL, mix_weight=args.mix_weight)  # see rcid_tl.study.train
    if args.replot:
        print(", ".join(map(str, replot(args.results))))
        return
    if args.consistency_report:
        rows = consistency_report(args)
        prefix = args.results.with_name(args.results.name + "_consistency")
        write_json(prefix.with_suffix(".json"), {"runs": rows, "consistency_args": REPORT_ARGS})
        write_text(prefix.with_suffix(".md"), report_markdown(rows))
        print(report_markdown(rows))
        return
    if not args.collect_only:
        train_students(METHODS, SEEDS, args.teacher, args.out, recipe, jobs=args.jobs,
                       progress=lambda run: print(f"{run.label}: done", flush=True))
    rows = collect(args.out)
    summary = summarise(rows)
    table = markdown(rows, summary)
    args.results.parent.mkdir(parents=True, exist_ok=True)
    write_json(args.results.with_suffix(".json"), {"runs": rows, "summary": summary, "run_args": list(recipe.args())})
    header = ["method", "seed", "accuracy", "logit_diff", "perplexity", "mean_r", "ci_low", "ci_high", "mechanistic_r",
              "mech_ci_low", "mech_ci_high", "n_mechanistic", "r_out", "wall_s"]
    write_csv(args.results.with_suffix(".csv"), header, [[r[k] for k in header] for r in rows])
    write_text(args.results.with_suffix(".md"), table)
    replot(args.results)
    print(table)


if __name__ == "__main__":
    main()
