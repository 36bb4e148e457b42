"""load_result on a damaged, hand-edited or foreign JSON file: one InputError naming the file and the field."""

import json

import pytest

from rcid_tl.errors import InputError
from rcid_tl.results import load_result

EFFECT = {"site": "resid_post", "layer": 0, "position": "end", "per_example": [0.5, -0.1], "mean": 0.2}
PATCH = {"kind": "patch", "model": "m", "direction": "noising", "effects": [EFFECT]}
CHECKPOINT = {"teacher_layer": 0, "student_layer": 0, "site": "resid_post", "position": "end", "pearson_r": 0.9,
              "delta_teacher": [0.1, 0.2], "delta_student": [0.3, 0.1], "modified": False}

CASES = {
    "a field missing": ({**PATCH, "effects": [{k: v for k, v in EFFECT.items() if k != "per_example"}]},
                        "field effects[0].per_example is missing"),
    "a number as text": ({**PATCH, "effects": [{**EFFECT, "per_example": [0.5, "x"]}]},
                         "field effects[0].per_example[1] must be a number or null, got str"),
    "a layer as text": ({**PATCH, "effects": [{**EFFECT, "layer": "0"}]}, "field effects[0].layer must be a layer"),
    "a negative layer": ({**PATCH, "effects": [{**EFFECT, "layer": -1}]}, "field effects[0].layer must be a layer"),
    "effects not a list": ({**PATCH, "effects": {"0": EFFECT}}, "field effects must be a non-empty list, got dict"),
    "no effects at all": ({**PATCH, "effects": []}, "field effects must be a non-empty list, got list"),
    "modified missing": ({"kind": "consistency", "checkpoints": [{k: v for k, v in CHECKPOINT.items() if k != "modified"}],
                          "mean_r": 0.9, "mean_r_ci": [0, 1]}, "field checkpoints[0].modified is missing"),
    "a bad head": ({"kind": "knockout", "method": "zero", "ablations": [
        {"heads": ["9x9"], "positions": "all", "metric": [1.0], "delta": [0.0]}]},
        "field ablations[0].heads[0] must be a head as LAYER.HEAD, got '9x9'"),
    "a CI of three": ({"kind": "consistency", "checkpoints": [CHECKPOINT], "mean_r": 0.9, "mean_r_ci": [0, 1, 2]},
                      "field mean_r_ci must be a list of 2, got list"),
    "an unknown checkpoint field": ({"kind": "checkpoints", "checkpoints": [
        {"layer": 0, "position": "end", "site": "resid_post", "mean_norm": 1.0, "modified": True, "colour": "red"}]},
        "field checkpoints[0].colour is not one this result has"),
    "a kind that is a list": ({"kind": ["patch"]}, "unknown kind ['patch'] (field kind)"),
    "a foreign object": ({"name": "gpt2", "vocab_size": 50257}, "not an rcid-tl result (no kind, and its keys match"),
    "examples not a list": ({**PATCH, "examples": 3}, "field examples must be a list, got int"),
    "a student without scores": ({"kind": "distill", "method": "rcid"},
                                 "field consistency (or causal_consistency) is missing"),
}


@pytest.mark.parametrize("case", list(CASES))
def test_bad_field_names_the_file_and_the_field(tmp_path, case):
    payload, message = CASES[case]
    path = tmp_path / "result.json"
    path.write_text(json.dumps(payload))
    with pytest.raises(InputError) as err:
        load_result(path)
    assert message in str(err.value) and repr(str(path)) in str(err.value) and "\n" not in str(err.value)


def test_a_good_file_still_loads(tmp_path):
    (tmp_path / "patch.json").write_text(json.dumps(PATCH))
    assert len(load_result(tmp_path / "patch.json").to_frame()) == 2


@pytest.mark.parametrize("content, message", [(b"\xff\xfe{", "not valid JSON"), (b"[" * 100_000, "nested too deeply"),
                                              (b"", "not valid JSON")])
def test_bytes_that_are_no_json_name_the_file(tmp_path, content, message):
    (tmp_path / "r.json").write_bytes(content)
    with pytest.raises(InputError, match=message):
        load_result(tmp_path / "r.json")
