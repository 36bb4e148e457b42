"""Loss-scale diagnosis before KV training : on a few CoT batches, each term's mean ± std, its
weighted share of the total, the effect of attention weighting on the KV loss, and the KV recipe's recommendations."""

import dataclasses
import math
from pathlib import Path
from typing import Any

import torch

from rcid_tl import __version__
from rcid_tl.artifacts import write_json, write_text
from rcid_tl.kv.config import KVRunConfig
from rcid_tl.kv.objective import KVObjective
from rcid_tl.kv.run import load_pair, segment_batch
from rcid_tl.world.cot_streams import CoTStream, stream_examples

DIAGNOSE_CKA_WEIGHT, DIAGNOSE_CODI_WEIGHT = 0.05, 0.5  # the KV recipe's defaults, used to size a term that is off


def _mean_std(values: list[float]) -> dict[str, float]:
    t = torch.tensor(values, dtype=torch.float64)
    return {"mean": t.mean().item(), "std": t.std().item() if len(values) > 1 else 0.0}


def recommendations(shares: dict[str, float], weights: dict[str, float], attention_effect: float) -> list[str]:
    """The rules: CKA's share of the total within 1–10% (lower its weight above 15%, may raise it below 1%),
    KV's at most 50%, and an attention-weighting change under 5% of the KV loss means it barely re-weights."""
    out = []
    align = next((k for k in ("cka", "contrastive") if k in shares), None)
    if align is not None and weights[align] > 0:
        share = shares[align]
        if share > 0.15:
            out.append(f"{align} is {share:.1%} of the total (> 15%): lower --cka-weight, e.g. to 0.01")
        elif share > 0.10:
            out.append(f"{align} is {share:.1%} of the total (above the 1–10% target): lower --cka-weight a little")
        elif share < 0.01:
            out.append(f"{align} is {share:.1%} of the total (< 1%): --cka-weight could go up to 0.1")
        else:
            out.append(f"ok: {align} weight is reasonable ({share:.1%} of the total)")
    if weights["kv"] > 0:
        share = shares["kv"]
        if share > 0.5:
            out.append(f"KV is {share:.1%} of the total (> 50%): lower --kv-weight")
        elif share < 0.01:
            out.append(f"KV is {share:.1%} of the total (< 1%): it barely acts on training; raise --kv-weight")
        else:
            out.append(f"ok: KV weight is reasonable ({share:.1%} of the total)")
    if math.isfinite(attention_effect):
        out.append(f"attention weighting changes the KV loss by {attention_effect:+.1%}: "
                   + ("under 5%, weighting may not matter in this setup" if abs(attention_effect) < 0.05
                      else "a real re-weighting; attention weighting can act"))
    return out


def diagnose_losses(teacher, student, config: KVRunConfig, batches: list) -> dict[str, Any]:
    """Scales of every term on `batches` (SegmentBatch), with the run's weights (a term whose weight is 0 is still
    measured, at the KV recipe's default weight for sizing, and its contribution reported as 0)."""
    kv = config.kv
    probe = dataclasses.replace(kv, attention_weighted=True, attention_warmup=0,
                                cka_weight=kv.cka_weight or DIAGNOSE_CKA_WEIGHT,
                                codi_weight=kv.codi_weight or DIAGNOSE_CODI_WEIGHT)
    objective = KVObjective(teacher, student, probe).to(config.device)
    values: dict[str, list[float]] = {}
    with torch.no_grad():
        for batch in batches:
            for name, value in objective.raw_terms(teacher, student, batch).items():
                values.setdefault(name, []).append(value.item())
    stats = {name: _mean_std(v) for name, v in values.items()}
    align = kv.alignment.value
    weights = {"ce": 1.0, "kv": kv.kv_weight, align: kv.cka_weight, "codi": kv.codi_weight}
    kv_key = "kv_weighted" if kv.attention_weighted else "kv"
    contributions = {"ce": stats["ce"]["mean"], "kv": weights["kv"] * stats[kv_key]["mean"],
                     align: weights[align] * stats[align]["mean"], "codi": weights["codi"] * stats["codi"]["mean"]}
    total = sum(contributions.values())
    shares = {k: v / total for k, v in contributions.items()}
    effect = (stats["kv_weighted"]["mean"] - stats["kv"]["mean"]) / stats["kv"]["mean"]
    return {"rcid_tl_version": __version__, "teacher": config.teacher, "student": config.student,
            "n_batches": len(batches), "batch_size": config.batch_size, "stats": stats, "weights": weights,
            "contributions": contributions, "shares": shares, "total": total,
            "attention_source": "teacher" if kv.use_teacher_attention else "student",
            "attention_effect": effect, "recommendations": recommendations(shares, weights, effect),
            "layer_pairs": {str(s): t for s, t in objective.pairs.items()}, "config": config.to_dict()}


def diagnosis_table(result: dict[str, Any]) -> str:
    """The diagnosis as the KV recipe's plain-text report."""
    names = {"ce": "CE", "kv": "KV", "kv_weighted": "KV-weighted", "cka": "CKA", "contrastive": "Contrastive",
             "codi": "CODI"}
    lines = ["Loss scales (mean ± std)"]
    lines += [f"  {names[k] + ':':<14}{s['mean']:10.4f} ± {s['std']:8.4f}" for k, s in result["stats"].items()]
    lines.append("Weighted contributions")
    for k, c in result["contributions"].items():
        share, weight = result["shares"][k], result["weights"][k]
        lines.append(f"  {names[k] + ':':<14}{c:10.4f}  ({share:6.1%})  [weight={weight:g}]")
    lines.append(f"  {'Total:':<14}{result['total']:10.4f}")
    lines.append(f"Attention weighting ({result['attention_source']} attention): {result['attention_effect']:+.1%} "
                 "change in the KV loss")
    lines.append("Recommendations")
    lines += [f"  {r}" for r in result["recommendations"]]
    return "\n".join(lines)


def run_diagnosis(config: KVRunConfig, n_batches: int, out: Path) -> dict[str, Any]:
    """Load the pair, diagnose `n_batches` CoT training batches, write OUT/diagnosis.json and OUT/diagnosis.txt."""
    teacher, student = load_pair(config)
    problems = stream_examples(CoTStream.STUDENT, n_batches * config.batch_size)
    batches = [segment_batch(teacher.tokenizer, problems[i : i + config.batch_size])
               for i in range(0, len(problems), config.batch_size)]
    result = diagnose_losses(teacher, student, config, batches)
    out.mkdir(parents=True, exist_ok=True)
    write_json(out / "diagnosis.json", result)
    write_text(out / "diagnosis.txt", diagnosis_table(result) + "\n")
    return result
