"""Static PNG renderings of plotly figures, when a browser engine is available (kaleido driving a system Chromium);
otherwise one log line per process says that PNGs were skipped, why, and how to enable them."""

import atexit
import logging
import os
import warnings

log = logging.getLogger(__name__)
ENABLE_HINT = ("for PNGs install kaleido (pip install kaleido) and a Chromium browser (Debian/Ubuntu: apt install "
               "chromium); RCID_TL_PNG=0 turns them off")
PNG_SIZE = {"width": 1100, "height": 600}  # when the figure sets none: the HTML sizes to the window, a PNG cannot
_ENGINE: dict[str, str | bool | None] = {"state": None}  # None: not tried; True: running; a str: why it is not


def png_enabled() -> bool:
    """PNGs are wanted unless RCID_TL_PNG=0 (the test suite and quick scripts set it: each process pays ~4 s to start
    the browser)."""
    return os.environ.get("RCID_TL_PNG", "1") != "0"


def png_bytes(figure) -> bytes | None:
    """The figure as PNG bytes, or None when no engine is available (said once, with the reason)."""
    if not png_enabled() or not _engine_ready():
        return None
    size = {k: v for k, v in PNG_SIZE.items() if figure.layout[k] is None}
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # plotly warns that per-call options are ignored by a running server
            return figure.to_image(format="png", **size)
    except Exception as err:  # a browser that dies or cannot render: HTML only from now on
        _skip(f"rendering failed ({_one_line(err)})")
        return None


def _engine_ready() -> bool:
    if _ENGINE["state"] is None:
        try:
            import kaleido  # optional (the png extra), and slow to import: only when a PNG is wanted
        except ImportError:
            _skip("kaleido is not installed")
            return False
        try:  # one browser for the whole process instead of one per figure (~4 s each)
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                kaleido.start_sync_server(silence_warnings=True)
        except Exception as err:  # typically no Chrome/Chromium on the system
            _skip(f"no browser engine ({_one_line(err)})")
            return False
        atexit.register(kaleido.stop_sync_server, silence_warnings=True)
        _ENGINE["state"] = True
    return _ENGINE["state"] is True


def _skip(reason: str) -> None:
    _ENGINE["state"] = reason
    log.info("PNG figures skipped (HTML written): %s; %s", reason, ENABLE_HINT)


def _one_line(err: Exception) -> str:
    text = " ".join(str(err).split()) or type(err).__name__
    return text if len(text) <= 160 else text[:157] + "..."
