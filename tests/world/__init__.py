"""Tests for rcid_tl.world."""
