"""Written files are shareable and never half-written: the modes a plain open()/mkdir() gives under the umask,
atomic replacement, and no temp file left behind by an error or Ctrl-C."""

import os
import stat

import pytest
import torch

from rcid_tl.artifacts import atomic_dir, atomic_path, write_csv, write_figure, write_json, write_text, write_torch
from rcid_tl.models.saving import save_hf_model


def mode(path) -> int:
    return stat.S_IMODE(os.stat(path).st_mode)


@pytest.fixture(params=[(0o022, 0o644, 0o755), (0o077, 0o600, 0o700), (0o027, 0o640, 0o750)], ids=lambda p: f"umask-{p[0]:03o}")
def umask(request):
    """Run the test under a umask (process-wide, so restored after); yields the expected (file, dir) modes."""
    mask, file_mode, dir_mode = request.param
    previous = os.umask(mask)
    try:
        yield file_mode, dir_mode
    finally:
        os.umask(previous)


def test_result_files_get_the_umask_mode(tmp_path, umask):
    file_mode, dir_mode = umask
    written = [write_json(tmp_path / "new" / "metrics.json", {"a": 1}), write_text(tmp_path / "t.txt", "x"),
               write_csv(tmp_path / "r.csv", ["a"], [[1]]), write_torch(tmp_path / "s.pt", {"x": torch.ones(2)})]
    assert [mode(p) for p in written] == [file_mode] * 4
    assert mode(tmp_path / "new") == dir_mode  # parents made on the way
    assert sorted(p.name for p in tmp_path.iterdir()) == ["new", "r.csv", "s.pt", "t.txt"]  # no temp left


def test_replacing_a_file_gives_the_new_mode(tmp_path, umask):
    path = tmp_path / "metrics.json"
    path.write_text("old")
    path.chmod(0o600)
    write_json(path, {"a": 1})
    assert mode(path) == umask[0] and path.read_text() == '{\n "a": 1\n}\n'


def test_saved_student_directory_is_shareable(tiny_gpt2, tmp_path, umask):
    file_mode, dir_mode = umask
    student = save_hf_model(tiny_gpt2, tmp_path / "student")
    assert mode(student) == dir_mode
    assert {p.name for p in student.iterdir()} >= {"config.json", "model.safetensors", "tokenizer.json"}
    assert {mode(p) for p in student.iterdir()} == {file_mode}
    assert [p.name for p in tmp_path.iterdir()] == ["student"]


@pytest.mark.parametrize("error", [RuntimeError, KeyboardInterrupt])
def test_an_interrupted_write_keeps_the_old_file_and_leaves_no_temp(tmp_path, error):
    path = tmp_path / "metrics.json"
    path.write_text("old")
    with pytest.raises(error):
        with atomic_path(path) as tmp:
            tmp.write_text("half")
            raise error()
    assert path.read_text() == "old"
    assert [p.name for p in tmp_path.iterdir()] == ["metrics.json"]


@pytest.mark.parametrize("error", [RuntimeError, KeyboardInterrupt])
def test_an_interrupted_directory_keeps_the_old_one_and_leaves_no_temp(tmp_path, error):
    old = tmp_path / "student"
    old.mkdir()
    (old / "config.json").write_text("old")
    with pytest.raises(error):
        with atomic_dir(old) as tmp:
            (tmp / "config.json").write_text("half")
            raise error()
    assert (old / "config.json").read_text() == "old"
    assert [p.name for p in tmp_path.iterdir()] == ["student"]


def test_a_finished_directory_replaces_the_old_one_whole(tmp_path):
    old = tmp_path / "student"
    old.mkdir()
    (old / "stale.bin").write_text("old")
    with atomic_dir(old) as tmp:
        (tmp / "config.json").write_text("new")
    assert [p.name for p in old.iterdir()] == ["config.json"]
    assert [p.name for p in tmp_path.iterdir()] == ["student"]


def test_figures_open_offline_and_share_one_plotly_bundle(tmp_path):
    import re

    import plotly.graph_objects as go

    for name in ("a", "b"):
        write_figure(tmp_path / name, go.Figure(go.Heatmap(z=[[1, 2], [3, 4]])))
    bundles = sorted(p.name for p in tmp_path.glob("plotly-*.min.js"))
    assert len(bundles) == 1 and (tmp_path / bundles[0]).stat().st_size > 1_000_000  # the real plotly.js, once
    for name in ("a", "b"):
        html = (tmp_path / f"{name}.html").read_text()
        assert not re.search(r"https?://[^\s\"']*\.js", html)  # no script from the network (a CDN)
        assert f'src="{bundles[0]}"' in html
