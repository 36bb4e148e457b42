"""Finding hooks a test left attached to a hooked model: TransformerLens hook points and raw torch module hooks.

TransformerBridge and transformers wire some torch hooks of their own lazily (the bridge's capture hooks on the wrapped
HF blocks, transformers' output-capturing hooks), installed by the first forward or `run_with_cache` and idempotent
after that. Those are infrastructure, not leaks; every other torch hook is counted, and any beyond the count at boot
is a leak.
"""

import functools

import torch
from torch import nn
from transformer_lens.model_bridge import TransformerBridge

HookCounts = dict[str, int]
_KINDS = ("_forward_hooks", "_forward_pre_hooks", "_backward_hooks", "_backward_pre_hooks")


def _is_infrastructure(fn) -> bool:
    while isinstance(fn, functools.partial):
        fn = fn.func
    return (getattr(fn, "__module__", None) or "").startswith(("transformer_lens.", "transformers."))


def torch_hook_counts(model: nn.Module) -> HookCounts:
    """Per module: how many torch hooks of any kind it holds that TransformerLens/transformers did not install."""
    return {
        name: sum(not _is_infrastructure(fn) for kind in _KINDS for fn in getattr(m, kind).values())
        for name, m in model.named_modules()
    }


def hook_leaks(bridge: TransformerBridge, baseline: HookCounts) -> list[str]:
    """Descriptions of every hook on `bridge` beyond `baseline` (its counts at boot); empty when clean."""
    leaks = [f"{name}: {len(hp.fwd_hooks)} fwd / {len(hp.bwd_hooks)} bwd TransformerLens hooks"
             for name, hp in bridge.hook_dict.items() if hp.fwd_hooks or hp.bwd_hooks]
    for name, count in torch_hook_counts(bridge).items():
        if count > baseline.get(name, 0):
            leaks.append(f"module {name or '<root>'}: {count} torch hooks (had {baseline.get(name, 0)} at boot)")
    return leaks


def global_hook_leaks() -> list[str]:
    """Hooks registered on every module at once (`torch.nn.modules.module.register_module_forward_hook`)."""
    module = torch.nn.modules.module
    found = {"forward": module._global_forward_hooks, "forward-pre": module._global_forward_pre_hooks,
             "backward": module._global_backward_hooks}
    return [f"global torch {kind} hooks: {len(hooks)}" for kind, hooks in found.items() if hooks]
