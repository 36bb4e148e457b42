"""Benchmark tables for the exact sweep engine, in one process: `transformer_lens.patching`'s loop vs the peers
(nnsight's batched invokes, pyvene's interventions; the `bench` extra) vs resumed rows through the bridge vs resumed
rows on direct forwards vs the tight FLOP bound, for `z` at `end`, `z` at every position and `resid_pre` at every
position, on world-gpt2, world-qwen2 and a GPT-2-small-shaped model (random weights, the real GPT-2 tokenizer); the
engine's ablation with peak memory; attribution patching vs exact (time ratio, Spearman, top-10 recall) with edge
attribution's (EAP, EAP-IG) time; the FV CIE sweep vs the per-head, per-trial loop; and the scaling table and figure
(`bench_scaling.py`). Every Δ is checked against the TL loop (or the bridge) within a stated tolerance, and peak
memory against two sanity checks; the script exits non-zero if any is outside.

Repeats are interleaved (A, B, C, A, B, C, ...); minimum seconds are printed, with ratios of minima. Seconds
are the process's CPU seconds on one thread (`time.process_time`), not wall time: on a machine shared with other
work, wall time is mostly waiting for a core. The
tight bound counts the matmul FLOPs a patch can change (blocks from the patched one up, positions from the patched
one to the answer, attention against the prefix, the answer's unembedding) and turns them into seconds with the
matmul GFLOP/s measured at the start. Sites are a subset where a whole sweep would take too long (`heads` = one head
per layer keeps the per-layer mix of a 144-head sweep). Not a test: timings depend on the machine and its load.

    OMP_NUM_THREADS=1 python experiments/bench_engine.py                  # every table, CPU, one thread
    python experiments/bench_engine.py --only sweeps --repeats 2
    python experiments/bench_engine.py --quick --models world-qwen2      # every table, tiny sizes (the test's run)
"""

import argparse
import contextlib
import dataclasses
import io
import time
import warnings
from pathlib import Path

import pandas as pd
import torch
from bench_engine_parts import (ablation, bridge_only, nnsight_model, nnsight_sweep, plain_forward, pyvene_model,
                                pyvene_sweep)
from bench_memory import peak_bytes
from bench_sweep import GPT2_SMALL, TOKENIZER
from transformers import AutoTokenizer, GPT2Config, GPT2LMHeadModel

from rcid_tl.allocator import keep_freed_memory
from rcid_tl.hooks.names import Head, Site
from rcid_tl.interventions.attribution import agreement, attribution_patch
from rcid_tl.interventions.edges import edge_attribution
from rcid_tl.interventions.write import Direction, Engine, PatchSite, patch_sites
from rcid_tl.metrics import metric_for
from rcid_tl.models import load_model, wrap_hf_model
from rcid_tl.progress import set_progress
from rcid_tl.tasks import build_task

# (model, sweep, prompts, sites the resumed engine sweeps, sites the TL loop and whole forwards are timed on): "all",
# "per-layer" (z: one head per layer), "three" (layers 0, middle, last: one head each for z, the whole layer for
# resid_pre) or "one" (the middle layer: one head for z). The slow methods' times on a subset are scaled to the whole
# sweep by their forward count: each runs 2 + sites forwards of the whole batch, whatever the layer.
SWEEPS = [("world-gpt2", "z-end", 8, "all", "all"), ("world-gpt2", "z-all", 8, "all", "one"),
          ("world-gpt2", "resid-all", 8, "all", "one"), ("world-gpt2", "z-end", 64, "all", "three"),
          ("world-qwen2", "z-end", 8, "all", "all"), ("world-qwen2", "z-all", 8, "all", "one"),
          ("world-qwen2", "resid-all", 8, "all", "one"), ("world-qwen2", "z-end", 64, "all", "three"),
          ("gpt2-small", "z-end", 8, "all", "three"), ("gpt2-small", "z-all", 8, "three", "one"),
          ("gpt2-small", "resid-all", 8, "one", "one"), ("gpt2-small", "z-end", 64, "three", "one")]
# --quick: one head per layer at end, one head (or the middle layer's resid_pre) at every position, 8 prompts
QUICK_SWEEPS = [(name, sweep, 8, which, which) for name in ("world-gpt2", "world-qwen2", "gpt2-small")
                for sweep, which in (("z-end", "per-layer"), ("z-all", "one"), ("resid-all", "one"))]
PEERS = ("nnsight", "pyvene")


def timed(methods: dict, repeats: int) -> tuple[dict, dict]:
    times, results = {k: [] for k in methods}, {}
    for _ in range(repeats):
        for name, run in methods.items():
            start = time.process_time()  # CPU seconds, one thread: on the shared machine wall time was mostly waiting
            results[name] = run()
            times[name].append(time.process_time() - start)
    return times, results


MATMUL = (torch.randn(512, 768), torch.randn(768, 3072))
MATMUL_FLOPS = 20 * 2 * 512 * 768 * 3072


def matmuls() -> None:
    """The rate probe: 20 matmuls of a GPT-2-small MLP's shape (timed like a sweep, it gives the rate of that moment)."""
    for _ in range(20):
        MATMUL[0] @ MATMUL[1]


def matmul_gflops() -> float:
    """The best of five rates (the timings are minima too: the machine's load only slows things down)."""
    matmuls()
    times, _ = timed({"matmul": matmuls}, 5)
    return MATMUL_FLOPS / min(times["matmul"]) / 1e9


def gpt2_small():
    tokenizer = AutoTokenizer.from_pretrained(TOKENIZER)
    torch.manual_seed(0)
    hf = GPT2LMHeadModel(GPT2Config(vocab_size=len(tokenizer), n_positions=128, **GPT2_SMALL))
    return wrap_hf_model(hf, tokenizer, label="random-gpt2-small")


def one_template(model, n: int):
    """n IOI examples of one template and length, with every position named p0, p1, ... (TL's loop takes one
    position for the whole batch)."""
    full = build_task(model, "ioi", n=n * 80, seed=0)
    first = full.examples[0]
    keep = tuple(e for e in full.examples if e.template == first.template
                 and len(e.clean_ids) == len(first.clean_ids))[:n]
    assert len(keep) == n, f"only {len(keep)} examples share one template"
    dataset = dataclasses.replace(full, examples=keep)
    batch = dataset.batch()
    end = int(batch.answer_pos[0])
    named = {f"p{p}": torch.full((n,), p) for p in range(end + 1)}
    return dataset, dataclasses.replace(batch, positions={**batch.positions, **named}), end


def sweep_sites(model, sweep: str, which: str, end: int) -> list[PatchSite]:
    cfg = model.cfg
    layers = {"three": sorted({0, cfg.n_layers // 2, cfg.n_layers - 1}), "one": [cfg.n_layers // 2]}.get(
        which, range(cfg.n_layers))
    heads = [(layer, h) for layer in layers for h in range(cfg.n_heads)] if which == "all" else \
        [(layer, layer % cfg.n_heads) for layer in layers]
    positions = ["end"] if sweep == "z-end" else [f"p{p}" for p in range(end + 1)]
    if sweep == "resid-all":
        return [PatchSite(Site.RESID_PRE, layer, p) for layer in layers for p in positions]
    return [PatchSite(Site.Z, layer, p, h) for layer, h in heads for p in positions]


def _matmul_sizes(cfg) -> tuple[int, int, int, int]:
    """Per position: a block's query, key+value and output projections and its MLP, in multiply-adds."""
    d, kv_heads = cfg.d_model, getattr(cfg, "n_key_value_heads", None) or cfg.n_heads
    # GPT-2: two MLP matmuls; a gated MLP (Qwen2) three
    mlp = (3 if getattr(cfg, "gated_mlp", False) else 2) * d * cfg.d_mlp
    return d * cfg.n_heads * cfg.d_head, d * 2 * kv_heads * cfg.d_head, cfg.n_heads * cfg.d_head * d, mlp


def _changed_flops(cfg, layer: int, first: int, end: int, only_output: bool) -> float:
    """Matmul FLOPs of blocks `layer`.. when their inputs change at positions first..end (`only_output`: block
    `layer`'s output changes at `first` alone, as after a patch of its `z`), read at `end`. Below the last block every
    changed position is recomputed in full; the last block needs its keys/values there but its query, output and MLP
    at `end` alone (nothing else of it reaches the answer's logits)."""
    q, kv, out, mlp = _matmul_sizes(cfg)
    last, attention = cfg.n_layers - 1, 4 * cfg.n_heads * cfg.d_head  # per (query, key) pair: scores and mixing
    total = 0.0
    for block in range(layer, cfg.n_layers):
        positions = end - first + 1
        if block == layer and only_output:  # the patched position's output projection and MLP
            total += 2 * (out + mlp) if block < last or first == end else 0.0
            continue
        if block < last:
            total += 2 * positions * (q + kv + out + mlp) + attention * sum(range(first + 1, end + 2))
        else:
            total += 2 * positions * kv + 2 * (q + out + mlp) + attention * (end + 1)
    return total


def writes_own_value(site: PatchSite, batch) -> torch.Tensor:
    """Per example, whether patching `site` writes the run's own value: the activation there depends only on tokens
    the clean and corrupt prompts share (layer 0's block input on its own position's token, anything else on every
    token up to its position). Such a row is the unpatched run, so an exact sweep need not compute it."""
    differs = batch.clean != batch.corrupt
    seen = differs if site.site is Site.RESID_PRE and site.layer == 0 else differs.cummax(1).values
    return ~seen[torch.arange(len(batch)), batch.position(site.position)]


def tight_flops(cfg, sites: list[PatchSite], batch, end: int) -> float:
    """Matmul FLOPs a patch can change, summed over (site, example) rows: blocks from the patched one up, positions
    from the patched one to the answer, attention against the prefix, the last block at the answer only, and the
    answer's unembedding (none where nothing changes: `z` of the last block before the answer, and rows whose patch
    writes the run's own value, `writes_own_value`)."""
    total = 0.0
    for s in sites:
        p = int(batch.position(s.position)[0])
        blocks = _changed_flops(cfg, s.layer, p, end, s.site is Site.Z)
        changing = int((~writes_own_value(s, batch)).sum())
        total += changing * (blocks + (2 * cfg.d_model * cfg.d_vocab if blocks else 0.0))
    return total


def reference_flops(cfg, batch, end: int) -> float:
    """Matmul FLOPs of the two whole forwards every exact sweep needs before any patch (the run patched into and
    the source run), positions 0..end, each unembedding its answer: with `tight_flops`, the floor of an exact sweep."""
    return 2 * len(batch) * (_changed_flops(cfg, 0, 0, end, False) + 2 * cfg.d_model * cfg.d_vocab)


def tl_loop(model, batch, metric, sites: list[PatchSite]) -> torch.Tensor:
    from transformer_lens import patching

    pos = [int(batch.position(s.position)[0]) for s in sites]
    z = sites[0].site is Site.Z
    index = pd.DataFrame({"layer": [s.layer for s in sites], "pos": pos, **({"head_index": [s.head for s in sites]}
                                                                           if z else {})})
    score = lambda logits: metric(logits[:, int(batch.answer_pos[0])], batch).mean()  # noqa: E731
    with torch.no_grad(), contextlib.redirect_stderr(io.StringIO()):  # TL's own progress bar
        clean = score(model(batch.clean))
        name = "hook_z" if z else "hook_resid_pre"
        _, cache = model.run_with_cache(batch.corrupt, names_filter=lambda n: n.endswith(name))
        patched = patching.generic_activation_patch(
            model, batch.clean, cache, score, activation_name="z" if z else "resid_pre", index_df=index,
            patch_setter=patching.layer_pos_head_vector_patch_setter if z else patching.layer_pos_patch_setter)
    return (clean - patched).cpu()


TOL_TL = 2e-5  # Δ vs the TL loop: the same function in fp32, logit differences O(10), other batch shapes
# direct vs bridge resumed rows: the same arithmetic op for op, but rows batched differently (direct forwards take rows
# of every layer into one forward), and a float32 matmul rounds by its batch; equal to 1e-10 in float64
# (tests/interventions/test_direct.py)
TOL_BRIDGE = 1e-5
# the peers run the plain HF model, whose LayerNorm rounds differently from the bridge's (~5e-6)
TOL_PEER = {"nnsight": 1e-4, "pyvene": 1e-4}
FAILURES: list[str] = []


def check(what: str, diff: float, tolerance: float) -> str:
    if not diff <= tolerance:
        FAILURES.append(f"{what}: {diff:.1e} > {tolerance:.0e}")
    return f"{diff:.1e}"


def check_memory(what: str, ok: bool, detail: str) -> None:
    if not ok:
        FAILURES.append(f"{what}: {detail}")


def bench_sweeps(models: dict, repeats: int, gflops: float, peers: dict, sweeps: list) -> None:
    print("\nexact sweeps (noising, logit difference; seconds are minima; * = timed on a subset, scaled by forwards)")
    print(f"{'model':<12}{'sweep':<10}{'n':>3}{'sites':>6}  {'TL loop':>9}{'nnsight':>9}{'pyvene':>9}{'bridge':>9}"
          f"{'resumed':>9}{'bound':>8}{'floor':>8}  {'res/TL':>7}{'res/nns':>8}{'res/pyv':>8}{'res/bridge':>11}"
          f"{'res/bound':>10}{'res/floor':>10}  max|ΔΔ| vs TL: resumed, nnsight, pyvene; vs bridge")
    for name, sweep, n, which, slow_which in sweeps:
        if name not in models:
            continue
        model = models[name]
        dataset, batch, end = one_template(model, n)
        metric = metric_for(dataset)
        sites, subset = sweep_sites(model, sweep, which, end), sweep_sites(model, sweep, slow_which, end)
        where = [sites.index(s) for s in subset]

        def ours(bridge: bool):
            def run():
                with bridge_only() if bridge else contextlib.nullcontext():
                    return patch_sites(model, batch, sites, metric, Direction.NOISING)[0].mean(1)
            return run

        # the matmul probe runs between the repeats, so the bound comes from the rate of the same moments
        methods = {"tl": lambda: tl_loop(model, batch, metric, subset), "bridge": ours(True), "resumed": ours(False),
                   "matmul": matmuls}
        if name in peers:
            lm, hf, hf_pyvene = peers[name]
            d_head = model.cfg.d_head
            methods["nnsight"] = lambda: nnsight_sweep(lm, hf, batch, subset, metric, d_head).mean(1)
            methods["pyvene"] = lambda: pyvene_sweep(hf_pyvene, batch, subset, metric, d_head).mean(1)
        times, results = timed(methods, repeats)
        scale = (len(sites) + 2) / (len(subset) + 2)
        best = {k: min(v) * (scale if k in ("tl", *PEERS) else 1) for k, v in times.items()}
        rate = max(gflops, MATMUL_FLOPS / best["matmul"] / 1e9)  # the faster reading: a bound never too loose
        bound = tight_flops(model.cfg, sites, batch, end) / rate / 1e9
        floor = bound + reference_flops(model.cfg, batch, end) / rate / 1e9
        mine = results["resumed"][where]
        diffs = [check(f"{name} {sweep} vs TL", float((mine - results["tl"]).abs().max()), TOL_TL)]
        for peer in PEERS:
            diffs.append(check(f"{name} {sweep} {peer} vs TL", float((results[peer] - results["tl"]).abs().max()),
                               TOL_PEER[peer]) if peer in results else "–")
        diffs.append(check(f"{name} {sweep} vs bridge", float((results["resumed"] - results["bridge"]).abs().max()),
                           TOL_BRIDGE))
        mark = "*" if scale != 1 else " "
        peer_s = "".join(f"{best[p]:8.2f}{mark}" if p in best else f"{'–':>8} " for p in PEERS)
        peer_r = "".join(f"{best[p] / best['resumed']:7.1f}×" if p in best else f"{'–':>8}" for p in PEERS)
        print(f"{name:<12}{sweep:<10}{n:>3}{len(sites):>6}  {best['tl']:8.2f}{mark}{peer_s}{best['bridge']:9.3f}"
              f"{best['resumed']:9.3f}{bound:8.3f}{floor:8.3f}  {best['tl'] / best['resumed']:6.1f}×{peer_r}"
              f"{best['bridge'] / best['resumed']:10.1f}×{best['resumed'] / bound:9.1f}×"
              f"{best['resumed'] / floor:9.1f}×  {', '.join(diffs)}   "
              f"(subset {len(subset)} sites; {rate:.1f} GFLOP/s)", flush=True)
    absent = [name for name in models if name not in peers]
    if absent:
        print(f"– nnsight, pyvene: not run on {', '.join(absent)} (" + (
            "--no-peers" if not peers else "peers are timed on the embedded models") + ")")


def bench_ablation(models: dict, repeats: int, which: str) -> None:
    """Each part of the engine as a measured ratio, and peak memory next to a plain forward's."""
    print("\nablation (z at every position, 8 prompts; seconds are minima; peak MiB: the resident set's high-water "
          "mark during the call above the resident set before it, bench_memory.py)")
    for name in [m for m in ("world-gpt2", "world-qwen2") if m in models]:
        model = models[name]
        dataset, batch, end = one_template(model, 8)
        metric, sites = metric_for(dataset), sweep_sites(model, "z-all", which, end)
        runs = {**ablation(model, batch, sites, metric), "plain forward": plain_forward(model, batch)}
        times, results = timed(runs, repeats)
        first = results["bridge whole forwards"]
        for label in runs:
            if label != "plain forward":
                check(f"{name} ablation {label}", float((results[label] - first).abs().max()), TOL_TL)
        peaks = {label: peak_bytes(run, warm_up=False) / 2**20 for label, run in runs.items()}  # timed: warm
        four = one_template(model, 32)[1]
        peaks["plain forward, 4× the prompts"] = peak_bytes(plain_forward(model, four)) / 2**20
        best, previous = {k: min(v) for k, v in times.items()}, None
        for label in runs:
            step = f"{best[previous] / best[label]:5.1f}× the row above" if previous and label in runs and \
                label != "plain forward" else ""
            print(f"  {name:<11} {label:<24} {best[label]:8.3f}s  peak {peaks[label]:7.2f} MiB"
                  f" ({peaks[label] / peaks['plain forward']:5.1f}× a forward's)  {step}")
            previous = label
        print(f"  {name:<11} {'plain forward, 32 prompts':<24} {'':>9}  peak "
              f"{peaks['plain forward, 4× the prompts']:7.2f} MiB")
        print(f"  {name:<11} all parts: {best['bridge whole forwards'] / best['+ unchanged rows read']:.1f}× "
              f"({len(sites)} sites)", flush=True)
        # a forward of 4× the prompts holds about 4× the activations: at least 2× is "clearly larger"
        check_memory(f"{name} memory: 4× the prompts", peaks["plain forward, 4× the prompts"]
                     >= 2 * peaks["plain forward"], f"{peaks['plain forward, 4× the prompts']:.2f} MiB is not ≥ 2× "
                     f"{peaks['plain forward']:.2f}")
        for label in runs:  # each sweep runs at least one forward of the same prompts
            check_memory(f"{name} memory: {label}", peaks[label] >= peaks["plain forward"],
                         f"{peaks[label]:.2f} MiB < a plain forward's {peaks['plain forward']:.2f}")


MIN_RECALL = 0.8  # attribution's top-10 recall of exact patching's top 10 at IOI's positions (issue 26)


def bench_attribution(models: dict, repeats: int, prompts: tuple[int, ...]) -> None:
    print("\nattribution patching vs exact (resumed), z for every head at IOI's io, s2 and end, and at every position "
          "(one template), noising")
    for name in [m for m in ("world-gpt2", "world-qwen2") if m in models]:
        model = models[name]
        for n, where in [*((n, "io, s2, end") for n in prompts), (prompts[0], "every position")]:
            if where == "every position":
                dataset, batch, end = one_template(model, n)
                sites = sweep_sites(model, "z-all", "all", end)
            else:
                dataset = build_task(model, "ioi", n=n, seed=1)
                batch = dataset.batch()
                sites = [PatchSite(Site.Z, layer, p, h) for layer in range(model.cfg.n_layers)
                         for p in ("io", "s2", "end") for h in range(model.cfg.n_heads)]
            metric = metric_for(dataset)
            times, results = timed({
                "exact": lambda: patch_sites(model, batch, sites, metric)[0].mean(1),
                "attribution": lambda: attribution_patch(model, batch, sites, metric)[0].mean(1)}, repeats)
            scores = agreement(results["attribution"], results["exact"], k=10)
            print(f"  {name:<11} n={n:<3} {len(sites):>4} sites at {where:<14} exact {min(times['exact']):7.3f}s  "
                  f"attribution {min(times['attribution']):6.3f}s  "
                  f"{min(times['exact']) / min(times['attribution']):5.1f}×  Spearman {scores['spearman']:.3f}  "
                  f"top-10 recall {scores['top10_recall']:.2f}", flush=True)
            if where != "every position" and scores["top10_recall"] < MIN_RECALL:
                FAILURES.append(f"{name} n={n} attribution top-10 recall {scores['top10_recall']:.2f} < {MIN_RECALL}")
            if n == prompts[0] and where != "every position":
                edges, _ = timed({"eap": lambda: edge_attribution(model, batch, metric),
                                  "eap-ig": lambda: edge_attribution(model, batch, metric, ig_steps=5)}, repeats)
                found = edge_attribution(model, batch, metric)
                print(f"  {'':<11} edges: {int(found.valid.sum())} — EAP {min(edges['eap']):.3f}s, EAP-IG (m = 5) "
                      f"{min(edges['eap-ig']):.3f}s; top 3: "
                      + ", ".join(f"{u}→{v} {s:+.2f}" for u, v, s in found.top(3)))


def bench_cie(name: str, model, repeats: int, n_trials: int) -> None:
    from rcid_tl.fv.cie import mean_last_token_z, patched_one, relation_cie
    from rcid_tl.fv.relations import world_relation_set
    from rcid_tl.fv.trials import PromptFormat, SamplingConfig, sample_trials

    trials = sample_trials(world_relation_set().select(["antonym"]), model.tokenizer,
                           SamplingConfig(n_trials, 5, 42, PromptFormat.COLON), name, model.cfg.n_ctx).of("antonym")
    heads = [Head(layer, h) for layer in range(model.cfg.n_layers) for h in range(model.cfg.n_heads)]

    def loop():
        mean_z = mean_last_token_z(model, [t.clean_ids for t in trials], range(model.cfg.n_layers), 1)
        return torch.tensor([[float(patched_one(model, t, h, mean_z).logprob[0]) for t in trials] for h in heads])

    times, results = timed({"loop": loop, "full": lambda: relation_cie(model, trials, heads, engine=Engine.FULL),
                            "resumed": lambda: relation_cie(model, trials, heads)}, repeats)
    corrupted = results["resumed"].corrupted.logprob
    diff = check(f"{name} FV CIE vs loop", float((results["resumed"].delta_logprob - (results["loop"] - corrupted))
                                                 .abs().max()), TOL_TL)
    diff_full = check(f"{name} FV CIE vs whole forwards", float(
        (results["resumed"].delta_logprob - results["full"].delta_logprob).abs().max()), TOL_TL)
    best = {k: min(v) for k, v in times.items()}
    print(f"\nFV CIE, {name}, {len(heads)} heads × {len(trials)} antonym trials: "
          f"per-head loop {best['loop']:.3f}s, "
          f"batched whole forwards {best['full']:.3f}s, resumed {best['resumed']:.3f}s; resumed is "
          f"{best['loop'] / best['resumed']:.1f}× the loop, {best['full'] / best['resumed']:.1f}× whole forwards; "
          f"max |ΔΔlog p| vs loop {diff}, vs whole forwards {diff_full}", flush=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--only", default="sweeps,ablation,attribution,cie,scaling", help="comma list of tables")
    parser.add_argument("--no-peers", action="store_true", help="skip nnsight and pyvene (the `bench` extra)")
    parser.add_argument("--models", default="world-gpt2,world-qwen2,gpt2-small", help="comma list")
    parser.add_argument("--quick", action="store_true", help="one repeat, the smallest sizes: checks every table runs")
    parser.add_argument("--figures", type=Path, default=None, help="where the scaling figure goes (default figures/)")
    args = parser.parse_args()
    repeats = 1 if args.quick else args.repeats
    warnings.filterwarnings("ignore")
    set_progress(False)
    torch.set_num_threads(1)
    kept = keep_freed_memory()  # as the command line runs (bench_allocator.py measures what it is worth)
    gflops = matmul_gflops()
    print(f"CPU, {torch.get_num_threads()} thread; measured matmul (512×768 @ 768×3072) {gflops:.1f} GFLOP/s; "
          f"freed memory {'kept' if kept else 'handed back (not glibc)'}")
    loaders = {"world-gpt2": lambda: load_model("world-gpt2"), "world-qwen2": lambda: load_model("world-qwen2"),
               "gpt2-small": gpt2_small}
    models = {name: loaders[name]() for name in args.models.split(",")}
    tables = args.only.split(",")
    embedded = [name for name in models if name != "gpt2-small"]
    if "cie" in tables and embedded:
        bench_cie(embedded[0], models[embedded[0]], repeats, 4 if args.quick else 16)
    if "attribution" in tables:
        bench_attribution(models, repeats, (8,) if args.quick else (8, 64))
    if "sweeps" in tables:
        peers = {} if args.no_peers else {name: (*nnsight_model(models[name]), pyvene_model(models[name]))
                                          for name in embedded}
        bench_sweeps(models, repeats, gflops, peers, QUICK_SWEEPS if args.quick else SWEEPS)
    if "ablation" in tables:
        bench_ablation(models, repeats, "per-layer" if args.quick else "all")
    if "scaling" in tables:
        from bench_scaling import bench_scaling  # its own table and figure

        bench_scaling(models, gflops, check_memory, args.quick, *([args.figures] if args.figures else []))
    print(f"\nmatmul GFLOP/s re-measured at the end: {matmul_gflops():.1f}")
    if FAILURES:
        raise SystemExit("results outside their tolerance:\n" + "\n".join(FAILURES))
    print("every result within its stated tolerance of the TL loop (and of the bridge), every memory sanity check met")


if __name__ == "__main__":
    main()
