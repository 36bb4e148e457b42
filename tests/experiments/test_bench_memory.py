"""The benchmark's peak-memory reading (experiments/bench_memory.py) on calls whose peak is known."""

import sys
from pathlib import Path

import pytest
import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "experiments"))
import bench_memory  # noqa: E402

MIB = 2**20
pytestmark = pytest.mark.skipif(bench_memory.available() is not None, reason=str(bench_memory.available()))


def test_a_tensor_written_once_reads_its_size() -> None:
    peak = bench_memory.peak_bytes(lambda: torch.ones(16 * MIB // 4)) / MIB
    assert 16 <= peak < 18  # 16 MiB of float32; the rest is the interpreter's pages and the allocator's slack


def test_memory_freed_inside_the_call_is_reused_not_summed() -> None:
    def eight_in_turn():
        for _ in range(8):
            torch.ones(16 * MIB // 4).sum()  # each 16 MiB tensor is freed before the next

    assert 16 <= bench_memory.peak_bytes(eight_in_turn) / MIB < 36  # one or two alive at once, never eight


def test_two_tensors_alive_at_once_read_their_sum() -> None:
    def both():
        a, b = torch.ones(16 * MIB // 4), torch.ones(8 * MIB // 4)
        return a, b

    assert 24 <= bench_memory.peak_bytes(both) / MIB < 26
