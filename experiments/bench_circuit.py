"""Timing row for the IOI circuit search (`rcid_tl.heads.circuit.search_circuit`, the defaults of
`experiments/ioi_circuit.py`), in one process on one thread: the bridge path (every forward through the bridge's
modules and hook points: `interventions.direct` off) vs direct forwards (the bridge's HF modules called one after
another, hooks fired by name; the default). Both reuse each task's unablated runs and reference means and resume
each candidate's rows from the run with the circuit so far ablated. Both must give the same report, and that report
must be the shipped `circuit.json` byte for byte; the script fails otherwise. Wall and CPU seconds and their ratio
are printed per teacher. Not a test: timings depend on the machine and its load.

    python experiments/bench_circuit.py                       # both teachers, the script's defaults, one thread
    python experiments/bench_circuit.py --models world-qwen2 --n 40 --no-shipped
"""

import argparse
import json
import time
from pathlib import Path

import torch

import rcid_tl
from rcid_tl.heads.circuit import search_circuit
from rcid_tl.interventions import direct
from rcid_tl.models.loading import load_model
from rcid_tl.progress import set_progress

SHIPPED = Path(rcid_tl.__file__).parent / "embedded"


def timed(run):
    wall, cpu = time.perf_counter(), time.process_time()
    result = run()
    return result, time.perf_counter() - wall, time.process_time() - cpu


def search(model, args, fast: bool):
    direct.enabled = fast
    try:
        return search_circuit(model, n=args.n, max_heads=args.max_heads)
    finally:
        direct.enabled = True


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--models", nargs="+", default=["world-gpt2", "world-qwen2"])
    parser.add_argument("--n", type=int, default=100)
    parser.add_argument("--max-heads", type=int, default=6)
    parser.add_argument("--no-shipped", action="store_true", help="skip the comparison with the shipped circuit.json")
    parser.add_argument("--skip-bridge", action="store_true", help="time the direct path only")
    args = parser.parse_args()
    torch.set_num_threads(1)
    set_progress(False)
    print(f"{'model':<12} {'bridge wall s':>13} {'direct wall s':>13} {'ratio':>6} {'bridge cpu s':>12} "
          f"{'direct cpu s':>12} {'ratio':>6}  circuit")
    for name in args.models:
        model = load_model(name)
        runs = {fast: timed(lambda: search(model, args, fast)) for fast in ([True] if args.skip_bridge else
                                                                            [False, True])}
        report, wall, cpu = runs[True]
        if not args.skip_bridge and runs[False][0].to_dict() != report.to_dict():
            raise SystemExit(f"{name}: the direct path's report differs from the bridge path's")
        if not args.no_shipped:
            written = json.dumps({"rcid_tl_version": rcid_tl.__version__, "model": name, **report.to_dict()},
                                 indent=1) + "\n"
            if written != (SHIPPED / name / "circuit.json").read_text():
                raise SystemExit(f"{name}: the report differs from the shipped circuit.json")
        old_wall, old_cpu = (runs[False][1], runs[False][2]) if not args.skip_bridge else (float("nan"),) * 2
        print(f"{name:<12} {old_wall:>13.1f} {wall:>13.1f} {old_wall / wall:>6.1f} {old_cpu:>12.1f} {cpu:>12.1f} "
              f"{old_cpu / cpu:>6.1f}  {', '.join(report.circuit)}", flush=True)


if __name__ == "__main__":
    main()
