"""Function-vector study (Todd et al. 2024), held out: the CIE sweep on each relation's selection trials, function
vectors for several k, the (k, layer, α) with the best 0-shot accuracy on those trials, and that one choice scored on
the disjoint evaluation trials beside clean and shuffled-label ICL, 0-shot and a random vector of the FV's norm, with
bootstrap CIs over trials. Writes figures/fv_study_<name>.json (and, with --combine, figures/fv_study.json and a bar
chart figures/fv_study.html from every per-model file).

    python experiments/fv_study.py --name world-gpt2 --model world-gpt2
    python experiments/fv_study.py --name stories260K --model ../shared/data/checkpoints/stories260K/hf \
        --relations ../shared/data/function_vectors/dataset_files/abstractive \
        --qids antonym,synonym,lowercase_first_letter,present-past --n-trials 32 --skip-blank-targets
    python experiments/fv_study.py --combine world-gpt2,world-qwen2,stories260K,llama2xs
"""

import argparse
import json
import time
from collections import Counter
from pathlib import Path

import torch

from rcid_tl.artifacts import write_figure, write_json
from rcid_tl.fv.cie_sweep import CIESweepConfig, run_cie_sweep
from rcid_tl.fv.heldout import HeldOutConfig, candidates_by_k, select_and_evaluate
from rcid_tl.fv.layout import RunLayout
from rcid_tl.fv.ranking import ScoreKey, heads_json, top_k
from rcid_tl.fv.relations import WORLD, parse_qids
from rcid_tl.fv.split import TrialSplit, shown_as_demos
from rcid_tl.fv.trials import PromptFormat, SamplingConfig
from rcid_tl.progress import set_progress
from rcid_tl.stats import bootstrap_mean_ci
from rcid_tl.sweeps.common import ModelSpec, parse_layers

FIGURES = Path(__file__).resolve().parents[1] / "figures"
ARMS = ("clean_icl", "corrupted_icl", "zero_shot", "fv", "random")  # the bars, in order


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--name")
    parser.add_argument("--model", default="world-gpt2")
    parser.add_argument("--relations", default=WORLD)
    parser.add_argument("--qids", default=None)
    parser.add_argument("--n-trials", type=int, default=16)
    parser.add_argument("--n-select", type=int, default=None, help="selection trials per relation (default half)")
    parser.add_argument("--n-demos", type=int, default=5)
    parser.add_argument("--ks", default="1,3,5,10", help="numbers of heads to choose among")
    parser.add_argument("--layers", default="all", help="injection layers to choose among")
    parser.add_argument("--alphas", default="1,2,4", help="injection scales to choose among")
    parser.add_argument("--n-random", type=int, default=5)
    parser.add_argument("--demos-exclude-queries", action="store_true",
                        help="demonstrations only from pairs that are no trial's query (a pair-level split)")
    parser.add_argument("--skip-blank-targets", action="store_true",
                        help="leave out pairs whose answer starts with a whitespace-only token (small vocabularies)")
    parser.add_argument("--seed", type=int, default=42)
    parser.add_argument("--split-seed", type=int, default=0)
    parser.add_argument("--out-root", type=Path, default=Path("results_fv/relation"))
    parser.add_argument("--figures", type=Path, default=FIGURES)
    parser.add_argument("--combine", default=None, help="comma list of study names to merge into fv_study.json")
    args = parser.parse_args()
    if args.combine:
        combine(args.figures, args.combine.split(","))
        return
    if not args.name:
        parser.error("--name is required (or --combine)")
    torch.set_num_threads(1)
    set_progress(False)
    write_json(args.figures / f"fv_study_{args.name}.json", study(args))
    print(f"wrote {args.figures / f'fv_study_{args.name}.json'}")


def study(args) -> dict:
    start = time.perf_counter()
    spec = ModelSpec(args.model)
    model = spec.load()
    qids = parse_qids(args.qids)
    fmt = PromptFormat.COLON if args.relations == WORLD else PromptFormat.QA
    base = RunLayout.for_run(f"study_{args.name}", args.out_root).base
    sweep = run_cie_sweep(CIESweepConfig(
        spec, base, args.relations, tuple(qids) if qids else None,
        sampling=SamplingConfig(args.n_trials, args.n_demos, args.seed, fmt,
                                skip_blank_targets=args.skip_blank_targets,
                                demos_exclude_queries=args.demos_exclude_queries),
        split=TrialSplit(args.n_select, None, args.split_seed)), model)
    ks = [int(k) for k in args.ks.split(",")]
    candidates = candidates_by_k(model, sweep.cie, {q: r.mean_z for q, r in sweep.results.items()}, ks)
    config = HeldOutConfig(parse_layers(args.layers, model.cfg.n_layers),
                           tuple(float(a) for a in args.alphas.split(",")), args.n_random, args.split_seed)
    held = select_and_evaluate(model, sweep.snapshot, sweep.split, candidates, [(q, q) for q in candidates], config)
    shown = shown_as_demos(sweep.snapshot, sweep.split)
    relations = {row["eval_qid"]: relation_row(row, sweep, model) for row in held.rows}
    for q, ix in shown.items():
        relations[q]["evaluation_pairs_shown_as_selection_demos"] = len(ix)
        relations[q]["evaluation_trials_shown_as_selection_demos"] = list(ix)
    return {
        "name": args.name, "model": args.model, "relations_source": args.relations,
        "n_layers": model.cfg.n_layers, "n_heads": model.cfg.n_heads,
        "n_trials": args.n_trials, "n_demos": args.n_demos, "seed": args.seed, "split_seed": args.split_seed,
        "skip_blank_targets": args.skip_blank_targets, "demos_exclude_queries": args.demos_exclude_queries,
        "grid": {"k": ks, "layers": list(config.layers), "alphas": list(config.alphas)}, "n_random": args.n_random,
        "selection_rule": "highest 0-shot accuracy with the FV on the selection trials (ties: mean delta log p, "
                          "then smaller k, layer, alpha); the evaluation trials are scored once, with that choice",
        "dropped": sweep.snapshot.meta["dropped"], "pooled": pooled(held.rows),
        "pooled_by_demo_exposure": by_exposure(held.rows, shown),
        "relations": relations, "wall_s": round(time.perf_counter() - start, 1), "run_base": str(base),
    }


def relation_row(row: dict, sweep, model) -> dict:
    """One relation: its accuracies on the evaluation trials (CIs), the choice and where it was made, top heads."""
    q, ev = row["eval_qid"], row["evaluation"]
    held = [t for t in sweep.snapshot.of(q) if t.index in set(ev["trials"])]
    first = [model.tokenizer.encode(f" {t.query}", add_special_tokens=False)[:1] for t in held]
    return {
        **{f"{arm}_accuracy": ev[f"{arm}_accuracy"] for arm in (*ARMS, "fv_on_corrupted")},
        "fv_minus_zero_shot": ev["fv_minus_zero_shot"], "fv_minus_random": ev["fv_minus_random"],
        "fv_mean_delta_logprob": ev["mean_delta_logprob"],
        "chosen": {"k": row["k"], "layer": row["layer"], "alpha": row["alpha"], "fv_norm": row["fv_norm"]},
        "selection_fv_accuracy": row["selection"]["injected_accuracy"],
        "selection_zero_shot_accuracy": row["selection"]["baseline_accuracy"],
        "selection_trials": row["selection"]["trials"], "evaluation_trials": ev["trials"],
        # a first-token target that is also the query's first token can be hit by copying the query
        "answer_first_token_is_query_first_token": sum(f == [t.target_first_token_id] for f, t in zip(first, held))
        / len(held),
        # a target that is only a word-start marker ("▁", "Ġ") says nothing about which word comes next
        "answer_first_token_is_bare_space": sum(model.tokenizer.convert_ids_to_tokens(t.target_first_token_id)
                                                in ("▁", "Ġ") for t in held) / len(held),
        "majority_first_token_share": max(Counter(t.target_first_token_id for t in held).values()) / len(held),
        "cie_top_heads": heads_json(top_k(sweep.cie[q], ScoreKey.LOGPROB, 10), ScoreKey.LOGPROB),
        "per_trial": ev["per_trial"],
    }


def pooled(rows: list[dict]) -> dict:
    """Every relation's evaluation trials together (relations of equal size weigh equally)."""
    out = {}
    for arm in (*ARMS, "fv_on_corrupted"):
        out[f"{arm}_accuracy"] = bootstrap_mean_ci([v for r in rows for v in r["evaluation"]["per_trial"][arm]])
    for a, b in (("fv", "zero_shot"), ("fv", "random")):
        diffs = [x - y for r in rows for x, y in zip(r["evaluation"]["per_trial"][a], r["evaluation"]["per_trial"][b])]
        out[f"{a}_minus_{b}"] = bootstrap_mean_ci(diffs)
    # the in-sample maximum over the grid, on the selection trials: how much choosing on the scored trials would flatter
    in_sample = sum(r["selection"]["injected_accuracy"] for r in rows) / len(rows)
    return {**{k: v.to_dict() for k, v in out.items()}, "selection_fv_accuracy_in_sample": in_sample}


def by_exposure(rows: list[dict], shown: dict[str, tuple[int, ...]]) -> dict:
    """FV − 0-shot on the evaluation trials whose pair was, and was not, a demonstration in a selection prompt: if
    that exposure drove the effect, the gain would sit on the shown trials."""
    groups: dict[str, list[float]] = {"shown": [], "not_shown": []}
    for r in rows:
        ev = r["evaluation"]
        for t, fv, zero in zip(ev["trials"], ev["per_trial"]["fv"], ev["per_trial"]["zero_shot"]):
            groups["shown" if t in shown[r["eval_qid"]] else "not_shown"].append(fv - zero)
    return {f"fv_minus_zero_shot_{g}": bootstrap_mean_ci(v).to_dict() for g, v in groups.items()}


def combine(figures: Path, names: list[str]) -> None:
    """figures/fv_study.json (every model's file, without per-trial lists) and a grouped bar chart with CIs."""
    import plotly.graph_objects as go
    from plotly.subplots import make_subplots

    studies = {n: json.loads((figures / f"fv_study_{n}.json").read_text()) for n in names}
    slim = {n: {**s, "relations": {q: {k: v for k, v in r.items() if k != "per_trial"}
                                   for q, r in s["relations"].items()}} for n, s in studies.items()}
    write_json(figures / "fv_study.json", slim)
    figure = make_subplots(rows=len(names), cols=1, subplot_titles=names, vertical_spacing=0.08)
    colours = dict(zip(ARMS, ("#4c72b0", "#8da0cb", "#999999", "#dd5555", "#e8b04a")))
    for i, (name, s) in enumerate(studies.items(), start=1):
        labels = list(s["relations"])
        for arm in ARMS:
            cis = [s["relations"][q][f"{arm}_accuracy"] for q in labels]
            figure.add_trace(go.Bar(
                x=labels, y=[c["estimate"] for c in cis], name=arm.replace("_", " "), marker_color=colours[arm],
                showlegend=i == 1, legendgroup=arm,
                error_y={"type": "data", "symmetric": False, "array": [c["high"] - c["estimate"] for c in cis],
                         "arrayminus": [c["estimate"] - c["low"] for c in cis]}), row=i, col=1)
        figure.update_yaxes(title_text="accuracy", range=[0, 1.05], row=i, col=1)
    figure.update_layout(barmode="group", height=300 * len(names), width=1000,
                         title="Held-out first-token accuracy (evaluation trials, 95% bootstrap CI)")
    write_figure(figures / "fv_study", figure)
    print(f"wrote {figures / 'fv_study.json'} and {figures / 'fv_study.html'}")


if __name__ == "__main__":
    main()
