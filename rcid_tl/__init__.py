"""rcid_tl: does a distilled student compute its answers the way its teacher does? Hook-level tools to find out."""

from importlib.metadata import PackageNotFoundError, version

try:
    __version__ = version("rcid-tl")
except PackageNotFoundError:  # running from a source tree that was never installed
    __version__ = "0.0.0+source"
