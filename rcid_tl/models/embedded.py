"""Registry of the models shipped inside the package (`rcid_tl/embedded/<name>/`), loadable by name."""

from pathlib import Path

EMBEDDED_ROOT = Path(__file__).resolve().parent.parent / "embedded"


def embedded_names() -> list[str]:
    """Names of the shipped models (directories holding a `config.json`)."""
    if not EMBEDDED_ROOT.is_dir():
        return []
    return sorted(p.name for p in EMBEDDED_ROOT.iterdir() if (p / "config.json").is_file())


def embedded_path(name: str) -> Path | None:
    """The directory of shipped model `name`, or None."""
    return EMBEDDED_ROOT / name if name in embedded_names() else None
