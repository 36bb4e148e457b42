"""Ctrl-C: exit code 130 and one line (how to resume, for distill), no traceback, no half-written file or temp left
behind; re-running an interrupted distill finishes it."""

import json
import os
import pathlib
import stat

import pytest

from tests.distill.test_cli import SMALL


def one_line(run) -> str:
    """The one line saying the run was interrupted (after any progress lines, e.g. `resuming from step 2`)."""
    assert run.code == 130, run.stderr
    lines = run.stderr.strip().splitlines()
    assert all(ln.startswith("rcid-tl: ") for ln in lines) and "Traceback" not in run.stderr + run.stdout, run.stderr
    assert [ln for ln in lines if "interrupted" in ln] == lines[-1:], run.stderr
    return lines[-1]


def files(root: pathlib.Path) -> list[str]:
    return sorted(str(p.relative_to(root)) for p in root.rglob("*"))


def test_ctrl_c_while_writing_leaves_whole_files_only(cli, tiny_gpt2_dir, tmp_path, monkeypatch):
    write_text = pathlib.Path.write_text

    def cut_short(self, text, *args, **kwargs):  # Ctrl-C half-way through writing patch.csv
        if self.name.startswith(".patch.csv."):
            write_text(self, text[: len(text) // 2], *args, **kwargs)
            raise KeyboardInterrupt
        return write_text(self, text, *args, **kwargs)

    monkeypatch.setattr(pathlib.Path, "write_text", cut_short)
    out = tmp_path / "out"
    run = cli("patch", "--model", tiny_gpt2_dir, "--task", "greater-than", "--n", "3", "--site", "resid_post",
              "--out", out)
    assert one_line(run) == "rcid-tl: interrupted; no file was left half-written"
    assert files(out) == ["patch.json"]  # written before the interrupt, whole; no patch.csv, no temp file
    json.loads((out / "patch.json").read_text())


def interrupt(*args, **kwargs):
    raise KeyboardInterrupt


def test_ctrl_c_before_training_says_nothing_about_resuming(cli, tmp_path, monkeypatch):
    monkeypatch.setattr("rcid_tl.distill.run.prepare", interrupt)
    run = cli("distill", *SMALL, "--out", tmp_path / "out")
    assert one_line(run) == "rcid-tl: interrupted; no file was left half-written"
    assert not (tmp_path / "out").exists()


@pytest.fixture
def umask_027():
    previous = os.umask(0o027)
    yield
    os.umask(previous)


def test_ctrl_c_in_distill_names_the_step_and_a_rerun_finishes(cli, tmp_path, monkeypatch, umask_027):
    from rcid_tl.distill import run as distill_run

    real = distill_run._distill_loss

    def interrupted_at_step_2(*args):
        loss_at = real(*args)

        def at(step):
            if step == 2:
                raise KeyboardInterrupt
            return loss_at(step)

        return at

    out = tmp_path / "out"
    monkeypatch.setattr(distill_run, "_distill_loss", interrupted_at_step_2)
    run = cli("distill", *SMALL, "--out", out)
    assert one_line(run) == "rcid-tl: interrupted; re-run the same command to resume from distill step 2"
    assert files(out) == ["train_log.jsonl", "train_state.pt"]  # no student, no temp file

    evaluate = distill_run.evaluate_student
    monkeypatch.setattr(distill_run, "_distill_loss", real)
    monkeypatch.setattr(distill_run, "evaluate_student", interrupt)
    run = cli("distill", *SMALL, "--out", out)  # trains step 3, saves the student, is interrupted in evaluation
    assert one_line(run) == "rcid-tl: interrupted; re-run the same command to resume from the last saved training state"

    monkeypatch.setattr(distill_run, "evaluate_student", evaluate)
    assert cli("distill", *SMALL, "--out", out).code == 0
    log = [json.loads(x) for x in (out / "train_log.jsonl").read_text().splitlines()]
    assert [r["step"] for r in log] == [1, 2, 3]
    assert not [name for name in files(out) if name.startswith(".") or "/." in name]  # no temp left anywhere
    mode = lambda p: stat.S_IMODE(p.stat().st_mode)  # noqa: E731
    assert mode(out / "metrics.json") == mode(out / "train_state.pt") == 0o640  # shareable under umask 027
    assert mode(out / "student") == 0o750 and {mode(p) for p in (out / "student").iterdir()} == {0o640}
