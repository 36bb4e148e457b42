"""The known-answer suite on the embedded teacher: the default instrument (causal map, fitted on other examples)
gives every known verdict; the earlier index map fails the relabelled teacher. The default run is reduced (fewer
examples and rungs, two instruments, no fine-tuning); the whole suite as `rcid-tl validate` runs it is marked slow."""

import json

import pytest

from rcid_tl.consistency.run import DEFAULT_HEAD_MAP, HeadMapping
from rcid_tl.validation.suite import INSTRUMENTS, Instrument, ValidateConfig, run_validation

SMALL = ValidateConfig(teacher="world-gpt2", n=100, fit_n=60, n_bootstrap=50, sigmas=(0.1, 1.0), finetune_steps=0,
                       instruments=(Instrument("proportional", HeadMapping.PROPORTIONAL),
                                    Instrument("causal", HeadMapping.CAUSAL)))


@pytest.fixture(scope="module")
def small(tmp_path_factory):
    out = tmp_path_factory.mktemp("validate")
    result = run_validation(SMALL, out)
    result.save(out)
    return result, out


def test_the_default_instrument_passes_every_case(small):
    result, _ = small
    assert DEFAULT_HEAD_MAP is HeadMapping.CAUSAL
    assert result.passing() == ["causal"]
    causal = {case: m["causal"] for case, m in result.measurements.items()}
    assert causal["permuted"]["mechanistic_r"] >= 0.95 and causal["permuted"]["map_recovery"] == 1.0
    assert causal["teacher"]["mechanistic_r"] == pytest.approx(1.0, abs=1e-6)  # itself: identical Δ
    ladder = [causal[c]["mechanistic_r"] for c in ("teacher", "noise-0.1", "noise-1")]
    assert ladder == sorted(ladder, reverse=True)
    assert abs(causal["random"]["mechanistic_r"]) <= 0.1
    assert result.verdicts["merged"]["causal"]["passed"]


def test_the_index_map_fails_the_relabelled_teacher(small):
    result, _ = small
    assert not result.verdicts["permuted"]["proportional"]["passed"]
    assert result.measurements["permuted"]["proportional"]["map_recovery"] < 1.0


def test_saved_files(small):
    result, out = small
    payload = json.loads((out / "validation.json").read_text())
    assert payload["passing"] == ["causal"] and payload["config"]["n"] == 100
    assert {c["name"] for c in payload["cases"]} == set(result.measurements)
    assert (out / "students" / "permuted" / "config.json").is_file()  # every case is a model one can load
    table = (out / "validation.md").read_text()
    assert "| permuted |" in table and "Passing every case: causal." in table


@pytest.mark.slow
def test_the_whole_suite(tmp_path):
    result = run_validation(ValidateConfig(), tmp_path)
    assert result.passing()[0] == "causal" and [i.name for i in INSTRUMENTS][3] == "causal"
