"""Turning a filled template into token ids with named positions, validated against the model's tokenizer."""

from collections.abc import Sequence
from dataclasses import dataclass

from transformers import PreTrainedTokenizerBase

from rcid_tl.errors import InputError


@dataclass(frozen=True)
class Span:
    """A filled slot: its name, its text (with its leading space) and its character offset in the full text."""

    name: str
    text: str
    start: int


def single_token(tokenizer: PreTrainedTokenizerBase, text: str, what: str) -> int:
    """The one token id of `text`, or an InputError naming it."""
    return single_tokens(tokenizer, [text], what)[0]


def single_tokens(tokenizer: PreTrainedTokenizerBase, texts: Sequence[str], what: str) -> list[int]:
    """`single_token` of each text, in one tokenizer call."""
    out = []
    for text, ids in zip(texts, encode_texts(tokenizer, list(texts))):
        if len(ids) != 1:
            raise InputError(f"{what} {text!r} is {len(ids)} tokens for this tokenizer; it must be exactly one token")
        out.append(ids[0])
    return out


def fill(template: str, values: dict[str, str]) -> tuple[str, list[Span]]:
    """Replace each `[KEY]` (left to right) by `values[KEY]`, keeping the space before the slot; spans record where
    each named slot (`KEY`, or `KEY#n` for its n-th repeat) landed."""
    text, spans, seen, i = "", [], {}, 0
    while (open_at := template.find("[", i)) >= 0:
        close_at = template.index("]", open_at)
        text += template[i:open_at]
        key = template[open_at + 1 : close_at]
        n = seen.get(key, 0)
        seen[key] = n + 1
        start = len(text) - 1 if text.endswith(" ") else len(text)  # the slot's token includes its space
        text += values[key]
        spans.append(Span(key if n == 0 else f"{key}#{n}", text[start:], start))
        i = close_at + 1
    return text + template[i:], spans


def tokenize_many(
    tokenizer: PreTrainedTokenizerBase, filled: Sequence[tuple[str, Sequence[Span]]], prepend_bos: bool
) -> list[tuple[tuple[int, ...], dict[str, int]]]:
    """Per (text, spans) in `filled`: the token ids of the text (BOS first when asked) and the token index of each
    span, which must be one token that tokenises the same inside the sentence as alone. Every text and every slot's
    two prefixes go to the tokenizer in one call (its per-call work, not the encoding, dominates on short prompts)."""
    bos = tokenizer.bos_token_id  # one lookup: the tokenizer's attribute access converts the token each time
    if prepend_bos and bos is None:
        raise InputError("this tokenizer has no BOS token; build the task without BOS")
    texts = [t for text, spans in filled
             for t in (text, *(p for span in spans for p in (text[: span.start], text[: span.start + len(span.text)])))]
    encoded, out, at = encode_texts(tokenizer, texts), [], 0
    for text, spans in filled:
        ids, prefixes, at = encoded[at], encoded[at + 1 : at + 1 + 2 * len(spans)], at + 1 + 2 * len(spans)
        offset = 0
        if prepend_bos:
            ids, offset = [bos, *ids], 1
        positions = {}
        for k, span in enumerate(spans):
            # Encoding the text up to the slot and up to its end (rather than the slot alone) keeps this right for
            # tokenizers that normalise the start of a text, such as one that gives every text a leading space.
            prefix, through = (prefixes[2 * k] if span.start else []), prefixes[2 * k + 1]
            pos = len(prefix) + offset
            if len(through) != len(prefix) + 1 or through[:-1] != prefix or ids[offset : pos + 1] != through:
                raise InputError(f"the word {span.text!r} in slot [{span.name.split('#')[0]}] is not one token "
                                 f"inside {text!r} for this tokenizer; it must be exactly one token")
            positions[span.name] = pos
        out.append((tuple(ids), positions))
    return out


def encode_texts(tokenizer: PreTrainedTokenizerBase, texts: list[str]) -> list[list[int]]:
    """Token ids of each text without special tokens, each distinct text encoded once (prompts share prefixes); a
    fast tokenizer's own encoder is called directly (the Python wrapper's per-text conversion cost more than the
    encoding)."""
    unique = list(dict.fromkeys(texts))
    if getattr(tokenizer, "is_fast", False):
        ids = [e.ids for e in tokenizer.backend_tokenizer.encode_batch(unique, add_special_tokens=False)]
    else:
        ids = tokenizer(unique, add_special_tokens=False)["input_ids"]
    by_text = dict(zip(unique, ids))
    return [by_text[text] for text in texts]


def pad_id(tokenizer: PreTrainedTokenizerBase) -> int:
    """A token id for right padding (never read: padding sits after every answer position)."""
    for candidate in (tokenizer.pad_token_id, tokenizer.eos_token_id, tokenizer.bos_token_id):
        if candidate is not None:
            return candidate
    return 0
