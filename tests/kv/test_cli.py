"""`rcid-tl distill-kv` end to end on a tiny CoT teacher (log lines, learning curves, metrics, resume) and
`rcid-tl diagnose-losses` (shares, attention effect, recommendations)."""

import json

import pytest


def test_distill_kv_end_to_end_and_resume(cli, cot_teacher_dir, tmp_path):
    out = tmp_path / "kv"
    args = ["distill-kv", "--teacher", str(cot_teacher_dir), "--n", "16", "--steps", "4",
            "--batch-size", "4", "--eval-n", "4", "--eval-every", "2", "--save-every", "2",
            "--attention-weighted-kv", "--attention-weighted-kv-warmup", "2", "--codi-weight", "0.5",
            "--kv-loss", "cosine", "--out", str(out)]
    run = cli(*args)
    assert run.code == 0, run.stderr
    assert "Step 2: loss=" in run.stderr and "[Attn-warmup: 1 steps]" in run.stderr  # the KV recipe's lines
    assert "Step 4: loss=" in run.stderr and "[Student-Attn-weighted]" in run.stderr
    log = [json.loads(line) for line in (out / "train_log.jsonl").read_text().splitlines()]  # every 2 steps
    assert [r["attn_weighted"] for r in log] == [0.0, 1.0]  # warm-up: steps 0 and 1 plain, 2 and 3 weighted
    assert [r["curve_step"] for r in log] == [0.0, 2.0]
    assert all({"ce", "kv", "cka", "codi", "curve_accuracy"} <= r.keys() for r in log)
    metrics = json.loads((out / "metrics.json").read_text())
    assert set(metrics["scores"]) == {"id", "ood-longer", "ood-pairs", "validation"}
    assert metrics["config"]["kv"]["kv_loss"] == "cosine" and metrics["data"]["sizes"]["student"] == 16
    assert (out / "data_streams.json").is_file()
    assert metrics["rcid_tl_version"] and (out / "learning_curves.html").is_file()
    assert (out / "student" / "config.json").is_file()
    again = cli(*args)  # a finished run resumes at its end: no training step is repeated
    assert again.code == 0 and "Step" not in again.stderr
    changed = cli(*args[:-2], "--kv-weight", "2", "--out", str(out))
    assert changed.code == 2 and "kv.kv_weight: 1.0 → 2.0" in changed.stderr


def test_diagnose_losses(cli, cot_teacher_dir, tmp_path):
    run = cli("diagnose-losses", "--teacher", str(cot_teacher_dir), "--n-batches", "2", "--batch-size", "4",
              "--attention-weighted-kv", "--codi-weight", "0.5", "--out", str(tmp_path))
    assert run.code == 0, run.stderr
    result = json.loads((tmp_path / "diagnosis.json").read_text())
    assert sum(result["shares"].values()) == pytest.approx(1.0)
    assert set(result["stats"]) == {"ce", "kv", "kv_weighted", "cka", "codi"}
    kv = result["stats"]["kv"]["mean"]
    assert result["attention_effect"] == pytest.approx((result["stats"]["kv_weighted"]["mean"] - kv) / kv)
    assert result["contributions"]["kv"] == pytest.approx(result["stats"]["kv_weighted"]["mean"])  # weight 1
    assert any("cka" in r for r in result["recommendations"]) and "Loss scales" in run.stdout
