"""rcid_tl: does a distilled student compute its answers the way its teacher does? Hook-level tools to find out."""

from importlib.metadata import PackageNotFoundError, version

try:
    __version__ = version("rcid-tl")
except PackageNotFoundError:  # running from a source tree that was never installed
    __version__ = "0.0.0+source"


def __getattr__(name: str):
    # load_result needs pandas and the result classes: imported on first use, so `import rcid_tl` stays instant
    if name == "load_result":
        from rcid_tl.results import load_result

        return load_result
    raise AttributeError(f"module 'rcid_tl' has no attribute {name!r}")
