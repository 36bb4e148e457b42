"""CPU scaling of the torch.distributed layer: the same patching sweep and the same distillation steps with 1 and
with 2 processes (torchrun, gloo, one thread each), timed in one invocation; prints times and speed-ups against the
1-process baseline. Model loading and imports are not timed; every process starts a timed part together (barrier).

    python experiments/bench_parallel.py [--repeats 3] [--steps 20] [--batch-size 32]
"""

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def worker(out: Path, repeats: int, steps: int, batch_size: int) -> None:
    """One process of the group: time the sweep (best of `repeats`) and the distillation loop; rank 0 saves."""
    import torch
    import torch.distributed as dist

    from rcid_tl.distill.config import DistillConfig, OptimConfig
    from rcid_tl.distill.methods import Method
    from rcid_tl.distill.run import run_distill
    from rcid_tl.hooks.names import Site
    from rcid_tl.interventions.write import PatchSite, patch_sites
    from rcid_tl.metrics import metric_for
    from rcid_tl.models import load_model
    from rcid_tl.parallel import joined
    from rcid_tl.progress import set_progress
    from rcid_tl.tasks.registry import TaskSpec, build_task

    set_progress(False)
    with joined() as w:
        sync = dist.barrier if w.distributed else (lambda: None)
        model = load_model("world-gpt2")
        dataset = build_task(TaskSpec("ioi", n=32, seed=1), model.tokenizer, model.cfg.n_ctx)
        sites = [PatchSite(Site.Z, layer, "end", head) for layer in range(model.cfg.n_layers)
                 for head in range(model.cfg.n_heads)]
        sweep = []
        for _ in range(repeats):
            sync()
            t0 = time.perf_counter()
            patch_sites(model, dataset.batch(), sites, metric_for(dataset), rows_per_forward=64)
            sweep.append(time.perf_counter() - t0)
        # the default student of world-gpt2; a small evaluation, since only the training loop is timed
        config = DistillConfig(teacher="world-gpt2", method=Method.RCID, task=TaskSpec("ioi", n=256, seed=1),
                               optim=OptimConfig(steps=steps, lr=1e-3, warmup=2), seed=3, batch_size=batch_size,
                               top_k=3, eval_n=6, n_fit=8, ppl_rows=2, n_bootstrap=50, checkpoint_every=steps,
                               log_every=steps)
        run_dir = out.parent / f"distill-{w.size}"
        sync()
        run_distill(config, run_dir)
        if w.main:  # the loop's own clock: optimizer steps only, no loading, targets or evaluation
            loop_s = json.loads((run_dir / "train_log.jsonl").read_text().splitlines()[-1])["elapsed_s"]
            out.write_text(json.dumps({"processes": w.size, "sweep_s": min(sweep), "sweep_rows": len(sites) * 32,
                                       "distill_step_s": loop_s / steps, "torch": torch.__version__}))


def launch(n: int, out: Path, repeats: int, steps: int, batch_size: int) -> dict:
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc-per-node", str(n), __file__,
           "--worker", str(out), "--repeats", str(repeats), "--steps", str(steps),
           "--batch-size", str(batch_size)]
    subprocess.run(cmd, cwd=ROOT, env=env, check=True, capture_output=True, text=True)
    return json.loads(out.read_text())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--steps", type=int, default=20)
    parser.add_argument("--batch-size", type=int, default=32, help="global batch of the distillation steps")
    parser.add_argument("--worker", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker:
        worker(args.worker, args.repeats, args.steps, args.batch_size)
        return
    with tempfile.TemporaryDirectory() as tmp:
        runs = {n: launch(n, Path(tmp) / f"times-{n}.json", args.repeats, args.steps, args.batch_size) for n in (1, 2)}
    base = runs[1]
    print(f"CPU, gloo, 1 thread per process; os.cpu_count() = {os.cpu_count()}; torch {base['torch']}")
    print(f"{'workload':<44} {'1 process':>10} {'2 processes':>12} {'speed-up':>9}")
    rows = [(f"patch sweep ({base['sweep_rows']} rows, best of {args.repeats})", "sweep_s"),
            (f"distillation step (batch {args.batch_size}, mean of {args.steps})", "distill_step_s")]
    for label, key in rows:
        one, two = base[key], runs[2][key]
        print(f"{label:<44} {one:>9.3f}s {two:>11.3f}s {one / two:>8.2f}x")


if __name__ == "__main__":
    main()
