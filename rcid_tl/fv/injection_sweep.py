"""The injection sweep (Todd et al. 2024 §3): 0-shot FV injection eval over layers and α, on the CIE sweep's trial
snapshot (never re-sampled). FV input: every relation's own FV (`fv_by_layer.pt`, default scope in_domain) or the global FV
(`fv_global_resid.pt`, default scope all_qids); `qid_list` evaluates named relations."""

import json
from dataclasses import dataclass
from enum import Enum
from pathlib import Path

import torch
from transformer_lens.model_bridge import TransformerBridge

from rcid_tl import __version__
from rcid_tl.artifacts import read_torch, write_json, write_text
from rcid_tl.errors import InputError
from rcid_tl.fv.evaluation import PromptKind, evaluate_injection, matrices
from rcid_tl.fv.layout import RunLayout, step_log
from rcid_tl.fv.cie_sweep import seed_everything
from rcid_tl.fv.extraction import GLOBAL
from rcid_tl.fv.trials import TrialSnapshot
from rcid_tl.models.loading import model_label
from rcid_tl.sweeps.common import ModelSpec, parse_layers


class FVSource(str, Enum):
    QID = "qid"  # each relation's own FV (fv_by_layer.pt)
    GLOBAL = "global"  # the all-relation FV (fv_global_resid.pt)


class EvalScope(str, Enum):
    AUTO = "auto"
    IN_DOMAIN = "in_domain"
    ALL_QIDS = "all_qids"
    QID_LIST = "qid_list"



@dataclass(frozen=True)
class InjectionSweepConfig:
    model: ModelSpec
    out_base: Path
    fv: FVSource = FVSource.QID
    fv_source_qid: str | None = None  # only this relation's FV (fv=qid)
    eval_scope: EvalScope = EvalScope.AUTO
    eval_qids: tuple[str, ...] | None = None  # for eval_scope=qid_list
    layers: str = "all"  # the layer sweep (default: all)
    alphas: tuple[float, ...] = (1.0,)
    n_eval: int | None = None  # trials per evaluated relation (default: all sampled)
    rows_per_forward: int = 128
    sampled_trials: Path | None = None

    def __post_init__(self) -> None:
        if not self.alphas:
            raise InputError("give at least one --alpha")
        if self.n_eval is not None and self.n_eval < 1:
            raise InputError(f"--n-eval must be ≥ 1, got {self.n_eval}")


def resolve_scope(config: InjectionSweepConfig, qids: tuple[str, ...]) -> tuple[EvalScope, list[str], list[str]]:
    """(scope, FV sources, eval q_ids) with these defaults: qid FV → in_domain, global FV → all_qids."""
    scope = config.eval_scope
    if scope is EvalScope.AUTO:
        scope = EvalScope.IN_DOMAIN if config.fv is FVSource.QID else EvalScope.ALL_QIDS
    for q in [config.fv_source_qid, *(config.eval_qids or ())]:
        if q is not None and q not in qids:
            raise InputError(f"unknown q_id {q!r}; the relations are: {', '.join(qids)}")
    if config.fv_source_qid is not None and config.fv is FVSource.GLOBAL:
        raise InputError("--fv-source-qid picks a relation FV; it cannot be used with --fv global")
    if (scope is EvalScope.QID_LIST) != bool(config.eval_qids):
        raise InputError("--eval-qids is required with --eval-scope qid_list, and only allowed with it")
    if scope is EvalScope.IN_DOMAIN and config.fv is FVSource.GLOBAL:
        raise InputError("eval scope in_domain needs relation FVs (--fv qid); the global FV has no single domain")
    sources = [GLOBAL] if config.fv is FVSource.GLOBAL else [config.fv_source_qid] if config.fv_source_qid \
        else list(qids)
    evals = {EvalScope.IN_DOMAIN: None, EvalScope.ALL_QIDS: list(qids),
             EvalScope.QID_LIST: list(config.eval_qids or ())}[scope]
    return scope, sources, evals if evals is not None else sources


def run_injection_sweep(config: InjectionSweepConfig, model: TransformerBridge | None = None) -> dict:
    """Baseline vs injected 0-shot target metrics for every (FV, eval relation, layer, α); returns the summary."""
    bridge = model if model is not None else config.model.load()
    layout = RunLayout(Path(config.out_base))
    snapshot = TrialSnapshot.load(config.sampled_trials or layout.sampled_trials)
    snapshot.check_tokenizer(bridge.tokenizer)
    scope, sources, evals = resolve_scope(config, snapshot.qids)
    layers = parse_layers(config.layers, bridge.cfg.n_layers)
    vectors = _load_vectors(layout, config.fv, snapshot.qids)
    pairs = [(s, s) for s in sources] if scope is EvalScope.IN_DOMAIN else [(s, e) for s in sources for e in evals]
    seed_everything(snapshot.config["seed"])
    with step_log(layout.injection_log) as log:
        log.info("injection sweep model=%s fv=%s scope=%s sources=%s eval_qids=%s layers=%s alphas=%s", model_label(bridge),
                 config.fv.value, scope.value, ",".join(sources), ",".join(dict.fromkeys(e for _, e in pairs)),
                 list(layers), list(config.alphas))
        result = evaluate_injection(bridge, snapshot, {s: vectors[s] for s in sources}, pairs, layers,
                                    config.alphas, PromptKind.ZERO_SHOT, config.n_eval, config.rows_per_forward)
        n = config.n_eval or min(snapshot.meta["n_trials_by_qid"].values())
        meta = {"rcid_tl_version": __version__, "model": model_label(bridge), "eval_scope": scope.value,
                "eval_qids": list(dict.fromkeys(e for _, e in pairs)), "fv": config.fv.value,
                "fv_source_qid": config.fv_source_qid, "fv_sources": sources,
                "fv_path": str(layout.fv_by_layer if config.fv is FVSource.QID else layout.fv_global),
                "layers": list(layers), "alphas": list(config.alphas), "n_eval_per_qid": config.n_eval,
                "prompt": PromptKind.ZERO_SHOT.value, "injection": "resid_post (block output), last token, +alpha*FV",
                "seed": snapshot.config["seed"], "sampled_trials_sha256": snapshot.digest(),
                "n_trials_by_qid": snapshot.meta["n_trials_by_qid"], "dropped": snapshot.meta["dropped"]}
        summary = {"eval_scope": scope.value, "fv": config.fv.value, "entries": result.summary,
                   "best_layer": _best_layers(result.summary), "matrix": matrices(result.summary)}
        write_json(layout.injection_dir / "eval_summary.json", summary)
        write_text(layout.injection_dir / "eval_trials.jsonl", "".join(json.dumps(r) + "\n" for r in result.records))
        write_json(layout.injection_dir / "eval_meta.json", meta)
        for layer in layers:
            entries = [s for s in result.summary if s["layer"] == layer]
            write_json(layout.injection_layer_results(model_label(bridge), layer, n), {"layer": layer, "entries": entries})
            write_json(layout.injection_layer_metadata(model_label(bridge), layer, n), {**meta, "layer": layer})
        for best in summary["best_layer"]:
            log.info("FV %s on %s: best layer %d (α=%g) acc %.3f → %.3f, Δlogprob %+.3f", best["fv_qid"],
                     best["eval_qid"], best["layer"], best["alpha"], best["baseline_accuracy"],
                     best["injected_accuracy"], best["mean_delta_logprob"])
    return summary


def _load_vectors(layout: RunLayout, fv: FVSource, qids: tuple[str, ...]) -> dict[str, torch.Tensor]:
    path = layout.fv_by_layer if fv is FVSource.QID else layout.fv_global
    if not path.is_file():
        raise InputError(f"function vectors {path} do not exist; run `rcid-tl fv vectors` first")
    payload = read_torch(path, "re-run `rcid-tl fv vectors` for this run")
    if fv is FVSource.GLOBAL:
        return {GLOBAL: payload}
    return {q: payload["fv_by_layer"][i].sum(0) for i, q in enumerate(payload["qids"]) if q in qids}


def _best_layers(summary: list[dict]) -> list[dict]:
    """Per (FV, eval relation): the (layer, α) with the largest mean Δlogprob (ties: lowest layer, then α)."""
    best: dict[tuple[str, str], dict] = {}
    for s in summary:
        key = (s["fv_qid"], s["eval_qid"])
        if key not in best or s["mean_delta_logprob"] > best[key]["mean_delta_logprob"]:
            best[key] = s
    return list(best.values())
