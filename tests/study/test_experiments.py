"""One small end-to-end call of each experiment function, on a random 2-layer teacher and a 1-layer student that
share the world tokenizer, and the saved results rendered again from their JSON."""

import json

import pytest

from rcid_tl.models.loading import load_model
from rcid_tl.models.saving import save_hf_model
from rcid_tl.models.student import StudentConfig, build_student_for
from rcid_tl.study import comparison, preservation, probes, report, retention, robustness
from rcid_tl.study.runs import find_runs
from rcid_tl.tasks.registry import TaskSpec, build_task


@pytest.fixture(scope="module")
def world(tmp_path_factory):
    """(teacher dir, teacher, runs root with one student run, student)."""
    root = tmp_path_factory.mktemp("study")
    world_gpt2 = load_model("world-gpt2")
    teacher = build_student_for(world_gpt2, StudentConfig(n_layers=2, d_model=32, n_heads=4, seed=1))
    save_hf_model(teacher, root / "teacher")
    (root / "teacher" / "circuit.json").write_text(json.dumps({"circuit": ["0.1", "1.3"]}))
    student = build_student_for(world_gpt2, StudentConfig(n_layers=1, d_model=16, n_heads=2, seed=2))
    save_hf_model(student, root / "runs" / "fitnets-1" / "student")
    metrics = {"task": "ioi", "accuracy": 0.5, "metric_mean": 0.1, "metric": "logit_diff", "perplexity": 90.0,
               "teacher_scores": {}, "causal_consistency": {"mean_r": 0.1, "mechanistic_r": 0.0, "r_out": 0.2}}
    (root / "runs" / "fitnets-1" / "metrics.json").write_text(json.dumps(metrics))
    return root, load_model(str(root / "teacher")), load_model(str(root / "runs" / "fitnets-1" / "student"))


def test_experiments_end_to_end(world, tmp_path):
    root, teacher, student = world
    runs = find_runs(root / "runs", methods=("fitnets",), seeds=(1,))
    one = preservation.circuit_preservation(runs, str(root / "teacher"), n=12, seed=5, top_k=2,
                                             n_bootstrap=50)
    assert (runs[0].consistency_dir() / "consistency.json").is_file()  # measured once, then read back
    row = one["rows"][0]
    assert 0 <= row["accuracy"] <= 1 and len(row["checkpoints"]) == 2

    rows = [comparison.run_row(runs[0], runs[0].consistency())]
    two = {"ioi": {"rows": rows, **comparison.compare_methods(rows)}, "greater_than": []}
    assert two["ioi"]["per_method"]["fitnets"]["accuracy"]["estimate"] == 0.5

    students = [{"label": "fitnets-1", "model_dir": str(runs[0].model_dir), "mechanistic_r": row["mechanistic_r"],
                 "mean_r": row["mean_r"]}]
    three = robustness.consistency_vs_robustness(students, str(root / "teacher"), n=6, seed=3)
    assert set(three["rows"][0]["relative"]) == {"held-out names", "held-out templates"}

    four = retention.component_retention(teacher, str(root / "teacher"), [("fitnets-1", student)], n=6,
                                         reference_n=300)  # covers the 6 examples' (template, position) groups
    cell = four["rows"][0]["circuit_retention"]["circuit"]
    assert cell["student_heads"] == ["0.0", "0.1"]  # teacher 0.1 → 0.0 and 1.3 → 0.1 on the 1-layer, 2-head student
    t_drop = four["teacher"]["circuit_effects"]["effects"]["circuit"]["effect"]
    s_drop = four["rows"][0]["circuit_effects"]["effects"]["circuit"]["effect"]
    assert cell["retention"] == (None if abs(t_drop) < retention.MIN_TEACHER_EFFECT else pytest.approx(s_drop / t_drop))

    dataset = build_task(TaskSpec("ioi", n=24, seed=4), teacher.tokenizer, teacher.cfg.n_ctx)
    five = probes.information_purity(teacher, [("fitnets", "fitnets-1", student)], dataset, folds=2)
    assert set(five["per_model"]["teacher"]["layers"]) == {"h:0", "h:1", "d:0", "d:1"}
    assert set(five["per_method"]["fitnets"]) == {"h:0", "d:0"}

    for number, result in enumerate((one, two, three, four, five), start=1):
        written = report.save_experiment(tmp_path / f"study_exp{number}", number, result)
        assert written[1].read_text().startswith(("|", "Head", "Group", "IOI"))
        assert report.render(tmp_path / f"study_exp{number}")[0].read_text() == written[1].read_text()
