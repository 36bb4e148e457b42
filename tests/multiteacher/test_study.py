"""The multi-teacher study script end to end on a tiny configuration (two arms, two steps), and the KV study's
statistics (--restat) against an independent Welch test."""

import json
import sys
from pathlib import Path

import pytest
import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "experiments"))
FIGURES = Path(__file__).resolve().parents[2] / "figures"
import kv_study  # noqa: E402
import multiteacher_study  # noqa: E402


@pytest.fixture(autouse=True)
def _one_thread():
    threads = torch.get_num_threads()
    yield
    torch.set_num_threads(threads)  # the scripts set one thread


def test_multiteacher_study_tiny_run_writes_its_report(tmp_path) -> None:
    multiteacher_study.main(["--steps", "2", "--n-train", "8", "--eval-n", "2", "--curve-n", "2", "--curve-every", "2",
                             "--arms", "ce-only", "baseline", "--seeds", "1", "--kv-weights", "1", "0.5", "--out",
                             str(tmp_path / "runs"), "--figures", str(tmp_path)])
    report = json.loads((tmp_path / "multiteacher_study.json").read_text())
    assert set(report["runs"]) == {"ce-only", "baseline"}
    selection = report["selection"]  # on the validation stream, before the arms
    assert selection["grid"] == [0.5, 1.0] and selection["chosen"] in (0.5, 1.0)
    best = max(v["accuracy"] for v in selection["validation"].values())
    assert selection["validation"][f"{selection['chosen']:g}"]["accuracy"] == best
    assert report["runs"]["baseline"]["1"]["config"]["kv_weight"] == selection["chosen"]
    assert report["runs"]["ce-only"]["1"]["config"]["kv_weight"] == 0
    runs = sorted(p.name for p in (tmp_path / "runs").iterdir() if p.is_dir())
    assert runs == ["baseline-kv0.5-1", "baseline-kv1-1", "ce-only-1"]
    assert report["controls"]["compute"]["1"]["steps"] == 2  # equal compute across the arms, asserted by the script
    shift = report["alignment_shift"]
    assert shift["world-qwen2-cot"]["mean_off_diagonal"] == 0  # same tokenizer as the student: the identity
    assert shift["world-gpt2-cot-digits"]["mean_off_diagonal_numbers"] > 0.3  # two-digit numbers are split
    assert "| baseline | 1 |" in (tmp_path / "multiteacher_study.md").read_text()


def test_kv_study_restat_matches_an_independent_welch_test(tmp_path) -> None:
    scipy_stats = pytest.importorskip("scipy.stats")
    values = {"ce": [0.34, 0.48, 0.38], "kv-mse": [0.54, 0.68, 0.66], "kv-mse+attn": [0.46, 0.62, 0.64]}
    summary = {arm: {s: {k: {"values": v} for k in ("accuracy", "perplexity")} for s in ("id", "ood-longer",
                                                                                         "ood-pairs")}
               for arm, v in values.items()}
    report = {"summary": summary, "teacher": {s: {"accuracy": 1.0, "perplexity": 1.0} for s in
                                              ("id", "ood-longer", "ood-pairs")},
              "diagnosis": json.loads((FIGURES / "kv_study.json").read_text())["diagnosis"]}
    path = tmp_path / "kv.json"
    path.write_text(json.dumps(report))
    path.with_suffix(".md").write_text("# header\n\n| arm | old table |\n")
    kv_study.restat(path)
    out = json.loads(path.read_text())["summary"]
    for arm in ("kv-mse", "kv-mse+attn"):
        want = scipy_stats.ttest_ind(values[arm], values["ce"], equal_var=False).pvalue
        # both are the same closed form in float64: agreement to rounding
        assert out[arm]["id"]["accuracy"]["welch_vs_ce"]["p"] == pytest.approx(want, rel=1e-9)
    want = scipy_stats.ttest_ind(values["kv-mse+attn"], values["kv-mse"], equal_var=False).pvalue
    assert out["kv-mse+attn"]["id"]["accuracy"]["welch_vs_kv_mse"]["p"] == pytest.approx(want, rel=1e-9)
