"""Results in notebooks: to_frame is tidy and equal to the CSV each result writes, load_result reads every saved
JSON back into an object whose frame and figure equal the original's, and old files without "kind" still load."""

import csv
import json

import pandas as pd
import plotly.graph_objects as go
import pytest

import rcid_tl
from rcid_tl.consistency.run import CheckpointsConfig, ConsistencyConfig, SelectionConfig, run_checkpoints, run_consistency
from rcid_tl.errors import InputError
from rcid_tl.hooks.names import Site
from rcid_tl.interventions.knockout import Method
from rcid_tl.models import load_model
from rcid_tl.results import StudentEvaluation
from rcid_tl.sweeps.common import ModelSpec
from rcid_tl.sweeps.knockout import KnockoutConfig, run_knockout
from rcid_tl.sweeps.patch import PatchConfig, run_patch
from rcid_tl.tasks.registry import TaskSpec

N = 6  # a handful of examples: these tests check bookkeeping, not effects


@pytest.fixture(scope="module")
def world():
    return load_model("world-gpt2")


@pytest.fixture(scope="module")
def results(world):
    spec, task = ModelSpec("world-gpt2"), TaskSpec("ioi", n=N, corruption="abc")
    return {
        "patch": run_patch(PatchConfig(spec, task, site=Site.Z, layers="0,5", positions="end"), world),
        "knockout": run_knockout(KnockoutConfig(spec, task, all_heads=True, method=Method.ZERO, positions="end"), world),
        "checkpoints": run_checkpoints(CheckpointsConfig(spec, task, SelectionConfig(top_k=3)), world),
        "consistency": run_consistency(ConsistencyConfig(spec, spec, task, selection=SelectionConfig(top_k=2),
                                                         n_bootstrap=20), world, world),
    }


@pytest.mark.parametrize("kind", ["patch", "knockout", "checkpoints", "consistency"])
def test_saved_results_load_back_with_equal_frames_and_figures(results, kind, tmp_path):
    result = results[kind]
    result.save(tmp_path)
    loaded = rcid_tl.load_result(tmp_path / f"{kind}.json")
    assert type(loaded) is type(result)
    pd.testing.assert_frame_equal(loaded.to_frame(), result.to_frame())
    assert loaded.to_frame().attrs == result.to_frame().attrs
    assert loaded.figure().to_plotly_json() == result.figure().to_plotly_json()
    # the frame is the CSV the result wrote, row for row (an independent writer of the same numbers)
    with open(tmp_path / f"{kind}.csv") as f:
        from_csv = pd.DataFrame(list(csv.DictReader(f)))
    frame = result.to_frame()
    assert len(frame) == len(from_csv)
    value = {"patch": "delta", "knockout": "delta", "checkpoints": "mean_norm", "consistency": "delta_student"}[kind]
    assert frame[value].tolist() == pytest.approx(from_csv[value].astype(float).tolist(), rel=1e-12)


def test_frames_are_tidy(results):
    patch = results["patch"].to_frame()
    assert list(patch.columns) == ["site", "layer", "head", "position", "example", "delta"]
    assert len(patch) == 2 * 4 * N  # 2 layers × 4 heads × 1 position × N examples
    assert patch.attrs | {"model": "world-gpt2", "task": "ioi", "n": N, "corruption": "abc"} == patch.attrs
    knockout = results["knockout"].to_frame()
    assert len(knockout) == 6 * 4 * N and set(knockout.positions) == {"end"}


def test_titles_name_model_task_metric_n_direction_and_corruption(results):
    title = results["patch"].figure().layout.title.text
    for fact in ("world-gpt2", "ioi", "abc corruption", "logit_diff", f"n = {N}", "noising", "z"):
        assert fact in title
    assert "zero ablation" in results["knockout"].figure().layout.title.text
    assert "abc corruption" in results["consistency"].figure().layout.title.text


def test_files_without_kind_still_load(results, tmp_path):
    payload = results["patch"].to_json()
    del payload["kind"]
    (tmp_path / "old.json").write_text(json.dumps(payload))
    pd.testing.assert_frame_equal(rcid_tl.load_result(tmp_path / "old.json").to_frame(), results["patch"].to_frame())


def test_distill_metrics_load_as_a_student_evaluation(results, tmp_path):
    consistency = results["consistency"].to_json()
    metrics = {"method": "rcid", "teacher": "world-gpt2", "task": "ioi", "n_eval": N, "accuracy": 1.0,
               "causal_consistency": {k: consistency[k] for k in ("mean_r", "mean_r_ci", "checkpoints")}}
    (tmp_path / "metrics.json").write_text(json.dumps(metrics))
    loaded = rcid_tl.load_result(tmp_path / "metrics.json")
    assert isinstance(loaded, StudentEvaluation)
    frame = loaded.to_frame()
    assert frame["pearson_r"].tolist() == pytest.approx([c["pearson_r"] for c in consistency["checkpoints"]])
    assert isinstance(loaded.figure(), go.Figure) and frame.attrs["accuracy"] == 1.0


@pytest.mark.parametrize("text, message", [("[1, 2]", "not an rcid-tl result"), ("{}", "keys match none"),
                                           ('{"kind": "nope"}', "unknown kind 'nope'"), ("{", "not valid JSON")])
def test_unreadable_files_are_one_line_input_errors(tmp_path, text, message):
    (tmp_path / "r.json").write_text(text)
    with pytest.raises(InputError, match=message):
        rcid_tl.load_result(tmp_path / "r.json")


def test_function_vector_scores_as_a_frame_and_an_aie_heatmap():
    from rcid_tl.fv.ranking import HeadScore, aie_scores
    from rcid_tl.frames import aie_figure, cie_frame  # what StepDResult.to_frame() and .figure() return

    cie = {q: [HeadScore(layer, head, 8, float((i + 1) * (layer - head)), 0.1 * head) for layer in range(2)
               for head in range(3)] for i, q in enumerate(("antonym", "capital"))}
    frame = cie_frame(cie)
    assert len(frame) == 2 * 2 * 3 and set(frame.relation) == {"antonym", "capital"}
    z = aie_figure(cie).data[0].z
    for s in aie_scores(cie, list(cie)):  # the library's own AIE, cell by cell
        assert z[s.layer][s.head] == pytest.approx(s.mean_delta_logprob)
