"""The installed console script as a real subprocess (started by the autouse fixture in conftest, so collected last):
a real Greater-Than patch run, and bad input answered with one line and exit code 2."""

import pytest

from tests.cli.contract import load_checked


@pytest.fixture
def finish(subprocess_runs):
    if subprocess_runs is None:
        pytest.skip("the rcid-tl console script is not installed next to this Python (pip install -e .)")
    return subprocess_runs


def test_real_greater_than_patch_run(finish):
    run, out = finish("patch")
    assert run.code == 0, run.stderr
    assert "Traceback" not in run.stderr
    payload = load_checked(out, "patch")
    assert payload["task"] == "greater-than" and payload["metric"] == "prob_diff"
    assert [(e["layer"], e["position"]) for e in payload["effects"]] == [(0, "yy"), (0, "end"), (1, "yy"), (1, "end")]
    assert all(e["modified"] == {"noun": False, "yy": True, "end": False} for e in payload["examples"])


def test_missing_model_exits_2_with_one_line(finish):
    run, out = finish("missing-model")
    assert run.code == 2
    missing = str(out.parent / "no-such-model")
    assert run.stderr.strip().splitlines() == [
        f"rcid-tl: error: model path {missing!r} is not a directory with a Hugging Face model"]
    assert run.stdout == "" and not out.exists()
