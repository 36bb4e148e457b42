"""`rcid-tl --help` at 80 columns lists every command in one line: each summary (the first paragraph of the command's
docstring) fits beside the longest command name; the detail stays in the command's own `--help`."""

import re

import typer

from rcid_tl.cli.app import app


def _command_rows(help_text: str) -> list[str]:
    """The lines inside the Commands panel, frame removed."""
    panel = help_text[help_text.index("─ Commands ─"):].splitlines()[1:]
    return [line.strip("│ ").rstrip() for line in panel[:next(i for i, x in enumerate(panel) if x.startswith("╰"))]]


def test_each_command_is_one_line_at_80_columns(cli, monkeypatch):
    monkeypatch.setenv("COLUMNS", "80")
    monkeypatch.setenv("TERMINAL_WIDTH", "80")  # Typer's own override, should the environment set another
    run = cli("--help")
    assert run.code == 0, run.stderr
    assert max(len(line) for line in run.stdout.splitlines()) <= 80
    rows = _command_rows(run.stdout)
    names = list(typer.main.get_command(app).commands)
    assert [re.split(r"\s{2,}", row)[0] for row in rows] == names, rows  # a wrapped summary adds a row of its own
    for row in rows:
        assert len(re.split(r"\s{2,}", row)) == 2, f"{row!r}: a command with no summary"
        assert not re.search(r"\bseeds? \d{3}\b", row), f"{row!r}: name the method or paper, not a design document"
