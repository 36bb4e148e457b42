"""The circuit search on a TinyStories task of the real stories260K: with a tiny budget it runs, returns heads and
scores them on held-out prompts."""

from dataclasses import replace

import pytest

from rcid_tl.heads.circuit import circuit_scores, grow_for_faithfulness, search_circuit, tinystories_tasks
from rcid_tl.hooks.names import Head


def test_pronoun_circuit_search_on_stories260k(stories):
    tasks = tinystories_tasks(stories, "tinystories-pronoun", n=8)
    assert list(tasks) == ["tinystories-pronoun", "tinystories-object"]  # target first, the control after it
    for name, task in tasks.items():  # means per frame over the `all` split, whose frames cover the training split
        assert task.reference_dataset.task == f"{name}:all" and task.dataset.task == f"{name}:train"
        assert {e.template for e in task.dataset.examples} <= {e.template for e in task.reference_dataset.examples}
    # the tiny budget: the scored prompts are their own reference (the 1,600-prompt means cost most of a search)
    tasks = {name: replace(task, reference_dataset=task.dataset) for name, task in tasks.items()}
    report = search_circuit(stories, tasks=tasks, max_heads=1, target_cut=0.5)
    assert len(report.circuit) == 1 and report.config["controls"] == ["tinystories-object"]
    assert len(report.head_effects) == 40 and report.baselines["tinystories-pronoun"] > 0
    # the chosen head is the one whose ablation cuts the target most among those the control tolerates
    head = report.circuit[0]
    cut = report.head_effects[head]["tinystories-pronoun"]
    assert report.circuit_effects["tinystories-pronoun"] == cut < 0
    tolerated = [e["tinystories-pronoun"] for e in report.head_effects.values()
                 if abs(e["tinystories-object"]) <= 0.25]
    assert cut == min(tolerated)

    circuit = [Head(*map(int, head.split(".")))]
    scores = circuit_scores(stories, tasks["tinystories-pronoun"], circuit)
    assert scores["without_circuit"] < scores["clean"] and scores["cut"] == pytest.approx(cut, abs=1e-5)
    grown = grow_for_faithfulness(stories, tasks["tinystories-pronoun"], circuit, max_heads=2, target=1.5)
    assert len(grown) == 2 and grown[0]["heads"] == [head] and len(grown[1]["heads"]) == 2
    assert grown[1]["added"] != head and grown[0]["faithfulness"] == pytest.approx(
        scores_on_training(stories, tasks, circuit), rel=1e-5)


def scores_on_training(model, tasks, circuit) -> float:
    return circuit_scores(model, tasks["tinystories-pronoun"], circuit)["faithfulness"]
