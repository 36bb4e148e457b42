"""`experiments/bench_revision.py` loads the engine's modules at a revision as modules of their own: against HEAD
with an unchanged working tree both sides run the same code, so their results agree bit for bit, while a revision's
copy is not the working tree's module."""

import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
SCRIPT = ROOT / "experiments" / "bench_revision.py"


def _in_git() -> bool:
    run = subprocess.run(["git", "rev-parse", "HEAD"], cwd=ROOT, capture_output=True, text=True)
    return run.returncode == 0


pytestmark = pytest.mark.skipif(not _in_git(), reason="not a git checkout: no revision to read")


def _clean(paths: list[str]) -> bool:
    run = subprocess.run(["git", "status", "--porcelain", "--", *paths], cwd=ROOT, capture_output=True, text=True)
    return run.returncode == 0 and not run.stdout.strip()


def test_revision_modules_are_their_own_and_import_each_other() -> None:
    sys.path.insert(0, str(SCRIPT.parent))
    try:
        import bench_revision
    finally:
        sys.path.remove(str(SCRIPT.parent))
    old = bench_revision.at_revision("HEAD")
    write, engine, direct = (old[f"rcid_tl.interventions.{m}"] for m in ("write", "engine", "direct"))
    assert write is not sys.modules["rcid_tl.interventions.write"]
    assert write.run_rows is engine.run_rows and engine.direct is direct and write.direct is direct
    assert direct.kernels is old["rcid_tl.interventions.kernels"]


def test_against_head_agrees_bit_for_bit() -> None:
    modules = [f"rcid_tl/interventions/{m}.py" for m in ("direct", "engine", "kernels", "write")]
    if not _clean(modules):
        pytest.skip("the engine's modules differ from HEAD in this checkout")
    run = subprocess.run([sys.executable, str(SCRIPT), "--against", "HEAD", "--models", "world-qwen2", "--sweeps",
                          "z-end", "--repeats", "1"], capture_output=True, text=True, timeout=300, cwd=ROOT,
                         env={**os.environ, "OMP_NUM_THREADS": "1"})
    assert run.returncode == 0, run.stdout[-4000:] + run.stderr[-4000:]
    row = next(line for line in run.stdout.splitlines() if line.startswith("world-qwen2"))
    assert row.split()[-1] == "0.0e+00", row
