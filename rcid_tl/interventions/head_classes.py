"""GPT-2 small's IOI circuit heads in Wang et al. 2023's seven classes, addressable by class name."""

from rcid_tl.errors import InputError
from rcid_tl.hooks.names import Head

_CLASSES: dict[str, str] = {
    "name-mover": "9.9 10.0 9.6",
    "negative-name-mover": "10.7 11.10",
    "backup-name-mover": "9.0 9.7 10.1 10.2 10.6 10.10 11.2 11.9",
    "s-inhibition": "7.3 7.9 8.6 8.10",
    "induction": "5.5 6.9",
    "duplicate-token": "0.1 3.0",
    "previous-token": "2.2 4.11",
}
IOI_HEAD_CLASSES: dict[str, tuple[Head, ...]] = {
    name: tuple(Head.parse(h) for h in heads.split()) for name, heads in _CLASSES.items()
}
GPT2_SMALL_SHAPE = (12, 12)  # (layers, heads): the classes name heads of this shape


def heads_of_class(name: str, n_layers: int, n_heads: int) -> tuple[Head, ...]:
    """The heads of IOI class `name`; only meaningful for GPT-2-small-shaped models (12 layers × 12 heads)."""
    if name not in IOI_HEAD_CLASSES:
        raise InputError(f"unknown head class {name!r}; allowed: {', '.join(IOI_HEAD_CLASSES)}")
    if (n_layers, n_heads) != GPT2_SMALL_SHAPE:
        raise InputError(
            f"head class {name!r} names GPT-2 small's heads (12 layers × 12 heads); this model has "
            f"{n_layers} layers × {n_heads} heads"
        )
    return IOI_HEAD_CLASSES[name]
