"""Held-out FV evaluation: choose (k, layer, α) on the selection split's 0-shot prompts, then score that one choice on
the disjoint evaluation split beside its baselines — clean and shuffled-label ICL, 0-shot, and α·(random direction of
the FV's norm) at the same layer — with bootstrap CIs over trials (Todd et al. 2024 report the best layer in-sample)."""

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import torch
from torch import Tensor
from transformer_lens.model_bridge import TransformerBridge

from rcid_tl.checks import check_count
from rcid_tl.errors import InputError
from rcid_tl.fv.evaluation import InjectionEval, PromptKind, evaluate_injection
from rcid_tl.fv.ranking import HeadScore, ScoreKey, top_k
from rcid_tl.fv.scoring import score_rows, targets
from rcid_tl.fv.split import SplitIndices
from rcid_tl.fv.trials import TrialSnapshot
from rcid_tl.fv.vectors import function_vector
from rcid_tl.stats import bootstrap_mean_ci

RANDOM = "random"  # the name prefix of the control vectors


@dataclass(frozen=True)
class HeldOutConfig:
    """The selection grid (layers × α; k comes from the candidate vectors) and the control's size."""

    layers: tuple[int, ...]
    alphas: tuple[float, ...]
    n_random: int = 5  # random directions per choice; each trial's control accuracy is their mean
    seed: int = 0  # the random directions' and the bootstrap's seed
    rows_per_forward: int = 128

    def __post_init__(self) -> None:
        if not self.layers or not self.alphas:
            raise InputError("the selection grid needs at least one layer and one α")
        check_count(self.n_random, "n_random")


@dataclass(frozen=True)
class HeldOut:
    selection: InjectionEval  # the whole grid on the selection split (fv_qid, k, layer, α)
    chosen: list[dict]  # the grid entry chosen per (FV, evaluated relation), scored on the selection split
    rows: list[dict]  # one per (FV, evaluated relation): the choice and its held-out scores


def _key(fv: str, k: int) -> str:
    return f"{fv}@k{k}"


def select(
    model: TransformerBridge, snapshot: TrialSnapshot, split: SplitIndices,
    candidates: Mapping[str, Mapping[int, Tensor]], pairs: Sequence[tuple[str, str]], config: HeldOutConfig,
) -> tuple[InjectionEval, dict[tuple[str, str], dict]]:
    """The grid k × layer × α on the selection split only, and per (FV, relation) the entry with the highest
    accuracy (ties: larger mean Δlog p, then the smaller k, layer and α). Never sees an evaluation trial."""
    chosen_on = split.selection(snapshot)
    vectors = {_key(fv, k): v for fv, by_k in candidates.items() for k, v in by_k.items()}
    grid_pairs = [(_key(fv, k), e) for fv, e in pairs for k in candidates[fv]]
    grid = evaluate_injection(model, chosen_on, vectors, grid_pairs, config.layers, config.alphas,
                              PromptKind.ZERO_SHOT, None, config.rows_per_forward)
    for row in (*grid.summary, *grid.records):
        fv, k = row["fv_qid"].rsplit("@k", 1)
        row["fv_qid"], row["k"] = fv, int(k)
    best: dict[tuple[str, str], dict] = {}
    for entry in grid.summary:  # in k, layer, α order, so a strict `>` keeps the smallest on ties
        pair = (entry["fv_qid"], entry["eval_qid"])
        score = (entry["injected_accuracy"], entry["mean_delta_logprob"])
        if pair not in best or score > (best[pair]["injected_accuracy"], best[pair]["mean_delta_logprob"]):
            best[pair] = entry
    return grid, best


def random_like(vector: Tensor, n: int, seed: int) -> Tensor:
    """`n` directions uniform on the sphere, each scaled to ‖vector‖ (the control keeps the FV's size, not its
    direction)."""
    g = torch.Generator().manual_seed(seed)
    draws = torch.randn(n, vector.shape[-1], generator=g)
    return draws / draws.norm(dim=-1, keepdim=True) * vector.float().norm()


def _by_trial(records: list[dict], fv: str, field: str) -> dict[int, list[float]]:
    out: dict[int, list[float]] = {}
    for r in records:
        if r["fv_qid"] == fv:
            out.setdefault(r["trial"], []).append(float(r[field]))
    return out


def evaluate_choice(
    model: TransformerBridge, held: TrialSnapshot, vector: Tensor, eval_qid: str, layer: int, alpha: float,
    config: HeldOutConfig, seed: int,
) -> dict:
    """Per-trial 0/1 accuracies on the evaluation trials of `eval_qid`, and their bootstrap CIs."""
    trials = held.of(eval_qid)
    index = [t.index for t in trials]
    names = [f"{RANDOM}{i}" for i in range(config.n_random)]
    vectors = {"fv": vector, **dict(zip(names, random_like(vector, config.n_random, seed)))}
    pairs = [(n, eval_qid) for n in vectors]
    zero = evaluate_injection(model, held, vectors, pairs, [layer], [alpha], PromptKind.ZERO_SHOT, None,
                              config.rows_per_forward).records
    shuffled = evaluate_injection(model, held, {"fv": vector}, [("fv", eval_qid)], [layer], [alpha],
                                  PromptKind.CORRUPTED, None, config.rows_per_forward).records
    clean = score_rows(model, [t.clean_ids for t in trials], torch.arange(len(trials)), targets(trials),
                       rows_per_forward=config.rows_per_forward).top1
    fv_top1, base_top1 = _by_trial(zero, "fv", "injected_top1"), _by_trial(zero, "fv", "baseline_top1")
    fv_lp = _by_trial(zero, "fv", "delta_logprob")
    rand = {t: [] for t in index}
    for n in names:
        for t, v in _by_trial(zero, n, "injected_top1").items():
            rand[t] += v
    per_trial = {
        "clean_icl": [float(x) for x in clean], "corrupted_icl": [_by_trial(shuffled, "fv", "baseline_top1")[t][0]
                                                                  for t in index],
        "zero_shot": [base_top1[t][0] for t in index], "fv": [fv_top1[t][0] for t in index],
        "random": [sum(rand[t]) / len(rand[t]) for t in index],
        "fv_on_corrupted": [_by_trial(shuffled, "fv", "injected_top1")[t][0] for t in index],
        "delta_logprob": [fv_lp[t][0] for t in index],
    }
    ci = {name: bootstrap_mean_ci(v, seed=seed).to_dict() for name, v in per_trial.items()}
    return {
        "trials": index, "n": len(index), "per_trial": per_trial,
        **{f"{name}_accuracy": ci[name] for name in ("clean_icl", "corrupted_icl", "zero_shot", "fv", "random",
                                                      "fv_on_corrupted")},
        "mean_delta_logprob": ci["delta_logprob"],
        # paired over the same trials, so the interval is of the per-trial difference
        "fv_minus_zero_shot": bootstrap_mean_ci([a - b for a, b in zip(per_trial["fv"], per_trial["zero_shot"])],
                                                seed=seed).to_dict(),
        "fv_minus_random": bootstrap_mean_ci([a - b for a, b in zip(per_trial["fv"], per_trial["random"])],
                                             seed=seed).to_dict(),
    }


def select_and_evaluate(
    model: TransformerBridge, snapshot: TrialSnapshot, split: SplitIndices,
    candidates: Mapping[str, Mapping[int, Tensor]], pairs: Sequence[tuple[str, str]], config: HeldOutConfig,
) -> HeldOut:
    """Choose on the selection split, then score each choice once on the evaluation split."""
    grid, best = select(model, snapshot, split, candidates, pairs, config)
    held = split.evaluation(snapshot)
    rows = []
    for i, ((fv, e), entry) in enumerate(best.items()):
        vector = candidates[fv][entry["k"]]
        scores = evaluate_choice(model, held, vector, e, entry["layer"], entry["alpha"], config, config.seed + i)
        rows.append({
            "fv_qid": fv, "eval_qid": e, "k": entry["k"], "layer": entry["layer"], "alpha": entry["alpha"],
            "fv_norm": float(vector.float().norm()),
            "selection": {"trials": list(split.by_qid[e][0]), "n": entry["n"],
                          "injected_accuracy": entry["injected_accuracy"],
                          "baseline_accuracy": entry["baseline_accuracy"],
                          "mean_delta_logprob": entry["mean_delta_logprob"]},
            "evaluation": scores,
        })
    return HeldOut(grid, list(best.values()), rows)


def candidates_by_k(
    model: TransformerBridge, cie: Mapping[str, Sequence[HeadScore]], mean_z: Mapping[str, Tensor],
    ks: Sequence[int], key: ScoreKey = ScoreKey.LOGPROB,
) -> dict[str, dict[int, Tensor]]:
    """Per relation, its function vector from its top-k heads by CIE for every k in `ks` (k above the number of
    scored heads is left out): the candidates `select` chooses k among."""
    return {q: {k: function_vector(model, [s.as_head for s in top_k(scores, key, k)], mean_z[q])
                for k in ks if k <= len(scores)} for q, scores in cie.items()}
