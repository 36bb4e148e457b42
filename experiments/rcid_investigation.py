"""Why RCID stays at chance (issue 12 item 6): RCID variants on the distillation study's budget (world-gpt2 → student,
IOI, 300 pre-training + 1,000 distillation steps of 32, lr 3e-3), each a run folder; then one table and figure of
accuracy and mechanistic r with 95% CIs, regenerated from the saved runs.

    python experiments/rcid_investigation.py --run refit100 --seed 123        # one run (one thread), resumable
    python experiments/rcid_investigation.py --consistency                    # mechanistic r of every finished run
    python experiments/rcid_investigation.py                                  # table + figure from the saved runs
                                                                              # (and the rows already in figures/)

Baselines are the study's own runs (runs/distill_study): RCID at λ = 1, StandardKD (= λ 0) and FitNets. The
diagnosis (experiments/rcid_diagnosis.py) is folded into the table when its JSON exists.
"""

import argparse
import json
import os
import subprocess
import sys
from dataclasses import replace
from pathlib import Path

from rcid_tl.artifacts import write_figure, write_json, write_text

STUDY, OUT = Path("runs/distill_study"), Path("runs/rcid_investigation")
RESULTS = Path("figures/rcid_investigation")
SEEDS = (42, 123, 456)
# name → (what it changes, DistillConfig overrides); every other setting is the study's RCID run
VARIANTS = {
    "lam0.1": ("λ = 0.1", {"lam": 0.1}),
    "lam0.01": ("λ = 0.01", {"lam": 0.01}),
    "saturated": ("saturated checkpoints kept (top 8 by imprint norm, as before saturation-aware selection)",
                  {"max_saturation": None}),
    "per-layer": ("one checkpoint per student layer", {"one_per_student_layer": True}),
    "refit100": ("W* refitted every 100 steps", {"refit_every": 100}),
    "pretrain1000": ("1,000 pre-training steps instead of 300", {"pretrain_steps": 1000}),
    "kd-pretrain1000": ("StandardKD with 1,000 pre-training steps: pretrain1000's control without the RCID term",
                        {"pretrain_steps": 1000, "method": "standard-kd"}),
    "width128": ("student at the teacher's width (2 × 128, 4 heads): W* square", {"student_shape": {
        "d_model": 128, "n_heads": 4}}),
}
BASELINES = {"rcid": "RCID, λ = 1 (the study)", "standard-kd": "StandardKD (λ = 0)", "fitnets": "FitNets"}
REPORT_ARGS = ["--task", "ioi", "--n", "200", "--seed", "999", "--top-k", "8", "--max-saturation", "inf"]


def variant_config(name: str, seed: int):
    """The study's RCID config for `seed` with the variant's overrides."""
    from rcid_tl.distill.config import DistillConfig, OptimConfig
    from rcid_tl.distill.methods import Method
    from rcid_tl.tasks.registry import TaskSpec

    overrides = dict(VARIANTS[name][1])
    pre = overrides.pop("pretrain_steps", 300)
    base = DistillConfig(
        teacher="world-gpt2", method=Method.RCID, task=TaskSpec("ioi", n=4096, seed=seed, corruption="s2-io"),
        optim=OptimConfig(steps=1000, lr=3e-3, warmup=50), seed=seed, lam=1.0, top_k=8, eval_n=200, log_every=10,
        pretrain=OptimConfig(steps=pre, lr=3e-3, warmup=max(1, pre // 20)))
    return replace(base, **overrides)


def run_one(name: str, seed: int) -> None:
    import torch

    from rcid_tl.distill.run import run_distill

    torch.set_num_threads(1)
    run_distill(variant_config(name, seed), OUT / f"{name}-{seed}",
                command=f"python experiments/rcid_investigation.py --run {name} --seed {seed}")


def run_dirs() -> list[tuple[str, int, Path]]:
    """(variant, seed, folder) of every finished run, baselines first."""
    found = [(b, s, STUDY / f"{b}-{s}") for b in BASELINES for s in SEEDS]
    found += [(v, s, OUT / f"{v}-{s}") for v in VARIANTS for s in SEEDS]
    return [(v, s, d) for v, s, d in found if (d / "metrics.json").exists()]


def consistency(folder: Path) -> Path:
    """`rcid-tl consistency` at the top-8 checkpoints (saturated kept, mechanistic r over the unsaturated ones), as
    experiments/distill_study.py --consistency-report measures the study's students."""
    out = folder / "consistency-top8"
    if not (out / "consistency.json").exists():
        env = {**os.environ, "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1"}
        subprocess.run([str(Path(sys.executable).parent / "rcid-tl"), "consistency", "--teacher", "world-gpt2",
                        "--student", str(folder / "student"), *REPORT_ARGS, "--out", str(out)], check=True, env=env,
                       stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    return out / "consistency.json"


def imprints(folder: Path) -> dict:
    """The student's mean ‖h_clean − h_corrupt‖ per layer at `s2` and `end` on 128 held-out IOI examples (seed 999),
    measured once and saved beside the run: a student whose `end` imprint is ≈ 0 cannot tell IO from S there."""
    path = folder / "imprints.json"
    if not path.exists():
        from rcid_tl.distill.diagnose import imprint_profile
        from rcid_tl.models.loading import load_model
        from rcid_tl.tasks.registry import TaskSpec, build_task

        student = load_model(str(folder / "student"))
        data = build_task(TaskSpec("ioi", n=128, seed=999, corruption="s2-io"), student.tokenizer, student.cfg.n_ctx)
        batch = data.batch(list(range(len(data))))
        write_json(path, {f"L{layer}": imprint_profile(student, batch, layer, ["s2", "end"])
                          for layer in range(student.cfg.n_layers)})
    return json.loads(path.read_text())


def row(variant: str, seed: int, folder: Path) -> dict:
    from rcid_tl.stats import bootstrap_mean_ci

    m = json.loads((folder / "metrics.json").read_text())
    entry = {"variant": variant, "seed": seed, "accuracy": m["accuracy"], "logit_diff": m["metric_mean"],
             "n_checkpoints_trained": len(m["checkpoints"]),
             "trained_on": sorted({f"L{c['layer']}:{c['position']}" for c in m["checkpoints"]})
             if m["method"] in ("rcid", "informed-fitnets") else [],  # the others record them for evaluation only
             "final_kl": None, "final_term": None}
    log = [json.loads(x) for x in (folder / "train_log.jsonl").read_text().splitlines()]
    last = [r for r in log if r["phase"] == "distill"][-1]
    entry["final_kl"], entry["final_term"] = last.get("kl"), last.get("term")
    profile = imprints(folder)
    entry["end_imprint"] = profile[f"L{len(profile) - 1}"]["end"]  # the last layer's, which the unembedding reads
    path = folder / "consistency-top8" / "consistency.json"
    if path.exists():
        c = json.loads(path.read_text())
        correct = [float(x > 0) for x in c["student_metric_clean"]]  # logit difference > 0 on the same 200 examples
        acc = bootstrap_mean_ci(correct, seed=seed)
        entry |= {"accuracy_ci": [acc.low, acc.high], "accuracy_check": acc.estimate,
                  "mechanistic_r": c["mechanistic_r"], "mechanistic_r_ci": c["mechanistic_r_ci"],
                  "n_mechanistic": c["n_checkpoints_mechanistic"], "r_out": c["r_out"]}
    return entry


def summarise(rows: list[dict]) -> list[dict]:
    """Per variant: mean over seeds with a bootstrap CI (nan bounds with one seed)."""
    from rcid_tl.stats import bootstrap_mean_ci

    out = []
    for variant in dict.fromkeys(r["variant"] for r in rows):
        mine = [r for r in rows if r["variant"] == variant]
        entry = {"variant": variant, "seeds": [r["seed"] for r in mine]}
        for key in ("accuracy", "mechanistic_r"):
            entry[key] = bootstrap_mean_ci([r.get(key) for r in mine if r.get(key) is not None]).to_dict()
        out.append(entry)
    return out


def describe(variant: str) -> str:
    return BASELINES.get(variant) or VARIANTS[variant][0]


def markdown(rows: list[dict], summary: list[dict], diagnosis: dict | None) -> str:
    f = lambda x, p=3: "–" if x is None or x != x else f"{x:.{p}f}"  # noqa: E731
    ci = lambda pair: "" if not pair else f" [{f(pair[0])}, {f(pair[1])}]"  # noqa: E731
    lines = ["| variant | what changes | seed | accuracy [95% CI] | logit diff | final KL | final term | "
             "mechanistic r [95% CI] (k) | student ‖d‖ at end | checkpoints trained on |", "|---|---|---|---|---|---|---|---|---|---|"]
    lines += [f"| {r['variant']} | {describe(r['variant'])} | {r['seed']} | {f(r['accuracy'])}{ci(r.get('accuracy_ci'))}"
              f" | {f(r['logit_diff'], 2)} | {f(r['final_kl'])} | {f(r['final_term'])} | "
              f"{f(r.get('mechanistic_r'))}{ci(r.get('mechanistic_r_ci'))} ({r.get('n_mechanistic', '–')}) | "
              f"{f(r['end_imprint'], 2)} | {', '.join(r['trained_on']) or '–'} |" for r in rows]
    lines += ["", "| variant | seeds | accuracy, mean [95% CI over seeds] | mechanistic r, mean [95% CI over seeds] |",
              "|---|---|---|---|"]
    lines += [f"| {s['variant']} | {', '.join(map(str, s['seeds']))} | {f(s['accuracy']['estimate'])}"
              f"{ci([s['accuracy']['low'], s['accuracy']['high']])} | {f(s['mechanistic_r']['estimate'])}"
              f"{ci([s['mechanistic_r']['low'], s['mechanistic_r']['high']])} |" for s in summary]
    lines += ["", "Per run: accuracy with a bootstrap CI over the 200 held-out examples; mechanistic r = partial r "
              "(controlling for both models' output differences) over the unsaturated of the top-8 teacher "
              "checkpoints, CI by bootstrap. Over seeds: bootstrap CI of the mean (none with one seed). Student ‖d‖ at end: "
              "mean ‖h_clean − h_corrupt‖ at the student's last layer at `end` (128 held-out examples); ≈ 0 means "
              "the answer position never sees which name was repeated."]
    if diagnosis:
        lines += ["", "## Diagnosis (seed " + str(diagnosis["seed"]) + ")", "",
                  "| student | KL | RCID term | ‖∇KL‖ | ‖∇term‖ | cos(∇KL, ∇term) | student ‖d‖ at s2, L0/L1 | "
                  "at end, L0/L1 |", "|---|---|---|---|---|---|---|---|"]
        for s in diagnosis["students"]:
            imp = s["student_imprints"]
            lines.append(f"| {s['student']} | {f(s['kl'])} | {f(s['term'])} | {f(s['grad_kl_norm'])} | "
                         f"{f(s['grad_term_norm'])} | {f(s['grad_cosine'])} | {f(imp['L0']['s2'], 2)}/"
                         f"{f(imp['L1']['s2'], 2)} | {f(imp['L0']['end'], 2)}/{f(imp['L1']['end'], 2)} |")
        lines += ["", "| checkpoint (teacher → student layer) | share of teacher d in span(W*) | floor of the term | "
                  "cos(d, swapped token's embedding): teacher / student |", "|---|---|---|---|"]
        lines += [f"| L{c['teacher_layer']}:{c['position']} → L{c['student_layer']} | {f(c['fraction'])} | "
                  f"{f(c['floor'])} | {f(c['token_share_teacher'])} / {f(c['token_share_student'])} |"
                  for c in diagnosis["checkpoints"]]
    return "\n".join(lines) + "\n"


def figure(rows: list[dict]):
    import plotly.graph_objects as go
    from plotly.subplots import make_subplots

    fig = make_subplots(rows=1, cols=2, subplot_titles=["accuracy (95% CI)", "mechanistic r (95% CI)"])
    for col, (key, ci_key) in enumerate((("accuracy", "accuracy_ci"), ("mechanistic_r", "mechanistic_r_ci")), 1):
        have = [r for r in rows if r.get(key) is not None]
        fig.add_trace(go.Scatter(
            x=[r["variant"] for r in have], y=[r[key] for r in have], mode="markers", showlegend=False,
            text=[f"seed {r['seed']}" for r in have], marker={"size": 9},
            error_y={"type": "data", "symmetric": False,
                     "array": [(r.get(ci_key) or [0, r[key]])[1] - r[key] for r in have],
                     "arrayminus": [r[key] - (r.get(ci_key) or [r[key], 0])[0] for r in have]}), row=1, col=col)
    fig.add_hline(y=0.5, line_dash="dot", line_color="grey", row=1, col=1)
    fig.update_layout(title="RCID variants on world-gpt2 → student, IOI (one point per seed; dotted: chance)",
                      height=480, autosize=True)
    return fig


def collect() -> None:
    """Table and figure from every run: the run folders here, plus the rows already saved in RESULTS for runs whose
    folders are elsewhere (runs/ is not committed; a run measured on another machine keeps its row)."""
    saved_path = RESULTS.with_suffix(".json")
    saved = json.loads(saved_path.read_text()) if saved_path.exists() else {"runs": [], "configs": {}}
    by_run = {(r["variant"], r["seed"]): r for r in saved["runs"]}
    configs = dict(saved["configs"])
    for variant, seed, folder in run_dirs():
        by_run[variant, seed] = row(variant, seed, folder)
        configs[f"{variant}-{seed}"] = json.loads((folder / "metrics.json").read_text())["config"]
    order = list(BASELINES) + list(VARIANTS)
    rows = sorted(by_run.values(), key=lambda r: (order.index(r["variant"]), r["seed"]))
    summary = summarise(rows)
    diag_path = OUT / "diagnosis.json"
    diagnosis = json.loads(diag_path.read_text()) if diag_path.exists() else saved.get("diagnosis")
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    write_json(saved_path, {
        "runs": rows, "summary": summary, "variants": {k: v[0] for k, v in VARIANTS.items()}, "configs": configs,
        "consistency_args": REPORT_ARGS, "diagnosis": diagnosis})
    write_text(RESULTS.with_suffix(".md"), markdown(rows, summary, diagnosis))
    write_figure(RESULTS, figure(rows))
    print(markdown(rows, summary, diagnosis))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--run", choices=sorted(VARIANTS), help="train one variant")
    parser.add_argument("--seed", type=int, default=123)
    parser.add_argument("--consistency", action="store_true", help="measure every finished run (one at a time)")
    args = parser.parse_args()
    if args.run:
        run_one(args.run, args.seed)
    elif args.consistency:
        for _, _, folder in run_dirs():
            consistency(folder)
    else:
        collect()


if __name__ == "__main__":
    main()
