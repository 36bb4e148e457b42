"""Progress reaches a log: with stderr not a terminal, `track` logs a start line, about one line per 10% and an end
line; disabled, it logs nothing; either way it yields every item once, in order."""

import io
import logging
import re

import pytest

from rcid_tl import progress
from rcid_tl.progress import set_progress, track


@pytest.fixture
def lines(monkeypatch, caplog):
    """Progress on, stderr a pipe; returns the progress messages logged so far."""
    monkeypatch.setattr("sys.stderr", io.StringIO())  # StringIO.isatty() is False, like a file or a pipe
    set_progress(True)
    caplog.set_level(logging.INFO, logger=progress.log.name)
    yield lambda: [r.getMessage() for r in caplog.records if r.name == progress.log.name]
    set_progress(False)  # the session default in tests (conftest)


def test_hundred_items_log_about_every_ten_percent(lines):
    assert list(track(range(100), "patch")) == list(range(100))
    said = lines()
    assert said[0] == "patch: 0/100"
    assert said[-1].startswith("patch: 100/100 (100%), done in ")
    percents = [int(m.group(1)) for m in map(re.compile(r"\((\d+)%\)").search, said[1:])]
    assert percents == [10, 20, 30, 40, 50, 60, 70, 80, 90, 100]
    assert re.fullmatch(r"patch: 40/100 \(40%\), [\d.]+ s elapsed, ~[\d.]+ s left", said[4])


def test_uneven_totals_still_reach_the_end_once(lines):
    assert list(track(iter(range(7)), "imprints", total=7)) == list(range(7))
    percents = [int(m.group(1)) for m in map(re.compile(r"\((\d+)%\)").search, lines()[1:])]
    assert percents == sorted(set(percents)) and percents[-1] == 100 and len(percents) == 7


def test_disabled_logs_nothing(lines):
    set_progress(False)
    assert list(track(range(100), "patch")) == list(range(100))
    assert lines() == []


def test_a_single_item_is_not_worth_reporting(lines):
    assert list(track([1], "patch")) == [1]
    assert lines() == []


def test_the_cli_shows_progress_on_a_piped_stderr(cli, tiny_gpt2_dir, tmp_path):
    set_progress(True)
    try:
        run = cli("patch", "--model", tiny_gpt2_dir, "--task", "greater-than", "--n", "3", "--site", "resid_post",
                  "--positions", "yy,end", "--batch-size", "1", "--out", tmp_path / "out")
    finally:
        set_progress(False)
    assert run.code == 0, run.stderr
    said = [ln for ln in run.stderr.splitlines() if ln.startswith("rcid-tl: patching: ")]
    assert said and re.fullmatch(r"rcid-tl: patching: 0/\d+", said[0]) and "(100%), done in" in said[-1], run.stderr


def test_a_stage_logs_its_start_and_its_end(lines):
    with progress.stage("loading world-gpt2"):
        assert lines() == ["loading world-gpt2 ..."]  # said before the step, not only after it
    assert re.fullmatch(r"loading world-gpt2: done in [\d.]+ s", lines()[-1])


def test_a_disabled_stage_logs_nothing(lines):
    set_progress(False)
    with progress.stage("loading"):
        pass
    assert lines() == []


def test_a_slow_start_is_announced_once_and_a_quick_one_not_at_all(lines):
    import time

    with progress.announce_after(0.05, "patch: loading the library"):
        pass
    time.sleep(0.1)
    assert lines() == []
    with progress.announce_after(0.05, "patch: loading the library"):
        time.sleep(0.3)
    assert lines() == ["patch: loading the library ..."]
