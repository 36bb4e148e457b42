"""The resume helper: which settings must match, how a refused state is named, and trimming a log back to a state."""

import json

import pytest
import torch

from rcid_tl.errors import InputError
from rcid_tl.training import RUN_STATE, read_state, setting_changes, settings_json, trim_log


def test_settings_json_drops_changeable_and_later_default_settings():
    config = {"seed": 1, "log_every": 5, "refit_every": None, "train": {"lr": 0.1, "eval_every": 9}}
    text = settings_json(config, ["log_every", "train.eval_every"], later_defaults={"refit_every": None},
                         extra={"precision": "bf16"})
    assert json.loads(text) == {"seed": 1, "train": {"lr": 0.1}, "precision": "bf16"}
    assert text == json.dumps(json.loads(text), sort_keys=True)  # key order never makes two settings differ
    moved = settings_json(config | {"refit_every": 3}, ["log_every"], later_defaults={"refit_every": None})
    assert json.loads(moved)["refit_every"] == 3  # a later setting away from its default is recorded


def test_setting_changes_name_nested_keys():
    saved = {"optim": {"steps": 600, "lr": 1e-3}, "seed": 0}
    assert setting_changes(saved, {"optim": {"steps": 800, "lr": 1e-3}, "lam": 2.0}) == [
        "optim.steps: 600 → 800", "seed: 0 → (unset)", "lam: (unset) → 2.0"]


def _state(settings: str) -> dict:
    return {"phase": "distill", "step": 2, "modules": {}, "opt": {}, "sched": {}, "order": torch.arange(4),
            "torch_rng": torch.get_rng_state(), "python_rng": None, "settings": settings}


def test_read_state_checks_fields_and_settings(tmp_path):
    path = tmp_path / "run" / "train_state.pt"
    assert read_state(path, "{}") is None
    path.parent.mkdir()
    torch.save(_state('{"lam": 1.0}'), path)
    assert read_state(path, '{"lam": 1.0}')["step"] == 2
    other = rf"--out {path.parent} holds a run with different settings \(lam: 1.0 → 2.0\)"
    with pytest.raises(InputError, match=other):
        read_state(path, '{"lam": 2.0}')
    torch.save({"step": 2}, path)
    with pytest.raises(InputError, match="is not a training state this rcid-tl can resume; delete it"):
        read_state(path, "{}", RUN_STATE)


def _write(path, records, tail=""):
    path.write_text("".join(json.dumps(r) + "\n" for r in records) + tail)


def test_trim_log_keeps_earlier_phases_and_steps_up_to_the_state(tmp_path):
    path = tmp_path / "train_log.jsonl"
    records = [{"phase": phase, "step": s} for phase in ("pretrain", "distill") for s in (1, 2, 3)]
    _write(path, records, '{"phase": "distill", "st')  # a line cut short by a kill
    trim_log(path, 2, "distill")
    assert [json.loads(x) for x in path.read_text().splitlines()] == records[:5]
    trim_log(path, 2, "pretrain")  # resuming inside pre-training drops every later phase
    assert [json.loads(x) for x in path.read_text().splitlines()] == records[:2]


def test_trim_log_without_phases_keeps_records_up_to_the_step(tmp_path):
    path = tmp_path / "metrics.jsonl"
    _write(path, [{"loss": 1.0, "step": 5}, {"eval": {}, "step": 10}, {"loss": 0.5, "step": 15}, {"note": 1}])
    trim_log(path, 10)
    assert [json.loads(x)["step"] for x in path.read_text().splitlines()] == [5, 10]
    trim_log(tmp_path / "absent.jsonl", 3)  # nothing to trim
    assert not (tmp_path / "absent.jsonl").exists()
