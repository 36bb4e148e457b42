"""Resumed forwards: run a patched row from block L on the reference run's residual stream, recomputing only the
positions a patch can change and unembedding only the answer position.

A patch at (layer L, position p) changes nothing below block L and nothing before position p (causal attention). So a
patched row starts at block L from the reference run's `hook_resid_pre`, computes positions start..stop−1 only (start
≤ every patched and answer position of the rows, stop > all of them), and reads the earlier positions' keys and values
from the reference run: they are what the reference computed there, so the result is exact, not an approximation.
"""

import os
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

import torch
from jaxtyping import Float, Int
from torch import Tensor
from transformer_lens.model_bridge import TransformerBridge

from rcid_tl.hooks.names import Site, hook_name
from rcid_tl.interventions import direct
from rcid_tl.interventions.hook_fns import keep_hook, record_hook
from rcid_tl.interventions.read import _kept_positions
from rcid_tl.models.architectures import answer_logits, check_resumable, resumed_attention_mask
from rcid_tl.parallel import map_shards

# the HF block arguments that describe the whole reference sequence and are rebuilt (or dropped) for a resumed row
_REBUILT = ("attention_mask", "cache", "past_key_values", "layer_past", "use_cache")


class _KeyValues:
    """Handed to the bridge's attention as its KV cache (`layer_past`, the name its `_update_kv_cache` reads and HF
    blocks pass through untouched). Recording: keeps each layer's keys/values (batch, kv_head, pos, d_head), the
    exact tensors the attention scores use. Resuming: puts the reference prefix in front of the new positions'."""

    def __init__(self, prefix: dict[int, tuple[Tensor, Tensor]] | None = None):
        self.recording = prefix is None
        self.layers: dict[int, tuple[Tensor, Tensor]] = {} if prefix is None else prefix

    def update(self, k: Tensor, v: Tensor, layer_idx: int, *args, **kwargs) -> tuple[Tensor, Tensor]:
        if self.recording:
            self.layers[layer_idx] = (k, v)
            return k, v
        if layer_idx not in self.layers:  # below the resumed layer, or a run that starts at position 0
            return k, v
        pk, pv = self.layers[layer_idx]
        return torch.cat([pk, k], dim=-2), torch.cat([pv, v], dim=-2)


@dataclass(frozen=True)
class Reference:
    """One unpatched run kept for resuming: answer logits, every block's input, every layer's keys/values and the
    keyword arguments HF gave the first block (rotary tables, position ids); from a direct forward also every layer's
    `z` as its hooks received it and as the run used it (rows can then join a block at its `z`)."""

    logits: Float[Tensor, "batch d_vocab"]
    resid_pre: tuple[Tensor, ...]  # per layer (batch, pos, d_model)
    kv: dict[int, tuple[Tensor, Tensor]]
    block_kwargs: dict
    reproduces_head: bool  # final norm + unembedding of the last block's output gives the model's logits
    z: dict[int, tuple[Tensor, Tensor]] = field(default_factory=dict)  # per layer (batch, pos, head, d_head) ×2

    def has_all_keys_values(self, n_layers: int) -> bool:
        """Whether every layer's attention handed its keys/values to the recorder (an attention the bridge does not
        know the layer index of skips it); without them a resumed row must start at position 0."""
        return len(self.kv) == n_layers


def reference_run(
    model: TransformerBridge, tokens: Int[Tensor, "batch pos"], answer_pos: Int[Tensor, " batch"],
    hooks: Sequence[direct.Hook] = (),
) -> Reference:
    """The forward of `tokens` with `hooks` (none: the unpatched run), keeping what `resume` needs (no gradients).
    A direct forward where `direct.usable`, else the bridge's with the hooks attached for the call."""
    check_resumable(model)  # one line where a layer's attention cannot be rebuilt on a resumed row
    if direct.usable(model, hooks):
        return _direct_reference_run(model, tokens, answer_pos, hooks)
    n_layers = model.cfg.n_layers
    resid_names = [hook_name(Site.RESID_PRE, layer) for layer in range(n_layers)]
    last = hook_name(Site.RESID_POST, n_layers - 1)
    wanted = [*resid_names, last]
    store: dict[str, Tensor] = {}
    record, block_kwargs = _KeyValues(), {}

    def first_block(module, args, kwargs):
        block_kwargs.update(kwargs)

    def give_record(module, args, kwargs):
        return args, {**kwargs, "layer_past": record}

    handles = [model.blocks[0].register_forward_pre_hook(first_block, with_kwargs=True)]
    handles += [b.attn.register_forward_pre_hook(give_record, with_kwargs=True) for b in model.blocks]
    keep_pos, slot = _kept_positions(answer_pos.cpu())
    device = model.cfg.device
    try:
        with torch.no_grad(), model.hooks(fwd_hooks=[*hooks, *((n, record_hook(store, n)) for n in wanted)]):
            logits = model(tokens.to(device), logits_to_keep=keep_pos.to(device))
    finally:
        for h in handles:
            h.remove()
    kwargs = {k: v for k, v in block_kwargs.items() if k not in _REBUILT}
    answer_logits = logits[torch.arange(len(slot)), slot.to(logits.device)]
    return Reference(
        answer_logits, tuple(store[n] for n in resid_names),
        {k: (kv[0].detach(), kv[1].detach()) for k, kv in record.layers.items()}, kwargs,
        _same_head(model, store[last], answer_pos, answer_logits),
    )


def _direct_reference_run(model, tokens, answer_pos, hooks) -> Reference:
    """`reference_run` as a direct forward: the same blocks' inputs, keys/values and block arguments."""
    record, resid_pre, z = {}, [], {}
    tokens = tokens.to(model.cfg.device)
    with torch.no_grad():
        hidden = direct.embed(model, tokens)
        kwargs = direct.position_embeddings(model, hidden, tokens.shape[1])
        final = direct.blocks(model, hidden, 0, kwargs, hooks, record=record, resid_pre=resid_pre,
                              answer=answer_pos.to(hidden.device), z_record=z)
        logits = direct.unembed(model, final)
    return Reference(logits, tuple(resid_pre), record, kwargs, True, z)  # `usable` checked the head is the model's


def reference_and_cache(
    model: TransformerBridge, tokens: Int[Tensor, "batch pos"], answer_pos: Int[Tensor, " batch"],
    other: Int[Tensor, "batch pos2"], names: Sequence[str],
) -> tuple[Reference, dict[str, Tensor], Float[Tensor, "batch d_vocab"], dict[str, Tensor]]:
    """`reference_run(tokens)` with its activations at `names`, and `direct.cache(other, names)` (the other run's
    answer logits and activations): in one direct forward of both batches where `direct.usable` (on small models a
    forward's per-module work, not its rows, sets its time), else one after the other. Batches of other widths are
    right-padded to one width for the forward (causal attention: padding changes nothing before it) and cut back
    after."""
    store: dict[str, Tensor] = {}
    hooks = [(name, keep_hook(store, name)) for name in names]
    if not direct.usable(model, hooks):
        ref = reference_run(model, tokens, answer_pos, [(name, record_hook(store, name)) for name in names])
        return ref, store, *direct.cache(model, other, names, answer_pos)
    n, width, other_width = len(tokens), tokens.shape[1], other.shape[1]
    both = torch.zeros(2 * n, max(width, other_width), dtype=tokens.dtype)
    both[:n, :width], both[n:, :other_width] = tokens, other
    ref = _direct_reference_run(model, both, torch.cat([answer_pos, answer_pos]), hooks)
    mine = Reference(ref.logits[:n], tuple(r[:n, :width] for r in ref.resid_pre),
                     {i: (k[:n, :, :width], v[:n, :, :width]) for i, (k, v) in ref.kv.items()},
                     {k: _suffix(v, torch.arange(n), 0, width) for k, v in ref.block_kwargs.items()}, True,
                     {i: (pre[:n, :width], used[:n, :width]) for i, (pre, used) in ref.z.items()})
    return (mine, {name: store[name][:n, :width] for name in names}, ref.logits[n:],
            {name: store[name][n:, :other_width] for name in names})


def _same_head(model: TransformerBridge, final: Tensor, answer_pos: Tensor, logits: Tensor) -> bool:
    """Whether `resume`'s head (final norm, unembedding) reproduces the model's answer logits. A model with another
    head (CausalQwen's causal head, in any inference mode) does not, and must be patched with whole forwards."""
    rows = torch.arange(len(final), device=final.device)
    with torch.no_grad():
        head = answer_logits(model, final[rows, answer_pos.to(final.device)][:, None])[:, 0]
    return head.shape == logits.shape and bool(torch.allclose(head, logits, rtol=1e-3, atol=1e-3))


def _suffix(value, examples: Tensor, start: int, stop: int):
    """A per-position block argument cut to positions start..stop−1 and to `examples` (when it has a batch axis)."""
    if isinstance(value, tuple):
        return tuple(_suffix(v, examples, start, stop) for v in value)
    if not isinstance(value, Tensor):
        return value
    if value.dim() == 1:  # (pos,), e.g. cache_position
        return value[start:stop]
    value = value[:, start:stop]  # (batch or 1, pos, ...)
    return value if value.shape[0] == 1 else value[examples.to(value.device)]


def resume(
    model: TransformerBridge, ref: Reference, layer: int, examples: Int[Tensor, " rows"], start: int, stop: int,
    answer_pos: Int[Tensor, " rows"],
) -> Float[Tensor, "rows d_vocab"]:
    """Answer-position logits of the reference rows `examples` recomputed through the bridge's blocks from block
    `layer` on, at positions start..stop−1 (hooks the caller attached fire on these positions only: position p is
    index p − start). Direct forwards take rows of every layer at once instead (`resume_entering`)."""
    device = model.cfg.device
    rows = examples.to(device)
    prefix = {i: (k[:, :, :start].index_select(0, rows), v[:, :, :start].index_select(0, rows))
              for i, (k, v) in ref.kv.items() if i >= layer}
    kwargs = {k: _suffix(v, examples, start, stop) for k, v in ref.block_kwargs.items()}
    kwargs["layer_past"] = _KeyValues(prefix)
    # no attention mask: the bridge then applies the causal mask offset by the cached prefix (start positions), which
    # is what the reference run's causal mask is on these rows (batches are right-padded, never masked)
    hidden = ref.resid_pre[layer][:, start:stop].index_select(0, rows)
    for index, block in enumerate(model.blocks[layer:], layer):
        # a sliding window's mask (the bridge applies only the causal one when given none)
        mask = resumed_attention_mask(model, index, start, stop, device=hidden.device, dtype=hidden.dtype)
        out = block(hidden, **kwargs, attention_mask=mask)
        hidden = out[0] if isinstance(out, tuple) else out
    final = hidden[torch.arange(len(rows), device=device), (answer_pos.to(device) - start)]
    logits = answer_logits(model, final[:, None])[:, 0]
    return logits.to(torch.promote_types(logits.dtype, torch.float32))  # under autocast: Δ is a difference


@dataclass(frozen=True)
class Rows:
    """The rows of a resumed sweep: row r recomputes blocks from `layer[r]` and positions `start[r]`..`stop[r]`−1 of
    reference example `example[r]` (start ≤ its patched and answer positions, stop > both) and is scored at
    `answer[r]`. `at_z[r]`: nothing row r changes acts before `z` of its block, so on direct forwards it joins the
    block there, with the reference's `z` (None: every row joins at the block's input)."""

    layer: Int[Tensor, " rows"]
    example: Int[Tensor, " rows"]
    start: Int[Tensor, " rows"]
    stop: Int[Tensor, " rows"]
    answer: Int[Tensor, " rows"]
    at_z: Tensor | None = None

    def chunks(self, rows_per_forward: int, across_layers: bool = False) -> list[Tensor]:
        """Rows packed into chunks of up to `rows_per_forward` rows that compute at most `WASTE`× the positions
        their rows need (a chunk computes every row from its earliest start to its latest stop). A chunk resumes at
        one block (rows sorted by layer, then start), or, `across_layers`, takes rows of any layer, each joining at
        its own block (rows sorted by start, stop and layer; each chunk's rows in layer order, see
        `direct.entering_blocks`: those joining a block at its input before those joining at its `z`)."""
        positions, layers = int(self.stop.max()) + 1, int(self.layer.max()) + 1
        # across layers, rows of similar width share a chunk: less of a chunk is computed for its longest row only
        key = (self.start * positions + self.stop) * layers + self.layer if across_layers else \
            self.layer * positions + self.start
        order = torch.argsort(key, stable=True).tolist()
        layer, start, stop = self.layer.tolist(), self.start.tolist(), self.stop.tolist()
        chunks, current, needed, low, high = [], [], 0, 0, 0
        for r in order:
            width = stop[r] - start[r]
            if current and ((not across_layers and layer[r] != layer[current[0]]) or len(current) == rows_per_forward
                            or (len(current) + 1) * (max(high, stop[r]) - low) > WASTE * (needed + width)):
                chunks.append(current)
                current, needed = [], 0
            if not current:
                low, high = start[r], stop[r]
            current.append(r)
            needed, high = needed + width, max(high, stop[r])
        chunks += [current] if current else []
        if across_layers:
            at_z = [False] * len(layer) if self.at_z is None else self.at_z.tolist()
            # stable: start order within a layer and entry
            chunks = [sorted(chunk, key=lambda r: (layer[r], at_z[r])) for chunk in chunks]
        return [torch.tensor(chunk) for chunk in chunks]


WASTE = 1.25  # positions a chunk may compute, relative to those its rows need (fewer, larger forwards vs less waste)
MAX_ROWS = 512  # beyond this a forward's matmuls are already large; more rows only cost memory
MEMORY_SHARE = 4  # a forward may use a quarter of the free memory (the rest: the caches, other processes)


def free_memory(device: torch.device | str) -> int:
    """Bytes free now on `device`: the GPU's own count, or the machine's available physical pages."""
    device = torch.device(device)
    if device.type == "cuda":
        return torch.cuda.mem_get_info(device)[0]
    return os.sysconf("SC_AVPHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")


def rows_that_fit(model: TransformerBridge, positions: int, keys: int) -> int:
    """Rows per forward that fit a share of the free memory when each row computes `positions` positions against
    `keys` keys: per block, the residual, norm, q/k/v and MLP activations, the attention scores and pattern, plus
    the answer's logits (no gradients, so blocks' activations do not pile up)."""
    cfg = model.cfg
    per_position = 8 * cfg.d_model + 2 * (cfg.d_mlp or 4 * cfg.d_model) + 3 * cfg.n_heads * keys
    per_row = cfg.dtype.itemsize * (positions * per_position + 3 * cfg.d_vocab)
    return max(1, min(MAX_ROWS, free_memory(cfg.device) // MEMORY_SHARE // per_row))


def run_rows(
    model: TransformerBridge, ref: Reference, rows: Rows, hooks_for: Callable[[Tensor, int], list],
    score: Callable[[Tensor, Tensor], Tensor], rows_per_forward: int | None, description: str,
) -> Tensor:
    """The one exact sweep loop: every row resumed from the reference run (`resume`), `rows_per_forward` at a time,
    with `hooks_for(chunk, first_position)` attached (hooks index positions from the chunk's first computed one) and
    `score(chunk, answer_logits)` → (chunk, ...) kept on the CPU. Returns the scores in row order. Under torchrun each
    process runs its share of the chunks and every process gets all of them back. `rows_per_forward` None: as many
    as fit in memory (`rows_that_fit`) for the longest row."""
    start = rows.start if ref.has_all_keys_values(model.cfg.n_layers) else torch.zeros_like(rows.start)
    if rows_per_forward is None:
        rows_per_forward = rows_that_fit(model, int((rows.stop - start).max()), int(rows.stop.max()))
    # direct forwards take rows of every layer in one chunk, each joining at its block (`resume_entering`)
    across_layers = direct.usable(model)
    chunks = Rows(rows.layer, rows.example, start, rows.stop, rows.answer, rows.at_z).chunks(rows_per_forward,
                                                                                             across_layers)

    def run_one_layer(chunk: Tensor) -> Tensor:  # through the bridge, the hooks attached around the whole call
        first = int(start[chunk].min())
        with torch.no_grad(), model.hooks(fwd_hooks=hooks_for(chunk, first)):
            return resume(model, ref, int(rows.layer[chunk[0]]), rows.example[chunk], first,
                          int(rows.stop[chunk].max()), rows.answer[chunk])

    def run(chunk: Tensor) -> Tensor:
        first, layers = int(start[chunk].min()), rows.layer[chunk]
        hooks = hooks_for(chunk, first) if across_layers else None
        if hooks is None or not direct.usable(model, hooks):  # a hook the direct forward does not fire: per layer
            logits = torch.cat([run_one_layer(chunk[layers == layer]) for layer in layers.unique().tolist()])
        else:
            with torch.no_grad():
                logits = resume_entering(model, ref, layers, rows.example[chunk], first, int(rows.stop[chunk].max()),
                                         rows.answer[chunk], hooks, None if rows.at_z is None else rows.at_z[chunk])
        return score(chunk, logits).cpu()

    scores = torch.cat(map_shards(chunks, run, description))
    return torch.empty_like(scores).index_copy_(0, torch.cat(chunks), scores)


def resume_entering(
    model: TransformerBridge, ref: Reference, layers: Int[Tensor, " rows"], examples: Int[Tensor, " rows"],
    start: int, stop: int, answer_pos: Int[Tensor, " rows"], hooks: Sequence[direct.Hook],
    at_z: Tensor | None = None,
) -> Float[Tensor, "rows d_vocab"]:
    """`resume` for rows sorted by layer (and, within a layer, those joining at the block's input before those
    joining at its `z`: `at_z`, where the reference recorded `z`), each row joining at its own block
    (`direct.entering_blocks`), in one direct forward. `hooks` index the rows as `resume`'s do; at a block below some
    rows' layer they see the rows that have joined (a prefix), so each hook is handed every row, the ones not yet
    running as zeros it never reads back."""
    device, n, n_layers = model.cfg.device, len(examples), model.cfg.n_layers
    rows = examples.to(device)
    at_z = torch.zeros(n, dtype=torch.bool) if at_z is None or len(ref.z) < n_layers else at_z.cpu()
    at_input = torch.bincount(layers[~at_z], minlength=n_layers).tolist()
    joined = torch.bincount(layers, minlength=n_layers).cumsum(0).tolist()  # rows running after each block
    before = [0, *joined[:-1]]
    attending = [b + a for b, a in zip(before, at_input)]  # rows whose attention each block computes
    # gathers by `index_select` of the positions' view: advanced indexing copies several times slower on a CPU
    take = lambda t, mine: t[:, start:stop].index_select(0, mine)  # noqa: E731
    entering = {i: take(ref.resid_pre[i], rows[before[i]:attending[i]]) for i in range(n_layers) if at_input[i]}
    entering_z = {}
    for i in range(n_layers):
        if joined[i] > attending[i]:
            mine = rows[attending[i]:joined[i]]
            received, used = ref.z[i]
            z_in = take(received, mine)  # its hooks may edit it in place: the reference's `z` is kept apart
            entering_z[i] = direct.EnteringAtZ(
                take(ref.resid_pre[i], mine), z_in, z_in.clone() if used is received else take(used, mine),
                take(ref.resid_pre[i + 1], mine) if i + 1 < n_layers else None)
    # rows computing few positions after a long prefix take the reference's keys/values through `stop` and
    # overwrite the computed ones (no concatenation; measured faster for `z` at `end`, slower for long rows)
    filled = stop - start <= start
    through = stop if filled else start
    lowest = int(layers[0])
    prefix = {i: tuple(t[:, :, :through].index_select(0, rows[:attending[i]]) for t in (k, v))
              for i, (k, v) in ref.kv.items() if i >= lowest and start > 0 and attending[i]}
    kwargs = {k: _suffix(v, examples, start, stop) for k, v in ref.block_kwargs.items()}
    padded = [(name, _every_row(fn, n)) for name, fn in hooks] if at_input[lowest] < n else list(hooks)
    final = direct.entering_blocks(model, entering, kwargs, padded, prefix, filled,
                                   answer=answer_pos.to(device) - start, entering_z=entering_z)
    return direct.unembed(model, final)


def _every_row(fn: Callable, n: int) -> Callable:
    """`fn` handed all `n` rows of a chunk when fewer are running (the rest zeros), its result cut back to them."""

    def hook(act: Tensor, hook_point) -> Tensor:
        if len(act) == n:
            return fn(act, hook_point)
        full = act.new_zeros((n, *act.shape[1:]))
        full[: len(act)] = act
        out = fn(full, hook_point)
        return (full if out is None else out)[: len(act)]

    return hook
