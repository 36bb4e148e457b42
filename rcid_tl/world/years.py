"""Greater-Than year spans: "The war lasted from the year 1732 to the year 1756.", end year later, same century.

Years tokenize as a leading-space century " 17" plus a two-digit token "32"; prompts stop right after the final
century so the next token is the two-digit end year.
"""

import random
from dataclasses import dataclass

from rcid_tl.world.lexicon import EVENT_NOUNS, NAMES, PLACES
from rcid_tl.world.splits import Split

CENTURIES: tuple[int, ...] = tuple(range(11, 20))  # years 1100..1999

GT_TRAIN_FORMATS: tuple[str, ...] = (
    "The {noun} lasted from the year {a} to the year {b}.",
    "The {noun} went on from the year {a} until the year {b}.",
    "The {noun} lasted from {a} to {b}.",
)
GT_HELD_OUT_FORMATS: tuple[str, ...] = ("The {noun} began in the year {a} and ended in the year {b}.",)

# Years in contexts with no order constraint, so year tokens are not only ever "the later one".
_YEAR_MENTIONS: tuple[str, ...] = (
    "{name} was born in the year {a}.",
    "The {place} was built in the year {a}.",
    "In the year {a} the {noun} began.",
    "The {noun} ended in the year {a}.",
)


@dataclass(frozen=True)
class YearSpanPrompt:
    """A Greater-Than prompt: `text` ends with the end year's century; the answer is a two-digit token > `start_yy`."""

    text: str
    noun: str
    century: int
    start_yy: int
    template: str


def gt_formats(split: Split) -> tuple[str, ...]:
    """Span formats that `split` draws from."""
    return GT_HELD_OUT_FORMATS if split is Split.OOD else GT_TRAIN_FORMATS


def year_span_prompt(template: str, noun: str, century: int, start_yy: int) -> YearSpanPrompt:
    """Cut `template` right after the end year's century ("... to the year 17")."""
    head = template[: template.index("{b}")]
    text = head.format(noun=noun, a=f"{century}{start_yy:02d}") + str(century)
    return YearSpanPrompt(text=text, noun=noun, century=century, start_yy=start_yy, template=template)


def sample_span_end(rng: random.Random, start_yy: int) -> int:
    """End year's last two digits: usually a short span (sharp cutoff), sometimes anywhere later in the century."""
    if rng.random() < 0.6:
        return rng.randint(start_yy + 1, min(99, start_yy + 15))
    return rng.randint(start_yy + 1, 99)


def year_span_sentence(rng: random.Random, template: str) -> str:
    """One complete span sentence with start < end in the same century."""
    century, start = rng.choice(CENTURIES), rng.randint(1, 98)
    end = sample_span_end(rng, start)
    return template.format(noun=rng.choice(EVENT_NOUNS), a=f"{century}{start:02d}", b=f"{century}{end:02d}")


def year_document(rng: random.Random, split: Split) -> str:
    """One or two spans, sometimes with an unordered year mention."""
    parts = [year_span_sentence(rng, rng.choice(gt_formats(split))) for _ in range(rng.randint(1, 2))]
    if rng.random() < 0.3:
        mention = rng.choice(_YEAR_MENTIONS).format(
            name=rng.choice(NAMES), place=rng.choice(PLACES), noun=rng.choice(EVENT_NOUNS),
            a=f"{rng.choice(CENTURIES)}{rng.randint(0, 99):02d}",
        )
        parts.insert(rng.randint(0, len(parts)), mention)
    return " ".join(parts)


def year_mention_templates() -> tuple[str, ...]:
    """The unordered year-mention sentence forms (for building the vocabulary)."""
    return _YEAR_MENTIONS
