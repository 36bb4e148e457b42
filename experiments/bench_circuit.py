"""Timing row for the IOI circuit search (`rcid_tl.heads.circuit.search_circuit`), in one process: the old path,
which recomputes every task's unablated runs and reference means at every greedy step and runs each candidate's rows
from the circuit's lowest layer (`reuse=False`), vs the new one, which computes them once per task and resumes each
candidate's rows from the run with the circuit so far ablated (`reuse=True`). Both must give the same report; the
script fails if they do not. Wall and CPU seconds and their ratios are printed per teacher. Not a test: timings depend
on the machine and its load.

    python experiments/bench_circuit.py                       # both teachers, the script's defaults, one thread
    python experiments/bench_circuit.py --models world-qwen2 --n 40
"""

import argparse
import time

import torch

from rcid_tl.heads.circuit import search_circuit
from rcid_tl.models.loading import load_model
from rcid_tl.progress import set_progress


def timed(run):
    wall, cpu = time.perf_counter(), time.process_time()
    result = run()
    return result, time.perf_counter() - wall, time.process_time() - cpu


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--models", nargs="+", default=["world-gpt2", "world-qwen2"])
    parser.add_argument("--n", type=int, default=100)
    parser.add_argument("--max-heads", type=int, default=6)
    args = parser.parse_args()
    torch.set_num_threads(1)
    set_progress(False)
    print(f"{'model':<12} {'old wall s':>10} {'new wall s':>10} {'ratio':>6} {'old cpu s':>10} {'new cpu s':>10} "
          f"{'ratio':>6}  circuit")
    for name in args.models:
        model = load_model(name)
        reports, walls, cpus = {}, {}, {}
        for reuse in (False, True):
            reports[reuse], walls[reuse], cpus[reuse] = timed(
                lambda: search_circuit(model, n=args.n, max_heads=args.max_heads, reuse=reuse))
        if reports[True].to_dict() != reports[False].to_dict():
            raise SystemExit(f"{name}: the reused search's report differs from the recomputed one")
        print(f"{name:<12} {walls[False]:>10.1f} {walls[True]:>10.1f} {walls[False] / walls[True]:>6.1f} "
              f"{cpus[False]:>10.1f} {cpus[True]:>10.1f} {cpus[False] / cpus[True]:>6.1f}  "
              f"{', '.join(reports[True].circuit)}", flush=True)


if __name__ == "__main__":
    main()
