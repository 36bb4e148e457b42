"""`rcid-tl fv ...`: the function-vector pipeline of Todd et al. 2024 (CIE sweep → AIE → vectors → injection sweep)."""

from pathlib import Path
from typing import Annotated, Optional

import typer
from rich.console import Console

from rcid_tl.checks import check_finite, check_out, check_plain_name
from rcid_tl.cli import options as o
from rcid_tl.errors import InputError

fv_app = typer.Typer(name="fv", no_args_is_help=True, help="Function vectors: CIE/AIE head sweeps, FVs, injection.")

FV_MODEL = "world-gpt2"  # embedded, so `rcid-tl fv run` works offline out of the box
Relations = Annotated[str, typer.Option("--relations", help="'world', a relation CSV, or a Todd-format JSON dir/file.")]
Qids = Annotated[Optional[str], typer.Option("--qids", help="Comma list of relations (q_ids) to use; default all.")]
InputCol = Annotated[str, typer.Option("--input-col", help="CSV column holding each pair's input.")]
OutputCol = Annotated[str, typer.Option("--output-col", help="CSV column holding each pair's output.")]
NTrials = Annotated[int, typer.Option("--n-trials", help="N_TRIALS_PER_Q: trials per relation (fail-fast).")]
NDemos = Annotated[int, typer.Option("--n-demos", help="N_DEMOS: demonstrations per prompt.")]
Format = Annotated[str, typer.Option("--format", help="auto | qa ('Q: x\\nA: y') | colon ('x: y'); auto: colon "
                                                      "for the world relations, qa otherwise.")]
AllowDrop = Annotated[bool, typer.Option("--allow-drop", help="Drop relations that cannot fill their quota "
                                                              "(recorded) instead of failing.")]
Layers = Annotated[str, typer.Option("--layers", help="Layers to sweep: all, or a comma list such as 0,3.")]
ScoreKeyOpt = Annotated[str, typer.Option("--score-key", help="mean_delta_logprob (primary) | mean_delta_p.")]
OutBase = Annotated[Optional[Path], typer.Option("--out-base-dir", help="Run base (default: results_fv/relation/"
                                                                        "<run-id>).")]
RunId = Annotated[Optional[str], typer.Option("--run-id", help="Run id under results_fv/relation/.")]
FixedTrials = Annotated[Optional[Path], typer.Option("--fixed-trials", help="Replay a sampled_trials.json instead "
                                                                            "of sampling (debug override).")]
Trials = Annotated[Optional[Path], typer.Option("--sampled-trials", help="Default: <base>/artifacts/"
                                                                         "sampled_trials.json.")]
K = Annotated[int, typer.Option("--k", help="Top-k heads in a function vector (Todd et al.: 10).")]
EditLayer = Annotated[Optional[int], typer.Option("--edit-layer", help="Quick-eval layer of `fv vectors` "
                                                                        "(default depth//3).")]
Alpha = Annotated[float, typer.Option("--alpha", help="Injection scale for the quick eval of `fv vectors`.")]
Alphas = Annotated[str, typer.Option("--alpha", help="Injection scale(s), comma list such as 1,2.")]
NEval = Annotated[Optional[int], typer.Option("--n-eval", help="Held-out evaluation trials per relation, never used "
                                                                "to build or choose an FV (default: the rest).")]
NSelect = Annotated[Optional[int], typer.Option("--n-select", help="Selection trials per relation: they build the FV "
                                                                    "and choose its layer and α (default: half).")]
SplitSeed = Annotated[int, typer.Option("--split-seed", help="Seed of the selection/evaluation split.")]
QuickNEval = Annotated[Optional[int], typer.Option("--n-eval", help="Held-out trials per relation in the quick eval "
                                                                     "(default all).")]
InjectNSelect = Annotated[Optional[int], typer.Option("--n-select", help="Selection trials per relation (default: "
                                                                          "the run's split).")]
InjectNEval = Annotated[Optional[int], typer.Option("--n-eval", help="Held-out evaluation trials per relation "
                                                                      "(default: the run's split).")]
InjectSplitSeed = Annotated[Optional[int], typer.Option("--split-seed", help="Re-split with this seed (default: the "
                                                                              "run's split).")]
FvOpt = Annotated[str, typer.Option("--fv", help="qid (each relation's own FV) | global (AIE FV).")]
FvSourceQid = Annotated[Optional[str], typer.Option("--fv-source-qid", help="Only this relation's FV.")]
Scope = Annotated[str, typer.Option("--eval-scope", help="auto | in_domain | all_qids | qid_list.")]
EvalQids = Annotated[Optional[str], typer.Option("--eval-qids", help="Comma list, for --eval-scope qid_list.")]
InjectLayers = Annotated[str, typer.Option("--inject-layers", help="Injection layer sweep: all, or a comma list.")]


def _base(out_base_dir: Path | None, run_id: str | None, model: str, relations: str, seed: int | None) -> Path:
    from rcid_tl.fv.layout import RunLayout, slug

    if run_id is not None:
        check_plain_name(run_id, "--run-id")
    if out_base_dir is not None:
        return check_out(out_base_dir, "--out-base-dir")
    if run_id is None and seed is None:
        raise InputError("name the run: --out-base-dir BASE or --run-id ID")
    return check_out(RunLayout.for_run(run_id or f"{slug(model)}_{slug(relations)}_seed{seed}").base, "--run-id")


def _alphas(text: str) -> tuple[float, ...]:
    try:
        alphas = tuple(float(a) for a in text.split(","))
    except ValueError:
        raise InputError(f"bad --alpha {text!r}; write numbers such as 1 or 0.5,1,2") from None
    for alpha in alphas:
        check_finite(alpha, "--alpha")
    return alphas


def _cie_config(model, relations, qids, input_col, output_col, n_trials, n_demos, seed, fmt, no_bos, allow_drop,
                layers, score_key, batch_size, base, fixed_trials, device, dtype, split=None):
    from rcid_tl.fv.cie_sweep import CIESweepConfig
    from rcid_tl.fv.ranking import parse_score_key
    from rcid_tl.fv.relations import WORLD, parse_qids
    from rcid_tl.fv.split import TrialSplit
    from rcid_tl.fv.trials import SamplingConfig, parse_format
    from rcid_tl.sweeps.common import ModelSpec

    chosen = parse_qids(qids)
    prompt_format = parse_format(("colon" if relations == WORLD else "qa") if fmt == "auto" else fmt)
    sampling = SamplingConfig(n_trials, n_demos, seed, prompt_format, not no_bos, allow_drop)
    return CIESweepConfig(ModelSpec(model, device, dtype), base, relations, tuple(chosen) if chosen else None,
                          input_col, output_col, sampling, layers, parse_score_key(score_key), batch_size, fixed_trials,
                          split or TrialSplit())


def _injection_config(model, base, fv, fv_source_qid, eval_scope, eval_qids, inject_layers, alpha, n_eval,
                      batch_size, sampled_trials, device, dtype, n_select=None, split_seed=None):
    from rcid_tl.errors import parse_choice
    from rcid_tl.fv.injection_sweep import EvalScope, FVSource, InjectionSweepConfig
    from rcid_tl.fv.relations import parse_qids
    from rcid_tl.sweeps.common import ModelSpec

    listed = parse_qids(eval_qids)
    return InjectionSweepConfig(ModelSpec(model, device, dtype), base, parse_choice(FVSource, fv, "--fv"),
                                fv_source_qid, parse_choice(EvalScope, eval_scope, "--eval-scope"),
                                tuple(listed) if listed else None, inject_layers, _alphas(alpha), n_eval, batch_size,
                                sampled_trials, n_select, split_seed)


def _say(text: str) -> None:
    Console(stderr=True, soft_wrap=True).print(text, highlight=False)


@fv_app.command("export-world-relations")
def export_world_relations(out: o.Out = Path("relations_world.csv")) -> None:
    """Write the synthetic world's relations (what the embedded teachers learned) as a q_id,input,output CSV."""
    from rcid_tl.fv.relations import world_relation_set, write_relation_csv

    check_out(out, kind="file")
    _say(f"wrote {write_relation_csv(out, world_relation_set())}")


@fv_app.command()
def sample(
    model: o.Model = FV_MODEL, relations: Relations = "world", qids: Qids = None, input_col: InputCol = "input",
    output_col: OutputCol = "output", n_trials: NTrials = 16, n_demos: NDemos = 5, seed: o.Seed = 42,
    fmt: Format = "auto", no_bos: o.NoBos = False, allow_drop: AllowDrop = False, out_base_dir: OutBase = None,
    run_id: RunId = None, device: o.Device = "cpu", dtype: o.Dtype = "float32",
) -> None:
    """Sample the relation trials once into <base>/artifacts/sampled_trials.json (the CIE sweep's first half)."""
    from rcid_tl.fv.cie_sweep import run_sampling

    base = _base(out_base_dir, run_id, model, relations, seed)
    config = _cie_config(model, relations, qids, input_col, output_col, n_trials, n_demos, seed, fmt, no_bos,
                         allow_drop, "all", "mean_delta_logprob", 128, base, None, device, dtype)
    snapshot = run_sampling(config)
    _say(f"sampled {len(snapshot.trials)} trials of {len(snapshot.qids)} relations into {base}")


@fv_app.command()
def cie(
    model: o.Model = FV_MODEL, relations: Relations = "world", qids: Qids = None, input_col: InputCol = "input",
    output_col: OutputCol = "output", n_trials: NTrials = 16, n_demos: NDemos = 5, seed: o.Seed = 42,
    fmt: Format = "auto", no_bos: o.NoBos = False, allow_drop: AllowDrop = False, layers: Layers = "all",
    score_key: ScoreKeyOpt = "mean_delta_logprob", batch_size: o.BatchSize = 128, out_base_dir: OutBase = None,
    run_id: RunId = None, fixed_trials: FixedTrials = None, n_select: NSelect = None, n_eval: NEval = None,
    split_seed: SplitSeed = 0, device: o.Device = "cpu", dtype: o.Dtype = "float32",
) -> None:
    """The CIE sweep: sample trials once, hold out evaluation trials, then the CIE of every relation × (layer, head)
    on the selection trials, batched.

    Example: rcid-tl fv cie --model world-gpt2 --relations world --n-trials 16 --run-id demo
    """
    from rcid_tl.fv.cie_sweep import run_cie_sweep
    from rcid_tl.fv.split import TrialSplit

    base = _base(out_base_dir, run_id, model, relations, seed)
    split = TrialSplit(n_select, n_eval, split_seed)
    config = _cie_config(model, relations, qids, input_col, output_col, n_trials, n_demos, seed, fmt, no_bos,
                         allow_drop, layers, score_key, batch_size, base, fixed_trials, device, dtype, split)
    if fixed_trials is None:
        split.sizes(n_trials)
    result = run_cie_sweep(config)
    _say(f"CIE for {len(result.cie)} relations; wrote {result.layout.artifacts}")


@fv_app.command()
def aie(
    qids: Annotated[str, typer.Option("--qids", help="Comma list of relations to average over (required).")],
    model: o.Model = FV_MODEL, k: K = 10, score_key: ScoreKeyOpt = "mean_delta_logprob",
    out_base_dir: OutBase = None, run_id: RunId = None, device: o.Device = "cpu", dtype: o.Dtype = "float32",
) -> None:
    """AIE over a chosen relation subset → artifacts/aie/<aie_id>/ (selected_qids, scores, top heads, FV)."""
    from rcid_tl.fv.ranking import parse_score_key
    from rcid_tl.fv.relations import parse_qids
    from rcid_tl.fv.extraction import write_aie_package
    from rcid_tl.sweeps.common import ModelSpec

    chosen = parse_qids(qids)
    if not chosen:
        raise InputError("--qids must name at least one relation")
    key = parse_score_key(score_key)
    bridge = ModelSpec(model, device, dtype).load()
    out = write_aie_package(_base(out_base_dir, run_id, model, "", None), bridge, chosen, k, key)
    _say(f"wrote AIE package {out}")


@fv_app.command()
def vectors(
    model: o.Model = FV_MODEL, k: K = 10, score_key: ScoreKeyOpt = "mean_delta_logprob",
    edit_layer: EditLayer = None, alpha: Alpha = 1.0, n_eval: QuickNEval = None, batch_size: o.BatchSize = 128,
    out_base_dir: OutBase = None, run_id: RunId = None, sampled_trials: Trials = None, device: o.Device = "cpu",
    dtype: o.Dtype = "float32",
) -> None:
    """Function-vector extraction: top-k heads → function vectors (per relation and global) and a quick injection
    eval on the held-out trials."""
    from rcid_tl.fv.ranking import parse_score_key
    from rcid_tl.fv.extraction import ExtractionConfig, run_extraction
    from rcid_tl.sweeps.common import ModelSpec

    base = _base(out_base_dir, run_id, model, "", None)
    top = run_extraction(ExtractionConfig(ModelSpec(model, device, dtype), base, k, parse_score_key(score_key),
                                          edit_layer, alpha, n_eval, batch_size, sampled_trials))
    _say(f"global top-{k}: {' '.join(f'{s.layer}.{s.head}' for s in top['global'])}; wrote {base / 'artifacts'}")


@fv_app.command()
def inject(
    model: o.Model = FV_MODEL, fv: FvOpt = "qid", fv_source_qid: FvSourceQid = None, eval_scope: Scope = "auto",
    eval_qids: EvalQids = None, inject_layers: InjectLayers = "all", alpha: Alphas = "1.0",
    n_select: InjectNSelect = None, n_eval: InjectNEval = None, split_seed: InjectSplitSeed = None,
    batch_size: o.BatchSize = 128, out_base_dir: OutBase = None, run_id: RunId = None,
    sampled_trials: Trials = None, device: o.Device = "cpu", dtype: o.Dtype = "float32",
) -> None:
    """The injection sweep: 0-shot α·FV after layer ℓ at the last token; layer and α chosen on the selection trials,
    scored on the held-out evaluation trials beside 0-shot, shuffled-label ICL and a random vector of equal norm."""
    from rcid_tl.fv.injection_sweep import run_injection_sweep

    base = _base(out_base_dir, run_id, model, "", None)
    summary = run_injection_sweep(_injection_config(model, base, fv, fv_source_qid, eval_scope, eval_qids,
                                                    inject_layers, alpha, n_eval, batch_size, sampled_trials,
                                                    device, dtype, n_select, split_seed))
    _report(summary, base)


def _report(summary: dict, base: Path) -> None:
    for row in summary["held_out"]:
        ev = row["evaluation"]
        fv, zero, rand = ev["fv_accuracy"], ev["zero_shot_accuracy"], ev["random_accuracy"]
        _say(f"{row['fv_qid']} → {row['eval_qid']}: layer {row['layer']}, α {row['alpha']:g} chosen on "
             f"{row['selection']['n']} trials; held out (n={ev['n']}): 0-shot {zero['estimate']:.2f} → +FV "
             f"{fv['estimate']:.2f} [{fv['low']:.2f}, {fv['high']:.2f}], +random {rand['estimate']:.2f}")
    _say(f"wrote {base}")


@fv_app.command()
def run(
    model: o.Model = FV_MODEL, relations: Relations = "world", qids: Qids = None, input_col: InputCol = "input",
    output_col: OutputCol = "output", n_trials: NTrials = 16, n_demos: NDemos = 5, seed: o.Seed = 42,
    fmt: Format = "auto", no_bos: o.NoBos = False, allow_drop: AllowDrop = False, layers: Layers = "all",
    score_key: ScoreKeyOpt = "mean_delta_logprob", k: K = 10, edit_layer: EditLayer = None,
    fv: FvOpt = "qid", fv_source_qid: FvSourceQid = None, eval_scope: Scope = "auto", eval_qids: EvalQids = None,
    inject_layers: InjectLayers = "all", alpha: Alphas = "1.0", n_select: NSelect = None, n_eval: NEval = None,
    split_seed: SplitSeed = 0, batch_size: o.BatchSize = 128, out_base_dir: OutBase = None, run_id: RunId = None,
    device: o.Device = "cpu", dtype: o.Dtype = "float32",
) -> None:
    """CIE sweep → FV extraction → injection sweep end to end into results_fv/relation/<run-id>/, with each
    relation's trials split into selection trials (build the FV, choose layer and α) and held-out evaluation trials.

    Example: rcid-tl fv run --model world-gpt2 --relations world --n-trials 16 --k 4 --run-id world-demo
    """
    from rcid_tl.fv.extraction import ExtractionConfig
    from rcid_tl.fv.pipeline import FVRun, run_fv
    from rcid_tl.fv.ranking import parse_score_key
    from rcid_tl.fv.split import TrialSplit

    base = _base(out_base_dir, run_id, model, relations, seed)
    sweep = _cie_config(model, relations, qids, input_col, output_col, n_trials, n_demos, seed, fmt, no_bos,
                        allow_drop, layers, score_key, batch_size, base, None, device, dtype,
                        TrialSplit(n_select, n_eval, split_seed))
    alphas = _alphas(alpha)
    vectors_config = ExtractionConfig(sweep.model, base, k, parse_score_key(score_key), edit_layer, alphas[0], n_eval,
                                      batch_size)
    injection = _injection_config(model, base, fv, fv_source_qid, eval_scope, eval_qids, inject_layers, alpha, None,
                                  batch_size, None, device, dtype)
    _, top, summary = run_fv(FVRun(sweep, vectors_config, injection))
    _say(f"global top-{k}: {' '.join(f'{s.layer}.{s.head}' for s in top['global'])}")
    _report(summary, base)
