"""Bad input to `rcid-tl fv`: exit code 2, one stderr line naming the problem, and nothing written."""

import re

import pytest

from tests.fv.conftest import RUN_ARGS

CASES = {
    "missing columns": (["--relations", "{csv}", "--qids", "all", "--input-col", "exA", "--output-col", "exB"],
                        r"lacks column\(s\) 'exB'; it has: q_id, exA"),
    "unknown eval q_id": (["--eval-scope", "qid_list", "--eval-qids", "antonym,nope"],
                          r"unknown q_id 'nope'; the relations are: antonym, successor"),
    "k over the head count": (["--k", "25"], r"k = 25 is out of range; 24 heads are scored, so k must be 1..24"),
    "sweep layer out of range": (["--layers", "0,6"], r"layer 6 is out of range; this model has layers 0..5"),
    "inject layer out of range": (["--inject-layers", "7"], r"layer 7 is out of range; this model has layers 0..5"),
    "edit layer out of range": (["--edit-layer", "9"], r"layer 9 is out of range"),
    "unknown relation": (["--qids", "antonym,nope"], r"unknown q_id 'nope' in world"),
    "quota not filled": (["--n-trials", "30"], r"relation 'successor' cannot fill 30 trials"),
    "unknown scope": (["--eval-scope", "everywhere"], r"unknown --eval-scope 'everywhere'; allowed: auto"),
    "eval q_ids without qid_list": (["--eval-qids", "antonym"], r"--eval-qids is required with --eval-scope qid_list"),
    "global FV in domain": (["--fv", "global", "--eval-scope", "in_domain"], r"in_domain needs relation FVs"),
    "no selection trials": (["--n-select", "0"], r"--n-select must be ≥ 1, got 0"),
    "split over the trials": (["--n-select", "3", "--n-eval", "2"],
                              r"held-out split needs ≥ 1 selection and ≥ 1 evaluation trial within --n-trials 4; "
                              r"got --n-select 3 and --n-eval 2"),
    "negative split seed": (["--split-seed", "-1"], r"--split-seed must be ≥ 0, got -1"),
}


@pytest.mark.parametrize("case", list(CASES))
def test_bad_run_is_one_line_exit_2_nothing_written(cli, tmp_path, case):
    (tmp_path / "r.csv").write_text("q_id,exA\nopp,hot\n")
    args, message = CASES[case]
    out = tmp_path / "out"
    run = cli("fv", "run", *RUN_ARGS, *[a.format(csv=tmp_path / "r.csv") for a in args], "--out-base-dir", out)
    assert run.code == 2
    lines = run.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("rcid-tl: error: "), run.stderr
    assert re.search(message, lines[0]), lines[0]
    assert not out.exists()


def test_later_stages_without_the_sweep_say_so(cli, tmp_path):
    out = tmp_path / "none"
    run = cli("fv", "vectors", "--out-base-dir", out)
    assert run.code == 2 and "run `rcid-tl fv cie` first" in run.stderr
    assert cli("fv", "inject").stderr.strip() == "rcid-tl: error: name the run: --out-base-dir BASE or --run-id ID"
    assert not out.exists()
