"""Figures: HTML with no network reference, a PNG beside it when a browser engine is available, and one log line
saying why PNGs were skipped when none is."""

import logging
import re
import shutil
import sys

import plotly.graph_objects as go
import pytest

from rcid_tl.artifacts import write_figure
from rcid_tl.plotting import images


@pytest.fixture
def fresh_engine(monkeypatch):
    monkeypatch.setenv("RCID_TL_PNG", "1")
    monkeypatch.setitem(images._ENGINE, "state", None)


def _heatmap() -> go.Figure:
    return go.Figure(go.Heatmap(z=[[1, 2], [3, 4]]), layout={"title": "t"})


def test_html_references_nothing_on_the_network(tmp_path):
    write_figure(tmp_path / "a", _heatmap())
    html = (tmp_path / "a.html").read_text()
    assert not re.search(r"""src=["']?https?:""", html)  # no script, image or frame from a CDN
    assert "cdn.plot.ly" not in html


def test_without_an_engine_pngs_are_skipped_with_one_log_line(tmp_path, fresh_engine, monkeypatch, caplog):
    monkeypatch.setitem(sys.modules, "kaleido", None)  # import kaleido now raises ImportError
    with caplog.at_level(logging.INFO, logger="rcid_tl.plotting.images"):
        for name in ("a", "b"):
            assert write_figure(tmp_path / name, _heatmap()) == [tmp_path / f"{name}.html"]
    lines = [r.getMessage() for r in caplog.records]
    assert len(lines) == 1 and "kaleido is not installed" in lines[0] and "apt install chromium" in lines[0]
    assert not list(tmp_path.glob("*.png"))


def test_turned_off_writes_no_png_and_says_nothing(tmp_path, monkeypatch, caplog):
    monkeypatch.setenv("RCID_TL_PNG", "0")
    with caplog.at_level(logging.INFO):
        assert write_figure(tmp_path / "a", _heatmap()) == [tmp_path / "a.html"]
    assert not caplog.records


def test_with_kaleido_and_chromium_a_png_lies_beside_the_html(tmp_path, fresh_engine):
    pytest.importorskip("kaleido")
    if not any(shutil.which(b) for b in ("chromium", "chromium-browser", "google-chrome", "chrome")):
        pytest.skip("no Chromium/Chrome on this machine")
    written = write_figure(tmp_path / "a", _heatmap())
    assert written == [tmp_path / "a.html", tmp_path / "a.png"]
    assert (tmp_path / "a.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
