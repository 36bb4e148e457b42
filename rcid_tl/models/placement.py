"""A model too large for one device, spread over this machine's GPUs with Hugging Face's `device_map` (Accelerate
places whole blocks; the bridge then runs the dispatched model as it is and reads its device from the map).

TransformerBridge 4.3 takes such a pre-dispatched model (`boot_transformers(hf_model=...)`); it refuses maps that
mix CPU/disk offload with GPUs and maps with `meta` targets, and activations it caches stay on each block's own
device. Only unprocessed weights are supported with an offloaded map, which is rcid-tl's default."""

import importlib.util
import json

import torch
from safetensors import SafetensorError
from transformer_lens.model_bridge import TransformerBridge
from transformers import AutoModelForCausalLM

from rcid_tl.errors import InputError
from rcid_tl.models.loading import check_model_dir, hub_reachable, load_tokenizer, resolve_model_path, wrap_hf_model

DEVICE_MAPS = ("auto", "balanced", "balanced_low_0", "sequential")  # Accelerate's placement strategies


def check_device_map(device_map: str) -> str:
    """A strategy Accelerate knows, with Accelerate installed (it does the placement)."""
    if device_map not in DEVICE_MAPS:
        raise InputError(f"unknown device map {device_map!r}; allowed: {', '.join(DEVICE_MAPS)}")
    if importlib.util.find_spec("accelerate") is None:
        raise InputError("a device map needs the accelerate package (pip install accelerate)")
    return device_map


def load_dispatched(spec: str, device_map: str, dtype: torch.dtype = torch.float32) -> TransformerBridge:
    """`spec` (embedded name, local HF directory or hub name) loaded with `device_map` and booted as a bridge.
    With no GPU, "auto" places every block on the CPU. The bridge's refusals (see the module docstring) become
    one-line InputErrors."""
    check_device_map(device_map)
    path = resolve_model_path(spec)
    if path is not None:
        check_model_dir(path, spec)
    source, local = (str(path), True) if path is not None else (spec, not hub_reachable())
    try:
        tokenizer = load_tokenizer(source, local=local)
        hf_model = AutoModelForCausalLM.from_pretrained(source, dtype=dtype, attn_implementation="eager",
                                                        device_map=device_map, local_files_only=local,
                                                        trust_remote_code=False)
    except (OSError, ValueError, RuntimeError, KeyError, SafetensorError, json.JSONDecodeError) as err:
        first = str(err).strip().splitlines()[0] if str(err).strip() else type(err).__name__
        raise InputError(f"could not load model {spec!r} with device map {device_map!r}: {first}") from None
    try:
        # the bridge reads the devices from the map; this only names where the embeddings landed
        first_device = str(next(hf_model.parameters()).device)
        return wrap_hf_model(hf_model, tokenizer, label=spec, device=first_device)
    except ValueError as err:  # the bridge's refusals of a placement, e.g. CPU offload mixed with GPUs
        first = str(err).strip().splitlines()[0]
        raise InputError(f"the bridge cannot run {spec!r} as placed by device map {device_map!r}: {first}; "
                         f"use a map that keeps every block on a GPU, or load it on one --device") from None
