"""Direct forwards: a GPT-2 or Qwen2 bridge's own Hugging Face modules called one after another, with the sweep's
hooks fired by name at the hook points they ask for, instead of the bridge's per-module wrappers and hook points.

On small models the bridge's Python work per module, not arithmetic, sets a sweep's time. A direct forward computes
the same function with fewer, fused kernels (`rcid_tl.interventions.kernels`; checked against the bridge once per
model, in tests to float32 rounding and to 1e-10 in float64) and calls each given hook at its hook point with the
activation the bridge would hand it. It is used only where nothing but rounding can tell the difference: no hook
attached to the model itself (a user's hooks always fire, because the bridge then runs), the model in eval mode, an
architecture this module knows, every hook at a site it fires, and the one-off agreement check passed.
"""

import functools
import weakref
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import torch
from jaxtyping import Float, Int
from torch import Tensor
from transformer_lens.hook_points import HookPoint
from transformer_lens.model_bridge import TransformerBridge

from rcid_tl.hooks.names import Site, hook_name
from rcid_tl.interventions import kernels
from rcid_tl.models.architectures import full_attention_only

Hook = tuple[str, Callable]
FIRED = (Site.RESID_PRE, Site.Z, Site.ATTN_OUT, Site.RESID_MID, Site.MLP_OUT, Site.RESID_POST)
ARCHITECTURES = ("GPT2LMHeadModel", "Qwen2ForCausalLM")  # exact classes: a subclass (CausalQwen) has another head
enabled = True  # False: always the bridge (the benchmark's ablation, and tests comparing the two)
_AGREES: "weakref.WeakKeyDictionary[TransformerBridge, bool]" = weakref.WeakKeyDictionary()
_MODULES: "weakref.WeakKeyDictionary[TransformerBridge, list]" = weakref.WeakKeyDictionary()


@dataclass(frozen=True)
class _HookPoint:
    """What a hook function receives as `hook`: the name it was asked for (the bridge gives its canonical name), and
    whether it may edit the activation in place (`rcid_tl.interventions.hook_fns` then skip their copy): true when it
    is the only hook at its site and no gradient is taken, since every activation a direct forward hands a hook is a
    tensor of its own that it reads only through the hook's return value."""

    name: str
    edit_in_place: bool = False


@functools.cache
def _fired_sites_of(n_layers: int) -> dict[str, tuple[int, Site]]:
    return {hook_name(site, layer): (layer, site) for layer in range(n_layers) for site in FIRED}


def _fired_sites(model: TransformerBridge) -> dict[str, tuple[int, Site]]:
    return _fired_sites_of(model.cfg.n_layers)


def _bridge_hooked(model: TransformerBridge) -> bool:
    """Whether any hook is attached to the model's hook points (named hooks, however attached) or as a global module
    hook. The bridge's own pre-hooks on its norms (which capture block inputs) are not hook points."""
    from torch.nn.modules import module as torch_module  # the global hook registries, private to torch

    if torch_module._global_forward_hooks or torch_module._global_forward_pre_hooks:
        return True
    if model not in _MODULES:  # `hook_dict` rebuilds its alias map on every read: walk the modules once
        _MODULES[model] = [m for m in model.modules() if isinstance(m, HookPoint)]
    return any(m._forward_hooks or m._forward_pre_hooks or m._backward_hooks for m in _MODULES[model])


def usable(model: TransformerBridge, hooks: Sequence[Hook] = ()) -> bool:
    """Whether a direct forward with `hooks` computes exactly what the bridge would with them attached."""
    if not enabled or model.training or type(model.original_model).__name__ not in ARCHITECTURES:
        return False
    if not full_attention_only(model):  # this forward builds only the causal mask (a Qwen2 may slide)
        return False
    sites = _fired_sites(model)
    if any(name not in sites for name, _ in hooks) or _bridge_hooked(model):
        return False
    if model not in _AGREES:
        _AGREES[model] = _agrees(model)
    return _AGREES[model]


def _agrees(model: TransformerBridge) -> bool:
    """One short forward both ways (catches weights the bridge processed or an attention this module misreads)."""
    tokens = torch.arange(min(9, model.cfg.n_ctx), device=model.cfg.device)[None] % model.cfg.d_vocab
    with torch.no_grad():
        bridge = model(tokens)[0, -1]
        mine = forward(model, tokens, torch.tensor([tokens.shape[1] - 1]))[0]
    return bool(torch.allclose(bridge, mine, rtol=1e-5, atol=1e-5))


def _by_site(model: TransformerBridge, hooks: Sequence[Hook]) -> dict[tuple[int, Site], list[tuple[str, Callable]]]:
    sites, out = _fired_sites(model), {}
    for name, fn in hooks:
        out.setdefault(sites[name], []).append((name, fn))
    return out


def _fire(hooks: dict, layer: int, site: Site, act: Tensor) -> Tensor:
    here = hooks.get((layer, site), ())
    alone = len(here) == 1 and not torch.is_grad_enabled()  # another hook at the site may have kept `act`
    for name, fn in here:
        out = fn(act, _HookPoint(name, alone))
        act = act if out is None else out
    return act


def position_embeddings(model: TransformerBridge, hidden: Tensor, width: int) -> dict:
    """The keyword arguments HF gives the first block for an unmasked, right-padded batch of `width` positions
    (what `engine.reference_run` records from the bridge): position ids and, on Qwen2, the rotary tables."""
    position_ids = torch.arange(width, device=hidden.device)[None]
    if type(model.original_model).__name__ == "Qwen2ForCausalLM":
        rotary = kernels.original(model.rotary_emb)
        return {"position_embeddings": rotary(hidden, position_ids), "position_ids": position_ids}
    return {"encoder_attention_mask": None, "position_ids": position_ids}


def blocks(
    model: TransformerBridge, hidden: Float[Tensor, "batch pos d_model"], layer: int, block_kwargs: dict,
    hooks: Sequence[Hook] = (), record: dict[int, tuple[Tensor, Tensor]] | None = None,
    resid_pre: list | None = None, *, answer: Int[Tensor, " batch"], z_record: dict | None = None,
) -> Float[Tensor, "batch d_model"]:
    """Blocks `layer`.. on `hidden` (every position of the sequence; rows that resume after a prefix go through
    `entering_blocks`), returning the last block's output at each row's `answer` position; `record`: filled with each
    layer's keys/values (batch, kv_head, pos, d_head); `resid_pre`: appended each block's input (after its hooks);
    `z_record`: each layer's `z` as its hooks receive it and as they return it (left empty when a hook acts anywhere
    but at `z`: a block's output would then not be what rows joining at its `z` may reuse)."""
    by_site, qwen = _by_site(model, hooks), type(model.original_model).__name__ == "Qwen2ForCausalLM"
    rope, last = block_kwargs.get("position_embeddings"), model.cfg.n_layers - 1
    if any(site is not Site.Z for _, site in by_site):  # rows join at z only where nothing else was changed
        z_record = None
    for i in range(layer, model.cfg.n_layers):
        hidden = _fire(by_site, i, Site.RESID_PRE, hidden)
        if resid_pre is not None:
            resid_pre.append(hidden)
        hidden = _block(model.blocks[i], i, hidden, model.cfg.d_head, rope if qwen else None, by_site, None, record,
                        answer=answer if i == last else None, z_record=z_record)
    return hidden


@dataclass(frozen=True)
class EnteringAtZ:
    """Rows that join block i at its attention's `z` (nothing they change acts before it): the block's input `x`,
    `z` as its hooks receive it (`z_in`) and as the run they come from used it (`z_used`), and that run's output of
    block i (`out`, None at the last block). Positions whose `z` the hooks leave as the run used it keep `out`."""

    x: Tensor
    z_in: Tensor
    z_used: Tensor
    out: Tensor | None


def entering_blocks(
    model: TransformerBridge, entering: dict[int, Float[Tensor, "rows pos d_model"]], block_kwargs: dict,
    hooks: Sequence[Hook], prefix: dict[int, tuple[Tensor, Tensor]], filled: bool = False, *,
    answer: Int[Tensor, " batch"], entering_z: dict[int, EnteringAtZ] | None = None,
) -> Float[Tensor, "batch d_model"]:
    """`blocks` for rows that join at different blocks: `entering[i]` are the inputs of the rows that start at block
    i and `entering_z[i]` the rows that join block i at its `z` (`EnteringAtZ`), appended in that order after the rows
    already running (so the rows run in the order they joined, and a hook sees the rows that have joined by then: a
    prefix of them). `prefix[i]`: the keys/values of the positions before them, for the rows whose attention block i
    computes, or (`filled`) of every position through the last computed one, the computed ones to be overwritten in
    place. One call per block for rows of every layer, instead of one per layer. Returns the last block's output at
    each row's `answer` (its index among the computed positions)."""
    by_site, qwen = _by_site(model, hooks), type(model.original_model).__name__ == "Qwen2ForCausalLM"
    rope, hidden, last = block_kwargs.get("position_embeddings") if qwen else None, None, model.cfg.n_layers - 1
    entering_z = entering_z or {}
    for i in range(min([*entering, *entering_z]), model.cfg.n_layers):
        block, here = model.blocks[i], answer if i == last else None
        if i in entering:
            hidden = entering[i] if hidden is None else torch.cat([hidden, entering[i]])
        if hidden is not None:
            hidden = _fire(by_site, i, Site.RESID_PRE, hidden)
            tables = rope if rope is None or rope[0].shape[0] == 1 else tuple(t[: len(hidden)] for t in rope)
        if i not in entering_z:
            hidden = _block(block, i, hidden, model.cfg.d_head, tables, by_site, prefix.get(i), None, filled,
                            answer=here)
            continue
        joining = entering_z[i]
        x, z = joining.x, joining.z_in
        if hidden is not None:  # the running rows' attention, then the joining rows' z after theirs
            running = kernels.attention(block, i, hidden, model.cfg.d_head, tables, prefix.get(i), None, filled)
            z = torch.cat([running, z])
            x = torch.cat([hidden, x])
        hidden = _finish(block, i, x, z, by_site, here, reused=joining)
    return hidden


# what the last block needs beyond its keys/values when only the answer positions are read, and no hook asks for more
_AFTER_Z = (Site.ATTN_OUT, Site.RESID_MID, Site.MLP_OUT, Site.RESID_POST)


def _block(block, i: int, x: Tensor, d_head: int, rope, hooks: dict, k_v, record, filled: bool = False,
           answer: Tensor | None = None, z_record: dict | None = None) -> Tensor:
    """One block on `x` (the last positions); `k_v`: the earlier positions' keys/values, or (`filled`) buffers for
    all positions whose last ones this block's keys/values overwrite (no concatenation). `answer` (the last block):
    return each row's output at its `answer` index only (see `_finish`)."""
    z = kernels.attention(block, i, x, d_head, rope, k_v, record, filled)
    return _finish(block, i, x, z, hooks, answer, z_record=z_record)


def _finish(block, i: int, x: Tensor, z: Tensor, hooks: dict, answer: Tensor | None, z_record: dict | None = None,
            reused: EnteringAtZ | None = None) -> Tensor:
    """Block `i` from its `z` (before its hooks) on: the output projection, the residual and the MLP. `answer` (the
    last block): each row's output there only; nothing else of the last block reaches the answer's logits, so its
    output projection and MLP run at the answer positions only, unless a hook after `z` asks for every position
    (then computed there and handed to the hook as usual). `reused`: the last rows joined at `z`; where their hooks
    leave `z` as the run they come from used it, their output is that run's, so only the positions a hook changed are
    computed."""
    pre = z.clone() if z_record is not None and (i, Site.Z) in hooks else z  # a hook may edit z in place
    z = _fire(hooks, i, Site.Z, z)
    if z_record is not None:
        z_record[i] = (pre, z)
    rows = torch.arange(len(x), device=x.device)
    after = any((i, site) in hooks for site in _AFTER_Z)
    narrow = answer is not None and not after
    if narrow:
        z, x = z[rows, answer][:, None], x[rows, answer][:, None]
    elif reused is not None and reused.out is not None and not after:
        return _finish_changed(block, x, z, reused)
    out = _output(block, x, z, hooks, i)
    return out if answer is None else out[:, 0] if narrow else out[rows, answer]


def _output(block, x: Tensor, z: Tensor, hooks: dict, i: int) -> Tensor:
    attn_out = _fire(hooks, i, Site.ATTN_OUT, kernels.original(block.attn.o)(z.reshape(*z.shape[:2], -1)))
    x = _fire(hooks, i, Site.RESID_MID, x + attn_out)
    mlp_out = _fire(hooks, i, Site.MLP_OUT, kernels.mlp(block.mlp, kernels.norm(block.ln2, x)))
    return _fire(hooks, i, Site.RESID_POST, x + mlp_out)


def _finish_changed(block, x: Tensor, z: Tensor, reused: EnteringAtZ) -> Tensor:
    """`_finish` without hooks after `z`, the last `len(reused.x)` rows taking `reused.out` where `z` is unchanged."""
    running = len(x) - len(reused.x)
    zj, xj = z[running:], x[running:]
    changed = (zj != reused.z_used).flatten(2).any(-1)  # (row, pos)
    if bool(changed.all()):
        return _output(block, x, z, {}, -1)
    out = x.new_empty(x.shape)  # one copy of the reused rows' outputs, the changed positions then overwritten
    if running:
        out[:running] = _output(block, x[:running], z[:running], {}, -1)
    out[running:] = reused.out
    where = changed.nonzero(as_tuple=True)
    if len(where[0]):
        out[running:][where] = _output(block, xj[where][None], zj[where][None], {}, -1)[0]
    return out


def embed(model: TransformerBridge, tokens: Int[Tensor, "batch pos"]) -> Float[Tensor, "batch pos d_model"]:
    hidden = kernels.original(model.embed)(tokens)
    if hasattr(model, "pos_embed"):  # GPT-2's learned positions
        positions = torch.arange(tokens.shape[1], device=tokens.device)
        hidden = hidden + kernels.original(model.pos_embed)(positions)[None]
    return hidden


def unembed(model: TransformerBridge, final: Float[Tensor, "rows d_model"]) -> Float[Tensor, "rows d_vocab"]:
    logits = kernels.original(model.unembed)(kernels.norm(model.ln_final, final))
    return logits.to(torch.promote_types(logits.dtype, torch.float32))  # float32 at least under autocast


def forward(
    model: TransformerBridge, tokens: Int[Tensor, "batch pos"], answer_pos: Int[Tensor, " batch"],
    hooks: Sequence[Hook] = (), record: dict | None = None, resid_pre: list | None = None,
) -> Float[Tensor, "batch d_vocab"]:
    """Answer-position logits of a whole direct forward of `tokens` with `hooks` (see `blocks` for the rest)."""
    tokens = tokens.to(model.cfg.device)
    hidden = embed(model, tokens)
    kwargs = position_embeddings(model, hidden, tokens.shape[1])
    return unembed(model, blocks(model, hidden, 0, kwargs, hooks, record=record, resid_pre=resid_pre,
                                 answer=answer_pos.to(hidden.device)))


def answer_forward(
    model: TransformerBridge, tokens: Int[Tensor, "batch pos"], answer_pos: Int[Tensor, " batch"],
    hooks: Sequence[Hook] = (),
) -> Float[Tensor, "batch d_vocab"]:
    """Answer-position logits with `hooks` fired: a direct forward where `usable`, else the bridge's with the hooks
    attached for the call."""
    if usable(model, hooks):
        return forward(model, tokens, answer_pos, hooks)
    from rcid_tl.interventions.read import answer_forward as bridge_forward  # read imports nothing from here

    with model.hooks(fwd_hooks=list(hooks)):
        return bridge_forward(model, tokens, answer_pos)


def cache(
    model: TransformerBridge, tokens: Int[Tensor, "batch pos"], names: Sequence[str],
    answer_pos: Int[Tensor, " batch"],
) -> tuple[Float[Tensor, "batch d_vocab"], dict[str, Tensor]]:
    """`read.cache_hooks` (answer logits and detached activations at `names`), directly where `usable`."""
    store: dict[str, Tensor] = {}

    def keep(name: str):
        def hook(act: Tensor, hook) -> Tensor:
            store[name] = act.detach()
            return act
        return hook

    hooks = [(name, keep(name)) for name in names]
    if not usable(model, hooks):
        from rcid_tl.interventions.read import cache_hooks  # read imports nothing from here

        return cache_hooks(model, tokens, names, answer_pos)
    with torch.no_grad():
        logits = forward(model, tokens, answer_pos, hooks)
    return logits, {name: store[name] for name in names}
