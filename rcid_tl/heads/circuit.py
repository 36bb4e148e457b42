"""Find a world teacher's IOI circuit with the foundation's knockout, and check that it is specific to IOI.

Every head is mean-ablated on three tasks: IOI (Wang et al.'s mean over a separate sample of ABC prompts, per
template), Greater-Than (mean over separate clean prompts) and 5-shot relations (mean over separate clean prompts of
all relations, so relation-specific information is removed too). Means come from reference distributions of their own
(≥ 50 examples per template and answer position for IOI and Greater-Than; see `rcid_tl.interventions.reference`), never
from the scored examples. A greedy forward search then adds, one head at a time, the head whose
joint ablation cuts the IOI logit difference most while Greater-Than probability difference and relation accuracy each
stay within a tolerance of their baselines — so general-purpose heads that break every task are never chosen.
"""

import random
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass

import torch
from torch import Tensor
from transformer_lens.model_bridge import TransformerBridge

from rcid_tl.hooks.names import Head
from rcid_tl.interventions.knockout import (Ablation, Method, Prepared, Reference, knockout_added, knockout_prepared,
                                            prepare_knockout)
from rcid_tl.interventions.reference import reference_distribution, reference_seed
from rcid_tl.metrics import Metric, metric_for
from rcid_tl.tasks.base import Batch, ContrastiveDataset, Example
from rcid_tl.tasks.registry import TaskSpec, build_task
from rcid_tl.world.fewshot import relation_prompt
from rcid_tl.world.relations import RELATIONS
from rcid_tl.world.splits import relation_pairs

TASKS = ("ioi", "greater-than", "relations")
ROWS = 256  # (ablation, example) rows per forward


@dataclass(frozen=True)
class CircuitTask:
    """A task as the circuit search scores it: examples, metric, and the run whose mean replaces a head."""

    dataset: ContrastiveDataset
    metric: Metric
    reference: Reference
    reference_dataset: ContrastiveDataset  # a separate sample whose `reference` run supplies the means


@dataclass(frozen=True)
class CircuitReport:
    baselines: dict[str, float]  # mean metric per task, nothing ablated
    head_effects: dict[str, dict[str, float]]  # "L.H" -> task -> relative change of the mean metric
    circuit: list[str]
    circuit_effects: dict[str, float]  # task -> relative change with the whole circuit ablated
    meets_criteria: bool  # IOI cut ≥ target_cut with every other task within tolerance
    reference_groups: dict[str, dict]  # task -> sizes of the reference groups the means were taken over
    steps: list[dict]  # the greedy search, one entry per added head
    config: dict

    def to_dict(self) -> dict:
        return asdict(self)


def top1_accuracy(logits: torch.Tensor, batch: Batch) -> torch.Tensor:
    """1 where the answer is the most likely next token, else 0."""
    return (logits.argmax(-1) == batch.correct.to(logits.device)).float()


def relation_dataset(tokenizer, n: int, seed: int, shots: int = 5) -> ContrastiveDataset:
    """`n` k-shot prompts on held-out query pairs, relations in turn; clean = corrupt (the mean comes from clean)."""
    rng = random.Random(f"circuit:{seed}:relations")
    relations = sorted(RELATIONS)
    examples = []
    for i in range(n):
        relation = relations[i % len(relations)]
        prompt = relation_prompt(rng, relation, rng.choice(relation_pairs(relation, held_out=True)), shots)
        ids = (tokenizer.bos_token_id, *tokenizer.encode(prompt.text, add_special_tokens=False))
        answer = tokenizer.encode(" " + prompt.answer, add_special_tokens=False)
        examples.append(Example(
            clean_ids=ids, corrupt_ids=ids, answer_pos=len(ids) - 1, correct_id=answer[0], wrong_id=answer[0],
            positions={"end": len(ids) - 1}, template=0, clean_text=prompt.text, corrupt_text=prompt.text,
            extra={"relation": relation},
        ))
    return ContrastiveDataset(
        task="relations", examples=tuple(examples), position_names=("end",), metric_name="top1_accuracy",
        config={"task": "relations", "n": n, "seed": seed, "shots": shots}, pad_id=tokenizer.eos_token_id,
    )


def circuit_tasks(model: TransformerBridge, n: int, seed: int, reference_n: int | None = None
                  ) -> dict[str, CircuitTask]:
    """The three tasks with `n` scored examples each and their reference distributions (`reference_n` examples
    each; None: enough for ≥ 50 per group on IOI and Greater-Than, 10 × n 5-shot prompts on relations)."""
    tok = model.tokenizer
    ioi_spec, gt_spec = TaskSpec("ioi", n=n, seed=seed, corruption="abc"), TaskSpec("greater-than", n=n, seed=seed)
    ioi, gt = build_task(ioi_spec, tok), build_task(gt_spec, tok)
    relations = relation_dataset(tok, n, seed)
    return {
        "ioi": CircuitTask(ioi, metric_for(ioi), Reference.CORRUPT,
                           reference_distribution(ioi_spec, tok, ioi, reference_n)),
        "greater-than": CircuitTask(gt, metric_for(gt), Reference.CLEAN,
                                    reference_distribution(gt_spec, tok, gt, reference_n)),
        "relations": CircuitTask(relations, top1_accuracy, Reference.CLEAN,
                                 relation_dataset(tok, reference_n or 10 * n, reference_seed(ioi_spec, None))),
    }


def prepare_tasks(model: TransformerBridge, tasks: dict[str, CircuitTask], seed: int = 0) -> dict[str, Prepared]:
    """Per task, what no ablation changes (unablated runs, reference means at every layer): computed once, shared by
    every step of the search."""
    return {name: prepare_knockout(model, task.dataset.batch(), task.metric, Method.MEAN, task.reference, seed=seed,
                                   rows_per_forward=ROWS, reference_batch=task.reference_dataset.batch())
            for name, task in tasks.items()}


def relative_changes(
    model: TransformerBridge, tasks: dict[str, CircuitTask], head_sets: Sequence[Sequence[Head]], seed: int = 0,
    prepared: dict[str, Prepared] | None = None,
) -> tuple[dict[str, float], list[dict[str, float]], dict[str, dict]]:
    """Baseline mean metric per task, per head set the relative change (ablated / baseline − 1), and per task the
    reference group sizes. `prepared` (`prepare_tasks`): reuse its runs and means; None computes them here."""
    prepared = prepare_tasks(model, tasks, seed) if prepared is None else prepared
    ablations = [Ablation(tuple(heads)) for heads in head_sets]
    return _changes(tasks, prepared, lambda task, ready: knockout_prepared(
        model, task.dataset.batch(), ablations, task.metric, ready, rows_per_forward=ROWS))


def added_changes(
    model: TransformerBridge, tasks: dict[str, CircuitTask], base: Sequence[Head], added: Sequence[Head],
    prepared: dict[str, Prepared],
) -> tuple[dict[str, float], list[dict[str, float]], dict[str, dict]]:
    """`relative_changes` of the head sets base + [h] for h in `added`, each row resumed from the run with `base`
    ablated at h's layer (`knockout_added`)."""
    return _changes(tasks, prepared, lambda task, ready: knockout_added(
        model, task.dataset.batch(), base, added, task.metric, ready, rows_per_forward=ROWS))


def _changes(
    tasks: dict[str, CircuitTask], prepared: dict[str, Prepared],
    ablate: Callable[[CircuitTask, Prepared], Tensor],  # -> (head set, example) metric
) -> tuple[dict[str, float], list[dict[str, float]], dict[str, dict]]:
    baselines, changes, groups = {}, None, {}
    for name, task in tasks.items():
        ready = prepared[name]
        ablated = ablate(task, ready)
        changes = changes or [{} for _ in range(len(ablated))]
        groups[name] = ready.groups.to_json()
        baselines[name] = ready.metrics.clean.mean().item()
        for k, row in enumerate(ablated.mean(1).tolist()):
            changes[k][name] = row / baselines[name] - 1
    return baselines, changes, groups


def search_circuit(
    model: TransformerBridge, n: int = 100, seed: int = 0, max_heads: int = 6, target_cut: float = 0.5,
    tolerance: float = 0.25, reference_n: int | None = None, reuse: bool = True,
) -> CircuitReport:
    """Greedy forward selection of at most `max_heads` heads (see the module docstring). `reuse` False recomputes
    every task's unablated runs and reference means at every step (the slow path, kept to test and time against)."""
    tasks = circuit_tasks(model, n, seed, reference_n)
    heads = [Head(layer, head) for layer in range(model.cfg.n_layers) for head in range(model.cfg.n_heads)]
    prepared = prepare_tasks(model, tasks) if reuse else None
    if prepared is None:
        baselines, singles, groups = relative_changes(model, tasks, [[h] for h in heads])
    else:
        baselines, singles, groups = added_changes(model, tasks, [], heads, prepared)
    circuit: list[Head] = []
    steps, best = [], {name: 0.0 for name in TASKS}
    while len(circuit) < max_heads and best["ioi"] > -target_cut:
        candidates = [h for h in heads if h not in circuit]
        if prepared is None:
            _, changes, _ = relative_changes(model, tasks, [[*circuit, h] for h in candidates])
        else:
            _, changes, _ = added_changes(model, tasks, circuit, candidates, prepared)
        allowed = [(c["ioi"], h, c) for h, c in zip(candidates, changes) if _specific(c, tolerance)]
        if not allowed:
            break
        cut, head, best = min(allowed, key=lambda item: item[0])
        circuit.append(head)
        steps.append({"added": str(head), "effects": best, "candidates_within_tolerance": len(allowed)})
    return CircuitReport(
        baselines=baselines,
        head_effects={str(h): c for h, c in zip(heads, singles)},
        circuit=[str(h) for h in circuit],
        circuit_effects=best,
        meets_criteria=best["ioi"] <= -target_cut and _specific(best, tolerance),
        reference_groups=groups,
        steps=steps,
        config={"n": n, "seed": seed, "max_heads": max_heads, "target_cut": target_cut, "tolerance": tolerance,
                "method": "mean", "reference_n": reference_n,
                "ioi_reference": "separate abc-corrupted prompts, per template and answer position",
                "greater_than_reference": "separate clean prompts, per answer position",
                "relations_reference": "separate clean 5-shot prompts of all relations, per answer position"},
    )


def _specific(change: dict[str, float], tolerance: float) -> bool:
    return abs(change["greater-than"]) <= tolerance and abs(change["relations"]) <= tolerance
