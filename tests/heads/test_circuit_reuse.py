"""The circuit search's reuse (each task's runs and reference means computed once, candidate rows resumed from the
run with the circuit so far ablated) against recomputing everything at every step, on an embedded teacher."""

import pytest
import torch

from rcid_tl.heads.circuit import search_circuit
from rcid_tl.hooks.names import Head
from rcid_tl.interventions.knockout import (Ablation, Method, Reference, knockout, knockout_added,
                                            knockout_prepared, prepare_knockout)
from rcid_tl.metrics import metric_for
from rcid_tl.models.loading import load_model
from rcid_tl.tasks.registry import TaskSpec, build_task


@pytest.fixture(scope="module")
def teacher():
    return load_model("world-qwen2")


def test_reused_search_is_identical_to_recomputing(teacher) -> None:
    # exact equality, not a tolerance: every (ablation, example) row does the same arithmetic either way (same
    # replacement tensors, same blocks from the recorded residual), and the committed circuit.json relies on it
    kwargs = {"n": 8, "seed": 3, "max_heads": 2, "reference_n": 150}
    assert search_circuit(teacher, reuse=True, **kwargs).to_dict() == \
        search_circuit(teacher, reuse=False, **kwargs).to_dict()


def test_prepared_and_added_knockouts_match_knockout(teacher) -> None:
    spec = TaskSpec("ioi", n=6, seed=1, corruption="abc")
    batch = build_task(spec, teacher.tokenizer).batch()
    reference = build_task(TaskSpec("ioi", n=120, seed=2, corruption="abc"), teacher.tokenizer).batch()
    metric = metric_for(build_task(spec, teacher.tokenizer))
    base = [Head(0, 1), Head(2, 3)]
    added = [Head(layer, head) for layer in range(4) for head in range(4) if Head(layer, head) not in base]
    ablations = [Ablation((*base, h)) for h in added]
    args = (Method.MEAN, Reference.CORRUPT, 0, 64, reference)
    expected, metrics, _ = knockout(teacher, batch, ablations, metric, *args)
    prepared = prepare_knockout(teacher, batch, metric, *args)
    assert torch.equal(prepared.metrics.clean, metrics.clean) and torch.equal(prepared.metrics.corrupt,
                                                                              metrics.corrupt)
    assert torch.equal(knockout_prepared(teacher, batch, ablations, metric, prepared), expected)
    assert torch.equal(knockout_added(teacher, batch, base, added, metric, prepared), expected)
