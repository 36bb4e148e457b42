"""`rcid-tl fv run`: CIE sweep → FV extraction → injection sweep on one model load, every option validated before
anything is written."""

from dataclasses import dataclass, replace
from pathlib import Path

from transformer_lens.model_bridge import TransformerBridge

from rcid_tl.errors import InputError
from rcid_tl.fv.relations import load_relations
from rcid_tl.fv.injection_sweep import InjectionSweepConfig, resolve_scope, run_injection_sweep
from rcid_tl.fv.cie_sweep import CIESweepConfig, CIESweepResult, run_cie_sweep
from rcid_tl.fv.extraction import ExtractionConfig, run_extraction
from rcid_tl.models.loading import namer
from rcid_tl.sweeps.common import parse_layers


@dataclass(frozen=True)
class FVRun:
    """The three stages' configs; they share the model and `out_base`."""

    cie: CIESweepConfig
    vectors: ExtractionConfig
    injection: InjectionSweepConfig

    def __post_init__(self) -> None:
        bases = {Path(c.out_base) for c in (self.cie, self.vectors, self.injection)}
        if len(bases) != 1:
            raise InputError("all steps of one run share one --out-base-dir")


def validate(run: FVRun, model: TransformerBridge) -> None:
    """Everything that can be checked before sampling: layers, k, the edit layer, the held-out split's sizes, q_ids
    named for the eval."""
    swept = parse_layers(run.cie.layers, model.cfg.n_layers)
    n_heads = len(swept) * model.cfg.n_heads
    if not 1 <= run.vectors.k <= n_heads:
        raise InputError(f"k = {run.vectors.k} is out of range; {n_heads} heads are scored, so k must be 1..{n_heads}")
    if run.vectors.edit_layer is not None:
        namer(model).check_layer(run.vectors.edit_layer)
    parse_layers(run.injection.layers, model.cfg.n_layers)
    if run.cie.fixed_trials is None:
        run.cie.split.sizes(run.cie.sampling.n_trials_per_q)
    relations = load_relations(run.cie.relations, run.cie.input_col, run.cie.output_col,
                               list(run.cie.qids) if run.cie.qids else None)
    resolve_scope(run.injection, relations.qids)


def run_fv(run: FVRun, model: TransformerBridge | None = None) -> tuple[CIESweepResult, dict, dict]:
    """The whole pipeline; the extraction and the injection sweep read the CIE sweep's snapshot from disk (never
    re-sampling)."""
    bridge = model if model is not None else run.cie.model.load()
    validate(run, bridge)
    sweep = run_cie_sweep(run.cie, bridge)
    dropped = set(sweep.snapshot.meta["dropped"])
    injection = run.injection
    if dropped and injection.fv_source_qid in dropped:
        raise InputError(f"--fv-source-qid {injection.fv_source_qid!r} was dropped while sampling")
    if dropped and injection.eval_qids:
        injection = replace(injection, eval_qids=tuple(q for q in injection.eval_qids if q not in dropped))
    top = run_extraction(run.vectors, bridge)
    summary = run_injection_sweep(injection, bridge)
    return sweep, top, summary
