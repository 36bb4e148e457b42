"""Experiment 2 of the RCID study: the four methods over seeds with bootstrap CIs, Welch tests between methods, and the
factor decomposition FitNets → Informed FitNets ("choosing where") → RCID ("matching what")."""

from itertools import combinations
from typing import Any

from rcid_tl.stats import bootstrap_diff_ci, bootstrap_mean_ci, welch_test
from rcid_tl.study.runs import StudentRun

MEASURES = ("accuracy", "logit_diff", "perplexity", "mean_r", "mechanistic_r", "r_out")
# (name, from, to): the step's gain is mean(to) − mean(from)
FACTORS = (("choosing where", "fitnets", "informed-fitnets"), ("matching what", "informed-fitnets", "rcid"))


def run_row(run: StudentRun, consistency: dict[str, Any] | None) -> dict[str, Any]:
    """One run's task scores (metrics.json) and consistency: the head-checkpoint measurement when given, else the
    one `rcid-tl distill` measured at its own checkpoints."""
    m = run.metrics()
    c = consistency if consistency is not None else m["causal_consistency"]
    return {"method": run.method, "seed": run.seed, "task": m["task"], "accuracy": m["accuracy"],
            "logit_diff": m["metric_mean"], "metric": m["metric"], "perplexity": m["perplexity"],
            "mean_r": c["mean_r"], "mechanistic_r": c.get("mechanistic_r"), "r_out": c.get("r_out"),
            "consistency_site": "z" if consistency is not None else "distill checkpoints",
            "teacher": m["teacher_scores"]}


def compare_methods(rows: list[dict[str, Any]], measures=MEASURES, factors=FACTORS) -> dict[str, Any]:
    """Per method and measure a bootstrap CI over seeds; per pair of methods a Welch test and a bootstrap CI of the
    difference; per factor step the same for the named pair."""
    methods = list(dict.fromkeys(r["method"] for r in rows))
    values = {(m, k): [r[k] for r in rows if r["method"] == m and r.get(k) is not None]
              for m in methods for k in measures}
    per_method = {m: {k: bootstrap_mean_ci(values[m, k]).to_dict() for k in measures} for m in methods}

    def contrast(a: str, b: str) -> dict[str, Any]:  # b − a
        return {k: {"diff_ci": bootstrap_diff_ci(values[b, k], values[a, k]).to_dict(),
                    "welch": welch_test(values[b, k], values[a, k]).to_dict()} for k in measures}

    pairs = {f"{b} − {a}": contrast(a, b) for a, b in combinations(methods, 2)}
    steps = {name: {"from": a, "to": b, **contrast(a, b)} for name, a, b in factors if a in methods and b in methods}
    return {"per_method": per_method, "pairs": pairs, "factors": steps}
