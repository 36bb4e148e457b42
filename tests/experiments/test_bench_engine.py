"""`experiments/bench_engine.py --quick` on world-qwen2: one process prints every table (the peers' columns filled),
writes the scaling figure, and finds no result outside its stated tolerance."""

import importlib.util
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

SCRIPT = Path(__file__).resolve().parents[2] / "experiments" / "bench_engine.py"
TABLES = ("FV CIE, world-qwen2", "attribution patching vs exact", "exact sweeps", "ablation (", "scaling (")


@pytest.mark.slow  # about a minute of CPU, and nnsight and pyvene come with the `bench` extra only
def test_quick_run_prints_every_table_within_tolerance(tmp_path) -> None:
    missing = [peer for peer in ("nnsight", "pyvene") if importlib.util.find_spec(peer) is None]
    if missing:
        pytest.skip(f"{', '.join(missing)} not installed (the `bench` extra)")
    run = subprocess.run([sys.executable, str(SCRIPT), "--quick", "--models", "world-qwen2", "--figures",
                          str(tmp_path)], capture_output=True, text=True, timeout=600,
                         env={**os.environ, "OMP_NUM_THREADS": "1"})
    assert run.returncode == 0, run.stdout[-4000:] + run.stderr[-4000:]
    for table in TABLES:
        assert table in run.stdout, table
    sweeps = [line for line in run.stdout.splitlines() if line.startswith("world-qwen2 ") and "subset" in line]
    assert len(sweeps) == 3 and not any("–" in line for line in sweeps)  # TL, nnsight and pyvene timed on each row
    assert "every result within its stated tolerance" in run.stdout
    points = json.loads((tmp_path / "bench_scaling.json").read_text())["points"]
    assert {p["prompts"] for p in points} == {8, 32}
    assert all(p["peak_mib"] >= p["forward_peak_mib"] > 0 for p in points)
