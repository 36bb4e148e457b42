"""Progress of long library work: a rich bar when stderr is a terminal, plain log lines (start, about every 10%, end)
when it is a file or pipe, nothing when disabled or when nothing is long. `stage` does the same for one step without
items (loading a model, building a task): a spinner, or a start and an end line."""

import logging
import sys
import threading
import time
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from typing import TypeVar

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

T = TypeVar("T")
ENABLED = {"value": True}
log = logging.getLogger(__name__)  # INFO lines; the CLI shows them, a library user chooses with logging's config


def set_progress(enabled: bool) -> None:
    """Turn progress reporting (bars and log lines) on or off globally (tests and capturing scripts turn it off)."""
    ENABLED["value"] = enabled


def track(items: Iterable[T], description: str, total: int | None = None) -> Iterator[T]:
    items = list(items) if total is None else items
    total = len(items) if total is None else total
    if not ENABLED["value"] or total <= 1:
        yield from items
    elif _stderr_is_terminal():
        yield from _bar(items, description, total)
    else:  # a log file, nohup, CI: a redrawn bar would show nothing there
        yield from _lines(items, description, total)


@contextmanager
def stage(description: str) -> Iterator[None]:
    """One step of unknown length: a spinner on a terminal, else a start line and an end line with its duration."""
    if not ENABLED["value"]:
        yield
    elif _stderr_is_terminal():
        with Console(stderr=True).status(description):
            yield
    else:
        log.info("%s ...", description)
        t0 = time.perf_counter()
        yield
        log.info("%s: done in %s", description, _duration(time.perf_counter() - t0))


@contextmanager
def announce_after(seconds: float, description: str) -> Iterator[None]:
    """Log `description` once if the block is still running after `seconds` (while a command imports torch and
    transformers, which takes seconds warm and can take a minute cold, before any other step can report)."""
    timer = threading.Timer(seconds, lambda: ENABLED["value"] and log.info("%s ...", description))
    timer.daemon = True
    timer.start()
    try:
        yield
    finally:
        timer.cancel()


def _stderr_is_terminal() -> bool:
    try:
        return sys.stderr.isatty()
    except (AttributeError, ValueError):  # replaced by an object without isatty, or closed
        return False


def _bar(items: Iterable[T], description: str, total: int) -> Iterator[T]:
    columns = (TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeRemainingColumn())
    with Progress(*columns, console=Console(stderr=True), transient=True) as progress:
        task = progress.add_task(description, total=total)
        for item in items:
            yield item
            progress.advance(task)


def _lines(items: Iterable[T], description: str, total: int) -> Iterator[T]:
    log.info("%s: 0/%d", description, total)
    t0, tenths = time.perf_counter(), 0
    for done, item in enumerate(items, 1):
        yield item
        if done * 10 // total == tenths and done != total:
            continue
        tenths, elapsed = done * 10 // total, time.perf_counter() - t0
        if done < total:
            log.info("%s: %d/%d (%d%%), %s elapsed, ~%s left", description, done, total, 100 * done // total,
                     _duration(elapsed), _duration(elapsed * (total - done) / done))
        else:
            log.info("%s: %d/%d (100%%), done in %s", description, done, total, _duration(elapsed))


def _duration(seconds: float) -> str:
    if seconds < 90:
        return f"{seconds:.1f} s"
    if seconds < 90 * 60:
        return f"{seconds / 60:.1f} min"
    return f"{seconds / 3600:.1f} h"
