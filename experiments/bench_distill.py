"""Benchmark: one RCID training step against one StandardKD step (same student, same batch), and the bridge's
overhead against a plain Hugging Face training step of the same student.

Prints median step times, their ratios, and the memory each step keeps for backward (bytes of tensors autograd
saves, a device-independent stand-in for peak activation memory; on CUDA, `torch.cuda.max_memory_allocated` too).
Not a test: timings depend on the machine.

    python experiments/bench_distill.py                      # world-gpt2 teacher, default 2×64 student, batch 32
    python experiments/bench_distill.py --device cuda --batch-size 128
"""

import argparse
import statistics
import time

import torch
from transformers import AutoModelForCausalLM

from rcid_tl.distill.config import DistillConfig, OptimConfig
from rcid_tl.distill.losses import kd_loss
from rcid_tl.distill.methods import Method, Objective, pairings_for
from rcid_tl.distill.run import prepare
from rcid_tl.distill.targets import fit_maps, precompute_targets
from rcid_tl.training import make_optimizer
from rcid_tl.interventions.read import at_positions
from rcid_tl.models.saving import hf_state_dict
from rcid_tl.progress import set_progress
from rcid_tl.tasks.registry import TaskSpec


class SavedBytes:
    """Sum of the bytes autograd saves for backward during a forward (counted once per storage)."""

    def __init__(self) -> None:
        self.seen: set[int] = set()
        self.total = 0

    def pack(self, t: torch.Tensor):
        key = t.untyped_storage().data_ptr()
        if key not in self.seen:
            self.seen.add(key)
            self.total += t.untyped_storage().nbytes()
        return t

    def __enter__(self):
        self.ctx = torch.autograd.graph.saved_tensors_hooks(self.pack, lambda t: t)
        self.ctx.__enter__()
        return self

    def __exit__(self, *exc):
        self.ctx.__exit__(*exc)


def _sync(device: str) -> None:
    if device.startswith("cuda"):
        torch.cuda.synchronize()


def timed(steps: dict, repeats: int, device: str) -> dict[str, tuple[float, int, int]]:
    """Per step kind: median seconds per step, saved-for-backward bytes, CUDA peak bytes (0 on CPU). Repeats are
    interleaved across kinds, so load from other processes on a shared machine hits every kind alike."""
    for step in steps.values():
        for _ in range(3):
            step()  # warm-up
    times: dict[str, list[float]] = {name: [] for name in steps}
    for _ in range(repeats):
        for name, step in steps.items():
            _sync(device)
            t0 = time.perf_counter()
            step()
            _sync(device)
            times[name].append(time.perf_counter() - t0)
    results = {}
    for name, step in steps.items():
        peak = 0
        if device.startswith("cuda"):
            torch.cuda.reset_peak_memory_stats()
            step()
            peak = torch.cuda.max_memory_allocated()
        with SavedBytes() as saved:
            step()
        results[name] = (statistics.median(times[name]), saved.total, peak)
    return results


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--teacher", default="world-gpt2")
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--repeats", type=int, default=30)
    parser.add_argument("--top-k", type=int, default=8)
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--threads", type=int, default=1)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    set_progress(False)
    config = DistillConfig(teacher=args.teacher, method=Method.RCID, task=TaskSpec("ioi", n=args.batch_size, seed=0),
                           optim=OptimConfig(steps=1), top_k=args.top_k, device=args.device, text="none")
    s = prepare(config)
    rows = torch.arange(args.batch_size)
    batch = s.train.batch(rows.tolist())
    steps = {}
    for method in (Method.STANDARD_KD, Method.RCID):
        pairings = pairings_for(method, s.checkpoints, s.layer_map, s.student.cfg.n_layers)
        objective = Objective(method, pairings, fit_maps(s.teacher, s.student, s.train, pairings), lam=1.0,
                              temperature=2.0).to(args.device)
        targets = precompute_targets(s.teacher, s.train, pairings).take(rows, batch.clean.shape[1])
        targets = type(targets)(*(t.to(args.device) for t in (targets.logits, targets.states, targets.imprints,
                                                              targets.layers)))
        opt, _ = make_optimizer(torch.nn.ModuleDict({"s": s.student.original_model}), OptimConfig(steps=1))

        def step(objective=objective, targets=targets, opt=opt):
            loss, _ = objective(s.student, batch, targets)
            loss.backward()
            opt.step()
            opt.zero_grad(set_to_none=True)

        steps[method.value] = step

    # the same student as a plain HF model (fresh copy of the weights), the StandardKD loss written by hand
    hf = AutoModelForCausalLM.from_config(s.student.original_model.config).to(args.device)
    hf.load_state_dict(hf_state_dict(s.student), strict=False)
    hf.config._attn_implementation = "eager"
    hf_opt = torch.optim.AdamW(hf.parameters(), lr=1e-3)
    kd_targets = precompute_targets(s.teacher, s.train, []).take(rows, batch.clean.shape[1]).logits.to(args.device)
    tokens = batch.clean.to(args.device)

    def hf_step():
        logits = hf(tokens).logits
        answer = at_positions(logits, batch.answer_pos)[:, None]
        loss = kd_loss(answer, kd_targets, torch.ones(len(tokens), 1, dtype=torch.bool, device=args.device), 2.0)
        loss.backward()
        hf_opt.step()
        hf_opt.zero_grad(set_to_none=True)

    steps["plain-hf-kd"] = hf_step
    results = timed(steps, args.repeats, args.device)
    print(f"teacher {args.teacher}, student {s.student.cfg.n_layers}×{s.student.cfg.d_model}, batch "
          f"{args.batch_size} × {batch.clean.shape[1]} tokens, {len(s.checkpoints)} checkpoints, device {args.device}, "
          f"{args.threads} thread(s)")
    for name, (sec, saved, peak) in results.items():
        cuda = f", CUDA peak {peak / 2**20:.1f} MiB" if peak else ""
        print(f"  {name:12s} {sec * 1e3:8.2f} ms/step, saved for backward {saved / 2**20:7.2f} MiB{cuda}")
    kd, rcid, hf_ = results["standard-kd"], results["rcid"], results["plain-hf-kd"]
    print(f"RCID / StandardKD step time: {rcid[0] / kd[0]:.2f}x; saved-for-backward memory: {rcid[1] / kd[1]:.2f}x"
          + (f"; CUDA peak: {rcid[2] / kd[2]:.2f}x" if kd[2] else ""))
    print(f"bridge StandardKD / plain HF step time: {kd[0] / hf_[0]:.2f}x; saved-for-backward memory: "
          f"{kd[1] / hf_[1]:.2f}x")


if __name__ == "__main__":
    main()
