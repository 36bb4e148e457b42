"""pyproject.toml lists every subpackage, so a non-editable install (a wheel) carries all of them."""

import tomllib
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def test_every_subpackage_is_listed_in_pyproject() -> None:
    listed = set(tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"]["packages"])
    in_tree = {".".join(p.parent.relative_to(ROOT).parts) for p in (ROOT / "rcid_tl").rglob("__init__.py")}
    assert in_tree | {"rcid_tl.cli"} == listed
