"""The injection sweep (Todd et al. 2024 §3): 0-shot FV injection over layers and α on the CIE sweep's trial snapshot
(never re-sampled), held out: the layer and α are chosen on the selection trials and the choice is scored once on the
evaluation trials, beside 0-shot, shuffled-label ICL and a random vector of the FV's norm. FV input: every relation's
own FV (`fv_by_layer.pt`, default scope in_domain) or the global FV (`fv_global_resid.pt`, default scope all_qids);
`qid_list` evaluates named relations."""

import json
from dataclasses import dataclass
from enum import Enum
from pathlib import Path

import torch
from transformer_lens.model_bridge import TransformerBridge

from rcid_tl import __version__
from rcid_tl.artifacts import read_torch, write_json, write_text
from rcid_tl.checks import check_count
from rcid_tl.errors import InputError
from rcid_tl.fv.cie_sweep import seed_everything
from rcid_tl.fv.evaluation import PromptKind, matrices
from rcid_tl.fv.extraction import GLOBAL
from rcid_tl.fv.heldout import HeldOutConfig, select_and_evaluate
from rcid_tl.fv.layout import RunLayout, step_log
from rcid_tl.fv.split import NOTHING_HELD_OUT, SplitIndices, TrialSplit, check_held_out
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
    """The FVs, where they are evaluated, the selection grid, and the held-out split: `n_select`, `n_eval` and
    `split_seed` all None use the split the run's vectors were built with; any given re-splits (the others taken
    from that split), and an evaluation trial the vectors were built from is refused."""

    model: ModelSpec
    out_base: Path
    fv: FVSource = FVSource.QID
    fv_source_qid: str | None = None  # only this relation's FV (fv=qid)
    eval_scope: EvalScope = EvalScope.AUTO
    eval_qids: tuple[str, ...] | None = None  # for eval_scope=qid_list
    layers: str = "all"  # the layer sweep (default: all)
    alphas: tuple[float, ...] = (1.0,)
    n_eval: int | None = None  # held-out evaluation trials per relation
    rows_per_forward: int = 128
    sampled_trials: Path | None = None
    n_select: int | None = None  # selection trials per relation
    split_seed: int | None = None
    n_random: int = 5  # random-direction controls per choice

    def __post_init__(self) -> None:
        if not self.alphas:
            raise InputError("give at least one --alpha")
        check_count(self.n_eval, "--n-eval")
        check_count(self.n_select, "--n-select")
        check_count(self.split_seed, "--split-seed", minimum=0)
        check_count(self.n_random, "n_random")

    def resolve_split(self, snapshot: TrialSnapshot, built_from: SplitIndices | None) -> SplitIndices:
        """The held-out split to use, checked against the trials the vectors were built from."""
        if built_from is None:
            raise InputError(NOTHING_HELD_OUT)
        if self.n_select is None and self.n_eval is None and self.split_seed is None:
            return built_from
        recorded = next(iter(built_from.by_qid.values()))
        seed = built_from.seed if self.split_seed is None else self.split_seed
        n_select = len(recorded[0]) if self.n_select is None else self.n_select
        n_eval = len(recorded[1]) if self.n_eval is None and self.n_select is None else self.n_eval
        return TrialSplit(n_select, n_eval, seed).resolve(snapshot)


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
    """The (layer, α) grid on the selection trials, each (FV, relation)'s best on those, and that choice scored on
    the held-out evaluation trials with its baselines and bootstrap CIs; returns the summary."""
    bridge = model if model is not None else config.model.load()
    layout = RunLayout(Path(config.out_base))
    snapshot = TrialSnapshot.load(config.sampled_trials or layout.sampled_trials)
    snapshot.check_tokenizer(bridge.tokenizer)
    scope, sources, evals = resolve_scope(config, snapshot.qids)
    layers = parse_layers(config.layers, bridge.cfg.n_layers)
    vectors, k = _load_vectors(layout, config.fv, snapshot.qids)
    pairs = [(s, s) for s in sources] if scope is EvalScope.IN_DOMAIN else [(s, e) for s in sources for e in evals]
    eval_qids = list(dict.fromkeys(e for _, e in pairs))
    built_from = SplitIndices.load(layout.trial_split) if layout.trial_split.is_file() else None
    split = config.resolve_split(snapshot, built_from)
    check_held_out(split, built_from, eval_qids)
    seed_everything(snapshot.config["seed"])
    with step_log(layout.injection_log) as log:
        log.info("injection sweep model=%s fv=%s scope=%s sources=%s eval_qids=%s layers=%s alphas=%s",
                 model_label(bridge), config.fv.value, scope.value, ",".join(sources), ",".join(eval_qids),
                 list(layers), list(config.alphas))
        held = select_and_evaluate(
            bridge, snapshot, split, {s: {k: vectors[s]} for s in sources}, pairs,
            HeldOutConfig(tuple(layers), config.alphas, config.n_random, split.seed, config.rows_per_forward))
        grid = held.selection
        n = len(next(iter(split.by_qid.values()))[0])
        meta = {"rcid_tl_version": __version__, "model": model_label(bridge), "eval_scope": scope.value,
                "eval_qids": eval_qids, "fv": config.fv.value,
                "fv_source_qid": config.fv_source_qid, "fv_sources": sources, "k": k,
                "fv_path": str(layout.fv_by_layer if config.fv is FVSource.QID else layout.fv_global),
                "layers": list(layers), "alphas": list(config.alphas), "n_eval_per_qid": config.n_eval,
                "prompt": PromptKind.ZERO_SHOT.value, "injection": "resid_post (block output), last token, +alpha*FV",
                "selection": "layer and alpha with the highest accuracy on the selection trials (ties: mean "
                             "delta log p, then the lowest layer and alpha); entries/matrix/per-layer files are "
                             "on the selection trials, held_out on the evaluation trials",
                "split": split.to_json(), "n_random": config.n_random,
                "seed": snapshot.config["seed"], "sampled_trials_sha256": snapshot.digest(),
                "n_trials_by_qid": snapshot.meta["n_trials_by_qid"], "dropped": snapshot.meta["dropped"]}
        summary = {"eval_scope": scope.value, "fv": config.fv.value, "entries": grid.summary,
                   "best_layer": held.chosen, "matrix": matrices(grid.summary), "held_out": held.rows,
                   "split": split.to_json()}
        write_json(layout.injection_dir / "eval_summary.json", summary)
        write_text(layout.injection_dir / "eval_trials.jsonl", "".join(json.dumps(r) + "\n" for r in grid.records))
        write_json(layout.injection_dir / "eval_meta.json", meta)
        for layer in layers:
            entries = [s for s in grid.summary if s["layer"] == layer]
            write_json(layout.injection_layer_results(model_label(bridge), layer, n),
                       {"layer": layer, "entries": entries})
            write_json(layout.injection_layer_metadata(model_label(bridge), layer, n), {**meta, "layer": layer})
        for row in held.rows:
            ev = row["evaluation"]
            log.info("FV %s on %s: layer %d α=%g chosen on %d trials; held-out (n=%d) acc %.3f [%.3f, %.3f], "
                     "0-shot %.3f, random %.3f", row["fv_qid"], row["eval_qid"], row["layer"], row["alpha"],
                     row["selection"]["n"], ev["n"], ev["fv_accuracy"]["estimate"], ev["fv_accuracy"]["low"],
                     ev["fv_accuracy"]["high"], ev["zero_shot_accuracy"]["estimate"],
                     ev["random_accuracy"]["estimate"])
    return summary


def _load_vectors(layout: RunLayout, fv: FVSource, qids: tuple[str, ...]) -> tuple[dict[str, torch.Tensor], int]:
    path = layout.fv_by_layer if fv is FVSource.QID else layout.fv_global
    if not path.is_file():
        raise InputError(f"function vectors {path} do not exist; run `rcid-tl fv vectors` first")
    payload = read_torch(path, "re-run `rcid-tl fv vectors` for this run")
    if fv is FVSource.GLOBAL:
        return {GLOBAL: payload}, json.loads(layout.fv_global_meta.read_text(encoding="utf-8"))["k"]
    return {q: payload["fv_by_layer"][i].sum(0) for i, q in enumerate(payload["qids"]) if q in qids}, payload["k"]
