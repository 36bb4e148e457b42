"""What a bridged model's architecture means for the instruments: which hook sites it has, which attention mask each
layer applies, how its logits come out of the last residual, and whether a patched row can be resumed exactly.

TransformerLens 4.3's bridge runs the Hugging Face forward, so whole forwards are right on every architecture it
bridges. A resumed row (`rcid_tl.interventions.engine`) runs the blocks itself from a layer on and must rebuild what
the HF model would have handed them: a sliding-window mask on Mistral's layers and Gemma 2's local ones, and Gemma 2's
final logit soft-cap. The functions here say what to rebuild; unknown attention kinds are refused in one line.
"""

import math
import weakref

import torch
from jaxtyping import Float
from torch import Tensor
from transformer_lens.model_bridge import TransformerBridge
from transformers import PretrainedConfig

from rcid_tl.errors import InputError
from rcid_tl.hooks.names import Site, hook_name

FULL = "full_attention"
SLIDING = "sliding_attention"
# the attention kinds a resumed row can rebuild: plain causal, and causal within a window of the last W positions
RESUMABLE_KINDS = (FULL, SLIDING)
# sites a block may lack: a parallel block (GPT-NeoX, Phi) adds attention and MLP to the same residual, so there is
# no residual between them
OPTIONAL_SITES = (Site.RESID_MID,)


def hf_config(model: TransformerBridge) -> PretrainedConfig:
    """The HF config the bridge runs (the text part of a multimodal config)."""
    config = model.original_model.config
    return getattr(config, "text_config", None) or config


def architecture_name(model: TransformerBridge) -> str:
    """The HF architecture class name (`MistralForCausalLM`), or the model type when the config names none."""
    config = hf_config(model)
    return (config.architectures or [type(model.original_model).__name__])[0]


def attention_kind(model: TransformerBridge, layer: int) -> str:
    """The attention layer `layer` applies, in HF's `layer_types` words: `full_attention` or `sliding_attention`
    (others exist: chunked, linear). A config without `layer_types` and with a `sliding_window` (Mistral) slides on
    every layer."""
    config = hf_config(model)
    kinds = getattr(config, "layer_types", None)
    if kinds is not None:
        return kinds[layer]
    if getattr(config, "attention_chunk_size", None):
        return "chunked_attention"
    return SLIDING if getattr(config, "sliding_window", None) else FULL


def sliding_window(model: TransformerBridge, layer: int) -> int | None:
    """How many positions a query of layer `layer` sees (itself included), or None for full causal attention."""
    return hf_config(model).sliding_window if attention_kind(model, layer) == SLIDING else None


def full_attention_only(model: TransformerBridge) -> bool:
    """Whether every layer attends causally to the whole prefix (what a forward that builds only the causal mask, such
    as `rcid_tl.interventions.direct`, computes exactly)."""
    return all(attention_kind(model, layer) == FULL for layer in range(model.cfg.n_layers))


def resume_refusal(model: TransformerBridge) -> str | None:
    """Why rows of `model` cannot be resumed exactly (one line), or None when they can."""
    kinds = sorted({attention_kind(model, layer) for layer in range(model.cfg.n_layers)} - set(RESUMABLE_KINDS))
    if kinds:
        return (f"{architecture_name(model)} has {', '.join(kinds)} layers, which a resumed row cannot rebuild "
                f"(allowed: {', '.join(RESUMABLE_KINDS)}); patch with whole forwards (engine 'full')")
    return None


def check_resumable(model: TransformerBridge) -> None:
    """An InputError (one line) unless every layer's attention is one a resumed row rebuilds exactly."""
    reason = resume_refusal(model)
    if reason is not None:
        raise InputError(reason)


def resumed_attention_mask(
    model: TransformerBridge, layer: int, start: int, stop: int, *, device: torch.device | str, dtype: torch.dtype,
) -> Float[Tensor, "1 1 query key"] | None:
    """The additive mask of layer `layer` for queries at positions start..stop−1 over keys 0..stop−1 (the cached
    prefix first), as HF builds it for the whole sequence: None for full causal attention (the bridge's own offset
    causal mask is then exact), else causal and within the window: key k is seen from query q iff q − W < k ≤ q
    (transformers' `sliding_window_overlay`). Batches are right-padded and never masked, so one mask serves all
    rows."""
    window = sliding_window(model, layer)
    if window is None:
        return None
    query = torch.arange(start, stop, device=device)[:, None]
    key = torch.arange(stop, device=device)[None, :]
    seen = (key <= query) & (key > query - window)
    mask = torch.zeros(seen.shape, device=device, dtype=dtype).masked_fill(~seen, -math.inf)
    return mask[None, None]


def answer_logits(
    model: TransformerBridge, final: Float[Tensor, "rows pos d_model"]
) -> Float[Tensor, "rows pos d_vocab"]:
    """The model's logits from the last block's output: final norm, unembedding and, where the architecture has one,
    the final logit soft-cap cap·tanh(logits / cap) that Gemma 2's HF forward applies after its LM head."""
    logits = model.unembed(model.ln_final(final))
    cap = getattr(hf_config(model), "final_logit_softcapping", None)
    return logits if cap is None else cap * torch.tanh(logits / cap)


def absent_sites(model: TransformerBridge) -> frozenset[Site]:
    """The sites this model's blocks do not have (`OPTIONAL_SITES` without a hook point); looked up once per model
    (building `hook_dict` walks every module, and `namer` asks on every sweep)."""
    if model not in _ABSENT:
        hooks = model.hook_dict
        _ABSENT[model] = frozenset(site for site in OPTIONAL_SITES if hook_name(site, 0) not in hooks)
    return _ABSENT[model]


_ABSENT: "weakref.WeakKeyDictionary[TransformerBridge, frozenset[Site]]" = weakref.WeakKeyDictionary()
