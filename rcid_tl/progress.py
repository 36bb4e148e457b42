"""Progress bars for long library work (rich), silent when disabled or when nothing is long."""

from collections.abc import Iterable, Iterator
from typing import TypeVar

from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

T = TypeVar("T")
ENABLED = {"value": True}


def set_progress(enabled: bool) -> None:
    """Turn progress bars on or off globally (tests and scripts that capture output turn them off)."""
    ENABLED["value"] = enabled


def track(items: Iterable[T], description: str, total: int | None = None) -> Iterator[T]:
    items = list(items) if total is None else items
    total = len(items) if total is None else total
    if not ENABLED["value"] or total <= 1:
        yield from items
        return
    columns = (TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeRemainingColumn())
    with Progress(*columns, transient=True) as progress:
        task = progress.add_task(description, total=total)
        for item in items:
            yield item
            progress.advance(task)
