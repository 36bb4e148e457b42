"""Benchmark: rcid_tl's batched patching sweep vs `transformer_lens.patching`'s one-forward-per-site loop.

Same model, prompts and sites (resid_pre at every layer × the five IOI positions); prints wall time of each, their
ratio, and the max abs difference of the mean effects. Not a test: timings depend on the machine.

    python experiments/bench_patching.py            # tiny GPT-2 (overhead-bound) and GPT-2-small shape
    python experiments/bench_patching.py --only small
"""

import argparse
import dataclasses
import time
import warnings
from pathlib import Path

import pandas as pd
import torch
from transformers import AutoTokenizer, GPT2Config, GPT2LMHeadModel

from rcid_tl.hooks.names import Site
from rcid_tl.interventions.write import Direction, PatchSite, patch_sites
from rcid_tl.metrics import metric_for
from rcid_tl.models import wrap_hf_model
from rcid_tl.progress import set_progress
from rcid_tl.tasks import IOIConfig, build_ioi

TOKENIZER = Path(__file__).resolve().parents[2] / "shared" / "data" / "gpt2-tokenizer"
SHAPES = {
    "small": dict(n_layer=2, n_embd=64, n_head=4),  # overhead-bound: the loop pays Python/hook cost per site
    "gpt2-small": dict(n_layer=12, n_embd=768, n_head=12),  # compute-bound
}


def one_template(tokenizer, n: int):
    """IOI examples sharing one template (so TL's single position index fits every prompt)."""
    full = build_ioi(IOIConfig(n=n * 40, seed=0), tokenizer)
    keep = tuple(e for e in full.examples if e.template == full.examples[0].template)[:n]
    return dataclasses.replace(full, examples=keep)


def best_of(fn, repeats: int) -> tuple[float, object]:
    times, out = [], None
    for _ in range(repeats):
        start = time.perf_counter()
        out = fn()
        times.append(time.perf_counter() - start)
    return min(times), out


def bench(shape: str, n: int, repeats: int, rows: int) -> None:
    from transformer_lens import patching

    tokenizer = AutoTokenizer.from_pretrained(TOKENIZER)
    torch.manual_seed(0)
    hf = GPT2LMHeadModel(GPT2Config(vocab_size=len(tokenizer), n_positions=128, **SHAPES[shape]))
    model = wrap_hf_model(hf, tokenizer, label=f"random-{shape}")
    dataset = one_template(tokenizer, n)
    batch, metric = dataset.batch(), metric_for(dataset)
    positions = dataset.examples[0].positions
    sites = [PatchSite(Site.RESID_PRE, layer, p) for layer in range(model.cfg.n_layers) for p in positions]

    ours_time, (delta, metrics) = best_of(
        lambda: patch_sites(model, batch, sites, metric, Direction.NOISING, rows_per_forward=rows), repeats)
    ours = delta.mean(1)

    # TL reference: noising = TL's denoising helper with the roles of the runs swapped (clean tokens, corrupt cache)
    index = pd.DataFrame({"layer": [s.layer for s in sites], "pos": [positions[s.position] for s in sites]})
    tl_metric = lambda logits: metric(logits[:, batch.answer_pos[0]], batch).mean()  # noqa: E731

    def tl_loop():
        with torch.no_grad():
            _, corrupt_cache = model.run_with_cache(batch.corrupt)
            # get_act_patch_resid_pre restricted to our sites (its partial fixes the axes, so call the generic form)
            return patching.generic_activation_patch(
                model, batch.clean, corrupt_cache, tl_metric, patch_setter=patching.layer_pos_patch_setter,
                activation_name="resid_pre", index_df=index)

    tl_time, patched = best_of(tl_loop, repeats)
    theirs = metrics.clean.mean() - patched.cpu()
    print(f"{shape:>10}: {len(sites)} sites × {n} prompts | rcid_tl batched {ours_time:.3f}s | "
          f"transformer_lens loop {tl_time:.3f}s | ratio {tl_time / ours_time:.2f}× | "
          f"max |Δ diff| {float((ours - theirs).abs().max()):.2e}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--only", choices=list(SHAPES))
    parser.add_argument("--n", type=int, default=16, help="prompts per site")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--rows", type=int, default=128, help="rows per batched forward")
    args = parser.parse_args()
    warnings.filterwarnings("ignore")
    set_progress(False)
    for shape in [args.only] if args.only else list(SHAPES):
        bench(shape, args.n, args.repeats, args.rows)


if __name__ == "__main__":
    main()
