"""Causal consistency: a model against itself scores 1 everywhere; the student's Δ is its own
Write (mapped layer, own corrupt value), recomputed with plain Hugging Face hooks; undefined r is reported, not
averaged; mismatched tokenizers and layer maps are refused."""

import json

import pytest
import torch
from transformers import AutoModelForCausalLM

from rcid_tl.consistency.causal import causal_consistency
from rcid_tl.consistency.checkpoints import Checkpoint, select_checkpoints
from rcid_tl.errors import InputError
from rcid_tl.models.loading import load_model
from tests import hf_reference as ref

TOL = 1e-5  # Δ of O(1) logit differences: batched bridge rows vs a one-example HF forward, float32 rounding


@pytest.fixture(scope="module")
def student(student_dir):
    return load_model(str(student_dir))


def _point(layer: int, position: str) -> Checkpoint:
    return Checkpoint(layer, position, "resid_post", 1.0, False)


def test_a_model_is_consistent_with_itself(tiny_gpt2, ioi_abc):
    checkpoints = select_checkpoints(tiny_gpt2, ioi_abc, top_k=4)
    result = causal_consistency(tiny_gpt2, tiny_gpt2, ioi_abc, checkpoints, {0: 0, 1: 1}, batch_size=4,
                                n_bootstrap=50)
    assert len(result.checkpoints) == 4
    for entry in result.checkpoints:
        assert entry["pearson_r"] == pytest.approx(1.0, abs=1e-9)  # identical Δ vectors
        assert entry["delta_teacher"] == entry["delta_student"]
    assert result.mean_r == pytest.approx(1.0, abs=1e-9)
    assert result.mean_r_ci == pytest.approx((1.0, 1.0), abs=1e-9)


def test_student_delta_is_its_own_write(tiny_gpt2, student, student_dir, ioi_abc):
    # teacher layer 1 maps to the student's only layer 0; the student is patched with *its* corrupt activation
    result = causal_consistency(tiny_gpt2, student, ioi_abc, [_point(1, "end"), _point(0, "s1+1")], {0: 0, 1: 0},
                                batch_size=4, n_bootstrap=20)
    entry = result.checkpoints[0]
    assert (entry["teacher_layer"], entry["student_layer"], entry["modified"]) == (1, 0, False)
    hf = AutoModelForCausalLM.from_pretrained(student_dir, attn_implementation="eager").eval()
    example = ioi_abc.examples[4]
    clean, corrupt = torch.tensor([example.clean_ids]), torch.tensor([example.corrupt_ids])
    pos, answer = torch.tensor([example.positions["end"]]), example.answer_pos
    _, acts = ref.record(hf, corrupt, "resid_post", 0)
    patched = ref.patched_logits(hf, clean, "resid_post", 0, pos, acts[0, pos])
    with torch.no_grad():
        base = hf(clean).logits
    diff = lambda logits: logits[0, answer, example.correct_id] - logits[0, answer, example.wrong_id]  # noqa: E731
    assert entry["delta_student"][4] == pytest.approx(float(diff(base) - diff(patched)), abs=TOL)
    assert len(result.header["student_metric_clean"]) == len(ioi_abc)


def test_undefined_r_is_reported_and_left_out_of_the_mean(tiny_gpt2, student, ioi_s2):
    # s2-io leaves io untouched (it precedes the only changed token): Δ is exactly 0 in both models, r undefined.
    # s2 at the student's only (last) layer cannot reach the answer: Δ_S is float noise while Δ_T varies — the
    # student's component shares none of the teacher's effect there, so it is scored r = 0, not left out.
    result = causal_consistency(tiny_gpt2, student, ioi_s2, [_point(0, "io"), _point(0, "end"), _point(0, "s2")],
                                {0: 0, 1: 0}, batch_size=8, n_bootstrap=100, seed=5)
    io, end, s2 = result.checkpoints
    assert io["pearson_r"] is None and io["p_value"] is None and "constant" in io["note"]
    assert set(io["delta_teacher"]) == {0.0}
    assert s2["pearson_r"] == 0.0 and s2["partial_r"] == 0.0 and s2["p_value"] is None
    assert "Δ_student constant" in s2["note"] and "r = 0" in s2["note"]
    assert "student layer 0 is its last: s2 there cannot reach the answer" in s2["note"]
    assert end["note"] is None and 0 <= end["p_value"] <= 1
    assert result.n_defined == 2 and result.mean_r == pytest.approx(end["pearson_r"] / 2, abs=1e-12)
    lo, hi = result.mean_r_ci
    assert -1 <= lo <= hi <= 1
    again = causal_consistency(tiny_gpt2, student, ioi_s2, [_point(0, "end"), _point(0, "s2")], {0: 0, 1: 0},
                               batch_size=8, n_bootstrap=100, seed=5)
    # seeded; undefined checkpoints do not move it (1e-5: the Δ come from forwards batched with other sites, so they
    # differ by float32 rounding)
    assert again.mean_r_ci == pytest.approx(result.mean_r_ci, abs=1e-5)


def test_saved_files(tiny_gpt2, student, ioi_s2, tmp_path):
    result = causal_consistency(tiny_gpt2, student, ioi_s2, [_point(0, "end"), _point(0, "io")], {0: 0},
                                n_bootstrap=20)
    paths = result.save(tmp_path)
    assert [p.name for p in paths][:3] == ["consistency.json", "consistency.csv", "consistency.html"]
    payload = json.loads((tmp_path / "consistency.json").read_text())
    assert {"examples", "metric_clean", "task_config", "student", "checkpoints", "mean_r", "mean_r_ci"} <= set(payload)
    assert set(payload["checkpoints"][0]) == {
        "teacher_layer", "student_layer", "site", "position", "modified", "delta_teacher", "delta_student",
        "pearson_r", "p_value", "note", "head", "student_head", "r_out", "saturation_teacher", "saturation_student",
        "saturated", "partial_r", "partial_p", "partial_r_ci", "student_sites"}
    assert {"r_out", "mechanistic_r", "mechanistic_r_ci", "n_checkpoints_mechanistic"} <= set(payload)
    assert payload["checkpoints"][1]["pearson_r"] is None  # JSON null, never NaN
    assert (tmp_path / "consistency.csv").read_text().count("\n") == 1 + 2 * len(ioi_s2)


def test_refuses_a_student_with_another_tokenizer(tiny_gpt2, ioi_s2):
    world = load_model("world-gpt2")
    with pytest.raises(InputError, match="student's tokenizer differs from the teacher's"):
        causal_consistency(tiny_gpt2, world, ioi_s2, [_point(0, "end")], {0: 0})


def test_refuses_bad_layers_and_maps(tiny_gpt2, student, ioi_s2):
    with pytest.raises(InputError, match="layer 2 is out of range"):
        causal_consistency(tiny_gpt2, student, ioi_s2, [_point(2, "end")], {2: 0})
    with pytest.raises(InputError, match="no student layer for teacher layer 1"):
        causal_consistency(tiny_gpt2, student, ioi_s2, [_point(1, "end")], {0: 0})
    with pytest.raises(InputError, match="student layer 1 is out of range.*teacher layer 1"):
        causal_consistency(tiny_gpt2, student, ioi_s2, [_point(1, "end")], {1: 1})
    with pytest.raises(InputError, match="unknown position 'x'"):
        causal_consistency(tiny_gpt2, student, ioi_s2, [_point(0, "x")], {0: 0})


def test_head_checkpoints_map_to_student_heads(tiny_gpt2, student, ioi_abc):
    """A z checkpoint is a head at a position: the teacher's 4 heads map proportionally onto the student's 2
    (h → h·2//4), and each side's Δ is that model's own single-head Write, recomputed with patch_sites."""
    from rcid_tl.interventions.write import PatchSite, patch_sites
    from rcid_tl.hooks.names import Site
    from rcid_tl.metrics import metric_for

    points = [Checkpoint(0, "end", "z", 1.0, False, head=h) for h in (1, 3)]
    result = causal_consistency(tiny_gpt2, student, ioi_abc, points, {0: 0, 1: 0}, n_bootstrap=20)
    assert [(c["head"], c["student_head"]) for c in result.checkpoints] == [(1, 0), (3, 1)]
    expected, _ = patch_sites(student, ioi_abc.batch(), [PatchSite(Site.Z, 0, "end", h) for h in (0, 1)],
                              metric_for(ioi_abc))
    for entry, row in zip(result.checkpoints, expected):
        assert entry["delta_student"] == pytest.approx(row.tolist(), abs=TOL)
    itself = causal_consistency(tiny_gpt2, tiny_gpt2, ioi_abc, points, {0: 0, 1: 1}, n_bootstrap=20)
    assert all(c["pearson_r"] == pytest.approx(1.0) and c["student_head"] == c["head"] for c in itself.checkpoints)
    with pytest.raises(InputError, match="head 0.4 is out of range"):
        causal_consistency(tiny_gpt2, student, ioi_abc, [Checkpoint(0, "end", "z", 1.0, False, head=4)],
                           {0: 0, 1: 0})
