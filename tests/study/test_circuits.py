"""Circuit-level comparison: areas and circuits from hand-made curves; on world-gpt2 the known answers — the
teacher's heads relabelled give a mapped curve equal to the teacher's own, with the relabelling recovered."""

import pytest
from transformers import AutoModelForCausalLM

from rcid_tl.models.embedded import embedded_path
from rcid_tl.models.loading import load_model, load_tokenizer
from rcid_tl.study.circuits import Curve, area, compare_circuits, measure_side
from rcid_tl.validation import (KnownStudent, permutation_correspondence, permute_heads, random_head_permutation,
                                save_student)


def test_area_and_circuit():
    assert area([0, 1]) == 0.5 and area([1, 1, 1]) == 1.0 and area([0, 0.5, 1]) == 0.5
    curve = Curve(["0.1", "0.0", "1.0"], [0.0, 0.7, 0.9, 1.0], clean=2.0, none=0.0)
    assert curve.circuit() == ["0.1", "0.0"] and curve.circuit(0.95) == ["0.1", "0.0", "1.0"]
    assert curve.cpr == pytest.approx((0.35 + 0.8 + 0.95) / 3)
    assert curve.cmd == pytest.approx((0.65 + 0.2 + 0.05) / 3)


def test_relabelled_teacher_maps_onto_itself(tmp_path):
    hf = AutoModelForCausalLM.from_pretrained(embedded_path("world-gpt2"), attn_implementation="eager").eval()
    perms = random_head_permutation(hf.config, seed=0)
    permuted = KnownStudent("permuted", "heads relabelled", permute_heads(hf, perms),
                            permutation_correspondence(hf.config, perms), "r = 1")
    save_student(permuted, load_tokenizer(embedded_path("world-gpt2")), tmp_path / "permuted")
    kw = dict(n=20, fit_n=24, n_random=1, reference_n=120)
    teacher = measure_side(load_model("world-gpt2"), **kw)
    student = measure_side(load_model(str(tmp_path / "permuted")), **kw)
    result = compare_circuits(teacher, student)
    truth = {f"{t[0]}.{t[1]}": f"{s[0][0]}.{s[0][1]}" for t, s in permuted.correspondence.items()}
    assert {t: result.mapping[t] for t in truth} == truth  # the relabelling recovered
    assert result.mapped.faithfulness == pytest.approx(result.teacher.faithfulness, abs=1e-4)
    assert result.mapped.cpr == pytest.approx(result.student.cpr, abs=1e-4)
    assert result.teacher.cpr > max(result.random_cpr["teacher"])  # own order beats a random one
