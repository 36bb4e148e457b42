"""GPU benchmark: one per-head patching sweep (every head's z at the answer position, 144 sites on a GPT-2-small-
shaped model with random weights) timed with the resumed engine against `transformer_lens.patching`'s loop (one
forward per site), the two results checked equal, then printed as a table.

    python experiments/bench_gpu.py                      # CUDA if present, else the CPU
    python experiments/bench_gpu.py --prompts 32 --repeats 5 --dtype bfloat16

The model is GPT-2 small's shape (12 layers, 12 heads, d_model 768, GPT-2's 50257-token vocabulary) with the world
tokenizer's ids (no file or download needed); the prompts are IOI examples of one template and length, as TL's loop
patches one position for the whole batch. The loop's time is measured on `--loop-layers` layers and scaled to all 12
by its forward count (one forward per site, whatever the layer). Not a test: timings depend on the machine and load.
"""

import argparse
import os
import time
from collections import Counter

import pandas as pd
import torch
from transformer_lens import patching
from transformers import GPT2Config, GPT2LMHeadModel

from rcid_tl.hooks.names import Site, hook_name
from rcid_tl.interventions.write import Direction, Engine, PatchSite, patch_sites
from rcid_tl.metrics import metric_for
from rcid_tl.models import parse_dtype, wrap_hf_model
from rcid_tl.progress import set_progress
from rcid_tl.tasks import build_task
from rcid_tl.world.tokenizer import load_tokenizer, save_tokenizer

os.environ.setdefault("TQDM_DISABLE", "1")  # TL's loop draws a progress bar per sweep
GPT2_SMALL = dict(n_layer=12, n_head=12, n_embd=768, vocab_size=50257, n_positions=128)
# |Δ_resumed − Δ_loop| allowed: fp32 logit differences O(1) agree to float32 rounding (the engine tests' 1e-5 on
# tiny models; 12 layers of 768-wide matmuls accumulate more); in bfloat16/float16 weights both sides round at 8/11
# bits
TOLERANCE = {torch.float32: 1e-4, torch.bfloat16: 0.1, torch.float16: 2e-2}


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    parser.add_argument("--dtype", default="float32", help="float32, bfloat16 or float16 weights")
    parser.add_argument("--prompts", type=int, default=16)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--loop-layers", type=int, default=2, help="layers the TL loop is timed on (scaled to 12)")
    return parser.parse_args()


def model_and_batch(device: str, dtype: torch.dtype, prompts: int, tmp: str):
    tokenizer = load_tokenizer(save_tokenizer(tmp))
    torch.manual_seed(0)
    hf = GPT2LMHeadModel(GPT2Config(**GPT2_SMALL)).eval().to(device=device, dtype=dtype)
    model = wrap_hf_model(hf, tokenizer, label="random-gpt2-small", device=device)
    pool = build_task(model, "ioi", n=prompts * 40, seed=0, corruption="abc")
    shapes = Counter((e.template, len(e.clean_ids), len(e.corrupt_ids)) for e in pool.examples)
    shape, count = shapes.most_common(1)[0]
    if count < prompts:
        raise SystemExit(f"only {count} prompts share one template and length; ask for --prompts {count} or fewer")
    rows = [i for i, e in enumerate(pool.examples) if (e.template, len(e.clean_ids), len(e.corrupt_ids)) == shape]
    return model, pool, pool.batch(rows[:prompts])


def sync(device: str) -> None:
    if device.startswith("cuda"):
        torch.cuda.synchronize()


def best_of(run, repeats: int, device: str):
    times, result = [], None
    for _ in range(repeats):
        sync(device)
        start = time.perf_counter()
        result = run()
        sync(device)
        times.append(time.perf_counter() - start)
    return min(times), result


def main() -> None:
    args = parse_args()
    set_progress(False)
    dtype = parse_dtype(args.dtype)
    import tempfile

    with tempfile.TemporaryDirectory() as tmp:
        model, dataset, batch = model_and_batch(args.device, dtype, args.prompts, tmp)
    metric, n_layers, n_heads = metric_for(dataset), model.cfg.n_layers, model.cfg.n_heads
    end = int(batch.positions["end"][0])
    sites = [PatchSite(Site.Z, layer, "end", head) for layer in range(n_layers) for head in range(n_heads)]

    def resumed():
        return patch_sites(model, batch, sites, metric, Direction.DENOISING, engine=Engine.RESUME)[0].mean(1)

    loop_layers = min(args.loop_layers, n_layers)
    names = [hook_name(Site.Z, layer) for layer in range(loop_layers)]

    def loop():
        with torch.no_grad():
            clean_logits, cache = model.run_with_cache(batch.clean, names_filter=names)
        rows = torch.arange(len(batch), device=clean_logits.device)

        def mean_metric(logits):
            return metric(logits[rows, batch.answer_pos.to(logits.device)], batch).float().mean()

        index = pd.DataFrame([(layer, end, head) for layer in range(loop_layers) for head in range(n_heads)],
                             columns=["layer", "pos", "head"])
        patched = patching.get_act_patch_attn_head_out_by_pos(model, batch.corrupt, cache, mean_metric,
                                                              index_axis_names=None, index_df=index)
        return mean_metric(clean_logits).cpu() - patched.cpu()

    resumed(), loop()  # warm-up: kernels, allocator, the direct forward's one-off agreement check
    fast_s, fast = best_of(resumed, args.repeats, args.device)
    loop_s, slow = best_of(loop, args.repeats, args.device)
    loop_all_s = loop_s * (2 + len(sites)) / (2 + loop_layers * n_heads)  # forwards: 2 caches + one per site
    error = float((fast[: loop_layers * n_heads].float().cpu() - slow.float()).abs().max())
    if error > TOLERANCE[dtype]:
        raise SystemExit(f"resumed engine and TL loop disagree: max |Δ diff| {error:.2e} > {TOLERANCE[dtype]:.0e}")
    device_name = torch.cuda.get_device_name() if args.device.startswith("cuda") else "CPU"
    print(f"{device_name}, {args.dtype}, GPT-2-small shape (random weights), {len(batch)} prompts of "
          f"{batch.clean.shape[1]} tokens, z at 'end' for {len(sites)} heads, best of {args.repeats}")
    print(f"{'method':<38}{'seconds':>10}{'sites/s':>10}{'vs loop':>9}")
    for label, seconds in (("transformer_lens.patching loop", loop_all_s), ("resumed engine (rcid_tl)", fast_s)):
        print(f"{label:<38}{seconds:>10.3f}{len(sites) / seconds:>10.1f}{loop_all_s / seconds:>8.1f}x")
    print(f"results equal: max |Δ_resumed − Δ_loop| = {error:.2e} over {loop_layers * n_heads} sites "
          f"(tolerance {TOLERANCE[dtype]:.0e}); the loop's time scaled from {loop_layers} layers to {n_layers}")


if __name__ == "__main__":
    main()
