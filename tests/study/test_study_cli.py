"""`rcid-tl study` end to end on a random 2-layer teacher: four students trained, the five experiments written, a
finished student kept rather than retrained, and a study's student equal to the one `rcid-tl distill` trains from the
same recipe."""

import json

import pytest
import torch
from safetensors.torch import load_file

from rcid_tl.models.loading import load_model
from rcid_tl.models.saving import save_hf_model
from rcid_tl.models.student import StudentConfig, build_student_for
from rcid_tl.study.train import Recipe, train_student


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
    (tmp_path / "rcid-1").mkdir()
    (tmp_path / "rcid-1" / "metrics.json").write_text("{}")
    run = train_student("rcid", 1, "no-such-teacher", tmp_path)  # would fail if it trained
    assert run.path == tmp_path / "rcid-1" and not list(tmp_path.glob("*.log"))


def test_a_study_student_is_the_one_rcid_tl_distill_trains(cli, tiny_teacher, tmp_path):
    """The study calls run_distill with the recipe's DistillConfig; `rcid-tl distill` with the recipe's options (what
    metrics.json records as the command) builds the same config, so the seeded runs give the same student."""
    recipe = Recipe(n=16, steps=2, batch_size=8, top_k=2, eval_n=6, pretrain_steps=1)
    run = train_student("fitnets", 3, str(tiny_teacher), tmp_path / "study", recipe)
    via_cli = tmp_path / "cli" / "fitnets-3"
    result = cli("distill", "--teacher", str(tiny_teacher), "--method", "fitnets", "--seed", "3", *recipe.args(),
                 "--out", str(via_cli))
    assert result.code == 0, result.stderr
    study, direct = (json.loads((p / "metrics.json").read_text()) for p in (run.path, via_cli))
    assert study["command"].split("--out")[0] == "rcid-tl " + " ".join(
        ["distill", "--teacher", str(tiny_teacher), "--method", "fitnets", "--seed", "3", *recipe.args(), ""])
    same = lambda m: {k: v for k, v in m.items() if k != "command" and not k.endswith("wall_s")}  # noqa: E731
    assert same(study) == same(direct)
    weights = [load_file(p / "student" / "model.safetensors") for p in (run.path, via_cli)]
    assert weights[0].keys() == weights[1].keys()
    for name in weights[0]:
        torch.testing.assert_close(weights[0][name], weights[1][name], atol=0, rtol=0)  # same seed, same ops: equal
