"""The sweep engine against an earlier revision of itself, in one process: `bench_engine.py`'s sweeps (8 prompts,
every head or layer) run by the working tree's `rcid_tl.interventions.{direct,engine,kernels,write}` and by those
modules as they were at `--against` (read with `git show`, each importing the others at that revision, those it did
not have yet left out; everything else, models and tasks included, is the working tree's), repeats interleaved.
Prints each side's minimum, the ratio of minima, the median of the paired ratios (one per repeat: the machine's drift
cancels within a pair) and the largest |ΔΔ| between the two. Not a test: timings depend on the machine and its load.

    OMP_NUM_THREADS=1 python experiments/bench_revision.py --against 94686b5
    python experiments/bench_revision.py --against HEAD --models world-qwen2 --sweeps z-end --repeats 1
"""

import argparse
import statistics
import subprocess
import time
import types
import warnings
from pathlib import Path

import torch
from bench_engine import one_template, sweep_sites

import rcid_tl.interventions.direct
import rcid_tl.interventions.engine
import rcid_tl.interventions.kernels
import rcid_tl.interventions.write
from rcid_tl.allocator import keep_freed_memory
from rcid_tl.metrics import metric_for
from rcid_tl.models import load_model
from rcid_tl.progress import set_progress

CURRENT = (rcid_tl.interventions.direct, rcid_tl.interventions.engine, rcid_tl.interventions.kernels,
           rcid_tl.interventions.write)
ROOT = Path(__file__).resolve().parents[1]


def at_revision(revision: str) -> dict[str, types.ModuleType]:
    """The engine's modules' sources at `revision` (those it had), executed as modules of their own, their names for
    each other (`from rcid_tl.interventions import direct`, `from ...engine import run_rows`) pointed at the
    revision's."""
    old = {}
    for module in CURRENT:
        path = module.__name__.replace(".", "/") + ".py"
        shown = subprocess.run(["git", "show", f"{revision}:{path}"], cwd=ROOT, capture_output=True, text=True)
        if shown.returncode:
            if module is rcid_tl.interventions.kernels:  # split out of `direct` later
                continue
            shown.check_returncode()
        source = shown.stdout
        copy = types.ModuleType(module.__name__)
        exec(compile(source, f"{revision}:{path}", "exec"), copy.__dict__)
        old[module.__name__] = copy
    for copy in old.values():
        for name, value in list(copy.__dict__.items()):
            if isinstance(value, types.ModuleType) and value.__name__ in old:
                copy.__dict__[name] = old[value.__name__]
            elif getattr(value, "__module__", None) in old and old[value.__module__] is not copy:
                copy.__dict__[name] = old[value.__module__].__dict__.get(name, value)
    return old


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--against", required=True, help="a git revision, e.g. HEAD~3 or a commit")
    parser.add_argument("--models", default="world-gpt2,world-qwen2", help="comma list")
    parser.add_argument("--sweeps", default="z-end,z-all,resid-all", help="comma list of z-end, z-all, resid-all")
    parser.add_argument("--repeats", type=int, default=9)
    args = parser.parse_args()
    keep_freed_memory()
    set_progress(False)
    warnings.filterwarnings("ignore")
    torch.set_num_threads(1)
    patchers = {args.against: at_revision(args.against)["rcid_tl.interventions.write"].patch_sites,
                "working tree": rcid_tl.interventions.write.patch_sites}
    print(f"{'model':<12}{'sweep':<10}{'revision s':>11}{'tree s':>9}{'ratio of minima':>17}{'median pair ratio':>19}"
          f"{'max |ΔΔ|':>10}")
    for name in args.models.split(","):
        model = load_model(name)
        dataset, batch, end = one_template(model, 8)
        metric = metric_for(dataset)
        for sweep in args.sweeps.split(","):
            sites = sweep_sites(model, sweep, "all", end)
            times, results = {k: [] for k in patchers}, {}
            for patch in patchers.values():  # warm-up
                patch(model, batch, sites, metric, "noising")
            for _ in range(args.repeats):
                for label, patch in patchers.items():
                    start = time.process_time()
                    results[label] = patch(model, batch, sites, metric, "noising")[0]
                    times[label].append(time.process_time() - start)
            old, new = times[args.against], times["working tree"]
            pairs = statistics.median(a / b for a, b in zip(old, new))
            diff = float((results[args.against] - results["working tree"]).abs().max())
            print(f"{name:<12}{sweep:<10}{min(old):11.4f}{min(new):9.4f}{min(old) / min(new):16.3f}×{pairs:18.3f}×"
                  f"{diff:10.1e}", flush=True)


if __name__ == "__main__":
    main()
