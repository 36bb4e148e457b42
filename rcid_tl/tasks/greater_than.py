"""Greater-Than (Hanna et al. 2023): "The war lasted from the year 1732 to the year 17" → a year above 32.

Corrupt YY = 01. Metric: probability difference over the 100 two-digit tokens. Years whose " XXYY" does not split
into [" XX", "YY"] are skipped, as are the first and last valid YY of each century (as Hanna et al. do).
"""

import random
from dataclasses import dataclass

from transformers import PreTrainedTokenizerBase

from rcid_tl.errors import InputError
from rcid_tl.tasks import lexicon
from rcid_tl.tasks.base import ContrastiveDataset, Example
from rcid_tl.tasks.tokens import encode_texts, fill, pad_id, single_token, tokenize_many

POSITIONS = ("noun", "yy", "end")


@dataclass(frozen=True)
class GreaterThanConfig:
    n: int = 100
    seed: int = 0
    prepend_bos: bool = True
    nouns: tuple[str, ...] = lexicon.GT_NOUNS
    centuries: tuple[int, ...] = lexicon.GT_CENTURIES

    def __post_init__(self) -> None:
        if self.n < 1:
            raise InputError(f"--n must be ≥ 1, got {self.n}")


def year_token_ids(tokenizer: PreTrainedTokenizerBase) -> tuple[int, ...]:
    """Ids of the two-digit tokens "00".."99" (as they follow a century token)."""
    return tuple(_two_digit_token(tokenizer, f"{y:02d}") for y in range(100))


def _two_digit_token(tokenizer: PreTrainedTokenizerBase, digits: str) -> int:
    # The vocabulary entry itself when there is one: a tokenizer that gives text its leading space (the world
    # tokenizer does) encodes a bare "32" as " 32", which is not the token that follows a century.
    token_id = tokenizer.convert_tokens_to_ids(digits)
    if isinstance(token_id, int) and token_id != tokenizer.unk_token_id and tokenizer.decode([token_id]) == digits:
        return token_id
    return single_token(tokenizer, digits, "two-digit year")


def valid_years(tokenizer: PreTrainedTokenizerBase, centuries: tuple[int, ...]) -> list[tuple[int, int]]:
    """(XX, YY) pairs whose " XXYY" tokenises as [" XX", "YY"], without each century's first and last valid YY."""
    years, year_ids = [], year_token_ids(tokenizer)
    for xx in centuries:
        century = single_token(tokenizer, f" {xx}", "century")
        encoded = encode_texts(tokenizer, [f" {xx}{yy:02d}" for yy in range(99)])  # every year of the century at once
        splits = lambda yy: encoded[yy] == [century, year_ids[yy]]  # noqa: E731
        if splits(1):  # the corrupt year XX01 must split the same way
            years += [(xx, yy) for yy in [yy for yy in range(2, 99) if splits(yy)][1:-1]]
    if not years:
        raise InputError("no year splits into a century token and a two-digit token with this tokenizer")
    return years


def build_greater_than(config: GreaterThanConfig, tokenizer: PreTrainedTokenizerBase) -> ContrastiveDataset:
    """Sample `config.n` Greater-Than examples (noun and year uniform), validated against `tokenizer`."""
    year_ids = year_token_ids(tokenizer)
    years = valid_years(tokenizer, config.centuries)
    rng = random.Random(config.seed)
    drawn = []
    for _ in range(config.n):
        noun, (xx, yy) = rng.choice(config.nouns), rng.choice(years)
        drawn.append((yy, fill(lexicon.GT_TEMPLATE, {"NOUN": noun, "XX": str(xx), "YY": f"{yy:02d}"}),
                      fill(lexicon.GT_TEMPLATE, {"NOUN": noun, "XX": str(xx), "YY": "01"})))
    tokenized = tokenize_many(tokenizer, [text for _, *texts in drawn for text in texts], config.prepend_bos)
    examples = []
    for i, (yy, clean, corrupt) in enumerate(drawn):
        (clean_ids, pos), (corrupt_ids, _) = tokenized[2 * i], tokenized[2 * i + 1]
        end = len(clean_ids) - 1
        examples.append(Example(
            clean_ids=clean_ids, corrupt_ids=corrupt_ids, answer_pos=end,
            # correct/wrong bracket the cutoff: YY+1 vs YY-1 (the pair cutoff sharpness compares)
            correct_id=year_ids[yy + 1], wrong_id=year_ids[yy - 1],
            positions={"noun": pos["NOUN"], "yy": pos["YY"], "end": end}, template=0,
            clean_text=clean[0], corrupt_text=corrupt[0], extra={"yy": yy},
        ))
    return ContrastiveDataset(
        task="greater-than", examples=tuple(examples), position_names=POSITIONS, metric_name="prob_diff",
        config={"task": "greater-than", "n": config.n, "seed": config.seed, "prepend_bos": config.prepend_bos},
        pad_id=pad_id(tokenizer), year_ids=year_ids,
    )
