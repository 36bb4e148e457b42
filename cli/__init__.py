"""The `rcid-tl` command line (installed as the `rcid_tl.cli` package)."""
