"""IOI-style transfer sentences: templates, ABBA/BABA orders, and prompts that stop just before the indirect object.

A template is the sentence up to the answer; {N1}/{N2} are the two names in order of first mention, {S} the repeated
subject, {P} a place and {O} an object. ABBA puts the indirect object first ({N1}=IO), BABA puts the subject first.
"""

import random
from dataclasses import dataclass
from enum import Enum

from rcid_tl.world.lexicon import OBJECTS, PLACES
from rcid_tl.world.splits import Split, ioi_names

IOI_TRAIN_TEMPLATES: tuple[str, ...] = (
    "When {N1} and {N2} went to the {P}, {S} gave a {O} to",
    "Then, {N1} and {N2} went to the {P}. {S} gave a {O} to",
    "After {N1} and {N2} went to the {P}, {S} gave a {O} to",
    "While {N1} and {N2} were working at the {P}, {S} gave a {O} to",
    "Then, {N1} and {N2} had a long day at the {P}. {S} gave a {O} to",
    "When {N1} and {N2} got a {O} at the {P}, {S} decided to give it to",
    "Then, {N1} and {N2} were thinking about going to the {P}. {S} wanted to give a {O} to",
    "After the lunch, {N1} and {N2} went to the {P}. {S} gave a {O} to",
    "Friends {N1} and {N2} found a {O} at the {P}. {S} gave it to",
    "While {N1} and {N2} were commuting to the {P}, {S} gave a {O} to",
    "The {P} {N1} and {N2} went to had a {O}. {S} gave it to",
    "When {N1} and {N2} arrived at the {P}, {S} handed a {O} to",
    "Then, {N1} and {N2} met at the {P}. {S} passed a {O} to",
    "After {N1} and {N2} left the {P}, {S} sent a {O} to",
)

# Novel recombinations of in-vocabulary words (every word also occurs in training text elsewhere).
IOI_HELD_OUT_TEMPLATES: tuple[str, ...] = (
    "Before {N1} and {N2} walked to the {P}, {S} gave a {O} to",
    "Yesterday, {N1} and {N2} waited at the {P}. {S} handed a {O} to",
    "As {N1} and {N2} rested at the {P}, {S} passed a {O} to",
    "In the evening, {N1} and {N2} played at the {P}. {S} sent a {O} to",
)


class IOIOrder(str, Enum):
    ABBA = "ABBA"  # IO mentioned first
    BABA = "BABA"  # subject mentioned first


@dataclass(frozen=True)
class IOIPrompt:
    """One IOI prompt: `text` ends with "... to"; the correct continuation is " {io}", the distractor " {s}"."""

    text: str
    io: str
    s: str
    template: str
    order: IOIOrder
    place: str
    obj: str

    @property
    def sentence(self) -> str:
        """The full training sentence, answer included."""
        return f"{self.text} {self.io}."


def ioi_templates(split: Split) -> tuple[str, ...]:
    """Templates that IOI sentences of `split` are drawn from."""
    return IOI_HELD_OUT_TEMPLATES if split is Split.OOD else IOI_TRAIN_TEMPLATES


def fill_ioi(template: str, io: str, s: str, order: IOIOrder, place: str, obj: str) -> IOIPrompt:
    """Fill one template; ABBA/BABA decides which name is mentioned first."""
    n1, n2 = (io, s) if order is IOIOrder.ABBA else (s, io)
    text = template.format(N1=n1, N2=n2, S=s, P=place, O=obj)
    return IOIPrompt(text=text, io=io, s=s, template=template, order=order, place=place, obj=obj)


def sample_ioi(
    rng: random.Random,
    names: tuple[str, ...],
    templates: tuple[str, ...],
    obj: str | None = None,
) -> IOIPrompt:
    """Draw two distinct names, a template, an order, a place and (unless fixed) an object."""
    io, s = rng.sample(names, 2)
    order = rng.choice((IOIOrder.ABBA, IOIOrder.BABA))
    return fill_ioi(
        rng.choice(templates), io, s, order, rng.choice(PLACES), obj if obj is not None else rng.choice(OBJECTS)
    )


def ioi_document(rng: random.Random, split: Split) -> str:
    """One or two IOI sentences, answers included."""
    names, templates = ioi_names(split), ioi_templates(split)
    return " ".join(sample_ioi(rng, names, templates).sentence for _ in range(rng.randint(1, 2)))
