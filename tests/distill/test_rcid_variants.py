"""The RCID investigation's options: W* refitted every N steps (at exactly those steps, on the student as it is
then), the checkpoint selection variants (one per student layer; saturated points kept or skipped), and defaults
that leave a run as it was."""

import json

import pytest
import torch

from rcid_tl.consistency.checkpoints import Checkpoint, one_per_student_layer
from rcid_tl.consistency.saturation import SATURATED
from rcid_tl.distill import run
from rcid_tl.distill.config import DistillConfig, OptimConfig
from rcid_tl.distill.methods import Method
from rcid_tl.distill.run import prepare, run_distill, run_settings
from rcid_tl.distill.targets import fit_maps
from rcid_tl.errors import InputError
from tests.distill.conftest import tiny_config

LAYER_MAP = {0: 0, 1: 0, 2: 0, 3: 1, 4: 1, 5: 1}  # world-gpt2's 6 layers onto the tiny student's 2
SVD_ROUNDING = 1e-5  # same forwards on the same weights and one thread: W* differs only by the float64 SVD's rounding


@pytest.fixture
def fixed_checkpoints(tmp_path):
    """Checkpoints on two student layers, from a file, so the runs skip the selection sweep."""
    path = tmp_path / "checkpoints.json"
    path.write_text(json.dumps([{"layer": 1, "position": "s2"}, {"layer": 4, "position": "s2"}]))
    return str(path)


def _maps(folder) -> dict[str, torch.Tensor]:
    modules = torch.load(folder / "train_state.pt", weights_only=True)["modules"]
    return {k.split(".")[2]: v for k, v in modules.items() if k.startswith("objective.maps.")}


def _fit_on_saved_student(config: DistillConfig, folder) -> dict[str, torch.Tensor]:
    """W* fitted from scratch on the student in `folder`'s training state: the independent reference."""
    s = prepare(config)
    modules = torch.load(folder / "train_state.pt", weights_only=True)["modules"]
    s.student.original_model.load_state_dict({k[len("student."):]: v for k, v in modules.items()
                                              if k.startswith("student.")})
    return {k: m.weight for k, m in fit_maps(s.teacher, s.student, s.train, s.pairings, n_fit=config.n_fit).items()}


def test_refit_every_refits_at_its_steps_on_the_current_student(tmp_path, fixed_checkpoints):
    config = tiny_config(Method.RCID, refit_every=2, checkpoints=fixed_checkpoints, checkpoint_every=1,
                         optim=OptimConfig(steps=8, lr=1e-3, warmup=2))
    folder = tmp_path / "run"
    assert run_distill(config, folder, stop_after=4) is None  # steps 0..3 done, refit before step 2
    before, expected = _maps(folder), _fit_on_saved_student(config, folder)  # the refit before step 4 sees this
    assert run_distill(config, folder, stop_after=5) is None  # step 4: refit, then one update
    after = _maps(folder)
    for key, w in expected.items():
        assert torch.allclose(after[key], w, atol=SVD_ROUNDING), key
        assert not torch.allclose(before[key], w, atol=1e-3), key  # training moved the student, so W* changed
    assert run_distill(config, folder, stop_after=6) is None  # step 5: no refit
    assert all(torch.equal(_maps(folder)[k], v) for k, v in after.items())


def test_frozen_is_the_default_and_keeps_the_first_fit(tmp_path, fixed_checkpoints):
    config = tiny_config(Method.RCID, checkpoints=fixed_checkpoints, checkpoint_every=1)
    assert config.refit_every is None
    s = prepare(config)  # the same seeded student the run starts from (no pre-training here)
    first = fit_maps(s.teacher, s.student, s.train, s.pairings, n_fit=config.n_fit)
    assert run_distill(config, tmp_path / "run", stop_after=4) is None
    for key, w in _maps(tmp_path / "run").items():
        assert torch.allclose(w, first[key].weight, atol=SVD_ROUNDING), key


def test_new_options_at_their_defaults_leave_the_saved_settings_unchanged():
    settings = json.loads(run_settings(tiny_config()))
    assert not {"max_saturation", "one_per_student_layer", "refit_every"} & settings.keys()
    changed = json.loads(run_settings(tiny_config(refit_every=5, max_saturation=None)))
    assert changed["refit_every"] == 5 and changed["max_saturation"] is None


def _point(layer: int, norm: float) -> Checkpoint:
    return Checkpoint(layer, "s2", "resid_post", norm, True)


def test_one_per_student_layer_keeps_the_largest_imprint_of_each_student_layer():
    points = [_point(0, 9.6), _point(4, 9.7), _point(1, 9.9), _point(3, 9.5), _point(2, 8.8)]
    assert [(c.layer, c.mean_norm) for c in one_per_student_layer(points, LAYER_MAP)] == [(4, 9.7), (1, 9.9)]
    assert one_per_student_layer(points, {i: i for i in range(6)}) == points  # one teacher layer each: all kept


def test_distill_selection_variants_select_what_they_claim(monkeypatch):
    calls = []

    def recorded(*args, **kwargs):
        calls.append((kwargs, run_select(*args, **kwargs)))
        return calls[-1][1]

    run_select = run.select_checkpoints
    monkeypatch.setattr(run, "select_checkpoints", recorded)
    per_layer = prepare(tiny_config(one_per_student_layer=True, top_k=6, max_saturation=None)).checkpoints
    kwargs, everything = calls[-1]
    assert kwargs["max_saturation"] is None  # saturated points kept (ranked by effect: every share is measured)
    assert len({LAYER_MAP[c.layer] for c in everything}) < len(everything)  # so the filter has work to do
    assert per_layer == one_per_student_layer(everything, LAYER_MAP)
    assert sorted(LAYER_MAP[c.layer] for c in per_layer) == sorted({LAYER_MAP[c.layer] for c in everything})
    monkeypatch.setattr(run, "select_checkpoints", lambda *a, **k: calls.append((k, everything)) or everything)
    assert prepare(tiny_config(top_k=6)).checkpoints == everything  # default: no filtering,
    assert calls[-1][0]["max_saturation"] == SATURATED  # and saturated points skipped


@pytest.mark.parametrize("field, value", [("refit_every", 0), ("max_saturation", 0.0)])
def test_bad_variant_options_are_input_errors(field, value):
    with pytest.raises(InputError, match=field.replace("_", "-")):
        tiny_config(**{field: value})
