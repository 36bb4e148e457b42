"""One run at a time per output directory: a run claims its `--out` with an exclusive `flock` on `<out>/.lock` (the
file holds its pid, for the message a second run gets), which the kernel drops when the process ends, however it ends.
Holding the claim, a run clears the temp files a killed run left there."""

import atexit
import fcntl
import os
from pathlib import Path

from rcid_tl.artifacts import remove_leftovers
from rcid_tl.errors import InputError

LOCK_NAME = ".lock"

# resolved output directory → (the open lock file, the directories the claim created, deepest first)
_CLAIMED: dict[Path, tuple[int, list[Path]]] = {}


def claim_out(path: str | Path, option: str = "--out") -> None:
    """Hold `path` (created if missing) for this process until `release_outs()` or exit; an InputError naming the
    other run's pid while another process holds it. Claiming a directory this process holds already is a no-op.

    Under a launcher (torchrun: RANK > 0) only rank 0 claims: the ranks of one run share their --out."""
    key = Path(path).expanduser().resolve()
    if key in _CLAIMED or int(os.environ.get("RANK", "0") or 0) != 0:
        return
    created = [p for p in (key, *key.parents) if not p.exists()]
    for attempt in range(3):
        key.mkdir(parents=True, exist_ok=True)
        try:
            fd = _lock(key / LOCK_NAME, path, option)
            break
        except FileNotFoundError:  # a run that had just given the directory up removed it again: make it anew
            if attempt == 2:
                raise
        except BaseException:
            _remove_empty(created)
            raise
    _CLAIMED[key] = (fd, created)
    remove_leftovers(key)  # no other run writes here now: any temp file is a killed run's


def release_outs() -> None:
    """Give up every claim: remove the lock files (and any directory a claim created that is still empty)."""
    while _CLAIMED:
        key, (fd, created) = _CLAIMED.popitem()
        lock = key / LOCK_NAME
        try:  # unlink before unlocking (close), and only our own file: nobody can be holding the one we remove
            if os.fstat(fd).st_ino == os.stat(lock).st_ino:
                lock.unlink()
        except FileNotFoundError:
            pass
        os.close(fd)
        _remove_empty(created)


atexit.register(release_outs)


def _lock(lock: Path, shown: str | Path, option: str) -> int:
    while True:
        fd = os.open(lock, os.O_RDWR | os.O_CREAT, 0o666)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = os.pread(fd, 32, 0).decode(errors="replace").strip() or "unknown"
            os.close(fd)
            raise InputError(f"{option} {str(shown)!r} is in use by another rcid-tl run (pid {holder}); wait for it "
                             f"to finish or choose another {option}") from None
        except BaseException:
            os.close(fd)
            raise
        try:  # the previous holder removed the file between our open and our flock: lock the one there now
            current = os.stat(lock).st_ino == os.fstat(fd).st_ino
        except FileNotFoundError:
            current = False
        if current:
            os.ftruncate(fd, 0)
            os.pwrite(fd, f"{os.getpid()}\n".encode(), 0)
            return fd
        os.close(fd)


def _remove_empty(created: list[Path]) -> None:
    for directory in created:  # deepest first; stop at the first one that is not empty
        try:
            os.rmdir(directory)
        except OSError:
            return
