"""`rcid-tl heads` end to end on the embedded world-gpt2, and `knockout --class --classes` reading its heads.json."""

import csv
import json

import pytest

from rcid_tl.heads.classes import CLASS_NAMES
from rcid_tl.heads.run import SCORES


def test_heads_writes_scores_classes_and_figures(cli, tmp_path):
    out = tmp_path / "heads"
    run = cli("heads", "--model", "world-gpt2", "--n", "6", "--repeat-n", "2", "--repeat-length", "6",
              "--batch-size", "50", "--out", out)
    assert run.code == 0, run.stderr
    payload = json.loads((out / "heads.json").read_text())
    assert payload["model"] == "world-gpt2" and payload["task"] == "ioi" and len(payload["examples"]) == 6
    assert payload["config"]["corruption"] == "abc" and len(payload["config"]["repeated_tokens"]) == 2
    assert list(payload["classes"]) == list(CLASS_NAMES)
    assert payload["baseline_logit_diff"] == pytest.approx(sum(payload["metric_clean"]) / 6, rel=1e-6)
    for name in SCORES:
        grid = payload["scores"][name]
        assert len(grid) == 6 and all(len(row) == 4 for row in grid), name
    if not payload["classes"]["name-mover"]:  # no receivers, so no S-inhibition score
        assert all(v is None for row in payload["scores"]["s_inhibition"] for v in row)
    rows = list(csv.DictReader((out / "heads.csv").open()))
    assert len(rows) == 24 and rows[5]["layer"] == "1" and rows[5]["head"] == "1"
    assert float(rows[5]["copy"]) == payload["scores"]["copy"][1][1]
    assert (out / "heads_attention.html").is_file() and (out / "heads_effects.html").is_file()


def test_knockout_class_from_a_classes_file(cli, tmp_path):
    classes = tmp_path / "heads.json"
    classes.write_text(json.dumps({"classes": {"name-mover": ["5.1", "3.0"], "induction": []}}))
    common = ("--model", "world-gpt2", "--n", "4", "--method", "zero")
    by_class = cli("knockout", *common, "--class", "name-mover", "--classes", classes, "--out", tmp_path / "a")
    by_heads = cli("knockout", *common, "--heads", "5.1,3.0", "--out", tmp_path / "b")
    assert by_class.code == 0 and by_heads.code == 0, by_class.stderr + by_heads.stderr
    [a] = json.loads((tmp_path / "a" / "knockout.json").read_text())["ablations"]
    [b] = json.loads((tmp_path / "b" / "knockout.json").read_text())["ablations"]
    assert a["heads"] == ["5.1", "3.0"] and a["delta"] == b["delta"]
    empty = cli("knockout", *common, "--class", "induction", "--classes", classes, "--out", tmp_path / "c")
    assert empty.code == 2 and "class 'induction' is empty" in empty.stderr
