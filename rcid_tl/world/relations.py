"""Relations of the synthetic world: word pairs, their input domains, and the sentence forms that state them.

Each input domain is shared by two relations (antonym/uppercase, capital/language, plural/sound,
successor/predecessor), so a 0-shot prompt "France:" is genuinely ambiguous and only the examples pick the relation.
"""

from enum import Enum


class Domain(str, Enum):
    ADJECTIVE = "adjective"
    COUNTRY = "country"
    ANIMAL = "animal"
    NUMBER = "number"


_ANTONYM_PAIRS: tuple[tuple[str, str], ...] = (
    ("hot", "cold"), ("big", "small"), ("fast", "slow"), ("high", "low"), ("long", "short"),
    ("old", "young"), ("happy", "sad"), ("light", "dark"), ("hard", "soft"), ("rich", "poor"),
    ("wet", "dry"), ("strong", "weak"), ("early", "late"), ("loud", "quiet"), ("thick", "thin"),
    ("clean", "dirty"), ("full", "empty"), ("deep", "shallow"), ("wide", "narrow"), ("open", "closed"),
    ("true", "false"), ("cheap", "expensive"), ("sweet", "sour"), ("good", "bad"), ("near", "far"),
    ("right", "wrong"), ("first", "last"),
)

# (country, capital, language)
_COUNTRIES: tuple[tuple[str, str, str], ...] = (
    ("France", "Paris", "French"), ("Spain", "Madrid", "Spanish"), ("Germany", "Berlin", "German"),
    ("Italy", "Rome", "Italian"), ("Japan", "Tokyo", "Japanese"), ("China", "Beijing", "Chinese"),
    ("Russia", "Moscow", "Russian"), ("Greece", "Athens", "Greek"), ("Portugal", "Lisbon", "Portuguese"),
    ("Sweden", "Stockholm", "Swedish"), ("Norway", "Oslo", "Norwegian"), ("Poland", "Warsaw", "Polish"),
    ("Turkey", "Ankara", "Turkish"), ("Egypt", "Cairo", "Arabic"), ("Brazil", "Brasilia", "Portuguese"),
    ("Finland", "Helsinki", "Finnish"), ("Denmark", "Copenhagen", "Danish"), ("Hungary", "Budapest", "Hungarian"),
    ("Netherlands", "Amsterdam", "Dutch"), ("Korea", "Seoul", "Korean"), ("Thailand", "Bangkok", "Thai"),
    ("Vietnam", "Hanoi", "Vietnamese"), ("Iran", "Tehran", "Persian"), ("Kenya", "Nairobi", "Swahili"),
    ("Austria", "Vienna", "German"), ("Peru", "Lima", "Spanish"), ("Chile", "Santiago", "Spanish"),
    ("Cuba", "Havana", "Spanish"), ("Canada", "Ottawa", "English"), ("Australia", "Canberra", "English"),
    ("Ukraine", "Kyiv", "Ukrainian"), ("Romania", "Bucharest", "Romanian"), ("Serbia", "Belgrade", "Serbian"),
    ("Czechia", "Prague", "Czech"), ("Iceland", "Reykjavik", "Icelandic"), ("Latvia", "Riga", "Latvian"),
    ("Morocco", "Rabat", "Arabic"), ("Iraq", "Baghdad", "Arabic"), ("Pakistan", "Islamabad", "Urdu"),
    ("Indonesia", "Jakarta", "Indonesian"),
)

# (animal, plural, sound)
_ANIMALS: tuple[tuple[str, str, str], ...] = (
    ("dog", "dogs", "bark"), ("cat", "cats", "meow"), ("cow", "cows", "moo"), ("duck", "ducks", "quack"),
    ("pig", "pigs", "oink"), ("lion", "lions", "roar"), ("horse", "horses", "neigh"), ("owl", "owls", "hoot"),
    ("snake", "snakes", "hiss"), ("bee", "bees", "buzz"), ("wolf", "wolves", "howl"), ("frog", "frogs", "croak"),
    ("mouse", "mice", "squeak"), ("crow", "crows", "caw"), ("donkey", "donkeys", "bray"),
    ("goat", "goats", "bleat"), ("hen", "hens", "cluck"), ("dove", "doves", "coo"),
    ("turkey", "turkeys", "gobble"), ("goose", "geese", "honk"), ("bear", "bears", "growl"),
    ("tiger", "tigers", "roar"), ("elephant", "elephants", "trumpet"), ("parrot", "parrots", "squawk"),
    ("chick", "chicks", "cheep"), ("cricket", "crickets", "chirp"), ("bird", "birds", "tweet"),
    ("hyena", "hyenas", "laugh"), ("monkey", "monkeys", "chatter"), ("bat", "bats", "screech"),
    ("fox", "foxes", "yelp"), ("pigeon", "pigeons", "coo"),
)

NUMBER_WORDS: tuple[str, ...] = (
    "one", "two", "three", "four", "five", "six", "seven", "eight", "nine", "ten",
    "eleven", "twelve", "thirteen", "fourteen", "fifteen", "sixteen", "seventeen", "eighteen", "nineteen", "twenty",
)

ADJECTIVES: tuple[str, ...] = tuple(w for pair in _ANTONYM_PAIRS for w in pair)
COUNTRIES: tuple[str, ...] = tuple(c for c, _, _ in _COUNTRIES)
ANIMALS: tuple[str, ...] = tuple(a for a, _, _ in _ANIMALS)

# relation name -> ordered (input, output) pairs
RELATIONS: dict[str, tuple[tuple[str, str], ...]] = {
    "antonym": tuple(_ANTONYM_PAIRS) + tuple((b, a) for a, b in _ANTONYM_PAIRS),
    "uppercase": tuple((w, w.upper()) for w in ADJECTIVES),
    "capital": tuple((c, cap) for c, cap, _ in _COUNTRIES),
    "language": tuple((c, lang) for c, _, lang in _COUNTRIES),
    "plural": tuple((a, pl) for a, pl, _ in _ANIMALS),
    "sound": tuple((a, s) for a, _, s in _ANIMALS),
    "successor": tuple(zip(NUMBER_WORDS[:-1], NUMBER_WORDS[1:])),
    "predecessor": tuple(zip(NUMBER_WORDS[1:], NUMBER_WORDS[:-1])),
}

RELATION_DOMAIN: dict[str, Domain] = {
    "antonym": Domain.ADJECTIVE, "uppercase": Domain.ADJECTIVE,
    "capital": Domain.COUNTRY, "language": Domain.COUNTRY,
    "plural": Domain.ANIMAL, "sound": Domain.ANIMAL,
    "successor": Domain.NUMBER, "predecessor": Domain.NUMBER,
}

# Forms stating one fact; every pair of every relation (held-out ones included) appears in training in these forms,
# so a held-out pair is a known fact in a never-seen few-shot block. The labelled form ("Capital of Peru: Lima.")
# matters: in a first run with sentence forms only, outputs never seen after a colon (held-out capitals, animal
# sounds) were almost never produced 5-shot (capital 0.17, sound 0.0).
FACT_TEMPLATES: dict[str, tuple[str, ...]] = {
    "antonym": ("The opposite of {x} is {y}.", "Something that is not {x} is {y}.", "Opposite of {x}: {y}."),
    "uppercase": ("The word {x} in capitals is {y}.", "Written in capitals, {x} becomes {y}.", "Capitals of {x}: {y}."),
    "capital": ("The capital of {x} is {y}.", "{y} is the capital city of {x}.", "Capital of {x}: {y}."),
    "language": ("People in {x} speak {y}.", "The language of {x} is {y}.", "Language of {x}: {y}."),
    "plural": ("The plural of {x} is {y}.", "One {x}, two {y}.", "Plural of {x}: {y}."),
    "sound": ("The {x} says {y}.", "You can hear a {x} {y}.", "Sound of a {x}: {y}."),
    "successor": ("The number after {x} is {y}.", "Count on from {x} and you get {y}.", "Number after {x}: {y}."),
    "predecessor": ("The number before {x} is {y}.", "Count down from {x} and you get {y}.", "Number before {x}: {y}."),
}


def relation_words() -> tuple[str, ...]:
    """Every word that appears as an input or output of some relation, in a fixed order."""
    seen: dict[str, None] = {}
    for pairs in RELATIONS.values():
        for x, y in pairs:
            seen.setdefault(x)
            seen.setdefault(y)
    return tuple(seen)
