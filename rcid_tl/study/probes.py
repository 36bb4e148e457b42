"""Experiment 5 of the RCID study: information purity. Linear probes, cross-validated, on the clean residual stream h
and on the causal difference d = h_clean − h_corrupt at an unmodified position (default: `end`), per layer:
task label = whether the IO name is in group A (the alphabetically first half of the task's IO names) or B; control
label = the template id (ABBA and BABA forms distinct); selectivity = task accuracy − control accuracy; a probe on
shuffled task labels is the chance baseline."""

from typing import Any

import numpy as np
import torch
from sklearn.linear_model import LogisticRegression
from sklearn.model_selection import KFold, cross_val_score
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler
from transformer_lens.model_bridge import TransformerBridge

from rcid_tl.hooks.names import Site
from rcid_tl.interventions.read import at_positions, cache_hooks
from rcid_tl.models.loading import namer
from rcid_tl.stats import bootstrap_mean_ci
from rcid_tl.tasks.base import ContrastiveDataset

REPRESENTATIONS = ("h", "d")
LABELS = ("task", "control", "shuffled")


@torch.no_grad()
def residuals(model: TransformerBridge, dataset: ContrastiveDataset, position: str, batch_size: int = 64
              ) -> tuple[np.ndarray, np.ndarray]:
    """resid_post of every layer at `position`, clean and corrupt: two arrays (layer, example, d_model)."""
    names = [namer(model).name(Site.RESID_POST, layer) for layer in range(model.cfg.n_layers)]
    clean, corrupt = [], []
    for start in range(0, len(dataset), batch_size):
        batch = dataset.batch(list(range(start, min(start + batch_size, len(dataset)))))
        pos = batch.position(position)
        for tokens, out in ((batch.clean, clean), (batch.corrupt, corrupt)):
            _, cache = cache_hooks(model, tokens, names, batch.answer_pos)
            out.append(torch.stack([at_positions(cache[n], pos) for n in names]).float().cpu())
    return torch.cat(clean, 1).numpy(), torch.cat(corrupt, 1).numpy()


def name_groups(dataset: ContrastiveDataset, tokenizer) -> tuple[list[str], list[str]]:
    """Groups A and B: the task's distinct IO names in alphabetical order, split in half."""
    names = sorted({tokenizer.decode([e.correct_id]).strip() for e in dataset.examples})
    return names[: len(names) // 2], names[len(names) // 2:]


def labels(dataset: ContrastiveDataset, tokenizer, seed: int = 0) -> dict[str, np.ndarray]:
    """Task (IO in group A: 1, B: 0), control (template id) and shuffled task labels, one per example."""
    group_a = set(name_groups(dataset, tokenizer)[0])
    task = np.array([int(tokenizer.decode([e.correct_id]).strip() in group_a) for e in dataset.examples])
    return {"task": task, "control": np.array([e.template for e in dataset.examples]),
            "shuffled": np.random.default_rng(seed).permutation(task)}


def fold_accuracies(x: np.ndarray, y: np.ndarray, folds: int, seed: int) -> np.ndarray:
    """Held-out accuracy of a standardised logistic-regression probe in each of `folds` shuffled folds."""
    probe = make_pipeline(StandardScaler(), LogisticRegression(max_iter=2000))
    return cross_val_score(probe, x, y, cv=KFold(folds, shuffle=True, random_state=seed), scoring="accuracy")


def selectivity(task: np.ndarray, control: np.ndarray) -> dict[str, Any]:
    """Task − control accuracy per fold, as a mean with a bootstrap CI over folds."""
    return bootstrap_mean_ci(np.asarray(task) - np.asarray(control)).to_dict()


def probe_model(model: TransformerBridge, dataset: ContrastiveDataset, position: str = "end", folds: int = 5,
                seed: int = 0) -> dict[str, Any]:
    """Per representation and layer: fold accuracies of the three probes, their CIs, and selectivity."""
    clean, corrupt = residuals(model, dataset, position)
    ys = labels(dataset, model.tokenizer, seed)
    out: dict[str, Any] = {"n_layers": int(clean.shape[0]), "position": position, "layers": {}}
    for rep, xs in (("h", clean), ("d", clean - corrupt)):
        for layer in range(xs.shape[0]):
            accs = {k: fold_accuracies(xs[layer], ys[k], folds, seed) for k in LABELS}
            out["layers"][f"{rep}:{layer}"] = {
                **{k: bootstrap_mean_ci(a).to_dict() for k, a in accs.items()},
                "folds": {k: a.tolist() for k, a in accs.items()},
                "selectivity": selectivity(accs["task"], accs["control"])}
    out["chance"] = {k: float(np.bincount(ys[k]).max() / len(ys[k])) for k in ("task", "control")}
    return out


def pool_seeds(results: list[dict[str, Any]]) -> dict[str, Any]:
    """Per representation and layer, the mean over models (seeds) of each probe's mean accuracy and of selectivity,
    with a bootstrap CI over the models; one model's own CIs over its folds when there is only one."""
    keys = results[0]["layers"].keys()
    if len(results) == 1:
        return {key: {k: results[0]["layers"][key][k] for k in (*LABELS, "selectivity")} for key in keys}
    return {key: {k: bootstrap_mean_ci([r["layers"][key][k]["estimate"] for r in results]).to_dict()
                  for k in (*LABELS, "selectivity")} for key in keys}


def information_purity(teacher: TransformerBridge, students: list[tuple[str, str, TransformerBridge]],
                       dataset: ContrastiveDataset, position: str = "end", folds: int = 5,
                       seed: int = 0) -> dict[str, Any]:
    """Experiment 5 on the teacher and on `students` (method, label, model), pooled over each method's seeds."""
    per_model = {"teacher": probe_model(teacher, dataset, position, folds, seed)}
    for _, label, model in students:
        per_model[label] = probe_model(model, dataset, position, folds, seed)
    methods = list(dict.fromkeys(m for m, _, _ in students))
    pooled = {m: pool_seeds([per_model[label] for method, label, _ in students if method == m]) for m in methods}
    group_a, group_b = name_groups(dataset, teacher.tokenizer)
    seeds = {m: sum(method == m for method, _, _ in students) for m in methods}
    return {"per_model": per_model, "per_method": pooled, "seeds_per_method": seeds, "group_a": group_a,
            "group_b": group_b,
            "config": {"task": dict(dataset.config), "position": position, "folds": folds, "seed": seed,
                       "probe": "StandardScaler + LogisticRegression(max_iter=2000), KFold(shuffle)"}}
