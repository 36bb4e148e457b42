"""A full disk (ENOSPC) during any save leaves the file or directory that was there before intact and says so in one
line: JSON, CSV, figures, torch training state, model directories, and a whole CLI run (rcid_tl.artifacts)."""

import errno
import io
import os
import pathlib

import pytest
import torch

from rcid_tl import artifacts
from rcid_tl.errors import NoSpaceError
from rcid_tl.models import save_hf_model
from rcid_tl.plotting.heatmaps import bar_chart

FULL = OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))


def fill_then_fail(monkeypatch, name_start: str) -> None:
    """Path.write_text / write_bytes on a temp file whose name starts with `name_start` write half, then hit a full
    disk."""
    for method in ("write_text", "write_bytes"):
        real = getattr(pathlib.Path, method)

        def half(self, data, *args, _real=real, **kwargs):
            if self.name.startswith(name_start):
                _real(self, data[: len(data) // 2], *args, **kwargs)
                raise OSError(FULL.errno, FULL.strerror)
            return _real(self, data, *args, **kwargs)

        monkeypatch.setattr(pathlib.Path, method, half)


def left_over(directory: pathlib.Path) -> list[str]:
    return [p.name for p in directory.iterdir() if p.name.startswith(".")]


def one_line(err: pytest.ExceptionInfo, path: pathlib.Path, kept: str) -> None:
    message = str(err.value)
    assert "\n" not in message and repr(str(path)) in message and kept in message, message


WRITERS = {
    "json": ("x.json", lambda p, v: artifacts.write_json(p, {"v": v})),
    "csv": ("x.csv", lambda p, v: artifacts.write_csv(p, ("v",), [(v,)])),
    "figure": ("x.html", lambda p, v: artifacts.write_figure(p.with_suffix(""), bar_chart(["a"], [v], "t", "v"))),
}


@pytest.mark.parametrize("kind", list(WRITERS))
def test_a_full_disk_keeps_the_previous_file(tmp_path, monkeypatch, kind):
    name, write = WRITERS[kind]
    path = tmp_path / name
    write(path, 1.0)
    before = path.read_bytes()
    fill_then_fail(monkeypatch, f".{name}.")
    with pytest.raises(NoSpaceError) as err:
        write(path, 2.0)
    one_line(err, path, f"the previous {name} is intact")
    assert path.read_bytes() == before and not left_over(tmp_path)


def test_a_full_disk_on_a_new_file_leaves_nothing(tmp_path, monkeypatch):
    fill_then_fail(monkeypatch, ".new.json.")
    with pytest.raises(NoSpaceError) as err:
        artifacts.write_json(tmp_path / "new.json", {})
    one_line(err, tmp_path / "new.json", "nothing was left half-written")
    assert list(tmp_path.iterdir()) == []


class FullFile(io.RawIOBase):
    """A file on a disk that fills up after `room` bytes: torch.save's own writes hit ENOSPC."""

    def __init__(self, path, room: int = 100):
        self.file, self.room = open(path, "wb"), room

    def writable(self) -> bool:
        return True

    def write(self, data) -> int:
        if len(data) > self.room:
            raise OSError(FULL.errno, FULL.strerror)
        self.room -= len(data)
        return self.file.write(data)

    def close(self) -> None:
        self.file.close()
        super().close()


def test_a_full_disk_keeps_the_previous_training_state(tmp_path, monkeypatch):
    path = tmp_path / "train_state.pt"
    artifacts.write_torch(path, {"step": 1, "w": torch.zeros(3)})
    before = path.read_bytes()
    monkeypatch.setattr(artifacts, "open", lambda p, mode: FullFile(p), raising=False)
    with pytest.raises(NoSpaceError) as err:
        artifacts.write_torch(path, {"step": 2, "w": torch.ones(10_000)})
    one_line(err, path, "the previous train_state.pt is intact")
    assert path.read_bytes() == before and not left_over(tmp_path)
    monkeypatch.undo()
    assert artifacts.read_torch(path)["step"] == 1


def test_a_full_disk_keeps_the_previous_model_directory(tiny_gpt2, tmp_path, monkeypatch):
    from transformers import PreTrainedModel

    out = save_hf_model(tiny_gpt2, tmp_path / "student")
    before = {p.name: p.read_bytes() for p in out.iterdir()}
    real = PreTrainedModel.save_pretrained

    def full(self, directory, *args, **kwargs):
        real(self, directory, *args, **kwargs)  # the weights are half on disk when the disk fills up
        weights = pathlib.Path(directory) / "model.safetensors"
        weights.write_bytes(weights.read_bytes()[:100])
        raise OSError(FULL.errno, FULL.strerror)

    monkeypatch.setattr(PreTrainedModel, "save_pretrained", full)
    with pytest.raises(NoSpaceError) as err:
        save_hf_model(tiny_gpt2, out)
    one_line(err, out, "the previous student is intact")
    assert {p.name: p.read_bytes() for p in out.iterdir()} == before and not left_over(tmp_path)


def test_the_cli_says_so_in_one_line_and_keeps_the_last_run(cli, tiny_gpt2_dir, tmp_path, monkeypatch):
    out = tmp_path / "out"
    args = ("patch", "--model", tiny_gpt2_dir, "--task", "greater-than", "--n", "2", "--out", out)
    assert cli(*args).code == 0
    before = (out / "patch.csv").read_bytes()
    fill_then_fail(monkeypatch, ".patch.csv.")
    run = cli(*args)
    assert run.code == 2 and "Traceback" not in run.stderr + run.stdout, run.stderr
    assert run.stderr.strip().splitlines() == [
        f"rcid-tl: error: no space left on the device (or quota) to save {str(out / 'patch.csv')!r}; the previous "
        f"patch.csv is intact; free some space or choose another --out"]
    assert (out / "patch.csv").read_bytes() == before and not left_over(out)
