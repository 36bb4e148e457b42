"""Load any model as a TransformerLens 4 hooked model (`TransformerBridge`), from a local HF directory or a hub name.

The bridge runs the real Hugging Face forward, so numerics equal plain `transformers`. By default weights are left
unprocessed (`no_processing`), which keeps activations identical to the HF model's and lets students train and save;
`process_weights=True` applies HookedTransformer's fold-LN/centering for logit-lens style analyses.
"""

import json
import logging
import socket
from pathlib import Path
from urllib.parse import urlparse

import torch
import transformers
from huggingface_hub import constants
from transformer_lens.model_bridge import TransformerBridge
from transformers import (
    AutoModelForCausalLM, AutoTokenizer, PreTrainedModel, PreTrainedTokenizerBase, PreTrainedTokenizerFast,
)

from safetensors import SafetensorError

from rcid_tl.causalqwen.bridge import attach_causal_hooks, boot_overrides  # also registers the Auto classes
from rcid_tl.causalqwen.modeling import CausalQwenForCausalLM
from rcid_tl.checks import check_model_path
from rcid_tl.errors import InputError
from rcid_tl.hooks.names import HookNamer
from rcid_tl.models.architectures import absent_sites, architecture_name
from rcid_tl.models.embedded import embedded_path
from rcid_tl.progress import stage

log = logging.getLogger(__name__)

# tokenizer_config.json classes that mean "a plain tokenizer.json", whatever the model's architecture
GENERIC_TOKENIZER_CLASSES = frozenset({"TokenizersBackend", "PreTrainedTokenizerFast"})
# a model directory needs one of these to be tokenized (fast tokenizer, BPE vocab, sentencepiece, WordPiece)
TOKENIZER_FILES = ("tokenizer.json", "vocab.json", "tokenizer.model", "vocab.txt")

DTYPES = {"float32": torch.float32, "bfloat16": torch.bfloat16, "float16": torch.float16}


def parse_dtype(name: str) -> torch.dtype:
    if name not in DTYPES:
        raise InputError(f"unknown dtype {name!r}; allowed: {', '.join(DTYPES)}")
    return DTYPES[name]


def resolve_model_path(spec: str) -> Path | None:
    """The local directory `spec` names (an embedded model or a path), or None when it is a hub name."""
    shipped = embedded_path(spec)
    if shipped is not None:
        return shipped
    check_model_path(spec)
    path = Path(spec).expanduser()
    return path if path.is_dir() else None


def load_model(
    spec: str,
    *,
    device: str = "cpu",
    dtype: torch.dtype = torch.float32,
    process_weights: bool = False,
) -> TransformerBridge:
    """Boot `spec` (embedded name, local HF directory, or hub name such as `gpt2`) as a hooked model.

    A damaged local directory (corrupt config, missing tokenizer files, truncated weights, a tokenizer class that is
    not a tokenizer, a config that asks to run its own code) is an InputError naming it; no code from a model
    directory or the hub is ever executed (`trust_remote_code` stays off)."""
    path = resolve_model_path(spec)
    source = str(path) if path is not None else spec
    if path is not None:
        check_model_dir(path, spec)
    # Offline, ask only the local cache: the hub client would otherwise retry for about a minute before failing.
    local = path is not None or not hub_reachable()
    try:
        with stage(f"loading model {spec}"):  # seconds to minutes for hub-sized models: say so before, not after
            tokenizer = load_tokenizer(source, local=local)
            hf_model = AutoModelForCausalLM.from_pretrained(
                source, dtype=dtype, attn_implementation="eager", local_files_only=local, trust_remote_code=False,
            )
    except InputError:
        raise
    except (OSError, ValueError, RuntimeError, KeyError, SafetensorError, json.JSONDecodeError) as err:
        if path is None and local:
            raise InputError(f"model {spec!r} is not an embedded model or a local directory, the Hugging Face hub "
                             f"is unreachable, and it is not in the local cache; give a local model directory or an "
                             f"embedded name (rcid-tl models)") from None
        # the loaders' own words (first line), e.g. "Error while deserializing header" for truncated weights
        first = str(err).strip().splitlines()[0] if str(err).strip() else type(err).__name__
        raise InputError(f"could not load model {spec!r}: {first}") from None
    return wrap_hf_model(hf_model, tokenizer, label=spec, device=device, process_weights=process_weights)


def hub_reachable(timeout_s: float = 3.0) -> bool:
    """Whether the Hugging Face hub answers a TCP connection (False at once in offline mode, `HF_HUB_OFFLINE=1`)."""
    if constants.HF_HUB_OFFLINE:
        return False
    url = urlparse(constants.ENDPOINT)
    try:
        socket.create_connection((url.hostname, url.port or 443), timeout=timeout_s).close()
    except OSError:
        return False
    return True


def check_model_dir(path: Path, spec: str) -> None:
    """A local model directory has a readable config that runs no custom code, weights, and tokenizer files."""
    config_file = path / "config.json"
    if not config_file.is_file():
        raise InputError(f"model path {spec!r} has no config.json; expected a Hugging Face model directory")
    config = _read_json(config_file, spec)
    if not isinstance(config, dict):
        raise InputError(f"model path {spec!r}: config.json is not a JSON object")
    if "auto_map" in config:
        raise InputError(f"model path {spec!r} asks to run custom code from its directory (auto_map in "
                         f"config.json); rcid-tl does not run it")
    if not any(path.glob("*.safetensors")) and not any(path.glob("*.bin")):
        raise InputError(f"model path {spec!r} has no weights (model.safetensors)")
    if not any((path / name).is_file() for name in TOKENIZER_FILES):
        raise InputError(f"model path {spec!r} has no tokenizer files ({', '.join(TOKENIZER_FILES)}); save the "
                         f"tokenizer with the model")
    if (path / "tokenizer_config.json").is_file():
        _read_json(path / "tokenizer_config.json", spec)


def _read_json(file: Path, spec: str) -> object:
    try:
        return json.loads(file.read_text(encoding="utf-8"))
    except (json.JSONDecodeError, UnicodeDecodeError) as err:
        raise InputError(f"model path {spec!r}: {file.name} is not valid JSON ({err})") from None


def load_tokenizer(source: str | Path, *, local: bool = True) -> PreTrainedTokenizerBase:
    """The tokenizer saved with a model, as the class its tokenizer_config.json declares.

    `AutoTokenizer` lets the model type win over that declaration for some architectures (transformers 5 maps
    "qwen2" to its byte-level Qwen2Tokenizer), which silently swaps in a different tokenizer for a student that was
    saved with its teacher's. The declared class must be a tokenizer class of `transformers` (never a model or any
    other importable name).
    """
    config_file = Path(source) / "tokenizer_config.json"
    if local and config_file.is_file() and (Path(source) / "tokenizer.json").is_file():
        declared = json.loads(config_file.read_text()).get("tokenizer_class")
        if declared in GENERIC_TOKENIZER_CLASSES:
            return PreTrainedTokenizerFast.from_pretrained(source)
        if declared is not None:
            return tokenizer_class(declared, source).from_pretrained(source)
    return AutoTokenizer.from_pretrained(source, local_files_only=local, trust_remote_code=False)


def tokenizer_class(declared: object, source: str | Path) -> type[PreTrainedTokenizerBase]:
    """The `transformers` tokenizer class named `declared`, or an InputError (the allow-list is: subclasses of
    PreTrainedTokenizerBase that `transformers` exports)."""
    found = getattr(transformers, declared, None) if isinstance(declared, str) else None
    if not (isinstance(found, type) and issubclass(found, PreTrainedTokenizerBase)):
        raise InputError(f"tokenizer class {declared!r} in {str(Path(source) / 'tokenizer_config.json')!r} is not a "
                         f"tokenizer class of transformers")
    return found


def wrap_hf_model(
    hf_model: PreTrainedModel,
    tokenizer: PreTrainedTokenizerBase,
    *,
    label: str,
    device: str = "cpu",
    process_weights: bool = False,
) -> TransformerBridge:
    """Wrap an instantiated HF causal LM. The bridge replaces its submodules in place (see `save_hf_model`)."""
    hf_model.eval()
    tokenizer = _with_bos_settings(tokenizer)
    bridge = TransformerBridge.boot_transformers(label, hf_model=hf_model, tokenizer=tokenizer, device=device,
                                                 **boot_overrides(hf_model))
    bridge.enable_compatibility_mode(disable_warnings=True, no_processing=not process_weights)
    bridge.set_use_attn_result(False)
    bridge.eval()
    return attach_causal_hooks(bridge)  # CausalQwen's head hook points; other models pass through


def boot_causal_bridge(hf_model: CausalQwenForCausalLM, tokenizer: PreTrainedTokenizerBase,
                       label: str = "causal-qwen", device: str = "cpu") -> TransformerBridge:
    """A compatibility-mode bridge over CausalQwen `hf_model` with the causal-head hooks (the usual wrapping)."""
    return wrap_hf_model(hf_model, tokenizer, label=label, device=device)


def _with_bos_settings(tokenizer: PreTrainedTokenizerBase) -> PreTrainedTokenizerBase:
    # TransformerLens reloads a tokenizer by `name_or_path` unless it already says whether it adds BOS; an in-memory
    # tokenizer has no path to reload from. Our builders add BOS themselves, so mark it explicitly.
    tokenizer.init_kwargs.setdefault("name_or_path", tokenizer.name_or_path or "local")
    tokenizer.init_kwargs.setdefault("add_bos_token", True)
    return tokenizer


def namer(model: TransformerBridge) -> HookNamer:
    """Range-checked hook names for `model`'s shape."""
    return HookNamer(model.cfg.n_layers, model.cfg.n_heads, absent_sites(model), architecture_name(model))


def model_label(model: TransformerBridge) -> str:
    return str(model.cfg.model_name)
