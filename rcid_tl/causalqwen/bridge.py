"""TransformerLens's bridge over CausalQwen: the usual backbone hooks plus named hook points on the causal head.

The bridge runs CausalQwen's own forward, so the head's `HookPoint`s fire inside it; this module boots the bridge
with the Qwen2 adapter (CausalQwen's backbone is Qwen2) and registers those hook points under the names in
`rcid_tl.hooks.names.causal_hook_name`, so `run_with_cache`, `run_with_hooks` and `hooks()` all reach them.
"""

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from torch import nn
from transformer_lens.hook_points import HookPoint
from transformer_lens.model_bridge import TransformerBridge

from rcid_tl.causalqwen.config import InferenceMode, parse_inference_mode
from rcid_tl.causalqwen.modeling import CausalQwenForCausalLM
from rcid_tl.errors import InputError
from rcid_tl.hooks.names import causal_hook_names

BACKBONE_ARCHITECTURE = "Qwen2ForCausalLM"  # the TransformerLens adapter that covers CausalQwen's transformer

# bridge-side group name → the CausalQwen submodule whose hook points it exposes
_HEAD_MODULES = {"abduction": "abduction_network", "action": "action_network", "ovr": "ovr_classifier"}


class CausalHookGroup(nn.Module):
    """One head's hook points, attached to the bridge as `abduction` / `action` / `ovr`.

    The bridge registers a child's `get_hooks()` on assignment and finds it again whenever it rescans its
    components (as `enable_compatibility_mode` does). The HookPoints are shared with the HF module, not copies."""

    def __init__(self, hooks: dict[str, HookPoint]):
        super().__init__()
        for name, hook in hooks.items():
            setattr(self, name, hook)

    def get_hooks(self) -> dict[str, HookPoint]:
        return {name: hook for name, hook in self.named_children() if isinstance(hook, HookPoint)}


def is_causal_qwen(model: Any) -> bool:
    """Whether `model` (an HF model or a bridge over one) is CausalQwen."""
    return isinstance(getattr(model, "original_model", model), CausalQwenForCausalLM)


def boot_overrides(hf_model: nn.Module) -> dict[str, Any]:
    """Extra `boot_transformers` arguments: CausalQwen's architecture name is unknown to TransformerLens, whose
    architecture detection reads `config.architectures`, so name the Qwen2 backbone instead."""
    if not is_causal_qwen(hf_model):
        return {}
    return {"hf_config_overrides": {"architectures": [BACKBONE_ARCHITECTURE]}}


def attach_causal_hooks(bridge: TransformerBridge) -> TransformerBridge:
    """Register the causal head's hook points on `bridge` (a no-op for other models); returns the bridge."""
    if not is_causal_qwen(bridge):
        return bridge
    hf = bridge.original_model
    groups: dict[str, dict[str, HookPoint]] = {}
    for name in causal_hook_names():
        group, hook = name.split(".", 1)
        groups.setdefault(group, {})[hook] = getattr(getattr(hf, _HEAD_MODULES[group]), hook)
    for group, hooks in groups.items():
        setattr(bridge, group, CausalHookGroup(hooks))
    return bridge


@contextmanager
def inference_mode(model: Any, mode: InferenceMode | str) -> Iterator[None]:
    """Within the block, `model` (CausalQwen or a bridge over it) produces `mode`'s logits; restored on exit."""
    if not is_causal_qwen(model):
        raise InputError(f"inference mode {mode!r} needs a CausalQwen model; this is a "
                         f"{type(getattr(model, 'original_model', model)).__name__}")
    config = getattr(model, "original_model", model).config
    before, config.inference_mode = config.inference_mode, parse_inference_mode(mode).value
    try:
        yield
    finally:
        config.inference_mode = before
