"""Function-vector extraction (Todd et al. 2024): top-k heads per relation (CIE) and over all relations (AIE) →
function vectors (`fv_by_layer.pt`, `fv_global_resid.pt` + meta) and a quick injection eval at one fixed layer on the held-out
evaluation trials (`stepE_eval.json`).
Also the optional AIE package over a chosen relation subset."""

import json
from dataclasses import dataclass
from pathlib import Path

import torch
from transformer_lens.model_bridge import TransformerBridge

from rcid_tl import __version__
from rcid_tl.artifacts import read_torch, write_json
from rcid_tl.checks import check_count, check_finite
from rcid_tl.errors import InputError
from rcid_tl.fv.cie_sweep import _save_tensor_file, seed_everything
from rcid_tl.fv.evaluation import PromptKind, evaluate_injection
from rcid_tl.fv.layout import RunLayout, step_log
from rcid_tl.fv.ranking import (
    HeadScore, ScoreKey, aie_id, aie_scores, heads_json, read_cie_csv, top_k, write_aie_csv,
)
from rcid_tl.fv.split import SplitIndices
from rcid_tl.fv.trials import TrialSnapshot
from rcid_tl.fv.vectors import function_vector, function_vector_by_layer
from rcid_tl.models.loading import model_label, namer
from rcid_tl.sweeps.common import ModelSpec

GLOBAL = "global"  # the name of the all-relation (AIE) function vector in evaluations

REMEDY = "re-run `rcid-tl fv cie` (the CIE sweep) for this run"  # what to do about a damaged sweep file


@dataclass(frozen=True)
class ExtractionConfig:
    """k heads by `score_key`; the quick eval injects at `edit_layer` (default: depth // 3, Todd et al.)."""

    model: ModelSpec
    out_base: Path
    k: int = 10
    score_key: ScoreKey = ScoreKey.LOGPROB
    edit_layer: int | None = None
    alpha: float = 1.0
    n_eval_trials: int | None = None
    rows_per_forward: int = 128
    sampled_trials: Path | None = None  # default: <out_base>/artifacts/sampled_trials.json

    def __post_init__(self) -> None:
        check_count(self.k, "--k")
        check_finite(self.alpha, "--alpha")
        check_count(self.rows_per_forward, "--batch-size")


@dataclass(frozen=True)
class SweepInputs:
    """What the extraction and the AIE package read back from the CIE sweep."""

    snapshot: TrialSnapshot
    cie: dict[str, list[HeadScore]]
    mean_z: dict[str, torch.Tensor]
    split: SplitIndices | None  # None: a run from before held-out splits, built from every trial

    @property
    def held_out(self) -> TrialSnapshot:
        """The trials no vector was built from (all of them, for a run without a split)."""
        return self.split.evaluation(self.snapshot) if self.split is not None else self.snapshot


def load_cie_sweep(layout: RunLayout, model: TransformerBridge, sampled_trials: Path | None = None) -> SweepInputs:
    snapshot = TrialSnapshot.load(sampled_trials or layout.sampled_trials)
    snapshot.check_tokenizer(model.tokenizer)
    cie = read_cie_csv(layout.cie_scores)
    missing = [q for q in snapshot.qids if q not in cie or not layout.qid_clean_mean(q).is_file()]
    if missing:
        raise InputError(f"CIE sweep artifacts in {layout.artifacts} lack relation {missing[0]!r}; "
                         "re-run `rcid-tl fv cie`")
    mean_z = {q: read_torch(layout.qid_clean_mean(q), REMEDY)["clean_mean"] for q in snapshot.qids}
    split = SplitIndices.load(layout.trial_split) if layout.trial_split.is_file() else None
    return SweepInputs(snapshot, cie, mean_z, split)


def _check_k(k: int, cie: dict[str, list[HeadScore]]) -> None:
    n = len(next(iter(cie.values())))
    if not 1 <= k <= n:
        raise InputError(f"k = {k} is out of range; {n} heads were scored, so k must be 1..{n}")


def run_extraction(config: ExtractionConfig, model: TransformerBridge | None = None) -> dict:
    """Top-k heads and function vectors for every relation and for all of them; the quick eval; returns top heads."""
    bridge = model if model is not None else config.model.load()
    layout = RunLayout(Path(config.out_base))
    inputs = load_cie_sweep(layout, bridge, config.sampled_trials)
    _check_k(config.k, inputs.cie)
    edit_layer = namer(bridge).check_layer(bridge.cfg.n_layers // 3 if config.edit_layer is None
                                           else config.edit_layer)
    seed_everything(inputs.snapshot.config["seed"])
    qids = list(inputs.snapshot.qids)
    key = config.score_key
    with step_log(layout.extraction_log) as log:
        top = {q: top_k(inputs.cie[q], key, config.k) for q in qids}
        global_top = top_k(aie_scores(inputs.cie, qids), key, config.k)
        global_mean = torch.stack([inputs.mean_z[q] for q in qids]).mean(0)
        by_layer = torch.stack([function_vector_by_layer(bridge, [s.as_head for s in top[q]], inputs.mean_z[q])
                                for q in qids])
        fv_global = function_vector(bridge, [s.as_head for s in global_top], global_mean)
        write_json(layout.top_heads, {"score_key": key.value, "k": config.k, "aie_qids": qids,
                                      "by_qid": {q: heads_json(top[q], key) for q in qids},
                                      "global": heads_json(global_top, key)})
        _save_tensor_file(layout.fv_by_layer, {
            "qids": qids, "fv_by_layer": by_layer, "heads": {q: [[s.layer, s.head] for s in top[q]] for q in qids},
            "score_key": key.value, "k": config.k})
        _save_tensor_file(layout.fv_global, fv_global.clone())
        write_json(layout.fv_global_meta, _fv_meta(bridge, inputs, global_top, key, config.k, qids, fv_global))
        for q in qids:
            log.info("top-%d %s: %s (|FV| = %.3f)", config.k, q, " ".join(f"{s.layer}.{s.head}" for s in top[q]),
                     float(by_layer[qids.index(q)].sum(0).norm()))
        log.info("global (AIE over %d relations): %s", len(qids), " ".join(f"{s.layer}.{s.head}" for s in global_top))
        vectors = {**{q: by_layer[i].sum(0) for i, q in enumerate(qids)}, GLOBAL: fv_global}
        quick = {kind.value: evaluate_injection(
            bridge, inputs.held_out, vectors, [(q, q) for q in qids] + [(GLOBAL, q) for q in qids], [edit_layer],
            [config.alpha], kind, config.n_eval_trials, config.rows_per_forward).summary for kind in PromptKind}
        write_json(layout.quick_eval, {"edit_layer": edit_layer, "alpha": config.alpha,
                                       "trials": "held-out evaluation split" if inputs.split else "all sampled",
                                       "n_eval_trials_per_qid": config.n_eval_trials, "results": quick})
        for row in quick[PromptKind.ZERO_SHOT.value]:
            log.info("quick eval 0-shot %s FV on %s @L%d: acc %.3f → %.3f, Δlogprob %+.3f", row["fv_qid"],
                     row["eval_qid"], edit_layer, row["baseline_accuracy"], row["injected_accuracy"],
                     row["mean_delta_logprob"])
    return {"by_qid": top, "global": global_top}


def _fv_meta(model, inputs: SweepInputs, heads: list[HeadScore], key: ScoreKey, k: int, qids: list[str],
             fv: torch.Tensor) -> dict:
    return {"rcid_tl_version": __version__, "model": model_label(model), "resid_dim": model.cfg.d_model,
            "score_key": key.value, "k": k, "qids": qids, "heads": heads_json(heads, key),
            "mean_activations": "unweighted mean over the relations of each one's clean last-token mean",
            "construction": "sum over heads of mean z @ W_O[layer, head] (no output-projection bias)",
            "norm": float(fv.norm()), "sampled_trials_sha256": inputs.snapshot.digest(),
            "seed": inputs.snapshot.config["seed"]}


def write_aie_package(
    out_base: Path, model: TransformerBridge, qids: list[str], k: int, key: ScoreKey = ScoreKey.LOGPROB
) -> Path:
    """`artifacts/aie/<aie_id>/`: selected_qids.json, aie_scores.csv, top_heads.json, fv_meta.json and
    fv_global_resid.pt, for an AIE over `qids` only."""
    layout = RunLayout(Path(out_base))
    inputs = load_cie_sweep(layout, model)
    unknown = [q for q in qids if q not in inputs.snapshot.qids]
    if unknown:
        raise InputError(f"unknown q_id {unknown[0]!r}; the sampled trials have: {', '.join(inputs.snapshot.qids)}")
    _check_k(k, inputs.cie)
    scores = aie_scores(inputs.cie, qids)
    top = top_k(scores, key, k)
    ident = aie_id(qids, key, k, inputs.snapshot.digest(), model_label(model))
    out = layout.aie_package(ident)
    fv = function_vector(model, [s.as_head for s in top], torch.stack([inputs.mean_z[q] for q in qids]).mean(0))
    with step_log(layout.cie_log) as log:
        write_json(out / "selected_qids.json", {"aie_id": ident, "selected_qids": list(qids),
                                                "sampled_trials_sha256": inputs.snapshot.digest()})
        write_aie_csv(out / "aie_scores.csv", scores, key)
        write_json(out / "top_heads.json", {"aie_id": ident, "score_key": key.value, "k": k,
                                            "heads": heads_json(top, key)})
        write_json(out / "fv_meta.json", {**_fv_meta(model, inputs, top, key, k, list(qids), fv), "aie_id": ident})
        _save_tensor_file(out / "fv_global_resid.pt", fv.clone())
        log.info("AIE package %s over %s: %s", ident, ",".join(qids), json.dumps(heads_json(top, key)[:3]))
    return out
