"""Tests for rcid_tl (mirroring the package layout)."""
