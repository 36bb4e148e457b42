"""`rcid-tl validate`: a real run at small sizes on world-qwen2 (GQA) with the causal instrument, and bad input."""

import json

import pytest


def test_validate_runs(cli, tmp_path):
    out = tmp_path / "validate"
    run = cli("validate", "--teacher", "world-qwen2", "--n", "40", "--fit-n", "30", "--sigmas", "0.1,1",
              "--finetune-steps", "0", "--n-bootstrap", "10", "--instruments", "causal", "--out", out)
    assert run.code == 0, run.stderr
    payload = json.loads((out / "validation.json").read_text())
    assert payload["config"]["instruments"] == ["causal/many-to-one"]
    assert payload["verdicts"]["permuted"]["causal"]["passed"]  # exact relabelling: r = 1 at any n
    assert "| permuted |" in run.stderr and "Passing every case" in run.stderr


@pytest.mark.parametrize("args, message", [
    (["--sigmas", "0.1,x"], "--sigmas must be comma-separated numbers, got '0.1,x'"),
    (["--sigmas", "1,0.1"], "--sigmas must be increasing and > 0"),
    (["--n", "5"], "--n must be ≥ 20"),
    (["--instruments", "causal,nearest"], "unknown instrument 'nearest'; allowed: proportional,"),
    (["--finetune-steps", "-1"], "--finetune-steps must be ≥ 0"),
])
def test_bad_input(cli, tmp_path, args, message):
    run = cli("validate", *args, "--out", tmp_path / "bad")
    assert run.code == 2 and message in run.stderr and "Traceback" not in run.stderr
    assert not (tmp_path / "bad").exists()
