"""IOI head classes addressable by name: Wang et al. 2023's published GPT-2 small heads, or the classes that
`rcid-tl heads` found on any model (its heads.json)."""

import json
from pathlib import Path

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


def heads_of_class(name: str, n_layers: int, n_heads: int, classes_file: Path | None = None) -> tuple[Head, ...]:
    """The heads of IOI class `name`: from `classes_file` (a heads.json) when given, otherwise Wang et al.'s list,
    which only GPT-2-small-shaped models (12 layers × 12 heads) can use."""
    if name not in IOI_HEAD_CLASSES:
        raise InputError(f"unknown head class {name!r}; allowed: {', '.join(IOI_HEAD_CLASSES)}")
    if classes_file is not None:
        return _from_file(Path(classes_file), name, n_layers, n_heads)
    if (n_layers, n_heads) != GPT2_SMALL_SHAPE:
        raise InputError(
            f"head class {name!r} names GPT-2 small's heads (12 layers × 12 heads) and this model has {n_layers} × "
            f"{n_heads}; run `rcid-tl heads --model M --task ioi --out DIR` first and pass --classes DIR/heads.json"
        )
    return IOI_HEAD_CLASSES[name]


def _from_file(path: Path, name: str, n_layers: int, n_heads: int) -> tuple[Head, ...]:
    try:
        saved = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise InputError(f"classes file {str(path)!r} not found; write one with `rcid-tl heads`") from None
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as err:
        raise InputError(f"classes file {str(path)!r} is not a readable heads.json ({type(err).__name__})") from None
    classes = saved.get("classes") if isinstance(saved, dict) else None
    if not isinstance(classes, dict) or not isinstance(classes.get(name), list):
        raise InputError(f"classes file {str(path)!r} has no class {name!r}; write it with `rcid-tl heads`")
    heads = tuple(Head.parse(str(h)) for h in classes[name])
    outside = [str(h) for h in heads if not (0 <= h.layer < n_layers and 0 <= h.head < n_heads)]
    if outside:
        raise InputError(f"classes file {str(path)!r} names head {outside[0]}, which this model ({n_layers} layers "
                         f"× {n_heads} heads) does not have; it was written for another model")
    if not heads:
        raise InputError(f"class {name!r} is empty in {str(path)!r}: `rcid-tl heads` found no such head on that model")
    return heads
