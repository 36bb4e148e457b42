"""The CIE sweep (Todd et al. 2024 §2): sample the relation trials once, split each relation's trials into selection
and held-out evaluation trials, then — on the selection trials only — the CIE of every relation × (layer, head), the
clean mean activations, trial-level metrics and the all-relation AIE table, into the run layout."""

import json
import random
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch
from transformer_lens.model_bridge import TransformerBridge

from rcid_tl.artifacts import write_text, write_torch
from rcid_tl.errors import InputError
from rcid_tl.frames import aie_figure, cie_frame
from rcid_tl.fv.cie import RelationCIE, relation_cie
from rcid_tl.fv.layout import RunLayout, step_log
from rcid_tl.fv.ranking import HeadScore, ScoreKey, aie_scores, cie_scores, write_aie_csv, write_cie_csv
from rcid_tl.fv.relations import load_relations
from rcid_tl.fv.split import SplitIndices, TrialSplit
from rcid_tl.fv.trials import SamplingConfig, TrialSnapshot, sample_trials
from rcid_tl.hooks.names import Head
from rcid_tl.models.loading import model_label
from rcid_tl.sweeps.common import ModelSpec, parse_layers

SLOT = "last_token"  # the position every mean activation is taken at (`slot_q` in the mean-acts files)


def seed_everything(seed: int) -> None:
    """Python, NumPy and torch seeds; the pipeline's stages themselves draw only from seeded streams."""
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)


@dataclass(frozen=True)
class CIESweepConfig:
    """Where the relations come from, how to sample them, which layers to sweep, and the run's base directory."""

    model: ModelSpec
    out_base: Path
    relations: str = "world"
    qids: tuple[str, ...] | None = None
    input_col: str = "input"
    output_col: str = "output"
    sampling: SamplingConfig = field(default_factory=SamplingConfig)
    layers: str = "all"
    score_key: ScoreKey = ScoreKey.LOGPROB
    rows_per_forward: int = 128
    fixed_trials: Path | None = None  # debug/replay override; the default path samples
    split: TrialSplit = field(default_factory=TrialSplit)  # the sweep sees only the selection trials

    def __post_init__(self) -> None:
        if self.rows_per_forward < 1:
            raise InputError(f"--batch-size must be ≥ 1, got {self.rows_per_forward}")


@dataclass(frozen=True)
class CIESweepResult:
    layout: RunLayout
    snapshot: TrialSnapshot  # every sampled trial
    cie: dict[str, list[HeadScore]]
    results: dict[str, RelationCIE]  # on the selection trials
    split: SplitIndices

    def to_frame(self):
        """A tidy pandas DataFrame, one row per (relation, layer, head): its CIE (rcid_tl.frames)."""
        return cie_frame(self.cie)

    def figure(self):
        """AIE per (layer, head): the CIE averaged over relations (a plotly Figure)."""
        return aie_figure(self.cie)


def prepare_trials(config: CIESweepConfig, model: TransformerBridge) -> TrialSnapshot:
    """The trial snapshot: sampled from the relation input, or (override) an existing snapshot re-checked."""
    if config.fixed_trials is not None:
        snapshot = TrialSnapshot.load(config.fixed_trials)
        snapshot.check_tokenizer(model.tokenizer)
        return snapshot
    relations = load_relations(config.relations, config.input_col, config.output_col,
                               list(config.qids) if config.qids else None)
    return sample_trials(relations, model.tokenizer, config.sampling, model_label(model), model.cfg.n_ctx)


def run_cie_sweep(config: CIESweepConfig, model: TransformerBridge | None = None) -> CIESweepResult:
    """Validate and sample first (nothing is written if that fails), then sweep and write the sweep's artifacts."""
    bridge = model if model is not None else config.model.load()
    seed_everything(config.sampling.seed)
    layers = parse_layers(config.layers, bridge.cfg.n_layers)
    heads = [Head(layer, h) for layer in layers for h in range(bridge.cfg.n_heads)]
    snapshot = prepare_trials(config, bridge)
    split = config.split.resolve(snapshot)  # refuses a split that does not fit, before anything is written
    chosen_on = split.selection(snapshot)
    layout = RunLayout(Path(config.out_base))
    with step_log(layout.cie_log) as log:
        log.info("CIE sweep model=%s relations=%s qids=%s layers=%s heads=%d trials/qid=%s demos=%s seed=%s",
                 model_label(bridge), config.relations, ",".join(snapshot.qids), list(layers), len(heads),
                 snapshot.config["n_trials_per_q"], snapshot.config["n_demos"], snapshot.config["seed"])
        if snapshot.meta["dropped"]:
            log.warning("dropped relations (--allow-drop): %s", snapshot.meta["dropped"])
        snapshot.save(layout.sampled_trials)
        split.save(layout.trial_split)
        log.info("held-out split (seed %d): %s", split.seed, {q: [len(s), len(e)] for q, (s, e) in
                                                             split.by_qid.items()})
        results = {}
        for qid in snapshot.qids:
            results[qid] = relation_cie(bridge, chosen_on.of(qid), heads, config.rows_per_forward)
            best = max(cie_scores(results[qid]), key=lambda s: s.score(config.score_key))
            log.info("CIE %s: n=%d clean acc %.3f corrupted acc %.3f; best head %d.%d %s=%.4f", qid,
                     results[qid].n_trials, results[qid].clean.top1.mean(), results[qid].corrupted.top1.mean(),
                     best.layer, best.head, config.score_key.value, best.score(config.score_key))
        cie = {q: cie_scores(r) for q, r in results.items()}
        _write_artifacts(layout, bridge, chosen_on, results, cie, config.score_key, list(layers))
        log.info("CIE sweep wrote %s", layout.artifacts)
    return CIESweepResult(layout, snapshot, cie, results, split)


def mean_acts_payload(model: TransformerBridge, clean_mean: torch.Tensor, **extra) -> dict:
    """The mean-acts file contract: clean_mean, slot_q, n_heads, head_dim, resid_dim (+ provenance)."""
    return {"clean_mean": clean_mean.clone(), "slot_q": SLOT, "n_heads": model.cfg.n_heads,
            "head_dim": model.cfg.d_head, "resid_dim": model.cfg.d_model, "n_layers": model.cfg.n_layers, **extra}


def _save_tensor_file(path: Path, payload) -> None:
    write_torch(path, payload)  # atomic, like every other artifact


def _write_artifacts(layout, model, chosen_on: TrialSnapshot, results: dict[str, RelationCIE], cie, key: ScoreKey,
                     layers: list[int]) -> None:
    write_cie_csv(layout.cie_scores, cie, key)
    write_aie_csv(layout.aie_scores, aie_scores(cie, list(cie)), key)
    lines = []
    for qid, r in results.items():
        _save_tensor_file(layout.qid_clean_mean(qid), mean_acts_payload(
            model, r.mean_z, q_id=qid, n_trials=r.n_trials, layers=layers))
        for t, trial in enumerate(chosen_on.of(qid)):
            lines.append(json.dumps({
                "q_id": qid, "trial": trial.index,
                "clean_logprob": float(r.clean.logprob[t]), "clean_p": float(r.clean.prob[t]),
                "clean_top1": bool(r.clean.top1[t]), "corrupted_logprob": float(r.corrupted.logprob[t]),
                "corrupted_p": float(r.corrupted.prob[t]), "corrupted_top1": bool(r.corrupted.top1[t]),
                "delta_logprob": {str(h): float(r.delta_logprob[i, t]) for i, h in enumerate(r.heads)},
                "delta_p": {str(h): float(r.delta_p[i, t]) for i, h in enumerate(r.heads)},
            }))
    write_text(layout.trial_metrics, "\n".join(lines) + "\n")
    global_mean = torch.stack([r.mean_z for r in results.values()]).mean(0)  # every relation weighted equally
    _save_tensor_file(layout.global_clean_mean, mean_acts_payload(model, global_mean, qids=list(results),
                                                                  layers=layers))
    _save_tensor_file(layout.legacy_mean_activations, global_mean.clone())


def run_sampling(config: CIESweepConfig, model: TransformerBridge | None = None) -> TrialSnapshot:
    """The sweep's first half alone: sample (or re-check) the trials and write `sampled_trials.json`."""
    bridge = model if model is not None else config.model.load()
    seed_everything(config.sampling.seed)
    snapshot = prepare_trials(config, bridge)
    split = config.split.resolve(snapshot)  # refuses a split that does not fit, before anything is written
    chosen_on = split.selection(snapshot)
    layout = RunLayout(Path(config.out_base))
    with step_log(layout.cie_log) as log:
        snapshot.save(layout.sampled_trials)
        log.info("sampled %d trials of %s (dropped: %s) into %s", len(snapshot.trials), ",".join(snapshot.qids),
                 snapshot.meta["dropped"] or "none", layout.sampled_trials)
    return snapshot
