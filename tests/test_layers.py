"""The layer contract in .importlinter holds: no module of rcid_tl imports from a layer above its own, so no import
cycle can hide behind an import inside a function, and every module has a place in the layers."""

from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


def test_the_import_layers_hold(monkeypatch, capsys):
    cli = pytest.importorskip("importlinter.cli", reason="import-linter is in the test extra")
    monkeypatch.chdir(ROOT)
    code = cli.lint_imports(config_filename=str(ROOT / ".importlinter"), no_cache=True, no_logo=True)
    assert code == 0, capsys.readouterr().out
