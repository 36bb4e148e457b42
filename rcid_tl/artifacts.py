"""Files and directories written atomically (temp in the same directory, then rename) with the permissions a plain
open()/mkdir() gives, and torch state files read back without running any code they might name."""

import csv
import errno
import io
import json
import os
import re
import secrets
import shutil
import stat
from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from rcid_tl.errors import InputError, NoSpaceError

# Temp files and dirs are created with mode 0o666 / 0o777 and the kernel applies the umask (and any default ACL) at
# creation, exactly as for a plain open()/mkdir(). Reading the umask instead (os.umask(0), then restore) would
# briefly set it process-wide, a race with any other thread creating files, and tempfile's 0o600/0o700 would keep
# result files from the people they are meant for.


# what `_fresh` and `atomic_dir` name their temp files and the directories they move aside: `.NAME.1a2b3c4d.tmp`
LEFTOVER = re.compile(r"\..+\.[0-9a-f]{8}\.(tmp|old)")


def remove_leftovers(root: Path) -> list[Path]:
    """Delete the temp files and directories that a killed writer (SIGKILL, SIGTERM, power loss) left anywhere
    under `root`; the finished files beside them were never touched. Only safe while no other process writes under
    `root` (rcid_tl.out_lock makes sure of that for an --out)."""
    found = [Path(parent) / name for parent, dirs, files in os.walk(root) for name in (*dirs, *files)
             if LEFTOVER.fullmatch(name)]
    for path in found:
        if path.is_dir() and not path.is_symlink():
            shutil.rmtree(path, ignore_errors=True)
        else:
            path.unlink(missing_ok=True)
    return found


def _fresh(path: Path, make) -> Path:
    while True:
        tmp = path.with_name(f".{path.name}.{secrets.token_hex(4)}.tmp")
        try:
            make(tmp)
            return tmp
        except FileExistsError:
            continue


_FULL = (errno.ENOSPC, errno.EDQUOT)  # no space left on the device, or in the user's quota


def _out_of_space(err: BaseException) -> bool:
    """Whether `err`, or an error it was raised from, is a full disk or quota (also where a library such as
    safetensors reports the OS error only in its message)."""
    seen = set()
    while err is not None and id(err) not in seen:
        seen.add(id(err))
        if isinstance(err, OSError) and err.errno in _FULL:
            return True
        if any(os.strerror(code) in str(err) or f"os error {code})" in str(err) for code in _FULL):
            return True
        err = err.__cause__ or err.__context__
    return False


def _no_space(path: Path, existed: bool) -> NoSpaceError:
    kept = f"the previous {path.name} is intact" if existed else "nothing was left half-written"
    return NoSpaceError(f"no space left on the device (or quota) to save {str(path)!r}; {kept}; free some space or "
                        f"choose another --out")


@contextmanager
def atomic_path(path: Path) -> Iterator[Path]:
    """A new empty temp file next to `path` for the caller to write; it replaces `path` when the block ends and is
    removed if the block raises (Ctrl-C included), so `path` is either the old file or the whole new one. A full
    disk or quota becomes a NoSpaceError saying so."""
    path = Path(path)
    existed, tmp = path.exists(), None
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = _fresh(path, lambda p: os.close(os.open(p, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666)))
        yield tmp
        os.replace(tmp, path)
    except BaseException as err:
        if tmp is not None:
            tmp.unlink(missing_ok=True)
        if _out_of_space(err):
            raise _no_space(path, existed) from None
        raise


@contextmanager
def atomic_dir(path: Path) -> Iterator[Path]:
    """A new empty temp directory next to `path` for the caller to fill; when the block ends everything in it gets
    the plain open()/mkdir() mode and it takes `path`'s place (an old `path` is moved aside, then deleted); if the
    block raises, it is deleted and `path` is left as it was (a full disk or quota becomes a NoSpaceError)."""
    path = Path(path)
    existed, tmp, old = path.exists(), None, None
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = _fresh(path, lambda p: os.mkdir(p, 0o777))
        yield tmp
        _plain_modes(tmp)
        if path.exists():
            old = path.with_name(f".{path.name}.{secrets.token_hex(4)}.old")
            os.rename(path, old)
        os.rename(tmp, path)
    except BaseException as err:
        if tmp is not None:
            shutil.rmtree(tmp, ignore_errors=True)
        if old is not None and not path.exists():
            os.rename(old, path)  # interrupted between the two renames: put the previous directory back
            old = None
        if _out_of_space(err):
            raise _no_space(path, existed) from None
        raise
    finally:
        if old is not None:
            shutil.rmtree(old, ignore_errors=True)


def _plain_modes(root: Path) -> None:
    # Some writers make private files (transformers saves model.safetensors 0o600). `root` was made by mkdir(0o777),
    # so its mode is the plain-mkdir one, and the plain-open() mode is that less the execute bits.
    dir_mode = stat.S_IMODE(root.stat().st_mode) & 0o777
    for parent, dirs, files in os.walk(root):
        for name in dirs:
            os.chmod(os.path.join(parent, name), dir_mode)
        for name in files:
            os.chmod(os.path.join(parent, name), dir_mode & 0o666)


def write_text(path: Path, text: str) -> Path:
    with atomic_path(path) as tmp:
        tmp.write_text(text, encoding="utf-8")
    return path


def write_json(path: Path, payload: dict[str, Any]) -> Path:
    return write_text(path, json.dumps(payload, indent=1) + "\n")


def write_csv(path: Path, header: Sequence[str], rows: Iterable[Sequence[Any]]) -> Path:
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(header)
    writer.writerows(rows)
    return write_text(path, buffer.getvalue())


def write_figure(path: Path, figure) -> list[Path]:
    """The figure as HTML that works offline, plus PNG when a browser engine (kaleido and Chromium) is available
    (rcid_tl.plotting.images; without one a log line says so once). plotly.js is written once per directory
    (`plotly-<version>.min.js`, ~4.6 MB) and referenced relatively, so the HTML opens without a network and a folder
    of figures shares one copy."""
    # deferred like torch below: the CLI's option checks import this module, and plotly takes a second to load
    from plotly.offline import get_plotlyjs, get_plotlyjs_version

    from rcid_tl.plotting.images import png_bytes

    bundle = path.parent / f"plotly-{get_plotlyjs_version()}.min.js"
    if not bundle.is_file():
        write_text(bundle, get_plotlyjs())
    html = figure.to_html(include_plotlyjs=bundle.name, full_html=True, config={"responsive": True})
    written = [write_text(path.with_suffix(".html"), html)]
    png = png_bytes(figure)
    if png is None:
        return written
    with atomic_path(path.with_suffix(".png")) as tmp:
        tmp.write_bytes(png)
    return [*written, path.with_suffix(".png")]


def write_torch(path: Path, payload: Any) -> Path:
    """`payload` (tensors in plain dicts, lists, tuples, numbers and strings) via torch.save, atomically."""
    import torch  # deferred, here and in read_torch: the CLI's option checks use this module before torch loads

    with atomic_path(path) as tmp, open(tmp, "wb") as file:
        torch.save(payload, file)  # through a Python file, so a full disk is an OSError (a path gets RuntimeError)
    return path


def read_torch(path: Path, remedy: str = "delete it or choose another --out") -> Any:
    """A file written by `write_torch`, loaded on the CPU by torch's weights-only unpickler, which builds only
    tensors and plain containers and never calls what a file names; any unreadable file is an InputError."""
    import torch

    try:
        return torch.load(path, map_location="cpu", weights_only=True)
    except Exception:  # truncated, empty, not torch's format, or a pickle naming disallowed globals
        raise InputError(f"cannot read {path}: it is damaged or was not written by rcid-tl; {remedy}") from None
