"""The one exception type for bad user input: a one-line message naming the bad value and what is allowed."""

from enum import Enum
from typing import TypeVar

E = TypeVar("E", bound=Enum)


class InputError(ValueError):
    """Raised for invalid user input; the CLI prints it as a single line and exits with code 2."""


class NoSpaceError(InputError):
    """A save that ran out of disk space or quota (ENOSPC, EDQUOT). Every save writes a temp file and renames it
    (rcid_tl.artifacts), so the file or directory that was there before is left as it was; the CLI says so in one
    line like any other InputError."""


def parse_choice(kind: type[E], value: object, what: str) -> E:
    """The member of enum `kind` whose value is `value`, or an InputError naming `what` and the allowed values."""
    try:
        return kind(value)
    except ValueError:
        allowed = ", ".join(str(member.value) for member in kind)
        raise InputError(f"unknown {what} {value!r}; allowed: {allowed}") from None
