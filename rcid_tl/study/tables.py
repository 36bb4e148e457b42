"""Markdown summaries of the study's experiments, each rendered from its saved result JSON alone."""

from typing import Any

from rcid_tl.heads.classes import CLASS_NAMES


def _f(x: float | None, digits: int = 3) -> str:
    return "–" if x is None or x != x else f"{x:+.{digits}f}"


def _p(x: float | None) -> str:
    return "–" if x is None or x != x else f"{x:.3g}"


def _ci(d: dict[str, Any], digits: int = 3) -> str:
    return f"{_f(d['estimate'], digits)} [{_f(d['low'], digits)}, {_f(d['high'], digits)}]"


def _pair(pair: list | None) -> str:
    return "[–, –]" if not pair else f"[{_f(pair[0])}, {_f(pair[1])}]"


def _index(index_map: dict[str, Any] | None) -> str:
    """The earlier default's mechanistic r (checkpoints by imprint, heads by index) and the share its set carries."""
    if not index_map:
        return "–"
    return f"{_f(index_map['mechanistic_r'])} {_pair(index_map['mechanistic_r_ci'])}"


def preservation_markdown(result: dict[str, Any]) -> str:
    lines = ["| student | accuracy (teacher) | logit diff (teacher) | r_out | mean r [95% CI] | mechanistic r [95% CI] "
             "(k) | weighted by share | share carried | index map: mechanistic r |", "|---|---|---|---|---|---|---|---|---|"]
    lines += [f"| {r['method']}-{r['seed']} | {r['accuracy']:.3f} ({r['teacher_accuracy']:.3f}) | "
              f"{r['logit_diff']:.2f} ({r['teacher_logit_diff']:.2f}) | {_f(r['r_out'])} | {_f(r['mean_r'])} "
              f"{_pair(r['mean_r_ci'])} | {_f(r['mechanistic_r'])} {_pair(r['mechanistic_r_ci'])} "
              f"({r['n_mechanistic']}) | {_f(r.get('mechanistic_r_weighted'))} | {_f(r.get('carried_share'), 2)} | "
              f"{_index(r.get('index_map'))} |"
              for r in result["rows"]]
    s = result["summary"]
    lines += ["", "Per checkpoint (teacher head @ position → student head): partial r, * saturated", ""]
    for r in result["rows"]:
        cells = ", ".join(f"{c['checkpoint']}→{c['student_site']} {_f(c['partial_r'], 2)}"
                          f"{'*' if c['saturated'] else ''}" for c in r["checkpoints"])
        lines.append(f"- {r['method']}-{r['seed']}: {cells}")
    lines += ["", f"Students within {result['config']['close_accuracy']} of the teacher's accuracy: "
              f"{', '.join(s['accuracy_close']) or 'none'}; their mean r {_ci(s['mean_r_of_close'])}, r_out "
              f"{_ci(s['r_out_of_close'])}, mechanistic r {_ci(s['mechanistic_r_of_close'])} (bootstrap over "
              f"students). Of them, mechanistic r's CI lies above 0 for: "
              f"{', '.join(s['accuracy_close_and_mechanism_shared']) or 'none'}."]
    return "\n".join(lines) + "\n"


def comparison_markdown(result: dict[str, Any]) -> str:
    measures = list(next(iter(result["ioi"]["per_method"].values())))
    lines = [f"| method | {' | '.join(measures)} |", "|---|" + "---|" * len(measures)]
    lines += [f"| {m} | " + " | ".join(_ci(v[k], 2) for k in measures) + " |"
              for m, v in result["ioi"]["per_method"].items()]
    lines += ["", "Factor decomposition (difference of method means over seeds, bootstrap CI; Welch p):", "",
              f"| step | {' | '.join(measures)} |", "|---|" + "---|" * len(measures)]
    for name, step in result["ioi"]["factors"].items():
        lines.append(f"| {name}: {step['to']} − {step['from']} | " + " | ".join(
            f"{_ci(step[k]['diff_ci'], 2)} p={_p(step[k]['welch']['p'])}" for k in measures) + " |")
    lines += ["", "Welch tests between every pair (p of the accuracy / mechanistic r difference):", ""]
    lines += [f"- {pair}: accuracy p={_p(v['accuracy']['welch']['p'])}, mechanistic r "
              f"p={_p(v['mechanistic_r']['welch']['p'])}" for pair, v in result["ioi"]["pairs"].items()]
    if result.get("greater_than"):
        lines += ["", "Greater-Than (1 seed; consistency at each run's own checkpoints):", "",
                  "| method | prob diff | perplexity | mean r | mechanistic r |",
                  "|---|---|---|---|---|"]
        lines += [f"| {r['method']} | {r['logit_diff']:.3f} | {r['perplexity']:.1f} | {_f(r['mean_r'])} | "
                  f"{_f(r['mechanistic_r'])} |" for r in result["greater_than"]]
        t = result["greater_than"][0]["teacher"]
        lines.append(f"\nTeacher on the same examples: prob diff {t['metric_mean']:.3f}, "
                     f"perplexity {t['perplexity']:.2f}.")
    return "\n".join(lines) + "\n"


def robustness_markdown(result: dict[str, Any]) -> str:
    text = "IOI students (metric: logit difference):\n\n" + _robustness_table(result)
    if result.get("greater_than"):
        text += ("\nGreater-Than students (metric: probability difference; accuracy: share with a positive one):\n\n"
                 + _robustness_table(result["greater_than"]))
    return text


def _robustness_table(result: dict[str, Any]) -> str:
    splits = list(result["teacher"]["relative"])
    head = " | ".join(f"{s}: acc ratio, metric change" for s in splits)
    lines = [f"| model | mechanistic r | mean r | ID accuracy | {head} |", "|---|---|---|---|" + "---|" * len(splits)]
    for r in [{"label": "teacher", **result["teacher"]}, *result["rows"]]:
        cells = " | ".join(f"{r['relative'][s]['accuracy_ratio']:.3f}, {r['relative'][s]['metric_change']:+.2f}"
                           for s in splits)
        lines.append(f"| {r['label']} | {_f(r.get('mechanistic_r'))} | {_f(r.get('mean_r'))} | "
                     f"{r['scores']['in-distribution']['accuracy']:.3f} | {cells} |")
    lines += ["", "| consistency | split | robustness | Spearman ρ [95% CI] (n) | p |", "|---|---|---|---|---|"]
    lines += [f"| {c['consistency']} | {c['split']} | {c['robustness']} | {_ci(c['rho'])} ({c['rho']['n']}) | "
              f"{_p(c['p'])} |" for c in result["correlations"]]
    return "\n".join(lines) + "\n"


def retention_markdown(result: dict[str, Any]) -> str:
    rows = result["rows"]
    t = result["teacher"]
    lines = ["Head classes found by the discovery tool (default thresholds):", "",
             "- teacher: " + "; ".join(f"{c}: {', '.join(t['classes'][c]) or 'none'}" for c in CLASS_NAMES)]
    lines += [f"- {r['student']}: " + "; ".join(f"{c}: {', '.join(r['classes'][c]) or 'none'}" for c in CLASS_NAMES)
              for r in rows]
    lines += ["", "Class retention (student effect / teacher effect):", "",
              "| class | " + " | ".join(r["student"] for r in rows) + " |", "|---|" + "---|" * len(rows)]
    reasons: dict[str, int] = {}
    for c in CLASS_NAMES:
        cells = []
        for r in rows:
            cell = r["class_retention"][c]
            if cell["retention"] is None:
                reasons[cell["undefined"]] = reasons.get(cell["undefined"], 0) + 1
            cells.append("undefined" if cell["retention"] is None else _f(cell["retention"], 2))
        lines.append(f"| {c} | " + " | ".join(cells) + " |")
    if reasons:
        lines += ["", "Undefined cells: " + "; ".join(f"{why} ({k} cells)" for why, k in reasons.items())]
    if t.get("functional_classes"):
        lines += ["", _functional_table(t, rows)]
    if t.get("circuit"):
        te = t["circuit_effects"]["effects"]
        lines += ["", "A different quantity — the teacher's circuit heads and the student heads they map to "
                  "(proportional maps), knocked out alone and together; retention = student drop / teacher drop of "
                  "the mean logit difference:", "",
                  "| teacher heads (teacher drop) | " + " | ".join(r["student"] for r in rows) + " |",
                  "|---|" + "---|" * len(rows)]
        for name in te:
            cells = [(_f(r["circuit_retention"][name]["retention"], 2) if r["circuit_retention"][name]["retention"]
                      is not None else "undefined") + f" ({','.join(r['circuit_retention'][name]['student_heads'])}: "
                     f"{_f(r['circuit_effects']['effects'][name]['effect'], 2)})" for r in rows]
            lines.append(f"| {name} ({_f(te[name]['effect'], 2)}) | " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"


def _functional_table(t: dict[str, Any], rows: list[dict[str, Any]]) -> str:
    """Retention of each of the teacher's functional classes (heads by END attention target and direct-effect sign;
    `rcid_tl.heads.functional`), with the student heads in the class."""
    te = t["functional_effects"]["effects"]
    lines = ["Functional classes (on any model: where END attends, sign of the direct effect; + / − write the answer "
             "directly, · indirect), retention = student drop / teacher drop, the student's heads in brackets:", "",
             "| class: teacher heads (teacher drop) | " + " | ".join(r["student"] for r in rows) + " |",
             "|---|" + "---|" * len(rows)]
    for c, heads in t["functional_classes"].items():
        cells = []
        for r in rows:
            cell = r["functional_retention"][c]
            value = "undefined" if cell["retention"] is None else _f(cell["retention"], 2)
            cells.append(f"{value} ({','.join(r['functional_classes'][c]) or 'none'})")
        lines.append(f"| {c}: {','.join(heads)} ({_f(te[c]['effect'], 2)}) | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def purity_markdown(result: dict[str, Any]) -> str:
    lines = [f"Group A: {', '.join(result['group_a'])}.", f"Group B: {', '.join(result['group_b'])}.", "",
             "| model | layer | h: task / control / shuffled | h selectivity [95% CI] | d: task / control / shuffled | "
             "d selectivity [95% CI] |", "|---|---|---|---|---|---|"]
    blocks = [("teacher (folds)", result["per_model"]["teacher"]["layers"])]
    seeds = result.get("seeds_per_method", {})  # one seed: the CIs are over its folds, as the teacher's
    blocks += [(f"{m} ({'folds' if seeds.get(m) == 1 else 'seeds'})", v) for m, v in result["per_method"].items()]
    for name, layers in blocks:
        for layer in sorted({int(k.split(":")[1]) for k in layers}):
            h, d = layers[f"h:{layer}"], layers[f"d:{layer}"]
            acc = lambda x: " / ".join(f"{x[k]['estimate']:.2f}" for k in ("task", "control", "shuffled"))  # noqa: E731
            lines.append(f"| {name} | {layer} | {acc(h)} | {_ci(h['selectivity'], 2)} | {acc(d)} | "
                         f"{_ci(d['selectivity'], 2)} |")
    chance = result["per_model"]["teacher"]["chance"]
    lines += ["", f"Majority-class rates: task {chance['task']:.3f}, control {chance['control']:.3f}; a probe at "
              f"chance on both labels has selectivity ≈ {chance['task'] - chance['control']:.3f}, so compare selectivities "
              "with each other and task accuracy with the shuffled-label probe, not with 0."]
    return "\n".join(lines) + "\n"
