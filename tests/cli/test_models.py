"""`rcid-tl models`: every embedded model listed with its measured scores, names whole at 80 columns."""

import json

from rcid_tl.models.embedded import embedded_names, embedded_path


def test_models_lists_every_embedded_model_at_80_columns(cli, monkeypatch):
    monkeypatch.setenv("COLUMNS", "80")
    run = cli("models")
    assert run.code == 0, run.stderr
    lines = run.stdout.splitlines()
    assert all(len(line) <= 80 for line in lines), lines
    assert "…" not in run.stdout  # nothing cut short
    for name in embedded_names():
        row = next(line for line in lines if line.startswith(name + " "))
        scores = json.loads((embedded_path(name) / "training.json").read_text())["scores"]
        assert f"{scores['ioi_acc']:.2f}/{scores['ioi_logit_diff']:.2f}" in row
