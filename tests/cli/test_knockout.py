"""`rcid-tl knockout`: real runs (a head set, every head singly under each method, a pairs file), result files checked
against the contract, and a zero ablation recomputed from the recorded ids with zeroed weights in a fresh HF load."""

import pytest

from tests.cli.contract import load_checked, recompute_zero_ablation


def test_head_set_zero_ablation(cli, tiny_gpt2_dir, tmp_path):
    out = tmp_path / "k"
    run = cli("knockout", "--model", tiny_gpt2_dir, "--task", "ioi", "--n", "3", "--heads", "0.1,1.2",
              "--method", "zero", "--out", out)
    assert run.code == 0, run.stderr
    payload = load_checked(out, "knockout")
    assert payload["method"] == "zero" and payload["config"]["heads"] == "0.1,1.2"
    [ablation] = payload["ablations"]
    assert ablation["heads"] == ["0.1", "1.2"] and ablation["positions"] == "all"
    for i in range(3):
        # fresh HF forward of one example vs a batched bridge row: float32 rounding of O(1) logit differences
        assert recompute_zero_ablation(tiny_gpt2_dir, payload, ["0.1", "1.2"], i) == pytest.approx(
            ablation["metric"][i], abs=1e-5)
        assert ablation["delta"][i] == pytest.approx(payload["metric_clean"][i] - ablation["metric"][i], abs=1e-6)


@pytest.mark.parametrize("method", ["zero", "mean", "resample"])
def test_all_heads_under_each_method(cli, tiny_gpt2_dir, tmp_path, method):
    out = tmp_path / method
    run = cli("knockout", "--model", tiny_gpt2_dir, "--task", "ioi", "--n", "4", "--all-heads", "--method", method,
              "--reference", "clean", "--out", out)
    assert run.code == 0, run.stderr
    payload = load_checked(out, "knockout")
    assert payload["method"] == method and payload["config"]["reference"] == "clean"
    assert [a["heads"] for a in payload["ablations"]] == [[f"{layer}.{h}"] for layer in range(2) for h in range(4)]
    if method != "zero":
        # the values come from a separate sample, big enough for ≥ 50 per (template, answer position) of the four
        # scored examples, drawn with another seed
        reference = payload["reference_distribution"]
        groups = {f"{e['template']}:{e['answer_pos']}" for e in payload["examples"]}
        assert set(reference["group_sizes"]) == groups and reference["min_group_size"] >= 50
        assert reference["task_config"]["seed"] != payload["seed"] and not reference["same_as_evaluated"]
        assert reference["run"] == "clean" and reference["n_reference"] == reference["task_config"]["n"]
        assert max(abs(d) for a in payload["ablations"] for d in a["delta"]) > 1e-3


def test_knockout_on_a_pairs_file_at_named_positions(cli, stories_dir, stories_pairs, tmp_path):
    out = tmp_path / "pairs"
    run = cli("knockout", "--model", stories_dir, "--task", f"pairs:{stories_pairs}", "--n", "2", "--heads", "0.5",
              "--method", "zero", "--positions", "end", "--out", out)
    assert run.code == 0, run.stderr
    payload = load_checked(out, "knockout")
    assert payload["ablations"][0]["positions"] == ["end"] and len(payload["examples"]) == 2
