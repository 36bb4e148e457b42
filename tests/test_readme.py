"""The README stays short and its library example runs: the first ```python block is executed as written, on the
embedded teachers, and `import rcid_tl` keeps its front door lazy (no torch until a name is used)."""

import re
import subprocess
import sys
from pathlib import Path

import rcid_tl

ROOT = Path(__file__).resolve().parents[1]
README = ROOT / "README.md"
LIBRARY_PAGE = ROOT / "docs" / "library.md"  # shows the same example on the documentation site
MAX_LINES = 250


def library_example() -> str:
    match = re.search(r"^```python\n(.*?)^```", README.read_text(encoding="utf-8"), re.S | re.M)
    assert match, "README.md has no ```python block"
    return match.group(1)


def test_readme_is_short():
    n = len(README.read_text(encoding="utf-8").splitlines())
    assert n <= MAX_LINES, f"README.md has {n} lines; the rest belongs in docs/ (at most {MAX_LINES})"


def test_library_example_uses_only_the_top_level():
    code = library_example()
    assert len(code.splitlines()) <= 15
    imports = [line for line in code.splitlines() if re.match(r"\s*(import|from)\s", line)]
    assert imports == ["import rcid_tl as rt"]


def test_library_page_shows_the_same_example():
    assert library_example() in LIBRARY_PAGE.read_text(encoding="utf-8")


def test_library_example_runs(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)  # the example saves under runs/
    namespace: dict = {}
    exec(compile(library_example(), str(README), "exec"), namespace)
    assert (tmp_path / "runs" / "readme" / "patch.json").is_file()
    cons = namespace["cons"]
    # correlations, whatever their values: the README quotes them as what one run printed, not as a claim
    assert -1 <= cons.r_out <= 1 and -1 <= cons.mechanistic_r <= 1
    assert "layer" in capsys.readouterr().out


def test_every_public_name_resolves():
    assert set(rcid_tl.__all__) <= set(dir(rcid_tl))
    for name in rcid_tl.__all__:
        assert getattr(rcid_tl, name) is not None, name


def test_import_is_lazy():
    # a fresh interpreter: this one has torch loaded already
    code = "import sys, rcid_tl; assert 'torch' not in sys.modules and 'transformers' not in sys.modules"
    subprocess.run([sys.executable, "-c", code], check=True)
