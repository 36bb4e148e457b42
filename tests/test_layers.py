"""The layer contract in .importlinter holds: no module of rcid_tl imports from a layer above its own, so no import
cycle can hide behind an import inside a function, and every module has a place in the layers."""

import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


def test_the_import_layers_hold():
    pytest.importorskip("importlinter", reason="import-linter is in the test extra")
    # in a process of its own: lint-imports reconfigures logging (disabling the library's loggers) and sys.path
    code = "import sys; from importlinter.cli import lint_imports; sys.exit(lint_imports(no_cache=True, no_logo=True))"
    done = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stdout + done.stderr
