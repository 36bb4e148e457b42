"""Write: activation patching at (layer, per-example position), many sites per forward.

Noising (default): the corrupt run's value goes into the clean run. Denoising: clean into corrupt. The
effect is Δ = metric(clean) − metric(patched) per example. Sites are batched by expanding the batch: each row of a
forward is one (site, example) pair, and one hook per hook point edits only the rows it owns. By default each row
resumes at its patched layer and position from the unpatched run (`engine.resume`), and a row whose patched value is
that run's own value, bit for bit, is not run (it is that run); `Engine.FULL` runs every row from token ids, the plain
reference the fast path is tested against.
"""

import logging
from collections.abc import Sequence
from dataclasses import dataclass
from enum import Enum

import torch
from jaxtyping import Bool, Float
from torch import Tensor
from transformer_lens.model_bridge import TransformerBridge

from rcid_tl.errors import InputError
from rcid_tl.hooks.names import Site
from rcid_tl.interventions import direct
from rcid_tl.interventions.engine import Rows, reference_and_cache, rows_that_fit, run_rows
from rcid_tl.interventions.hook_fns import masked_replace_hook, set_at_hook
from rcid_tl.interventions.read import answer_forward, cache_hooks
from rcid_tl.metrics import Metric, RunMetrics
from rcid_tl.models.loading import namer
from rcid_tl.parallel import map_shards
from rcid_tl.tasks.base import Batch

log = logging.getLogger(__name__)

PATCHABLE = (Site.RESID_PRE, Site.RESID_MID, Site.RESID_POST, Site.Z, Site.ATTN_OUT, Site.MLP_OUT)
skip_unchanged = True  # False: resumed rows whose patch changes nothing are run too (the benchmark's ablation, tests)


class Direction(str, Enum):
    NOISING = "noising"  # corrupt value into the clean run
    DENOISING = "denoising"  # clean value into the corrupt run


class Engine(str, Enum):
    RESUME = "resume"  # each row from its patched layer and position on, reading the rest from the unpatched run
    FULL = "full"  # each row a whole forward from token ids


@dataclass(frozen=True)
class PatchSite:
    """Where to patch: a hook point (site, layer), a named per-example position, and a head for per-head sites."""

    site: Site
    layer: int
    position: str
    head: int | None = None

    def __post_init__(self) -> None:
        if self.site not in PATCHABLE:
            allowed = ", ".join(s.value for s in PATCHABLE)
            raise InputError(f"site {self.site.value!r} cannot be patched here; allowed: {allowed}")
        if (self.head is None) == self.site.per_head:
            raise InputError(f"site {self.site.value} {'needs' if self.site.per_head else 'takes no'} head index")


def patch_sites(
    model: TransformerBridge,
    batch: Batch,
    sites: Sequence[PatchSite],
    metric: Metric,
    direction: Direction = Direction.NOISING,
    rows_per_forward: int | None = None,
    engine: Engine = Engine.RESUME,
) -> tuple[Float[Tensor, "site batch"], RunMetrics]:
    """Δ per (site, example) for every site, plus the clean/corrupt metrics. Exact: each row is its own forward's
    worth of computation; only the batching (and, with `Engine.RESUME`, what is read back instead of recomputed)
    differs from patching one site at a time. With `Engine.RESUME`, a row whose patched value is the run's own value
    there, bit for bit (a position before the first token the prompts differ at), is that run: its metric is read
    from it, not recomputed. `rows_per_forward` None: as many as fit in free memory."""
    names = namer(model)
    for s in sites:
        names.check_layer(s.layer)
        if s.head is not None and not 0 <= s.head < model.cfg.n_heads:
            raise InputError(f"head {s.layer}.{s.head} is out of range; this model has heads 0..{model.cfg.n_heads - 1}")
        batch.position(s.position)
    hook_names = sorted({names.name(s.site, s.layer) for s in sites})
    noising = Direction(direction) is Direction.NOISING
    target_tokens, source_tokens = (batch.clean, batch.corrupt) if noising else (batch.corrupt, batch.clean)
    resumable = None
    if Engine(engine) is Engine.RESUME:
        resumable, target_cache, source_logits, source_cache = reference_and_cache(
            model, target_tokens, batch.answer_pos, source_tokens, hook_names)
        target_logits = resumable.logits
        if not resumable.reproduces_head:
            log.info("this model's logits do not come from its final norm and unembedding; patching whole forwards")
            resumable = None
    else:
        target_logits = direct.cache(model, target_tokens, [], batch.answer_pos)[0]
        source_logits, source_cache = direct.cache(model, source_tokens, hook_names, batch.answer_pos)
    clean_logits, corrupt_logits = (target_logits, source_logits) if noising else (source_logits, target_logits)
    metrics = RunMetrics(clean=metric(clean_logits, batch).cpu(), corrupt=metric(corrupt_logits, batch).cpu())
    plan = _PatchPlan.build(sites, batch, source_cache, names)
    if resumable is not None:
        target_metric = metrics.clean if noising else metrics.corrupt
        unchanged = (plan.unchanged(source_cache, target_cache) if skip_unchanged
                     else torch.zeros(len(sites), len(batch), dtype=torch.bool))
        return _patch_resumed(model, batch, sites, metric, rows_per_forward, resumable, plan, metrics, target_metric,
                              unchanged)

    n = len(batch)
    rows = torch.arange(len(sites) * n)  # row r patches site r // n in example r % n
    width = target_tokens.shape[1]
    rows_per_forward = rows_per_forward or rows_that_fit(model, width, width)

    def patched_metric(chunk: Tensor) -> Tensor:
        site_of, example_of = chunk // n, chunk % n
        sub = batch.take(example_of)
        with torch.no_grad():
            logits = direct.answer_forward(model, target_tokens[example_of], sub.answer_pos,
                                           plan.hooks(site_of, example_of, model.cfg.device))
        return metric(logits, sub).cpu()

    # under torchrun each process patches its share of the chunks; every process gets all of them back
    patched = torch.cat(map_shards(rows.split(rows_per_forward), patched_metric, "patching"))
    return metrics.clean[None, :] - patched.view(len(sites), n), metrics


def _patch_resumed(model, batch, sites, metric, rows_per_forward, target, plan, metrics, target_metric, unchanged):
    """`patch_sites` on resumed rows (`engine.run_rows`) from the run patched into (`target`): each (site, example)
    row recomputes blocks from the site's layer and positions from its patched or answer position, whichever comes
    first. Rows `unchanged` (site, example) are not run: their metric is the target run's (`target_metric`)."""
    n = len(batch)
    patched = target_metric.repeat(len(sites))
    todo = (~unchanged).flatten().nonzero().flatten()
    log.debug("patching %d of %d rows; the rest change nothing", len(todo), len(patched))
    if len(todo):
        site_of, example_of = todo // n, todo % n
        position, answer = plan.position[site_of, example_of], batch.answer_pos[example_of]
        rows = Rows(torch.tensor([s.layer for s in sites])[site_of], example_of, torch.minimum(position, answer),
                    torch.maximum(position, answer) + 1, answer,
                    torch.tensor([s.site is Site.Z for s in sites])[site_of])
        patched[todo] = run_rows(
            model, target, rows, lambda chunk, first: plan.hooks(site_of[chunk], example_of[chunk],
                                                                  model.cfg.device, offset=first),
            lambda chunk, logits: metric(logits, batch.take(example_of[chunk])), rows_per_forward, "patching")
    return metrics.clean[None, :] - patched.view(len(sites), n), metrics


@dataclass(frozen=True)
class _PatchPlan:
    """Per hook point: which sites it serves, their per-example positions, heads and source values."""

    hook_of_site: Tensor  # (site,) index into `names`
    position: Tensor  # (site, batch)
    head: Tensor  # (site,), unused for whole-vector sites
    names: tuple[str, ...]
    in_place: tuple[bool, ...]  # per hook: see `Site.patch_in_place`
    per_head: tuple[bool, ...]  # per hook: whether its activation has a head axis
    values: tuple[Tensor, ...]  # per hook: (site, batch, ...) — rows for sites of other hooks are never read

    @classmethod
    def build(cls, sites, batch, source, namer_) -> "_PatchPlan":
        site_names = [namer_.name(s.site, s.layer) for s in sites]
        names = tuple(sorted(set(site_names)))
        site_of_name = dict(zip(site_names, (s.site for s in sites)))
        index_of = {name: k for k, name in enumerate(names)}
        hook_of_site = torch.tensor([index_of[name] for name in site_names])
        positions = {p: batch.position(p) for p in {s.position for s in sites}}
        position = torch.stack([positions[s.position] for s in sites])
        head = torch.tensor([0 if s.head is None else s.head for s in sites])
        values = tuple(_at(source[name], position, head, site_of_name[name].per_head) for name in names)
        in_place = tuple(site_of_name[name].patch_in_place for name in names)
        per_head = tuple(site_of_name[name].per_head for name in names)
        return cls(hook_of_site, position, head, names, in_place, per_head, values)

    def unchanged(self, source: dict[str, Tensor], target: dict[str, Tensor]) -> Bool[Tensor, "site batch"]:
        """Whether each (site, example)'s patched value is, bit for bit, the value the run patched into has there
        (`source`, `target`: the two runs' activations at `names`). Such a row's forward is that run's own."""
        differs = []  # per hook point (batch, pos, head), a whole-vector site's as one head
        for name, per_head in zip(self.names, self.per_head):
            width = min(source[name].shape[1], target[name].shape[1])  # past it no site's position lies
            here = (_bits(source[name][:, :width]) != _bits(target[name][:, :width])).any(-1)
            differs.append(here if per_head else here[..., None])
        heads = max(d.shape[2] for d in differs)
        stacked = torch.stack([d.expand(-1, -1, heads) for d in differs])  # (hook, batch, pos, head)
        n = self.position.shape[1]
        examples = self.hook_of_site[:, None] * n + torch.arange(n)  # each site's rows of its own hook's
        return ~_at(stacked.flatten(0, 1), self.position, self.head, True, examples)

    def hooks(self, site_of: Tensor, example_of: Tensor, device, offset: int = 0) -> list:
        """One hook per hook point these rows patch; `offset` is the first position the forward computes."""
        hooks = []
        for k, name in enumerate(self.names):
            mine = (self.hook_of_site[site_of] == k).nonzero().flatten()
            if len(mine):
                sites, examples = site_of[mine], example_of[mine]
                heads = self.head[sites].to(device) if self.per_head[k] else None
                hooks.append((name, set_at_hook(
                    mine.to(device), (self.position[sites, examples] - offset).to(device),
                    self.values[k][sites, examples].to(device), heads, self.in_place[k])))
        return hooks


def _at(acts: Tensor, position: Tensor, head: Tensor, per_head: bool, examples: Tensor | None = None) -> Tensor:
    """Each site's value in each example, on the CPU: `acts` (batch, pos, ...) or, `per_head`, (batch, pos, head, ...)
    at `position` (site, batch) and `head` (site,) → (site, batch, ...); `examples` (site, batch): the rows of `acts`
    to read (None: example e's row is e)."""
    examples = torch.arange(position.shape[1]) if examples is None else examples
    index = examples * acts.shape[1] + position  # into (batch × pos)
    if per_head:
        index = index * acts.shape[2] + head[:, None]  # into (batch × pos × head)
    flat = acts.cpu().flatten(0, 2 if per_head else 1)  # one gather by index_select: advanced indexing is slower
    return flat.index_select(0, index.flatten()).view(*index.shape, *flat.shape[1:])


def _bits(t: Tensor) -> Tensor:
    """`t`'s bit patterns (equal exactly where the values are the same bits: −0.0 ≠ 0.0, a NaN equals itself)."""
    return t.view({1: torch.int8, 2: torch.int16, 4: torch.int32, 8: torch.int64}[t.element_size()])


def patch_together(
    model: TransformerBridge, batch: Batch, sites: Sequence[PatchSite], metric: Metric,
    direction: Direction = Direction.NOISING,
) -> Float[Tensor, " batch"]:
    """Δ per example when every site in `sites` is patched in the same forward (a component that several sites
    stand for together, e.g. one teacher head spread over two student heads). One source and one patched forward;
    `patch_sites` with one site gives the same Δ (tested)."""
    names = namer(model)
    for s in sites:
        names.check_layer(s.layer)
        batch.position(s.position)
    noising = Direction(direction) is Direction.NOISING
    hook_names = sorted({names.name(s.site, s.layer) for s in sites})
    source_tokens, target_tokens = (batch.corrupt, batch.clean) if noising else (batch.clean, batch.corrupt)
    _, source = cache_hooks(model, source_tokens, hook_names, batch.answer_pos)
    rows = torch.arange(len(batch))

    def replace(name: str):
        """The source run's value at every site of this hook point, the target run's elsewhere."""
        mask = torch.zeros(source[name].shape[:-1], dtype=torch.bool)  # (batch, pos) or (batch, pos, head)
        for s in (s for s in sites if names.name(s.site, s.layer) == name):
            pos = batch.position(s.position)
            mask[(rows, pos) if s.head is None else (rows, pos, s.head)] = True
        return masked_replace_hook(mask, source[name])

    with torch.no_grad():
        clean = metric(answer_forward(model, batch.clean, batch.answer_pos), batch).cpu()
        with model.hooks(fwd_hooks=[(name, replace(name)) for name in hook_names]):
            patched = metric(answer_forward(model, target_tokens, batch.answer_pos), batch).cpu()
    return clean - patched
