"""An independent reference for patching and head ablation: plain Hugging Face forwards with hand-written
`register_forward_hook`/`register_forward_pre_hook` hooks on GPT-2 and Llama blocks. No TransformerLens, no rcid_tl.

Sites, in HF terms: resid_pre = a block's input, resid_post = its output, resid_mid = block input + attention
output (the residual stream between attention and MLP), z = the input of the attention output projection, split
into heads.
"""

from collections.abc import Iterator
from contextlib import contextmanager

import torch
from torch import Tensor, nn
from transformers import PreTrainedModel


def blocks(hf: PreTrainedModel) -> nn.ModuleList:
    return hf.transformer.h if hasattr(hf, "transformer") else hf.model.layers


def attention(block: nn.Module) -> nn.Module:
    return block.attn if hasattr(block, "attn") else block.self_attn


def out_proj(block: nn.Module) -> nn.Module:
    """The attention output projection, whose input is the heads' z concatenated: (batch, pos, head·d_head)."""
    attn = attention(block)
    return attn.c_proj if hasattr(attn, "c_proj") else attn.o_proj


def head_dim(hf: PreTrainedModel) -> int:
    cfg = hf.config
    return getattr(cfg, "head_dim", None) or cfg.hidden_size // cfg.num_attention_heads


@contextmanager
def hooked(handles: list) -> Iterator[None]:
    try:
        yield
    finally:
        for handle in handles:
            handle.remove()


def _first(args: tuple, kwargs: dict) -> Tensor:
    return args[0] if args else kwargs["hidden_states"]


@torch.no_grad()
def record(hf: PreTrainedModel, tokens: Tensor, site: str, layer: int) -> tuple[Tensor, Tensor]:
    """(logits, activation of `site` at `layer`); z comes back as (batch, pos, head, d_head)."""
    block, seen = blocks(hf)[layer], {}

    def block_in(module, args, kwargs):
        seen["pre"] = _first(args, kwargs).clone()

    def block_out(module, args, output):
        seen["post"] = output.clone()

    def attn_out(module, args, output):
        seen["attn"] = output[0].clone()

    def proj_in(module, args):
        seen["z"] = args[0].clone()

    handles = [
        block.register_forward_pre_hook(block_in, with_kwargs=True), block.register_forward_hook(block_out),
        attention(block).register_forward_hook(attn_out), out_proj(block).register_forward_pre_hook(proj_in),
    ]
    with hooked(handles):
        logits = hf(tokens).logits
    acts = {
        "resid_pre": seen["pre"], "resid_post": seen["post"], "resid_mid": seen["pre"] + seen["attn"],
        "z": seen["z"].unflatten(-1, (-1, head_dim(hf))),
    }
    return logits, acts[site]


@torch.no_grad()
def patched_logits(
    hf: PreTrainedModel, tokens: Tensor, site: str, layer: int, pos: Tensor, value: Tensor, head: int | None = None
) -> Tensor:
    """Logits of `tokens` with row r's activation at (layer, pos[r][, head]) set to value[r]."""
    block, rows, seen = blocks(hf)[layer], torch.arange(len(tokens)), {}
    dh = head_dim(hf)

    def resid_pre(module, args, kwargs):
        x = _first(args, kwargs).clone()
        x[rows, pos] = value
        return ((x, *args[1:]), kwargs) if args else (args, {**kwargs, "hidden_states": x})

    def resid_post(module, args, output):
        out = output.clone()
        out[rows, pos] = value
        return out

    def keep_pre(module, args, kwargs):
        seen["pre"] = _first(args, kwargs)

    def resid_mid(module, args, output):
        # The block adds the attention output to its input; choose the attention output so that the sum is `value`.
        attn = output[0].clone()
        attn[rows, pos] = value - seen["pre"][rows, pos]
        return (attn, *output[1:])

    def z(module, args):
        x = args[0].clone()
        x[rows, pos, head * dh : (head + 1) * dh] = value
        return (x,)

    if site == "resid_pre":
        handles = [block.register_forward_pre_hook(resid_pre, with_kwargs=True)]
    elif site == "resid_post":
        handles = [block.register_forward_hook(resid_post)]
    elif site == "resid_mid":
        handles = [block.register_forward_pre_hook(keep_pre, with_kwargs=True),
                   attention(block).register_forward_hook(resid_mid)]
    elif site == "z":
        handles = [out_proj(block).register_forward_pre_hook(z)]
    else:
        raise ValueError(site)
    with hooked(handles):
        return hf(tokens).logits


def zero_head_weights(hf: PreTrainedModel, layer: int, head: int) -> None:
    """Knock out a head for good by zeroing its input slice of the attention output projection (in place)."""
    proj, dh = out_proj(blocks(hf)[layer]), head_dim(hf)
    with torch.no_grad():
        if isinstance(proj, nn.Linear):  # Llama: weight is (d_model, head·d_head)
            proj.weight[:, head * dh : (head + 1) * dh] = 0
        else:  # GPT-2's Conv1D: weight is (head·d_head, d_model)
            proj.weight[head * dh : (head + 1) * dh] = 0


@torch.no_grad()
def replaced_head_logits(
    hf: PreTrainedModel, tokens: Tensor, layer: int, head: int, value: Tensor, pos: Tensor | None = None
) -> Tensor:
    """Logits with head (layer, head)'s z replaced by `value` (batch, pos, d_head), at every position or only at
    each row's `pos`."""
    dh, rows = head_dim(hf), torch.arange(len(tokens))

    def hook(module, args):
        x = args[0].clone()
        if pos is None:
            x[..., head * dh : (head + 1) * dh] = value
        else:
            x[rows, pos, head * dh : (head + 1) * dh] = value[rows, pos]
        return (x,)

    with hooked([out_proj(blocks(hf)[layer]).register_forward_pre_hook(hook)]):
        return hf(tokens).logits


def logit_diff(logits: Tensor, answer_pos: Tensor, correct: Tensor, wrong: Tensor) -> Tensor:
    """logit(correct) − logit(wrong) at each row's answer position, written out by hand."""
    rows = torch.arange(len(logits))
    at = logits[rows, answer_pos]
    return at[rows, correct] - at[rows, wrong]
