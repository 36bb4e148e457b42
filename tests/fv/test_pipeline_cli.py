"""`rcid-tl fv run` end to end on the world teacher: the run layout and schemas, extraction and injection
reusing the CIE sweep's snapshot, the AIE package, the other subcommands, and determinism."""

import csv
import json
import shutil

import pytest
import torch

from tests.fv.conftest import RUN_ARGS

LAYOUT = [
    "artifacts/sampled_trials.json", "artifacts/cie_scores.csv", "artifacts/aie_scores.csv",
    "artifacts/trial_metrics.jsonl", "artifacts/stepD_mean_acts/global_clean_mean.pt",
    "artifacts/stepD_mean_acts/qid_antonym_clean_mean.pt", "artifacts/stepD_mean_acts/qid_successor_clean_mean.pt",
    "artifacts/stepD_mean_acts/mean_activations.pt", "artifacts/top_heads.json", "artifacts/fv_by_layer.pt",
    "artifacts/fv_global_resid.pt", "artifacts/fv_global_resid_meta.json", "artifacts/stepE_eval.json",
    "artifacts/step6/step6.log", "artifacts/step6/eval_summary.json", "artifacts/step6/eval_trials.jsonl",
    "artifacts/step6/eval_meta.json", "artifacts/step6/step6_results_world-gpt2_layer1_n2.json",
    "artifacts/step6/metadata_step6_world-gpt2_layer2_n2.json", "artifacts/trial_split.json", "logs/stepD_aie.log",
    "logs/stepE.log",
]


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    """Two identical CLI runs (the second for the determinism check); the module-scoped `cli` cannot be used, so
    the console entry point is driven directly."""
    import sys

    from rcid_tl.cli.app import main

    bases = [tmp_path_factory.mktemp("fv") / "base" for _ in range(2)]
    for base in bases:
        argv = sys.argv
        sys.argv = ["rcid-tl", "fv", "run", *RUN_ARGS, "--out-base-dir", str(base)]
        try:
            main()
        except SystemExit as exit_:
            assert not exit_.code
        finally:
            sys.argv = argv
    return bases


def test_layout_is_complete(runs):
    base = runs[0]
    missing = [p for p in LAYOUT if not (base / p).is_file()]
    assert not missing
    assert "CIE sweep" in (base / "logs/stepD_aie.log").read_text() and (base / "logs/stepE.log").read_text()


def test_cie_schema_and_ordering(runs):
    rows = list(csv.DictReader((runs[0] / "artifacts/cie_scores.csv").open()))
    assert list(rows[0]) == ["q_id", "layer", "head", "n_trials", "mean_delta_logprob", "mean_delta_p"]
    assert len(rows) == 2 * 6 * 4 and {r["n_trials"] for r in rows} == {"2"}  # the 2 selection trials of 4
    for qid in ("antonym", "successor"):
        mine = [(-float(r["mean_delta_logprob"]), int(r["layer"]), int(r["head"])) for r in rows if r["q_id"] == qid]
        assert mine == sorted(mine)  # score descending, then layer, then head ascending
    metrics = [json.loads(line) for line in (runs[0] / "artifacts/trial_metrics.jsonl").open()]
    assert len(metrics) == 4 and len(metrics[0]["delta_logprob"]) == 24
    split = json.loads((runs[0] / "artifacts/trial_split.json").read_text())["by_qid"]
    assert sorted(m["trial"] for m in metrics if m["q_id"] == "antonym") == split["antonym"]["selection"]
    antonym_53 = sum(m["delta_logprob"]["5.3"] for m in metrics if m["q_id"] == "antonym") / 2
    assert antonym_53 == pytest.approx(next(float(r["mean_delta_logprob"]) for r in rows
                                            if (r["q_id"], r["layer"], r["head"]) == ("antonym", "5", "3")), abs=1e-6)


def test_mean_acts_and_vectors(runs):
    art = runs[0] / "artifacts"
    acts = torch.load(art / "stepD_mean_acts/qid_antonym_clean_mean.pt", weights_only=True)
    assert {"clean_mean", "slot_q", "n_heads", "head_dim", "resid_dim"} <= set(acts)
    assert acts["clean_mean"].shape == (6, 4, 32) and acts["resid_dim"] == 128
    fv = torch.load(art / "fv_by_layer.pt", weights_only=True)
    assert fv["qids"] == ["antonym", "successor"] and fv["fv_by_layer"].shape == (2, 6, 128)
    assert torch.load(art / "fv_global_resid.pt", weights_only=True).shape == (128,)
    top = json.loads((art / "top_heads.json").read_text())
    assert top["k"] == 3 and len(top["global"]) == 3 and set(top["by_qid"]) == {"antonym", "successor"}
    heads = {(h["layer"], h["head"]) for h in top["by_qid"]["antonym"]}
    assert {tuple(h) for h in fv["heads"]["antonym"]} == heads
    for layer in range(6):  # a layer's slice of the FV is non-zero exactly when a top head lives there
        assert bool(fv["fv_by_layer"][0, layer].abs().sum() > 0) == any(h[0] == layer for h in heads)
    quick = json.loads((art / "stepE_eval.json").read_text())
    assert quick["edit_layer"] == 2 and set(quick["results"]) == {"zero_shot", "corrupted"}


def test_injection_summary_and_meta(runs):
    folder = runs[0] / "artifacts/step6"
    meta = json.loads((folder / "eval_meta.json").read_text())
    assert meta["eval_scope"] == "in_domain" and meta["eval_qids"] == ["antonym", "successor"]
    assert meta["fv_source_qid"] is None and meta["layers"] == [1, 2] and meta["alphas"] == [1.0, 2.0]
    summary = json.loads((folder / "eval_summary.json").read_text())
    assert len(summary["entries"]) == 2 * 2 * 2  # relations × layers × alphas
    entry = summary["entries"][0]
    assert {"mean_delta_logprob", "accuracy_delta", "mean_delta_p", "baseline_accuracy"} <= set(entry)
    assert summary["matrix"][0]["mean_delta_logprob"]["antonym"]["antonym"] == entry["mean_delta_logprob"]
    assert sum(1 for _ in (folder / "eval_trials.jsonl").open()) == 2 * 2 * 2 * 2  # on the 2 selection trials
    for row in summary["held_out"]:  # chosen on the selection trials, scored on the others
        chosen = summary["split"]["by_qid"][row["eval_qid"]]
        assert row["selection"]["trials"] == chosen["selection"] and row["evaluation"]["trials"] == chosen["evaluation"]
        assert not set(chosen["selection"]) & set(chosen["evaluation"])
        assert {"fv_accuracy", "zero_shot_accuracy", "random_accuracy", "corrupted_icl_accuracy"} <= \
            set(row["evaluation"])
        assert row["evaluation"]["fv_accuracy"]["n"] == 2 and row["k"] == 3


def test_two_runs_agree(runs):
    a, b = ([r for r in csv.DictReader((base / "artifacts/cie_scores.csv").open())] for base in runs)
    assert [(r["q_id"], r["layer"], r["head"]) for r in a] == [(r["q_id"], r["layer"], r["head"]) for r in b]
    assert max(abs(float(x["mean_delta_logprob"]) - float(y["mean_delta_logprob"])) for x, y in zip(a, b)) <= 1e-6
    tops = [json.loads((base / "artifacts/top_heads.json").read_text()) for base in runs]
    assert tops[0] == tops[1]
    sums = [json.loads((base / "artifacts/step6/eval_summary.json").read_text())["entries"] for base in runs]
    assert max(abs(x["mean_delta_logprob"] - y["mean_delta_logprob"]) for x, y in zip(*sums)) <= 1e-6


def test_inject_holds_out_what_the_vectors_were_built_from(cli, runs, tmp_path):
    import shutil

    base = tmp_path / "copy"
    shutil.copytree(runs[1], base)
    run = cli("fv", "inject", "--out-base-dir", base, "--n-select", "1", "--n-eval", "3", "--inject-layers", "0")
    assert run.code == 2 and "were used to build the function vectors" in run.stderr, run.stderr
    assert cli("fv", "inject", "--out-base-dir", base, "--n-eval", "0").stderr.strip() == \
        "rcid-tl: error: --n-eval must be ≥ 1, got 0"
    run = cli("fv", "inject", "--out-base-dir", base, "--n-eval", "1", "--inject-layers", "0")
    assert run.code == 0, run.stderr
    held = json.loads((base / "artifacts/step6/eval_summary.json").read_text())["held_out"]
    assert {len(r["evaluation"]["trials"]) for r in held} == {1}
    (base / "artifacts/trial_split.json").unlink()  # a run whose vectors saw every trial
    run = cli("fv", "inject", "--out-base-dir", base, "--inject-layers", "0")
    assert run.code == 2 and "built from all of its trials" in run.stderr


def test_other_subcommands_reuse_the_snapshot(cli, runs, tmp_path):
    base = shutil.copytree(runs[0], tmp_path / "base")  # the subcommands write into it; other tests read runs[0]
    snapshot = (base / "artifacts/sampled_trials.json").read_bytes()
    run = cli("fv", "inject", "--model", "world-gpt2", "--out-base-dir", base, "--fv", "global",
              "--inject-layers", "0", "--n-eval", "2")
    assert run.code == 0, run.stderr
    meta = json.loads((base / "artifacts/step6/eval_meta.json").read_text())
    assert meta["eval_scope"] == "all_qids" and meta["fv"] == "global"
    matrix = json.loads((base / "artifacts/step6/eval_summary.json").read_text())["matrix"][0]["accuracy_delta"]
    assert set(matrix) == {"global"} and set(matrix["global"]) == {"antonym", "successor"}
    run = cli("fv", "aie", "--model", "world-gpt2", "--out-base-dir", base, "--qids", "successor", "--k", "2")
    assert run.code == 0, run.stderr
    (package,) = (base / "artifacts/aie").iterdir()
    assert {p.name for p in package.iterdir()} >= {"selected_qids.json", "aie_scores.csv", "top_heads.json",
                                                    "fv_meta.json"}
    assert json.loads((package / "selected_qids.json").read_text())["selected_qids"] == ["successor"]
    assert cli("fv", "vectors", "--out-base-dir", base, "--k", "2", "--n-eval", "1").code == 0
    assert (base / "artifacts/sampled_trials.json").read_bytes() == snapshot  # never re-sampled
    assert cli("fv", "export-world-relations", "--out", tmp_path / "w.csv").code == 0
    assert (tmp_path / "w.csv").read_text().startswith("q_id,input,output\nantonym,hot,cold\n")
