"""Benchmark: the per-head `z` sweep at `end` — `transformer_lens.patching`'s loop vs rcid_tl's full-forward engine vs
its resumed-row engine (rows start at the patched layer and position) vs attribution patching, on a GPT-2-small-shaped
model.

Random weights from a GPT2Config, the real GPT-2 tokenizer, IOI prompts of one template (TL's loop takes one position
for the whole batch). Repeats are interleaved (TL, full, resumed, TL, ...); prints min and median seconds, the speed-up
over the first method (the TL loop unless --methods leaves it out), the max |ΔΔ| against it, and attribution's
Spearman and top-10 recall against the resumed engine's exact Δ. Not a test: timings depend on the machine.

    python experiments/bench_sweep.py                      # GPT-2-small shape, 8 prompts, 144 heads, CPU
    python experiments/bench_sweep.py --device cuda --repeats 5 --warmup
    python experiments/bench_sweep.py --methods resumed,attribution   # skip the slow ones
"""

import argparse
import dataclasses
import statistics
import time
import warnings
from pathlib import Path

import pandas as pd
import torch
from transformers import AutoTokenizer, GPT2Config, GPT2LMHeadModel

from rcid_tl.hooks.names import Site
from rcid_tl.interventions.attribution import agreement, attribution_patch
from rcid_tl.interventions.write import Direction, Engine, PatchSite, patch_sites
from rcid_tl.metrics import metric_for
from rcid_tl.models import wrap_hf_model
from rcid_tl.progress import set_progress
from rcid_tl.tasks import IOIConfig, build_ioi

TOKENIZER = Path(__file__).resolve().parents[2] / "shared" / "data" / "gpt2-tokenizer"
GPT2_SMALL = dict(n_layer=12, n_embd=768, n_head=12)


def one_template(tokenizer, n: int):
    """IOI examples sharing one template, so one `end` position fits every prompt (TL's loop needs that)."""
    full = build_ioi(IOIConfig(n=n * 40, seed=0), tokenizer)
    keep = tuple(e for e in full.examples if e.template == full.examples[0].template)[:n]
    return dataclasses.replace(full, examples=keep)


def tl_loop(model, batch, metric, sites, end: int) -> torch.Tensor:
    """TL's generic patching loop: one forward per head, the corrupt run's z at `end` into the clean run (noising)."""
    from transformer_lens import patching

    index = pd.DataFrame({"layer": [s.layer for s in sites], "pos": [end] * len(sites),
                          "head_index": [s.head for s in sites]})
    score = lambda logits: metric(logits[:, int(batch.answer_pos[0])], batch).mean()  # noqa: E731
    with torch.no_grad():
        clean = score(model(batch.clean))
        _, corrupt_cache = model.run_with_cache(batch.corrupt, names_filter=lambda name: name.endswith("hook_z"))
        patched = patching.generic_activation_patch(
            model, batch.clean, corrupt_cache, score, patch_setter=patching.layer_pos_head_vector_patch_setter,
            activation_name="z", index_df=index)
    return (clean - patched).cpu()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=8, help="IOI prompts")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--rows", type=int, default=128, help="rows per batched forward")
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--warmup", action="store_true", help="one untimed run of each method first (GPU)")
    parser.add_argument("--methods", default="tl,full,resumed,attribution", help="comma list, in timing order")
    args = parser.parse_args()
    warnings.filterwarnings("ignore")
    set_progress(False)

    tokenizer = AutoTokenizer.from_pretrained(TOKENIZER)
    torch.manual_seed(0)
    hf = GPT2LMHeadModel(GPT2Config(vocab_size=len(tokenizer), n_positions=128, **GPT2_SMALL)).to(args.device)
    model = wrap_hf_model(hf, tokenizer, label="random-gpt2-small")
    dataset = one_template(tokenizer, args.n)
    batch, metric = dataset.batch(), metric_for(dataset)
    sites = [PatchSite(Site.Z, layer, "end", head) for layer in range(model.cfg.n_layers)
             for head in range(model.cfg.n_heads)]
    end = int(batch.positions["end"][0])

    def ours(engine: Engine):
        delta, _ = patch_sites(model, batch, sites, metric, Direction.NOISING, args.rows, engine=engine)
        return delta.mean(1)

    available = {"tl": ("transformer_lens loop", lambda: tl_loop(model, batch, metric, sites, end)),
                 "full": ("rcid_tl full forwards", lambda: ours(Engine.FULL)),
                 "resumed": ("rcid_tl resumed rows", lambda: ours(Engine.RESUME)),
                 "attribution": ("rcid_tl attribution",
                                 lambda: attribution_patch(model, batch, sites, metric)[0].mean(1))}
    methods = dict(available[key] for key in args.methods.split(","))
    times: dict[str, list[float]] = {name: [] for name in methods}
    results = {}
    for name, run in methods.items() if args.warmup else ():  # allocator and kernel warm-up, not timed
        run()
    for _ in range(args.repeats):
        for name, run in methods.items():
            if args.device.startswith("cuda"):
                torch.cuda.synchronize()
            start = time.perf_counter()
            results[name] = run()
            if args.device.startswith("cuda"):
                torch.cuda.synchronize()
            times[name].append(time.perf_counter() - start)

    print(f"z at end, {len(sites)} heads × {len(batch)} prompts ({batch.clean.shape[1]} tokens), GPT-2-small shape, "
          f"{args.device}, {torch.get_num_threads()} threads, {args.repeats} interleaved repeats")
    first = next(iter(times))
    base, reference = min(times[first]), results[first]
    for name, ts in times.items():
        diff = float((results[name] - reference).abs().max())
        print(f"  {name:<24} min {min(ts):8.3f}s  median {statistics.median(ts):8.3f}s  "
              f"{base / min(ts):6.2f}× the {first}  max |ΔΔ| vs it {diff:.1e}")
    if "rcid_tl attribution" in results and "rcid_tl resumed rows" in results:
        scores = agreement(results["rcid_tl attribution"], results["rcid_tl resumed rows"], k=10)
        print(f"  attribution vs exact: Spearman {scores['spearman']:.3f}, top-10 recall {scores['top10_recall']:.2f}")


if __name__ == "__main__":
    main()
