"""`rcid-tl distill` and `rcid-tl evaluate`: a real run on the embedded teacher, the student it writes loading in plain
transformers, and bad input giving one line, exit 2 and no output directory."""

import json
import re

import pytest
from transformers import AutoModelForCausalLM


SMALL = ["--teacher", "world-gpt2", "--task", "ioi", "--n", "16", "--steps", "3", "--batch-size", "4", "--top-k", "2",
         "--eval-n", "6", "--save-every", "1"]


def test_distill_then_evaluate(cli, tmp_path):  # noqa: F811
    out = tmp_path / "rcid"
    run = cli("distill", *SMALL, "--method", "rcid", "--seed", "5", "--lambda", "2", "--out", out)
    assert run.code == 0, run.stderr
    said = " ".join(run.stderr.split())  # rich wraps long lines
    assert "rcid seed 5: accuracy" in said and "causal consistency" in said
    metrics = json.loads((out / "metrics.json").read_text())
    assert (metrics["method"], metrics["seed"], metrics["steps"], metrics["lambda"]) == ("rcid", 5, 3, 2.0)
    for key in ("accuracy", "metric_mean", "perplexity"):
        assert isinstance(metrics[key], float)
    assert len(metrics["causal_consistency"]["checkpoints"]) == len(metrics["checkpoints"]) == 2
    log = [json.loads(x) for x in (out / "train_log.jsonl").read_text().splitlines()]
    assert [r["step"] for r in log] == [1, 2, 3] and all("term" in r and "kl" in r for r in log)
    hf = AutoModelForCausalLM.from_pretrained(out / "student")  # a standard HF directory
    assert hf.config.n_layer == 2

    ev = tmp_path / "ev"
    run = cli("evaluate", "--teacher", "world-gpt2", "--student", out / "student", "--n", "6", "--top-k", "2",
              "--out", ev)
    assert run.code == 0, run.stderr
    payload = json.loads((ev / "evaluation.json").read_text())
    assert payload["student"]["perplexity"] == pytest.approx(metrics["perplexity"], rel=1e-4)  # same held-out text
    assert len(payload["consistency"]["checkpoints"]) == 2


@pytest.fixture(scope="module")
def bad_checkpoints(tmp_path_factory):
    path = tmp_path_factory.mktemp("ck") / "checkpoints.json"
    path.write_text(json.dumps({"checkpoints": [{"layer": 9, "position": "end"}]}))
    return path


CASES = {
    "unknown method": (["--method", "dark-kd"], "unknown method 'dark-kd'; allowed: standard-kd, fitnets"),
    "negative lambda": (["--method", "rcid", "--lambda", "-0.5"], r"--lambda must be a finite number ≥ 0, got -0.5"),
    "tokenizer differs": (["--method", "rcid", "--student", "{tiny}"],
                          "the student's tokenizer differs from the teacher's"),
    "checkpoint layer missing": (["--method", "rcid", "--checkpoints", "{ck}"], "layer 9 is out of range"),
    "text file missing": (["--method", "fitnets", "--text", "{tmp}/none.txt"],
                          "neither 'world' nor an existing text file"),
}


@pytest.mark.parametrize("case", list(CASES))
def test_bad_input_is_one_line_exit_2_nothing_written(  # noqa: F811
    cli, tiny_gpt2_dir, bad_checkpoints, tmp_path, case
):
    args, message = CASES[case]
    args = [a.format(tiny=tiny_gpt2_dir, ck=bad_checkpoints, tmp=tmp_path) for a in args]
    out = tmp_path / "out"
    run = cli("distill", *SMALL, *args, "--out", out)
    assert run.code == 2
    lines = run.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("rcid-tl: error: "), run.stderr
    assert re.search(message, lines[0]), lines[0]
    assert not out.exists()


def test_evaluate_rejects_a_student_with_another_tokenizer(cli, tiny_gpt2_dir, tmp_path):  # noqa: F811
    run = cli("evaluate", "--teacher", "world-gpt2", "--student", tiny_gpt2_dir, "--out", tmp_path / "ev")
    assert run.code == 2 and "tokenizer differs" in run.stderr
    assert not (tmp_path / "ev").exists()
