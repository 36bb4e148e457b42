"""`rcid-tl study` end to end on a random 2-layer teacher: four students trained, experiments 1–5 written, and a
a finished student kept rather than retrained."""

import json

import pytest

from rcid_tl.models.loading import load_model
from rcid_tl.models.saving import save_hf_model
from rcid_tl.models.student import StudentConfig, build_student_for


@pytest.fixture(scope="module")
def tiny_teacher(tmp_path_factory):
    root = tmp_path_factory.mktemp("study-teacher")
    teacher = build_student_for(load_model("world-gpt2"), StudentConfig(n_layers=2, d_model=32, n_heads=4, seed=1))
    save_hf_model(teacher, root / "teacher")
    return root / "teacher"


def test_study_end_to_end(cli, tiny_teacher, tmp_path):
    out = tmp_path / "study"
    args = ["study", "--teacher", str(tiny_teacher), "--out", str(out), "--steps", "2", "--pretrain-steps", "0",
            "--n", "16", "--scale", "0.01", "--jobs", "1"]
    result = cli(*args)
    assert result.code == 0, result.stderr
    summary = json.loads((out / "summary.json").read_text())
    assert set(summary["students"]) == {f"{m}-42" for m in ("standard-kd", "fitnets", "informed-fitnets", "rcid")}
    for number in range(1, 6):
        assert (out / f"exp{number}.json").is_file() and (out / f"exp{number}.html").is_file()
    text = (out / "summary.md").read_text()
    assert "## Experiment 5: Information purity" in text and "Welch tests between methods are undefined" in text
    rows = json.loads((out / "exp2.json").read_text())["ioi"]["rows"]
    assert {r["method"] for r in rows} == {"standard-kd", "fitnets", "informed-fitnets", "rcid"}


def test_a_finished_student_is_kept(tmp_path):
    from rcid_tl.study.train import train_student

    (tmp_path / "rcid-1").mkdir()
    (tmp_path / "rcid-1" / "metrics.json").write_text("{}")
    run = train_student("rcid", 1, "no-such-teacher", tmp_path)  # would fail if it trained
    assert run.path == tmp_path / "rcid-1" and not list(tmp_path.glob("*.log"))
