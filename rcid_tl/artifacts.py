"""Result files written atomically (temp file in the same directory, then rename), so nothing is half-written."""

import csv
import io
import json
import os
import tempfile
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any


def write_text(path: Path, text: str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            f.write(text)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
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
    """The figure as standalone HTML, plus PNG when a static-image engine (kaleido and a browser) is available."""
    written = [write_text(path.with_suffix(".html"), figure.to_html(include_plotlyjs="cdn", full_html=True))]
    try:
        png = figure.to_image(format="png")
    except Exception:  # no kaleido/browser here: HTML only, as documented
        return written
    tmp = path.with_suffix(".png.tmp")
    tmp.write_bytes(png)
    os.replace(tmp, path.with_suffix(".png"))
    return [*written, path.with_suffix(".png")]
