"""Find a circuit by greedy mean-ablation knockout, and check that it is specific to its task: a world teacher's IOI
circuit (controls Greater-Than and relations), or a TinyStories model's pronoun or object-recall circuit (the other
TinyStories task the control; `tinystories_tasks`).

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
from rcid_tl.errors import InputError
from rcid_tl.metrics import Metric, metric_for
from rcid_tl.tasks.base import Batch, ContrastiveDataset, Example
from rcid_tl.tasks.object_recall import TASK as OBJECT
from rcid_tl.tasks.pronoun import TASK as PRONOUN
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
    # the greedy search, one entry per added head: its effects and how many candidates' controls were scored, in
    # order of their target cut, before one was within tolerance (`candidates_tried`)
    steps: list[dict]
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
    gt_spec = TaskSpec("greater-than", n=n, seed=seed)
    gt = build_task(gt_spec, tok)
    relations = relation_dataset(tok, n, seed)
    ioi = ioi_task(model, n, seed, reference_n)
    return {
        "ioi": ioi,
        "greater-than": CircuitTask(gt, metric_for(gt), Reference.CLEAN,
                                    reference_distribution(gt_spec, tok, gt, reference_n)),
        "relations": CircuitTask(relations, top1_accuracy, Reference.CLEAN,
                                 relation_dataset(tok, reference_n or 10 * n, reference_seed(ioi_spec(n, seed), None))),
    }


def ioi_spec(n: int, seed: int) -> TaskSpec:
    """IOI as the circuit search scores it: the ABC corruption (every name replaced)."""
    return TaskSpec("ioi", n=n, seed=seed, corruption="abc")


def ioi_task(model: TransformerBridge, n: int, seed: int, reference_n: int | None = None) -> CircuitTask:
    """IOI with the ABC corruption, mean-ablated to Wang et al.'s p_ABC: the corrupt run of `reference_n` other
    prompts (None: ≥ 50 per template and answer position)."""
    spec = ioi_spec(n, seed)
    data = build_task(spec, model.tokenizer)
    return CircuitTask(data, metric_for(data), Reference.CORRUPT,
                       reference_distribution(spec, model.tokenizer, data, reference_n))


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
    tasks: dict[str, CircuitTask] | None = None,
) -> CircuitReport:
    """Greedy forward selection of at most `max_heads` heads (see the module docstring). `tasks` None: IOI with
    Greater-Than and relations as the controls (`circuit_tasks`); else the first task is the target whose metric the
    circuit must cut and the others the controls that must stay within `tolerance` (e.g. `tinystories_tasks`).
    `reuse` False recomputes every task's unablated runs and reference means at every step (the slow path, kept to
    test and time against)."""
    ioi = tasks is None
    tasks = circuit_tasks(model, n, seed, reference_n) if tasks is None else tasks
    target, controls = next(iter(tasks)), list(tasks)[1:]
    heads = [Head(layer, head) for layer in range(model.cfg.n_layers) for head in range(model.cfg.n_heads)]
    prepared = prepare_tasks(model, tasks) if reuse else None
    if prepared is None:
        baselines, singles, groups = relative_changes(model, tasks, [[h] for h in heads])
    else:
        baselines, singles, groups = added_changes(model, tasks, [], heads, prepared)
    circuit: list[Head] = []
    steps, best = [], {name: 0.0 for name in tasks}

    def changes_of(names: Sequence[str], added: Sequence[Head]) -> list[dict[str, float]]:
        """Each added head's relative changes on the tasks `names`, with the circuit so far ablated too."""
        some = {name: tasks[name] for name in names}
        if prepared is None:
            return relative_changes(model, some, [[*circuit, h] for h in added])[1]
        return added_changes(model, some, circuit, added, {name: prepared[name] for name in names})[1]

    while len(circuit) < max_heads and best[target] > -target_cut:
        candidates = [h for h in heads if h not in circuit]
        # the head that cuts the target most among those the controls allow: candidates in order of their target
        # cut (ties in head order, as min() breaks them), controls scored only until one is within tolerance
        cuts = [c[target] for c in singles] if not circuit else [c[target] for c in changes_of([target], candidates)]
        chosen = None
        for tried, k in enumerate(sorted(range(len(candidates)), key=cuts.__getitem__), 1):
            change = singles[k] if not circuit else {target: cuts[k], **changes_of(controls, [candidates[k]])[0]}
            if _specific(change, tolerance, controls):
                chosen = candidates[k]
                break
        if chosen is None:
            break
        circuit.append(chosen)
        best = change
        steps.append({"added": str(chosen), "effects": best, "candidates_tried": tried})
    config = {"n": n, "seed": seed, "max_heads": max_heads, "target_cut": target_cut, "tolerance": tolerance,
              "method": "mean", "reference_n": reference_n}
    if ioi:
        config.update({"ioi_reference": "separate abc-corrupted prompts, per template and answer position",
                       "greater_than_reference": "separate clean prompts, per answer position",
                       "relations_reference": "separate clean 5-shot prompts of all relations, per answer position"})
    else:
        config.update({"target": target, "controls": controls, "tasks": {
            name: {"task": t.dataset.task, "n": len(t.dataset), "reference": t.reference.value,
                   "reference_task": t.reference_dataset.task, "reference_n": len(t.reference_dataset)}
            for name, t in tasks.items()}})
    return CircuitReport(
        baselines=baselines,
        head_effects={str(h): c for h, c in zip(heads, singles)},
        circuit=[str(h) for h in circuit],
        circuit_effects=best,
        meets_criteria=best[target] <= -target_cut and _specific(best, tolerance, controls),
        reference_groups=groups,
        steps=steps,
        config=config,
    )


def _specific(change: dict[str, float], tolerance: float, controls: Sequence[str] = ("greater-than", "relations")
              ) -> bool:
    return all(abs(change[name]) <= tolerance for name in controls)


def tinystories_tasks(model: TransformerBridge, target: str = PRONOUN, n: int | None = None, seed: int = 0
                      ) -> dict[str, CircuitTask]:
    """The TinyStories target task's training split (every prompt, or `n`) with the other TinyStories task's
    training split as the control. Means are per (frame, answer position) over every prompt of the task's `all`
    split, which holds both genders (or every object) in every frame: the mean keeps the frame and drops which
    name or object the prompt holds. Held-out prompts stay unseen by the search (`circuit_scores` measures on them)."""
    if target not in (PRONOUN, OBJECT):
        raise InputError(f"unknown TinyStories circuit task {target!r}; allowed: {PRONOUN}, {OBJECT}")
    order = (target, OBJECT if target == PRONOUN else PRONOUN)
    return {name: tinystories_task(model, f"{name}:train", n, seed) for name in order}


def tinystories_task(model: TransformerBridge, task: str, n: int | None = None, seed: int = 0) -> CircuitTask:
    """`task` (a TinyStories task and split) scored by its metric, mean-ablated to its `all` split's clean means."""
    dataset = build_task(model, task, n=n, seed=seed)
    reference = build_task(model, task.partition(":")[0] + ":all", seed=reference_seed(TaskSpec(task, seed=seed), None))
    return CircuitTask(dataset, metric_for(dataset), Reference.CLEAN, reference)


def circuit_scores(model: TransformerBridge, task: CircuitTask, circuit: Sequence[Head]) -> dict[str, float]:
    """The circuit measured on `task` (e.g. held-out prompts): the mean metric unablated (`clean`), with every head
    mean-ablated (`none`), with the circuit ablated (`without_circuit`) and with every head outside it ablated
    (`circuit_only`); `faithfulness` = circuit_only / clean, the share of the clean metric the circuit keeps alone,
    and `faithfulness_normalised` = (circuit_only − none) / (clean − none) (Wang et al. 2023's F(C) − F(∅) over
    F(M) − F(∅))."""
    heads = [Head(layer, head) for layer in range(model.cfg.n_layers) for head in range(model.cfg.n_heads)]
    inside = [h for h in heads if str(h) in {str(c) for c in circuit}]
    outside = [h for h in heads if h not in inside]
    ready = prepare_knockout(model, task.dataset.batch(), task.metric, Method.MEAN, task.reference,
                             rows_per_forward=ROWS, reference_batch=task.reference_dataset.batch())
    sets = [tuple(heads), tuple(inside) or tuple(heads), tuple(outside) or tuple(heads)]
    ablated = knockout_prepared(model, task.dataset.batch(), [Ablation(s) for s in sets], task.metric, ready,
                                rows_per_forward=ROWS).mean(1).tolist()
    clean = ready.metrics.clean.mean().item()
    none, without, only = ablated
    without = without if inside else clean
    only = only if outside else clean
    return {"clean": clean, "none": none, "without_circuit": without, "circuit_only": only,
            "cut": without / clean - 1, "faithfulness": only / clean,
            "faithfulness_normalised": (only - none) / (clean - none), "n": len(task.dataset),
            "min_reference_group": ready.groups.smallest if ready.groups else None}


def grow_for_faithfulness(
    model: TransformerBridge, task: CircuitTask, circuit: Sequence[Head], max_heads: int = 16,
    target: float = 0.8,
) -> list[dict]:
    """Greedy growth of `circuit` (e.g. `search_circuit`'s) towards sufficiency: each step adds the head whose
    inclusion keeps the largest mean metric with every head outside the circuit mean-ablated, until that share of
    the clean metric (faithfulness) reaches `target` or the circuit has `max_heads` heads. The knockout search finds
    heads whose loss hurts; heads that act redundantly (each replaceable by another) cut little alone but the circuit
    cannot run without them, which this finds. One entry per step: the heads so far and their faithfulness."""
    heads = [Head(layer, head) for layer in range(model.cfg.n_layers) for head in range(model.cfg.n_heads)]
    batch = task.dataset.batch()
    ready = prepare_knockout(model, batch, task.metric, Method.MEAN, task.reference, rows_per_forward=ROWS,
                             reference_batch=task.reference_dataset.batch())
    clean = ready.metrics.clean.mean().item()
    chosen, steps = list(circuit), []

    def kept(sets: list[list[Head]]) -> list[float]:
        ablations = [Ablation(tuple(h for h in heads if h not in s) or (heads[0],)) for s in sets]
        values = knockout_prepared(model, batch, ablations, task.metric, ready, rows_per_forward=ROWS).mean(1)
        return [v / clean for v in values.tolist()]

    share = kept([chosen])[0]
    steps.append({"heads": [str(h) for h in chosen], "faithfulness": share})
    while share < target and len(chosen) < max_heads:
        candidates = [h for h in heads if h not in chosen]
        shares = kept([[*chosen, h] for h in candidates])
        share, head = max(zip(shares, candidates), key=lambda item: item[0])
        chosen.append(head)
        steps.append({"heads": [str(h) for h in chosen], "added": str(head), "faithfulness": share})
    return steps
