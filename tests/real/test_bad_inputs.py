"""Bad input to the options added for real models: one line naming the value and what is allowed, exit 2, nothing
written."""

import re

import pytest

T = "world-gpt2"
CASES = {
    "fit task unknown": (["consistency", "--student", T, "--fit-task", "nope"], r"unknown task 'nope'; allowed:"),
    "fit task without a causal map": (
        ["consistency", "--student", T, "--head-map", "proportional", "--fit-task", "ioi"],
        r"--fit-task is where the causal map is fitted; --head-map proportional fits nothing"),
    "validate fine-tune off IOI": (["validate", "--task", "tinystories-pronoun", "--finetune-steps", "5"],
                                   r"--finetune-steps 5: the ablation-finetuned student is fine-tuned on IOI"),
    "gen seed without teacher text": (["distill", "--gen-seed", "3"], r"--gen-seed sets how teacher-text is sampled"),
    "gen len too short": (["distill", "--text", "teacher-text", "--gen-len", "1"], r"--gen-len must be ≥ 2, got 1"),
}


@pytest.mark.parametrize("case", CASES)
def test_bad_input_is_one_line(cli, tmp_path, case):
    args, message = CASES[case]
    out = tmp_path / "out"
    run = cli(*args, "--out", out)
    assert run.code == 2, run.stderr
    lines = run.stderr.strip().splitlines()
    assert len(lines) == 1 and "Traceback" not in run.stderr, run.stderr
    assert re.search(message, lines[0]), lines[0]
    assert not out.exists()
