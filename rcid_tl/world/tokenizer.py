"""The world's word-level tokenizer: GPT-2-like leading-space word tokens, years split as " 17" + "32".

A normalizer gives every word one leading-space form (start of text and start of line included), so " Mary" and
"hot" at the start of a few-shot line are the same tokens as mid-sentence. Saved as a standard Hugging Face directory.
"""

import re
from pathlib import Path

from tokenizers import Regex, Tokenizer, decoders, models, normalizers, pre_tokenizers
from transformers import PreTrainedTokenizerFast

from rcid_tl.world import fewshot, induction, ioi, lexicon, narrative, years
from rcid_tl.world.relations import FACT_TEMPLATES, relation_words

EOS_TOKEN = "<|endoftext|>"
UNK_TOKEN = "<|unk|>"
# Words, two-digit numbers, single digits, one punctuation mark, each with an optional leading space.
PRE_TOKENIZER_PATTERN = r"\n| ?[A-Za-z]+| ?\d\d| ?\d| ?[^\sA-Za-z\d]|\s"
# The same without the two-digit branch: every number is split into digits (" 23" -> " 2" + "3"), so a teacher with
# this tokenizer segments numbers differently from the word-level students and the character alignment has work to do.
DIGIT_PRE_TOKENIZER_PATTERN = r"\n| ?[A-Za-z]+| ?\d| ?[^\sA-Za-z\d]|\s"
PUNCTUATION: tuple[str, ...] = tuple(".,:;!?'\"-()")
TWO_DIGITS: tuple[str, ...] = tuple(f"{i:02d}" for i in range(100))
# Tokens of the chain-of-thought arithmetic task (rcid_tl.world.cot) that the world lacks; appended, never inserted.
COT_TOKENS: tuple[str, ...] = (" Q", " A", " +", " =", " answer", " more", " away", " How", " many", " does", " have",
                               " now")

_TEMPLATE_GROUPS: tuple[tuple[str, ...], ...] = (
    ioi.IOI_TRAIN_TEMPLATES, ioi.IOI_HELD_OUT_TEMPLATES,
    years.GT_TRAIN_FORMATS, years.GT_HELD_OUT_FORMATS, years.year_mention_templates(),
    fewshot.COUNTING_TEMPLATES, narrative.STORY_OPENINGS, narrative.STORY_SENTENCES, narrative.FILLER_SENTENCES,
    induction.INDUCTION_FRAMES, *FACT_TEMPLATES.values(),
)
_WORD_LISTS: tuple[tuple[str, ...], ...] = (
    lexicon.NAMES, lexicon.PLACES, lexicon.OBJECTS, lexicon.EVENT_NOUNS,
    lexicon.FILLER_VERBS, lexicon.FILLER_WEATHER, lexicon.FILLER_TIMES,
)


def world_words() -> tuple[str, ...]:
    """Every word the generator can emit: list entries, relation words and the fixed words of every template."""
    words: dict[str, None] = {}
    for group in _WORD_LISTS:
        words.update(dict.fromkeys(group))
    words.update(dict.fromkeys(relation_words()))
    for group in _TEMPLATE_GROUPS:
        for template in group:
            words.update(dict.fromkeys(re.findall(r"[A-Za-z]+", re.sub(r"\{[^}]*\}", " ", template))))
    return tuple(sorted(words))


def world_vocab() -> dict[str, int]:
    """Token -> id: specials, newline/space/punctuation, digits, then " word" for every world word (sorted)."""
    tokens = [EOS_TOKEN, UNK_TOKEN, "\n", " "]
    tokens += [p for mark in PUNCTUATION for p in (mark, " " + mark)]
    tokens += [d for i in range(10) for d in (str(i), f" {i}")]
    tokens += list(TWO_DIGITS) + [" " + d for d in TWO_DIGITS]
    tokens += [" " + w for w in world_words()]
    if len(set(tokens)) != len(tokens):
        raise AssertionError("duplicate tokens in the world vocabulary")
    return {t: i for i, t in enumerate(tokens)}


def cot_vocab() -> dict[str, int]:
    """The world vocabulary plus the chain-of-thought task's tokens appended after it: every world id is unchanged."""
    vocab = world_vocab()
    added = [t for t in COT_TOKENS if t not in vocab]
    return vocab | {t: len(vocab) + i for i, t in enumerate(added)}


def build_tokenizer() -> PreTrainedTokenizerFast:
    """The world tokenizer as a `transformers` fast tokenizer (bos = eos = pad = <|endoftext|>)."""
    return _fast_tokenizer(world_vocab())


def build_cot_tokenizer() -> PreTrainedTokenizerFast:
    """The world tokenizer over `cot_vocab()` (same normalizer, pre-tokenizer and specials): the CoT teachers'."""
    return _fast_tokenizer(cot_vocab())


def build_cot_digit_tokenizer() -> PreTrainedTokenizerFast:
    """`build_cot_tokenizer()`'s vocabulary and ids, with numbers split into single digits (" 23" -> " 2", "3"):
    the tokenizer of the digit teacher (world-gpt2-cot-digits). The two-digit tokens stay in the vocabulary, unused."""
    return _fast_tokenizer(cot_vocab(), DIGIT_PRE_TOKENIZER_PATTERN)


def _fast_tokenizer(vocab: dict[str, int], pattern: str = PRE_TOKENIZER_PATTERN) -> PreTrainedTokenizerFast:
    tok = Tokenizer(models.WordLevel(vocab=vocab, unk_token=UNK_TOKEN))
    tok.normalizer = normalizers.Sequence([
        normalizers.Replace(Regex(r"\A ?"), " "),  # text start gets exactly one leading space
        normalizers.Replace(Regex(r"\n ?"), "\n "),  # so does every line start
    ])
    tok.pre_tokenizer = pre_tokenizers.Split(Regex(pattern), behavior="isolated")
    tok.decoder = decoders.Sequence([decoders.Fuse(), decoders.Replace("\n ", "\n")])
    tok.add_special_tokens([EOS_TOKEN, UNK_TOKEN])
    return PreTrainedTokenizerFast(
        tokenizer_object=tok, bos_token=EOS_TOKEN, eos_token=EOS_TOKEN, pad_token=EOS_TOKEN, unk_token=UNK_TOKEN,
        model_max_length=1024, clean_up_tokenization_spaces=False,
    )


def load_tokenizer(directory: str | Path) -> PreTrainedTokenizerFast:
    """Load a saved world tokenizer from any directory, model directories of every architecture included.

    `AutoTokenizer` works for a tokenizer-only or GPT-2 directory, but transformers 5 maps model_type "qwen2" to its
    own byte-level Qwen2Tokenizer whatever tokenizer_config.json says, which silently drops every word.
    """
    return PreTrainedTokenizerFast.from_pretrained(directory)


def save_tokenizer(directory: str | Path) -> Path:
    """Write tokenizer.json and tokenizer_config.json so `AutoTokenizer.from_pretrained(directory)` works offline."""
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    build_tokenizer().save_pretrained(directory)
    return directory
