"""Injection evaluation shared by the extraction's quick eval and the injection sweep: baseline vs α·FV at layer ℓ on
a trial prompt kind, per (FV source, evaluated relation, layer, α), with per-trial records and summaries."""

from collections.abc import Sequence
from dataclasses import dataclass
from enum import Enum
from itertools import product

import torch
from torch import Tensor
from transformer_lens.model_bridge import TransformerBridge

from rcid_tl.fv.inject import InjectionRows, injected_scores
from rcid_tl.fv.scoring import TargetScores, score_rows, targets
from rcid_tl.fv.trials import Trial, TrialSnapshot


class PromptKind(str, Enum):
    ZERO_SHOT = "zero_shot"  # query only (Todd et al.'s zero-shot FV test)
    CORRUPTED = "corrupted"  # the shuffled-label few-shot prompt (Todd et al.'s other FV test)

    def ids(self, trial: Trial) -> tuple[int, ...]:
        return trial.zero_shot_ids if self is PromptKind.ZERO_SHOT else trial.corrupted_ids


@dataclass(frozen=True)
class InjectionEval:
    records: list[dict]  # one per (fv, eval qid, layer, alpha, trial)
    summary: list[dict]  # one per (fv, eval qid, layer, alpha)


def evaluate_injection(
    model: TransformerBridge,
    snapshot: TrialSnapshot,
    vectors: dict[str, Tensor],
    pairs: Sequence[tuple[str, str]],
    layers: Sequence[int],
    alphas: Sequence[float],
    kind: PromptKind = PromptKind.ZERO_SHOT,
    n_per_qid: int | None = None,
    rows_per_forward: int = 128,
) -> InjectionEval:
    """For each (fv name, eval q_id) in `pairs`, each layer and α: target first-token metrics with and without
    α·vectors[fv] added after that layer at the last token, on the first `n_per_qid` trials of the eval relation."""
    eval_qids = list(dict.fromkeys(e for _, e in pairs))
    trials = [t for q in eval_qids for t in snapshot.of(q)[:n_per_qid]]
    first = {q: next(i for i, t in enumerate(trials) if t.q_id == q) for q in eval_qids}
    count = {q: sum(t.q_id == q for t in trials) for q in eval_qids}
    seqs, target = [kind.ids(t) for t in trials], targets(trials)
    base = score_rows(model, seqs, torch.arange(len(trials)), target, rows_per_forward=rows_per_forward)
    names = list(vectors)
    stacked = torch.stack([vectors[n].float() for n in names])
    combos = list(product(pairs, layers, alphas))
    prompt, layer, alpha, vector, combo_of = [], [], [], [], []
    for c, ((fv, e), lay, a) in enumerate(combos):
        for i in range(first[e], first[e] + count[e]):
            prompt.append(i), layer.append(lay), alpha.append(a), vector.append(names.index(fv)), combo_of.append(c)
    rows = InjectionRows(torch.tensor(prompt), torch.tensor(layer), torch.tensor(alpha, dtype=torch.float32),
                         torch.tensor(vector))
    injected = injected_scores(model, seqs, target, rows, stacked, rows_per_forward)
    records = [
        _record(fv, e, lay, a, trials[p], base.take(torch.tensor([p])), injected.take(torch.tensor([r])))
        for r, (p, c) in enumerate(zip(prompt, combo_of)) for (fv, e), lay, a in [combos[c]]
    ]
    combo_t = torch.tensor(combo_of)
    summary = [_summary(fv, e, lay, a, base.take(rows.prompt[combo_t == c]), injected.take(combo_t == c))
               for c, ((fv, e), lay, a) in enumerate(combos)]
    return InjectionEval(records, summary)


def _record(fv: str, e: str, layer: int, alpha: float, trial: Trial, base: TargetScores, inj: TargetScores) -> dict:
    return {"fv_qid": fv, "eval_qid": e, "trial": trial.index, "layer": layer, "alpha": alpha,
            "target_first_token_id": trial.target_first_token_id,
            "baseline_logprob": float(base.logprob), "injected_logprob": float(inj.logprob),
            "delta_logprob": float(inj.logprob - base.logprob), "baseline_p": float(base.prob),
            "injected_p": float(inj.prob), "delta_p": float(inj.prob - base.prob),
            "baseline_top1": bool(base.top1), "injected_top1": bool(inj.top1)}


def _summary(fv: str, e: str, layer: int, alpha: float, base: TargetScores, inj: TargetScores) -> dict:
    return {"fv_qid": fv, "eval_qid": e, "layer": layer, "alpha": alpha, "n": len(base.logprob),
            "mean_delta_logprob": float((inj.logprob - base.logprob).mean()),
            "mean_delta_p": float((inj.prob - base.prob).mean()),
            "baseline_accuracy": float(base.top1.mean()), "injected_accuracy": float(inj.top1.mean()),
            "accuracy_delta": float((inj.top1 - base.top1).mean()),
            "mean_baseline_logprob": float(base.logprob.mean()), "mean_injected_logprob": float(inj.logprob.mean())}


def matrices(summary: list[dict], metrics: Sequence[str] = ("mean_delta_logprob", "accuracy_delta")) -> list[dict]:
    """Per (layer, α): matrix[fv_qid][eval_qid] of each metric (the injection sweep's summary)."""
    out = []
    for layer, alpha in dict.fromkeys((s["layer"], s["alpha"]) for s in summary):
        entry = {"layer": layer, "alpha": alpha}
        for m in metrics:
            grid: dict[str, dict[str, float]] = {}
            for s in summary:
                if (s["layer"], s["alpha"]) == (layer, alpha):
                    grid.setdefault(s["fv_qid"], {})[s["eval_qid"]] = s[m]
            entry[m] = grid
        out.append(entry)
    return out
