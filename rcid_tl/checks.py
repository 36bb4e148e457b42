"""Checks of user input that need no model (output locations, devices, counts, real numbers, run names), run before
anything is loaded so that a bad option fails in milliseconds with one line naming it."""

import math
import os
import re
import tempfile
from pathlib import Path

from rcid_tl.errors import InputError
from rcid_tl.out_lock import claim_out

MAX_EXAMPLES = 100_000  # one run's examples: far above any sweep or training set here, far below a hang or OOM
_DEVICE = re.compile(r"(cpu|cuda|mps)(:(\d+))?")
_PLAIN_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._+=-]*")


def check_out(path: str | Path, option: str = "--out", *, kind: str = "directory") -> Path:
    """See `_check_out`; a path the operating system refuses outright (a name too long, a NUL byte, ~user of no
    user) is an InputError too."""
    try:
        return _check_out(path, option, kind)
    except InputError:
        raise
    except (OSError, ValueError, RuntimeError) as err:  # a NUL byte (ValueError), ~user of no user (RuntimeError)
        reason = err.strerror if isinstance(err, OSError) and err.strerror else str(err)
        raise InputError(f"{option} {str(path)!r} cannot be used: {reason}") from None


def _check_out(path: str | Path, option: str, kind: str) -> Path:
    """`path` can be created (or reused) as an output `kind` ("directory" or "file"): it is not the wrong kind of
    thing already, and its nearest existing ancestor is a directory we may create entries in (probed by making and
    removing a temporary directory, which also catches read-only file systems and root-owned special trees).

    A directory is then claimed for this run (rcid_tl.out_lock): a second run on it is refused until this one ends."""
    path = Path(path).expanduser()
    if kind == "directory" and path.exists() and not path.is_dir():
        raise InputError(f"{option} {str(path)!r} is an existing file; give a directory to write into")
    if kind == "file" and path.is_dir():
        raise InputError(f"{option} {str(path)!r} is a directory; give a file name")
    ancestor = path if path.is_dir() else path.parent
    while not ancestor.exists():
        ancestor = ancestor.parent
    if not ancestor.is_dir():
        raise InputError(f"{option} {str(path)!r} cannot be created: {str(ancestor)!r} is not a directory")
    try:
        tempfile.TemporaryDirectory(prefix=".rcid-tl-probe.", dir=ancestor).cleanup()
    except OSError as err:
        raise InputError(f"{option} {str(path)!r} cannot be created: {str(ancestor)!r} is not writable "
                         f"({err.strerror or err})") from None
    if kind == "directory":
        claim_out(path, option)
    return path


def check_device(spec: str) -> str:
    """`spec` names a device this machine has: cpu, cuda[:i] with a visible GPU i, or mps where available."""
    import torch  # deferred: the CLI checks options before paying for torch's import

    match = _DEVICE.fullmatch(spec.strip())
    if match is None:
        raise InputError(f"unknown device {spec!r}; write cpu, cuda, cuda:N or mps")
    kind, index = match.group(1), int(match.group(3) or 0)
    have = ["cpu"]
    if torch.cuda.is_available():
        have += [f"cuda:{i}" for i in range(torch.cuda.device_count())]
    if torch.backends.mps.is_available():
        have.append("mps")
    if (f"cuda:{index}" if kind == "cuda" else kind) not in have:
        raise InputError(f"device {spec!r} is not available here; this machine has: {', '.join(have)}")
    return spec.strip()


def check_count(value: int | None, option: str, *, minimum: int = 1, maximum: int | None = None) -> None:
    """An integer option within [minimum, maximum] (None: not given, nothing to check)."""
    if value is None:
        return
    if value < minimum:
        raise InputError(f"{option} must be ≥ {minimum}, got {value}")
    if maximum is not None and value > maximum:
        raise InputError(f"{option} {value} is more than one run handles; at most {maximum:,}")


def check_real(value: float, option: str, *, minimum: float = 0.0, inclusive: bool = True) -> None:
    """A finite real option ≥ minimum (or > minimum when not `inclusive`): NaN and ±inf never pass."""
    ok = math.isfinite(value) and (value >= minimum if inclusive else value > minimum)
    if not ok:
        bound = f"{'≥' if inclusive else '>'} {minimum:g}"
        raise InputError(f"{option} must be a finite number {bound}, got {value:g}")


def check_finite(value: float, option: str) -> None:
    """A real option of either sign that is neither NaN nor ±inf."""
    if not math.isfinite(value):
        raise InputError(f"{option} must be a finite number, got {value:g}")


def check_plain_name(value: str, option: str) -> str:
    """A name that is one path component: letters, digits and . _ + = -, not starting with a dot or dash."""
    if not _PLAIN_NAME.fullmatch(value) or value in {".", ".."} or os.sep in value:
        raise InputError(f"{option} {value!r} must be a plain name (letters, digits, . _ - + =; no '/', no "
                         f"leading dot, not empty)")
    return value


def check_model_path(spec: str) -> None:
    """InputError when `spec` names a local path (it exists, starts with . / ~, or has a separator and is not an
    `org/name` hub id) that is not a directory. Cheap and import-free, so the CLI checks it before loading torch."""
    try:
        path = Path(spec).expanduser()
        is_dir, exists = path.is_dir(), path.exists()
    except (OSError, ValueError, RuntimeError):  # RuntimeError: ~user of no user  # a name too long for the file system, or a NUL byte: no model directory
        is_dir, exists = False, True
    if is_dir:
        return
    parts = spec.split("/")
    hub_id = len(parts) == 2 and all(p and not p.startswith(".") for p in parts)
    if exists or spec.startswith((".", "/", "~")) or os.sep in spec and not hub_id:
        raise InputError(f"model path {spec!r} is not a directory with a Hugging Face model")
