"""Head-level knockout: zero, mean (per template, over a reference run; Wang et al. 2023 §2.1) and resample ablation
of single heads or head sets at `hook_z`, at all or at named per-example positions. Many ablations run in one
forward: each row is one (ablation, example) pair.

Mean and resample values come from a reference distribution: a separate batch of the same task (e.g. 3,000 ABC
prompts for IOI), grouped by (template, answer position) so that every token position lines up. Without one, the
evaluated examples themselves are the reference — with a few examples per group that is close to resample ablation,
so group sizes below `MIN_GROUP` are logged as a warning and reported in `MeanStats`."""

from collections.abc import Sequence
import logging
from dataclasses import dataclass, field
from enum import Enum

import torch
from jaxtyping import Float
from torch import Tensor
from transformer_lens.model_bridge import TransformerBridge

from rcid_tl.errors import InputError
from rcid_tl.hooks.names import Head, Site
from rcid_tl.interventions.engine import Reference as RecordedRun
from rcid_tl.interventions.engine import Rows, reference_run, run_rows
from rcid_tl.interventions.direct import cache as direct_cache
from rcid_tl.interventions.hook_fns import masked_replace_hook, position_mask
from rcid_tl.interventions.read import answer_forward
from rcid_tl.interventions.write import Engine
from rcid_tl.metrics import Metric, RunMetrics
from rcid_tl.models.loading import namer
from rcid_tl.parallel import map_shards
from rcid_tl.progress import track
from rcid_tl.tasks.base import Batch

MIN_GROUP = 50  # reference examples per (template, answer position) below which a mean is poorly estimated
log = logging.getLogger(__name__)


class Method(str, Enum):
    ZERO = "zero"
    MEAN = "mean"  # mean of the reference run's z over examples of the same template
    RESAMPLE = "resample"  # z from another example of the same template in the reference run


class Reference(str, Enum):
    CLEAN = "clean"
    CORRUPT = "corrupt"  # with IOI's `abc` corruption this is Wang et al.'s p_ABC


@dataclass(frozen=True)
class Ablation:
    """A set of heads knocked out together, at every position (None) or at named per-example positions."""

    heads: tuple[Head, ...]
    positions: tuple[str, ...] | None = None


@dataclass(frozen=True)
class ReferenceGroups:
    """How many reference examples each evaluated (template, answer position) group's mean or resample drew on."""

    sizes: dict[str, int]  # "template:answer_pos" -> reference examples in that group, for the evaluated groups
    n_reference: int  # reference examples in all

    @property
    def smallest(self) -> int:
        return min(self.sizes.values())

    def to_json(self) -> dict:
        return {"n_reference": self.n_reference, "min_group_size": self.smallest, "group_sizes": self.sizes,
                "min_group_floor": MIN_GROUP}


def knockout(
    model: TransformerBridge,
    batch: Batch,
    ablations: Sequence[Ablation],
    metric: Metric,
    method: Method = Method.MEAN,
    reference: Reference = Reference.CORRUPT,
    seed: int = 0,
    rows_per_forward: int = 64,
    reference_batch: Batch | None = None,
    engine: Engine = Engine.RESUME,
) -> tuple[Float[Tensor, "ablation batch"], RunMetrics, ReferenceGroups | None]:
    """The metric after each ablation, per example, the unablated clean/corrupt metrics (delta = clean − ablated),
    and (for mean and resample) the reference group sizes. `reference_batch` is the reference distribution whose
    clean or corrupt run (`reference`) supplies the replacement values; None uses `batch` itself. With the resumed
    engine each row starts at its ablation's lowest layer from the cached clean residual and at its first ablated
    position (`engine.run_rows`); the whole-forward engine (`Engine.FULL`) is the reference it is tested against."""
    _check_ablations(model, batch, ablations)
    prepared = prepare_knockout(model, batch, metric, method, reference, seed, rows_per_forward, reference_batch,
                                engine, layers=sorted({h.layer for a in ablations for h in a.heads}))
    return (knockout_prepared(model, batch, ablations, metric, prepared, rows_per_forward), prepared.metrics,
            prepared.groups)


def _check_ablations(model: TransformerBridge, batch: Batch, ablations: Sequence[Ablation]) -> None:
    """Every head exists and every named position is the batch's (an InputError before any forward)."""
    names = namer(model)
    for ablation in ablations:
        for head in ablation.heads:
            names.check_head(head)
        for position in ablation.positions or ():
            batch.position(position)


def _resumed(model, batch, ablations, replacement, metric, layers, hook_names, target, lowest, rows_per_forward):
    """Row a·n + e resumes at ablation a's lowest layer and computes positions from its first ablated position (0
    for every-position ablations) to example e's answer (`engine.run_rows`)."""
    n = len(batch)
    ablation_of, example_of = torch.arange(len(ablations) * n) // n, torch.arange(len(ablations) * n) % n
    answer = batch.answer_pos[example_of]
    first = torch.tensor([0 if ablations[a].positions is None else
                          min(int(batch.position(p)[e]) for p in ablations[a].positions)
                          for a, e in zip(ablation_of.tolist(), example_of.tolist())])
    # every ablation acts on z: rows join their lowest ablated layer there
    rows = Rows(torch.tensor(lowest)[ablation_of], example_of, torch.minimum(first, answer), answer + 1, answer,
                torch.ones_like(answer, dtype=torch.bool))

    def hooks_for(chunk: Tensor, start: int) -> list:
        pairs = list(zip(ablation_of[chunk].tolist(), example_of[chunk].tolist()))
        return _hooks(batch, ablations, replacement, pairs, layers, hook_names, start, int(rows.stop[chunk].max()),
                      model.cfg.n_heads)

    scores = run_rows(model, target, rows, hooks_for, lambda chunk, logits: metric(logits, batch.take(
        example_of[chunk])), rows_per_forward, "knockout")
    return scores.view(len(ablations), n)


def _split(rows: list, size: int) -> list[list]:
    return [rows[k : k + size] for k in range(0, len(rows), size)]


def _group_keys(batch: Batch) -> list[str]:
    # Examples of one IOI template share positions; pairs rows (template 0) of different lengths would otherwise
    # average real tokens with padding. Tokens after the answer position cannot reach its logits, so equal answer
    # positions are enough.
    return [f"{t}:{a}" for t, a in zip(batch.template.tolist(), batch.answer_pos.tolist())]


def _replacements(model, batch: Batch, ref_batch: Batch, hook_names: list[str], method: Method,
                  reference: Reference, seed: int, rows_per_forward: int
                  ) -> tuple[dict[str, Tensor], ReferenceGroups | None]:
    """Per hook, replacement values (batch, pos, head, d_head) for the evaluated examples: zeros, the mean of the
    reference run's z over the example's reference group, or the z of a random member of that group."""
    width = batch.clean.shape[1]
    if method is Method.ZERO:
        zeros = torch.zeros(len(batch), width, model.cfg.n_heads, model.cfg.d_head)
        return dict.fromkeys(hook_names, zeros), None
    keys, ref_keys = _group_keys(batch), _group_keys(ref_batch)
    members: dict[str, list[int]] = {}
    for i, key in enumerate(ref_keys):
        members.setdefault(key, []).append(i)
    missing = sorted(set(keys) - members.keys())
    if missing:
        template, answer = missing[0].split(":")
        raise InputError(f"no reference example has template {template} with the answer at position {answer}; "
                         f"use a larger reference distribution (--reference-n)")
    groups = ReferenceGroups({k: len(members[k]) for k in sorted(set(keys))}, len(ref_batch))
    if groups.smallest < MIN_GROUP:
        log.warning("mean/resample ablation: the smallest reference group has %d examples (< %d); the estimate is "
                    "noisy — use a larger reference distribution (--reference-n)", groups.smallest, MIN_GROUP)
    tokens = ref_batch.clean if reference is Reference.CLEAN else ref_batch.corrupt
    if method is Method.RESAMPLE:  # one random member of each example's group, run alone
        generator = torch.Generator().manual_seed(seed)
        pick = torch.tensor([members[k][int(torch.randint(len(members[k]), (1,), generator=generator))]
                             for k in keys])
        _, cache = direct_cache(model, tokens[pick], hook_names, ref_batch.answer_pos[pick])
        return {name: _fit_width(cache[name].cpu(), width) for name in hook_names}, groups
    group_of = {k: g for g, k in enumerate(sorted(members))}
    ref_group = torch.tensor([group_of[k] for k in ref_keys])
    sums: dict[str, Tensor] = {}
    # reference examples in order of answer position, each chunk cut after its last: nothing after an example's
    # answer position is ever read (its group's rows stop there), so it need not be computed
    by_answer = torch.argsort(ref_batch.answer_pos, stable=True)
    for chunk in track(by_answer.split(rows_per_forward), "reference means"):
        width_needed = int(ref_batch.answer_pos[chunk].max()) + 1
        _, cache = direct_cache(model, tokens[chunk, :width_needed], hook_names, ref_batch.answer_pos[chunk])
        for name in hook_names:
            z = cache[name].cpu().double()
            if name not in sums:
                sums[name] = torch.zeros(len(group_of), tokens.shape[1], *z.shape[2:], dtype=torch.float64)
            sums[name][:, : z.shape[1]].index_add_(0, ref_group[chunk], z)
    counts = torch.bincount(ref_group, minlength=len(group_of)).double()
    example_group = torch.tensor([group_of[k] for k in keys])
    return {name: _fit_width((sums[name] / counts.view(-1, 1, 1, 1))[example_group].float(), width)
            for name in hook_names}, groups


def _fit_width(z: Tensor, width: int) -> Tensor:
    """`z` (examples, pos, ...) cut or zero-padded to `width` positions (positions past an example's answer position
    cannot reach its logits, so what stands there is never read)."""
    if z.shape[1] >= width:
        return z[:, :width].contiguous()
    return torch.cat([z, z.new_zeros(z.shape[0], width - z.shape[1], *z.shape[2:])], dim=1)


def _ablated_metric(model, batch, ablations, replacement, chunk, metric, layers, hook_names) -> Tensor:
    """Whole forwards of the rows `chunk` ((ablation, example) pairs) from token ids."""
    example_of = torch.tensor([e for _, e in chunk])
    sub = batch.take(example_of)
    hooks = _hooks(batch, ablations, replacement, chunk, layers, hook_names, 0, batch.clean.shape[1],
                   model.cfg.n_heads)
    with torch.no_grad(), model.hooks(fwd_hooks=hooks):
        logits = answer_forward(model, batch.clean[example_of], sub.answer_pos)
    return metric(logits, sub).cpu()


def _hooks(batch, ablations, replacement, pairs, layers, hook_names, start: int, stop: int, n_heads: int) -> list:
    """One hook per ablated layer for forwards of the rows `pairs` computing positions start..stop−1."""
    width = batch.clean.shape[1]
    example_of = torch.tensor([e for _, e in pairs])
    hooks = []
    for layer, name in zip(layers, hook_names):
        mask = torch.zeros(len(pairs), width, n_heads, dtype=torch.bool)  # (row, pos, head): replace here
        for r, (a, e) in enumerate(pairs):
            heads = [h.head for h in ablations[a].heads if h.layer == layer]
            if not heads:
                continue
            where = position_mask(batch, ablations[a].positions, torch.tensor([e]))[0].nonzero().flatten()
            mask[r, where[:, None], torch.tensor(heads)[None, :]] = True
        if mask[:, start:stop].any():
            hooks.append((name, masked_replace_hook(mask[:, start:stop],
                                                    replacement[name][example_of][:, start:stop])))
    return hooks


@dataclass(frozen=True)
class Prepared:
    """What every knockout of one batch shares, whatever its ablations: the unablated clean/corrupt metrics, the
    resumed engine's clean reference run (None: whole forwards) and the replacement values at its layers (every
    layer unless asked for fewer). A search that scores many ablation sets on one batch (`heads.circuit`'s greedy
    steps) computes this once per task."""

    metrics: RunMetrics
    replacement: dict[str, Tensor]  # hook name -> (batch, pos, head, d_head)
    groups: ReferenceGroups | None
    layers: list[int]
    hook_names: list[str]  # one per layer of `layers`
    target: RecordedRun | None  # the clean run kept for resuming, or None: whole forwards
    # the last run recorded with a set of heads ablated (`knockout_added`'s base), kept while that base is asked for
    ablated_run: dict[tuple[Head, ...], RecordedRun] = field(default_factory=dict, compare=False, repr=False)

    def hook_name(self, layer: int) -> str:
        return self.hook_names[self.layers.index(layer)]


def prepare_knockout(
    model: TransformerBridge,
    batch: Batch,
    metric: Metric,
    method: Method = Method.MEAN,
    reference: Reference = Reference.CORRUPT,
    seed: int = 0,
    rows_per_forward: int = 64,
    reference_batch: Batch | None = None,
    engine: Engine = Engine.RESUME,
    layers: Sequence[int] | None = None,
) -> Prepared:
    """`knockout`'s ablation-independent part, for `layers` (None: every layer): the same runs and replacement
    values, so `knockout_prepared(…, prepare_knockout(…))` returns exactly what `knockout` returns for the same
    arguments."""
    names = namer(model)
    layers = list(range(model.cfg.n_layers)) if layers is None else list(layers)
    hook_names = [names.name(Site.Z, layer) for layer in layers]
    target = reference_run(model, batch.clean, batch.answer_pos) if Engine(engine) is Engine.RESUME else None
    if target is not None and not target.reproduces_head:
        target = None  # logits that do not come from the final norm and unembedding (CausalQwen): whole forwards
    with torch.no_grad():
        clean = target.logits if target is not None else direct_cache(model, batch.clean, [], batch.answer_pos)[0]
        corrupt = direct_cache(model, batch.corrupt, [], batch.answer_pos)[0]
    metrics = RunMetrics(clean=metric(clean, batch).cpu(), corrupt=metric(corrupt, batch).cpu())
    # replacement values are computed per hook from the same reference forwards, so computing every layer's gives
    # each layer exactly the tensor a knockout of fewer layers computes
    replacement, groups = _replacements(model, batch, reference_batch if reference_batch is not None else batch,
                                        hook_names, Method(method), Reference(reference), seed, rows_per_forward)
    return Prepared(metrics, replacement, groups, layers, hook_names, target)


def knockout_prepared(
    model: TransformerBridge, batch: Batch, ablations: Sequence[Ablation], metric: Metric, prepared: Prepared,
    rows_per_forward: int = 64,
) -> Float[Tensor, "ablation batch"]:
    """The metric after each ablation, per example, as `knockout` computes it, from `prepare_knockout`'s runs."""
    _check_ablations(model, batch, ablations)
    used = sorted({h.layer for a in ablations for h in a.heads})  # hooks only where `knockout` would attach them
    hook_names = [prepared.hook_name(layer) for layer in used]
    lowest = [min(h.layer for h in a.heads) for a in ablations]
    if prepared.target is not None:
        return _resumed(model, batch, ablations, prepared.replacement, metric, used, hook_names, prepared.target,
                        lowest, rows_per_forward)
    n = len(batch)
    chunks = [chunk for layer in sorted(set(lowest))
              for chunk in _split([(a, e) for a in range(len(ablations)) if lowest[a] == layer for e in range(n)],
                                  rows_per_forward)]
    values = torch.cat(map_shards(
        chunks, lambda chunk: _ablated_metric(model, batch, ablations, prepared.replacement, chunk, metric, used,
                                              hook_names), "knockout"))
    out = torch.empty(len(ablations), n)
    out.view(-1)[torch.tensor([a * n + e for chunk in chunks for a, e in chunk])] = values
    return out


def knockout_added(
    model: TransformerBridge, batch: Batch, base: Sequence[Head], added: Sequence[Head], metric: Metric,
    prepared: Prepared, rows_per_forward: int = 64,
) -> Float[Tensor, "added batch"]:
    """The metric after ablating `base` together with each head of `added` (every position), per example. The run
    with `base` ablated is recorded once and each row resumes from it at its added head's layer: below that layer it
    is the same run, so each row recomputes only the blocks its added head can change."""
    if prepared.target is None:
        return knockout_prepared(model, batch, [Ablation((*base, h)) for h in added], metric, prepared,
                                 rows_per_forward)
    names = namer(model)
    for head in (*base, *added):
        names.check_head(head)
    target = prepared.target  # nothing ablated: the clean run
    if base and tuple(base) in prepared.ablated_run:  # the same base again (the search's next candidates)
        target = prepared.ablated_run[tuple(base)]
    elif base:
        n, width = len(batch), batch.clean.shape[1]
        base_hooks = _hooks(batch, [Ablation(tuple(base))], prepared.replacement, [(0, e) for e in range(n)],
                            prepared.layers, prepared.hook_names, 0, width, model.cfg.n_heads)
        target = reference_run(model, batch.clean, batch.answer_pos, hooks=base_hooks)
        prepared.ablated_run.clear()
        prepared.ablated_run[tuple(base)] = target
    ablations = [Ablation((*base, h)) for h in added]
    used = sorted({h.layer for a in ablations for h in a.heads})
    return _resumed_every_position(model, batch, ablations, prepared.replacement, metric, used,
                                   [prepared.hook_name(layer) for layer in used], target, [h.layer for h in added],
                                   rows_per_forward)


def _resumed_every_position(model, batch, ablations, replacement, metric, layers, hook_names, target, lowest,
                            rows_per_forward):
    """`_resumed` for ablations at every position, each chunk's masks built from a per-ablation head mask instead of
    row by row (the same masks, the same replacement values, so the same numbers)."""
    n = len(batch)
    ablation_of, example_of = torch.arange(len(ablations) * n) // n, torch.arange(len(ablations) * n) % n
    answer = batch.answer_pos[example_of]
    rows = Rows(torch.tensor(lowest)[ablation_of], example_of, torch.zeros_like(answer), answer + 1, answer,
                torch.ones_like(answer, dtype=torch.bool))
    ablated = {layer: torch.zeros(len(ablations), model.cfg.n_heads, dtype=torch.bool) for layer in layers}
    for a, ablation in enumerate(ablations):
        for head in ablation.heads:
            ablated[head.layer][a, head.head] = True

    def hooks_for(chunk: Tensor, start: int) -> list:
        stop, hooks = int(rows.stop[chunk].max()), []
        for layer, name in zip(layers, hook_names):
            mask = ablated[layer][ablation_of[chunk]]  # (row, head), the same at every position
            if mask.any():
                hooks.append((name, masked_replace_hook(mask[:, None].expand(-1, stop - start, -1),
                                                        replacement[name][example_of[chunk]][:, start:stop])))
        return hooks

    scores = run_rows(model, target, rows, hooks_for, lambda chunk, logits: metric(logits, batch.take(
        example_of[chunk])), rows_per_forward, "knockout")
    return scores.view(len(ablations), n)
