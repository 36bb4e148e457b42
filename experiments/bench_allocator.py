"""What keeping freed memory (`rcid_tl.allocator.keep_freed_memory`, which the command line and the benchmarks set)
is worth: each sweep of `experiments/bench_engine.py`'s every-position tables (8 prompts, every head or layer, one
thread) timed in two fresh processes, glibc's default allocator and the kept one, with the minor page faults per sweep
(first touches of pages the allocator had handed back). The setting is per process and cannot be undone, hence the
fresh processes. Not a test: timings depend on the machine and its load.

    OMP_NUM_THREADS=1 python experiments/bench_allocator.py
"""

import argparse
import json
import subprocess
import sys
from pathlib import Path

CHILD = """
import json, resource, sys, time, warnings
import torch
sys.path.insert(0, {here!r})
if sys.argv[1] == "kept":
    from rcid_tl.allocator import keep_freed_memory
    assert keep_freed_memory()
from bench_engine import one_template, sweep_sites
from rcid_tl.interventions.write import patch_sites
from rcid_tl.metrics import metric_for
from rcid_tl.models import load_model
from rcid_tl.progress import set_progress
warnings.filterwarnings("ignore")
set_progress(False)
torch.set_num_threads(1)
faults = lambda: resource.getrusage(resource.RUSAGE_SELF).ru_minflt
out = {{}}
for name in sys.argv[2].split(","):
    model = load_model(name)
    for sweep in ("z-all", "resid-all"):
        dataset, batch, end = one_template(model, 8)
        sites, metric = sweep_sites(model, sweep, "all", end), metric_for(dataset)
        patch_sites(model, batch, sites, metric)  # warm-up
        times, before = [], faults()
        for _ in range(int(sys.argv[3])):
            start = time.process_time()
            patch_sites(model, batch, sites, metric)
            times.append(time.process_time() - start)
        out[f"{{name}} {{sweep}}"] = (min(times), (faults() - before) / len(times), len(sites))
print(json.dumps(out))
"""


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--models", default="world-gpt2,world-qwen2")
    parser.add_argument("--repeats", type=int, default=5)
    args = parser.parse_args()
    child = CHILD.format(here=str(Path(__file__).parent))
    runs = {mode: json.loads(subprocess.run([sys.executable, "-c", child, mode, args.models, str(args.repeats)],
                                            capture_output=True, text=True, check=True).stdout.splitlines()[-1])
            for mode in ("default", "kept")}
    print(f"{'sweep (8 prompts)':<24} {'sites':>5} {'default s':>9} {'faults':>8} {'kept s':>8} {'faults':>8} "
          f"{'ratio':>6}")
    for key, (seconds, faults, sites) in runs["default"].items():
        kept, kept_faults, _ = runs["kept"][key]
        print(f"{key:<24} {sites:>5} {seconds:>9.3f} {faults:>8.0f} {kept:>8.3f} {kept_faults:>8.0f} "
              f"{seconds / kept:>5.2f}×")


if __name__ == "__main__":
    main()
