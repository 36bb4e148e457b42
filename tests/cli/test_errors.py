"""Bad input: exit code 2, exactly one stderr line `rcid-tl: error: ...` naming the problem, no traceback, and no
output directory."""

import json
import re

import pytest

BAD_ROW = {"clean": "Lily and Tim went to the park. Tim gave the ball to",
           "corrupt": "Lily and Tim went to the park. Lily gave the ball to"}


@pytest.fixture(scope="module")
def bad_pairs(tmp_path_factory):
    root = tmp_path_factory.mktemp("bad-pairs")
    good = {**BAD_ROW, "answer": " Lily", "wrong": " Tim"}
    (root / "malformed.jsonl").write_text(json.dumps(good) + "\n" + json.dumps(BAD_ROW) + "\n")
    (root / "multi.jsonl").write_text(json.dumps(good) + "\n" + json.dumps({**good, "answer": " Ben"}) + "\n")
    return root


CASES = {
    "missing model": (["patch", "--model", "{tmp}/no-such-dir"], "is not a directory with a Hugging Face model"),
    "layer out of range": (["patch", "--layers", "0,5"], "layer 5 is out of range; this model has layers 0..1"),
    "head out of range": (["knockout", "--heads", "0.9"], "head 0.9 is out of range; this model has heads 0..3"),
    "head layer out of range": (["knockout", "--heads", "7.0"], "layer 7 is out of range"),
    "bad head syntax": (["knockout", "--heads", "nine"], "bad head 'nine'; write heads as LAYER.HEAD"),
    "unknown position": (["patch", "--positions", "io,yy"], "unknown position 'yy'; task ioi has: io, s1"),
    "unknown site": (["patch", "--site", "resid"], "unknown site 'resid'; allowed: resid_pre"),
    "unpatchable site": (["patch", "--site", "pattern"], "site 'pattern' cannot be patched"),
    "unknown class": (["knockout", "--class", "movers"], "unknown head class 'movers'; allowed: name-mover"),
    "class on a non-GPT-2-small model": (["knockout", "--class", "induction"], "names GPT-2 small's heads"),
    "two head choices": (["knockout", "--heads", "0.1", "--all-heads"], "choose exactly one of --heads"),
    "unknown task": (["patch", "--task", "sst2"], "unknown task 'sst2'; allowed: ioi, greater-than, pairs:FILE"),
    "zero examples": (["patch", "--n", "0"], "--n must be ≥ 1, got 0"),
    "unknown method": (["knockout", "--heads", "0.1", "--method", "median"], "unknown --method 'median'"),
    "unknown direction": (["patch", "--direction", "sideways"], "unknown direction 'sideways'"),
    "unknown corruption": (["patch", "--corruption", "swap"], "unknown corruption 'swap'"),
    "missing pairs file": (["patch", "--task", "pairs:{tmp}/none.jsonl"], "pairs file .* does not exist"),
    "malformed pairs row": (["patch", "--task", "pairs:{pairs}/malformed.jsonl"],
                            "malformed.jsonl, row 2: missing or non-text field 'answer'"),
    "multi-token answer": (["knockout", "--heads", "0.1", "--task", "pairs:{pairs}/multi.jsonl", "--n", "2"],
                           r"multi.jsonl, row 2: answer ' Ben' is 2 tokens; it must be exactly one"),
}


@pytest.mark.parametrize("case", list(CASES))
def test_bad_input_is_one_line_and_exit_2(cli, tiny_gpt2_dir, stories_dir, bad_pairs, tmp_path, case):
    args, message = CASES[case]
    # pairs files are written for stories260K's tokenizer; everything else runs on the tiny GPT-2
    model = stories_dir if any("{pairs}" in a for a in args) else tiny_gpt2_dir
    args = [a.format(tmp=tmp_path, pairs=bad_pairs) for a in args]
    if "--model" not in args:
        args += ["--model", str(model)]
    out = tmp_path / "out"
    run = cli(*args, "--out", out)
    assert run.code == 2
    lines = run.stderr.strip().splitlines()
    assert len(lines) == 1, run.stderr
    assert lines[0].startswith("rcid-tl: error: ")
    assert re.search(message, lines[0]), lines[0]
    assert "Traceback" not in run.stderr + run.stdout
    assert not out.exists()
