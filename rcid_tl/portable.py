"""Model directories that plain `transformers` opens the same way rcid-tl does: `AutoTokenizer.from_pretrained(dir)`
gives the tokenizer that was saved (same token ids), whatever the model's architecture."""

import json
import logging
from pathlib import Path

from transformers import AutoTokenizer, PreTrainedTokenizerBase

from rcid_tl.artifacts import write_text

log = logging.getLogger(__name__)

# transformers 5 keeps a list of model types whose checkpoints on the hub declare the wrong tokenizer class (qwen2
# among them); for those, `AutoTokenizer` ignores tokenizer_config.json's `tokenizer_class` and builds the
# architecture's own tokenizer (Qwen2Tokenizer: byte-level BPE, digits one by one) from the vocabulary alone, which
# turns a word-level tokenizer such as the embedded world models' into different ids. An `auto_map` entry for
# AutoTokenizer takes such a directory off that path: without `trust_remote_code` (the default) transformers then
# drops the entry and loads the declared class, reading tokenizer.json as saved. The entry names only a transformers
# class and no code file; `trust_remote_code=True` would look for code and fail, so leave it off (see docs/faults.md).
AUTO_MAP = "auto_map"


def write_tokenizer(tokenizer: PreTrainedTokenizerBase, directory: str | Path) -> None:
    """`tokenizer.save_pretrained(directory)`, then `make_tokenizer_portable(directory)`."""
    tokenizer.save_pretrained(directory)
    make_tokenizer_portable(directory, type(tokenizer))


def make_tokenizer_portable(directory: str | Path, saved: type[PreTrainedTokenizerBase] | None = None) -> bool:
    """Make `AutoTokenizer.from_pretrained(directory)` build `saved` (default: the class tokenizer_config.json
    declares) when it would build another class; True when tokenizer_config.json was changed.

    A directory without config.json is left alone (AutoTokenizer then follows tokenizer_config.json already)."""
    directory = Path(directory)
    config_file = directory / "tokenizer_config.json"
    if not (directory / "config.json").is_file() or not config_file.is_file():
        return False
    config = json.loads(config_file.read_text(encoding="utf-8"))
    declared = config.get("tokenizer_class")
    if not isinstance(declared, str) or AUTO_MAP in config:
        return False
    wanted = saved.__name__ if saved is not None else declared
    if _auto_class(directory) in {wanted, declared}:
        return False
    config[AUTO_MAP] = {"AutoTokenizer": [None, declared]}
    write_text(config_file, json.dumps(config, indent=2, ensure_ascii=False) + "\n")
    now = _auto_class(directory)
    if now not in {wanted, declared}:  # a transformers version that resolves tokenizers another way
        log.warning("AutoTokenizer loads %s from %s instead of the saved %s; load it with %s.from_pretrained",
                    now, directory, wanted, wanted)
    return True


def _auto_class(directory: Path) -> str:
    return type(AutoTokenizer.from_pretrained(directory, local_files_only=True)).__name__
