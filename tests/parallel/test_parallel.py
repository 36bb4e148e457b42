"""Two processes on the CPU (gloo) against one: data-parallel distillation ends with the single-process weights, a
state saved by two processes resumes in one, split sweeps gather the single-process result, and a failing rank
stops the group with one message. Each group is started as its own processes (see launch.py)."""

import json

import pytest
import torch
from safetensors.torch import load_file

from rcid_tl.distill.run import run_distill
from tests.parallel.launch import bare_ranks, torchrun
from tests.parallel.ranks import FAILURE, distill_config, sweeps

# Two processes run the same float32 ops on half batches and DDP averages their gradients, so only summation order
# differs (~1e-7 per step; observed 2.9e-7 after 6 steps). AdamW's step is g/(√v + 1e-8): for the attention key
# biases, whose true gradient is zero (softmax ignores a constant shift), that divides rounding noise by noise, so
# those entries differ more (observed 2.9e-6 at the tiny run's lr of 1e-3); 1e-5 is the bound.
WEIGHT_TOL = 1e-5
# AdamW moves a weight by at most about lr per step, so 6 steps at lr 1e-3 bound any key-bias difference.
KEY_BIAS_TOL = 6e-3
SWEEP_TOL = 1e-6  # each chunk is the same forward in both runs; in practice the results are bit-identical


def _weights(run_dir):
    return load_file(run_dir / "student" / "model.safetensors")


def _max_diff(a: dict, b: dict) -> float:
    """The largest difference outside GPT-2's key biases (c_attn.bias[d:2d]); those are checked against
    KEY_BIAS_TOL here (see WEIGHT_TOL's comment)."""
    assert a.keys() == b.keys()
    worst = 0.0
    for k in a:
        diff = (a[k] - b[k]).abs()
        if k.endswith("attn.c_attn.bias"):
            d = diff.shape[0] // 3
            assert float(diff[d:2 * d].max()) <= KEY_BIAS_TOL, k
            diff = torch.cat([diff[:d], diff[2 * d:]])
        worst = max(worst, float(diff.max()))
    return worst


def _log(run_dir):
    records = [json.loads(line) for line in (run_dir / "train_log.jsonl").read_text().splitlines()]
    return [{k: v for k, v in r.items() if k != "elapsed_s"} for r in records]


@pytest.fixture(scope="module")
def one_process(tmp_path_factory):
    out = tmp_path_factory.mktemp("one") / "run"
    return out, run_distill(distill_config(), out)


def test_two_process_distillation_matches_one(one_process, tmp_path):
    single, metrics = one_process
    done = torchrun(["distill", str(tmp_path / "two")])
    assert done.codes == [0], done.stderr
    assert _max_diff(_weights(single), _weights(tmp_path / "two")) <= WEIGHT_TOL
    two_log, one_log = _log(tmp_path / "two"), _log(single)
    assert [r["step"] for r in two_log] == [r["step"] for r in one_log]
    for a, b in zip(two_log, one_log):  # the logged losses are averaged over both processes' halves
        assert a["loss"] == pytest.approx(b["loss"], rel=1e-5)
    saved = json.loads((tmp_path / "two" / "metrics.json").read_text())
    assert saved["processes"] == 2 and metrics["processes"] == 1


def test_state_saved_by_two_processes_resumes_in_one(one_process, tmp_path):
    single, _ = one_process
    out = tmp_path / "moved"
    done = torchrun(["distill", str(out), "3"])  # stop after step 3 of 6
    assert done.codes == [0], done.stderr
    assert torch.load(out / "train_state.pt", weights_only=True)["step"] == 3
    run_distill(distill_config(), out)  # one process now
    assert _max_diff(_weights(single), _weights(out)) <= WEIGHT_TOL
    assert [r["step"] for r in _log(out)] == list(range(1, 7))


def test_split_sweeps_gather_the_single_process_result(tmp_path):
    done = torchrun(["sweeps", str(tmp_path / "sweeps.pt")])
    assert done.codes == [0], done.stderr
    two, one = torch.load(tmp_path / "sweeps.pt", weights_only=True), sweeps()
    for key in one:  # patch (hence consistency, which patches through it), knockout, FV CIE
        assert two[key].shape == one[key].shape
        assert torch.allclose(two[key], one[key], atol=SWEEP_TOL, rtol=0), key
    # 5 chunks dealt round-robin: rank 0 computed 0, 2, 4 and rank 1 computed 1, 3, gathered back in order
    assert two["shares"].tolist() == [[0, 0], [1, 1], [0, 2], [1, 3], [0, 4]]


def test_a_failing_rank_stops_every_rank_with_one_message(tmp_path):
    done = bare_ranks(["fail", str(tmp_path / "run")])  # no launcher to kill the survivor: it must stop itself
    assert done.codes == [1, 2], done.stderr  # rank 0 stops quietly, rank 1 reports bad input (exit 2)
    errors = [line for line in done.stderr.splitlines() if line.startswith("rcid-tl: error")]
    assert errors == [f"rcid-tl: error: {FAILURE} (rank 1 of 2)"], done.stderr
    assert "Traceback" not in done.stderr
    assert not (tmp_path / "run" / "metrics.json").exists()
