"""Save a hooked model back to a standard Hugging Face directory that plain `transformers` loads.

Booting a bridge replaces the HF model's submodules in place, so its state-dict keys gain `._original_component`
and `save_pretrained` refuses to run. We strip those keys and load them into a fresh model of the same config.
"""

from pathlib import Path

import torch

from transformer_lens.model_bridge import TransformerBridge
from transformers import AutoModelForCausalLM

from rcid_tl.artifacts import atomic_dir
from rcid_tl.portable import write_tokenizer

_BRIDGE_INFIX = "._original_component"


def hf_state_dict(model: TransformerBridge) -> dict:
    """The wrapped HF model's state dict under its original (pre-bridge) key names, holding the weights the bridge
    runs (see `_fuse_split_qkv`)."""
    state = model.original_model.state_dict()
    state = {key.replace(_BRIDGE_INFIX, ""): value for key, value in state.items()}
    return _fuse_split_qkv(state, model.original_model.config)


def _fuse_split_qkv(state: dict, config) -> dict:
    """GPT-NeoX's fused `query_key_value` rebuilt from the q, k and v copies the bridge splits it into and runs (its
    rows interleave heads, (head, q|k|v, d_head), so the copies cannot be views): after training, the fused tensor
    still holds the weights from boot time. The copies are dropped (they have no HF name)."""
    if getattr(config, "model_type", None) != "gpt_neox":
        return state
    heads = config.num_attention_heads
    for key in [k for k in state if ".attention.query_key_value." in k]:
        prefix, kind = key.split(".query_key_value.")
        parts = [state.get(f"{prefix}.{name}.{kind}") for name in "qkv"]
        if any(part is None for part in parts):
            continue
        fused = torch.stack([part.reshape(heads, -1, *part.shape[1:]) for part in parts], 1).reshape(state[key].shape)
        stale = state[key].untyped_storage().data_ptr()
        copies = {part.untyped_storage().data_ptr() for part in parts}
        for name in list(state):
            pointer = state[name].untyped_storage().data_ptr()
            if pointer == stale:  # the fused weight and its alias names
                state[name] = fused
            elif pointer in copies:
                del state[name]
    return state


def save_hf_model(model: TransformerBridge, out_dir: str | Path) -> Path:
    """Write `model` as config + safetensors + tokenizer into `out_dir`, atomically (temp dir, then rename), so that
    plain `AutoTokenizer`/`AutoModelForCausalLM.from_pretrained(out_dir)` give the same ids and logits as
    `load_model` (rcid_tl.portable)."""
    out_dir = Path(out_dir)
    config = model.original_model.config
    fresh = AutoModelForCausalLM.from_config(config)
    state = hf_state_dict(model)
    missing, unexpected = fresh.load_state_dict(state, strict=False)
    _check_nothing_lost(state, missing, unexpected)
    with atomic_dir(out_dir) as tmp:
        fresh.save_pretrained(tmp)
        write_tokenizer(model.tokenizer, tmp)
    return out_dir


def _check_nothing_lost(state: dict, missing: list[str], unexpected: list[str]) -> None:
    # The bridge adds alias modules (split q/k/v views of GPT-2's fused c_attn, `mlp.in`, `ln1`, ...) that share
    # storage with real HF weights, and a zero `lm_head.bias`. Those may be dropped; anything else may not.
    if [k for k in missing if "lm_head" not in k]:
        raise RuntimeError(f"cannot save: the HF model lacks weights for {missing}")
    kept = {state[k].untyped_storage().data_ptr() for k in state if k not in unexpected}
    lost = [k for k in unexpected if state[k].untyped_storage().data_ptr() not in kept and bool(state[k].any())]
    if lost:
        raise RuntimeError(f"cannot save: bridge weights with no HF counterpart would be lost: {lost}")
