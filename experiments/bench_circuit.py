"""Timing row for the IOI circuit search (`rcid_tl.heads.circuit.search_circuit`, the defaults of
`experiments/ioi_circuit.py`), in one process on one thread: the bridge path (every forward through the bridge's
modules and hook points: `interventions.direct` off) vs direct forwards (the bridge's HF modules called one after
another, hooks fired by name; the default). Both reuse each task's unablated runs and reference means and resume
each candidate's rows from the run with the circuit so far ablated. Both must give the same report (the same heads
and steps, numbers to float32 rounding: the paths batch rows differently), and the direct path's must be the shipped
`circuit.json` byte for byte; the script fails otherwise. Wall and CPU seconds and their ratio
are printed per teacher, and the direct path's CPU seconds split into building the tasks (prompts and reference
samples), the unablated runs and reference means (once per task), and the greedy search itself. Not a test: timings
depend on the machine and its load.

    python experiments/bench_circuit.py                       # both teachers, the script's defaults, one thread
    python experiments/bench_circuit.py --models world-qwen2 --n 40 --no-shipped
"""

import argparse
import json
import time
from pathlib import Path

import torch

import rcid_tl
from rcid_tl.allocator import keep_freed_memory
from rcid_tl.heads import circuit
from rcid_tl.heads.circuit import search_circuit
from rcid_tl.interventions import direct
from rcid_tl.models.loading import load_model
from rcid_tl.progress import set_progress

SHIPPED = Path(rcid_tl.__file__).parent / "embedded"


def timed(run):
    wall, cpu = time.perf_counter(), time.process_time()
    result = run()
    return result, time.perf_counter() - wall, time.process_time() - cpu


TOLERANCE = 1e-5  # relative changes on the two paths: the same arithmetic, rows batched differently (float32)


def close(a, b) -> bool:
    """The same report up to float32 rounding: every string, count and head the same, numbers within `TOLERANCE`."""
    if isinstance(a, dict):
        return isinstance(b, dict) and a.keys() == b.keys() and all(close(a[k], b[k]) for k in a)
    if isinstance(a, list):
        return isinstance(b, list) and len(a) == len(b) and all(close(x, y) for x, y in zip(a, b))
    if isinstance(a, float) and isinstance(b, float):
        return abs(a - b) <= TOLERANCE
    return a == b


def phase_timer(phases: dict, name: str, fn):
    """`fn` with its CPU seconds added to phases[name] (the search looks these functions up in its module)."""
    def run(*args, **kwargs):
        start = time.process_time()
        try:
            return fn(*args, **kwargs)
        finally:
            phases[name] = phases.get(name, 0.0) + time.process_time() - start
    return run


def search(model, args, fast: bool, phases: dict):
    direct.enabled = fast
    originals = {name: getattr(circuit, name) for name in PHASES}
    for name in PHASES:
        setattr(circuit, name, phase_timer(phases, name, originals[name]))
    try:
        return search_circuit(model, n=args.n, max_heads=args.max_heads)
    finally:
        direct.enabled = True
        for name, fn in originals.items():
            setattr(circuit, name, fn)


# the search's preparation, timed apart: building the tasks' prompts and their reference samples, then the unablated
# runs and the reference means (each once per task); the rest of the search's time is the greedy search itself
PHASES = ("circuit_tasks", "prepare_tasks")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--models", nargs="+", default=["world-gpt2", "world-qwen2"])
    parser.add_argument("--n", type=int, default=100)
    parser.add_argument("--max-heads", type=int, default=6)
    parser.add_argument("--no-shipped", action="store_true", help="skip the comparison with the shipped circuit.json")
    parser.add_argument("--skip-bridge", action="store_true", help="time the direct path only")
    args = parser.parse_args()
    torch.set_num_threads(1)
    keep_freed_memory()  # as the command line runs
    set_progress(False)
    print(f"{'model':<12} {'bridge wall s':>13} {'direct wall s':>13} {'ratio':>6} {'bridge cpu s':>12} "
          f"{'direct cpu s':>12} {'ratio':>6}  direct cpu s: tasks, reference means, greedy search  circuit")
    for name in args.models:
        model = load_model(name)
        phases = {True: {}, False: {}}
        runs = {fast: timed(lambda: search(model, args, fast, phases[fast]))
                for fast in ([True] if args.skip_bridge else [False, True])}
        report, wall, cpu = runs[True]
        if not args.skip_bridge and not close(runs[False][0].to_dict(), report.to_dict()):
            raise SystemExit(f"{name}: the direct path's report differs from the bridge path's")
        if not args.no_shipped:
            written = json.dumps({"rcid_tl_version": rcid_tl.__version__, "model": name, **report.to_dict()},
                                 indent=1) + "\n"
            if written != (SHIPPED / name / "circuit.json").read_text():
                raise SystemExit(f"{name}: the report differs from the shipped circuit.json")
        old_wall, old_cpu = (runs[False][1], runs[False][2]) if not args.skip_bridge else (float("nan"),) * 2
        tasks, means = phases[True]["circuit_tasks"], phases[True]["prepare_tasks"]
        print(f"{name:<12} {old_wall:>13.1f} {wall:>13.1f} {old_wall / wall:>6.1f} {old_cpu:>12.1f} {cpu:>12.1f} "
              f"{old_cpu / cpu:>6.1f}  {tasks:.1f}, {means:.1f}, {cpu - tasks - means:.1f}  "
              f"{', '.join(report.circuit)}", flush=True)


if __name__ == "__main__":
    main()
