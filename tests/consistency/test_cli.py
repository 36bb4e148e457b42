"""`rcid-tl checkpoints` and `rcid-tl consistency`: real runs on the tiny GPT-2 and its student directory, and bad
input answered with one line on stderr, exit code 2 and nothing written."""

import json

import pytest

from rcid_tl import __version__


def _one_line_error(run, message: str) -> None:
    assert run.code == 2, run.stderr
    lines = run.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("rcid-tl: error: ") and message in lines[0], run.stderr


@pytest.fixture(scope="module")
def checkpoints_file(tmp_path_factory, tiny_gpt2_dir):
    """One real `rcid-tl checkpoints` run, shared by the consistency runs below."""
    return tmp_path_factory.mktemp("ckpt") / "checkpoints.json"


def test_checkpoints_then_consistency(cli, tiny_gpt2_dir, student_dir, checkpoints_file, tmp_path):
    out = checkpoints_file.parent
    run = cli("checkpoints", "--model", tiny_gpt2_dir, "--task", "ioi", "--n", "6", "--corruption", "abc",
              "--site", "resid_post", "--ranking", "imprint",
              "--top-k", "3", "--min-unmodified", "2", "--max-saturation", "inf", "--out", out)
    assert run.code == 0, run.stderr
    assert "position" in run.stderr and "3 checkpoints at resid_post" in run.stderr
    saved = json.loads(checkpoints_file.read_text())
    assert saved["rcid_tl_version"] == __version__ and saved["model"] == str(tiny_gpt2_dir)
    assert saved["selection"] == {"top_k": 3, "min_unmodified": 2, "site": "resid_post", "max_saturation": None,
                                 "ranking": "imprint"}
    assert all(isinstance(c["saturation"], float) for c in saved["checkpoints"])  # measured, none skipped
    assert len(saved["checkpoints"]) == 3 and sum(not c["modified"] for c in saved["checkpoints"]) >= 2
    assert (out / "checkpoints.csv").read_text().count("\n") == 4

    cons = tmp_path / "cons"
    run = cli("consistency", "--teacher", tiny_gpt2_dir, "--student", student_dir, "--task", "ioi", "--n", "6",
              "--corruption", "abc", "--checkpoints", checkpoints_file, "--n-bootstrap", "50", "--out", cons)
    assert run.code == 0, run.stderr
    assert "mean r" in run.stderr and "consistency.json" in run.stderr
    payload = json.loads((cons / "consistency.json").read_text())
    assert payload["model"] == str(tiny_gpt2_dir) and payload["student"] == str(student_dir)
    assert len(payload["examples"]) == 6 and payload["config"]["layer_map"] == {"0": 0, "1": 0}
    assert [(c["teacher_layer"], c["position"]) for c in payload["checkpoints"]] == [
        (c["layer"], c["position"]) for c in saved["checkpoints"]]
    assert all(len(c["delta_student"]) == 6 for c in payload["checkpoints"])
    assert "<html" in (cons / "consistency.html").read_text()[:2000].lower()


def test_consistency_of_a_model_with_itself_auto_checkpoints(cli, tiny_gpt2_dir, tmp_path):
    run = cli("consistency", "--teacher", tiny_gpt2_dir, "--student", tiny_gpt2_dir, "--n", "5", "--top-k", "3",
              "--layer-map", "cka", "--n-bootstrap", "20", "--out", tmp_path / "self")
    assert run.code == 0, run.stderr
    payload = json.loads((tmp_path / "self" / "consistency.json").read_text())
    # the default selection skips saturated points (on this model every `end` point but layer 0's)
    assert payload["config"]["checkpoints"] == "auto" and 1 <= len(payload["checkpoints"]) <= 3
    assert all(not c["saturated"] and abs(c["saturation_teacher"]) < 0.9 for c in payload["checkpoints"])
    assert payload["config"]["layer_map"] == {"0": 0, "1": 1}  # CKA finds each layer's own copy
    assert all(c["pearson_r"] == pytest.approx(1.0) for c in payload["checkpoints"])
    assert payload["r_out"] == pytest.approx(1.0) and payload["mechanistic_r"] == pytest.approx(1.0)


@pytest.mark.parametrize("entry,message", [
    ({"layer": 7, "position": "end"}, "layer 7 is out of range; this model has layers 0..1"),
    ({"layer": 0, "position": "s9"}, "unknown position 's9'"),
])
def test_bad_checkpoints_file(cli, tiny_gpt2_dir, student_dir, tmp_path, entry, message):
    path = tmp_path / "bad.json"
    path.write_text(json.dumps({"checkpoints": [entry]}))
    out = tmp_path / "out"
    run = cli("consistency", "--teacher", tiny_gpt2_dir, "--student", student_dir, "--n", "3", "--checkpoints",
              path, "--out", out)
    _one_line_error(run, message)
    assert not out.exists()


@pytest.mark.parametrize("args,message", [
    (["checkpoints", "--top-k", "0"], "--top-k must be ≥ 1, got 0"),
    (["checkpoints", "--site", "k"], "'k' cannot be a checkpoint site"),
    (["checkpoints", "--max-saturation", "0"], "--max-saturation must be > 0"),
    (["consistency", "--student", "STUDENT", "--head-map", "nearest"], "unknown --head-map 'nearest'"),
    (["consistency", "--student", "STUDENT", "--top-k", "0"], "--top-k must be ≥ 1, got 0"),
    (["consistency", "--student", "STUDENT", "--layer-map", "diagonal"], "unknown --layer-map 'diagonal'"),
    (["consistency", "--student", "STUDENT", "--checkpoints", "no-such.json"], "'no-such.json' not found"),
    (["consistency", "--student", "world-gpt2"], "student's tokenizer differs from the teacher's"),
])
def test_bad_input(cli, tiny_gpt2_dir, student_dir, tmp_path, args, message):
    out = tmp_path / "out"
    args = [str(student_dir) if a == "STUDENT" else a for a in args]
    model_flag = "--model" if args[0] == "checkpoints" else "--teacher"
    run = cli(*args, model_flag, tiny_gpt2_dir, "--n", "3", "--out", out)
    _one_line_error(run, message)
    assert not out.exists()
