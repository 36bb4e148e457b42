"""Peak memory of one call on CPU, for the benchmark tables: the most resident memory (RSS) the process held during
the call above what it held just before it.

How: run the call once to warm it up (lazy imports, one-off checks and caches are not the call's cost), collect
garbage and hand the C allocator's free memory back to the system (`malloc_trim`), reset the kernel's high-water mark
of the resident set (`/proc/self/clear_refs` ← 5), read the resident set, run the call, and read the high-water mark
(`VmHWM`). Every byte the call touches counts, whoever allocates it (torch's CPU tensors, Python objects, the
allocator's own slack), so unlike torch's profiler it cannot miss allocations made outside profiled ops.

Limits: it is Linux-only (glibc and `clear_refs` 5, Linux ≥ 4.0); it reads resident pages (4 KiB), so it counts
allocator fragmentation and rounds small calls up, and memory allocated but never touched does not count; memory the
allocator still holds after `malloc_trim` (free chunks smaller than a page) can be reused by the call without being
counted; and it is the whole process, so it assumes nothing else runs in it at the time (one thread here) and that
nothing is swapped out. Within a process it repeats to a few percent; the process's history (what the heap holds, how
fragmented) moves it more: the same 8-prompt sweep on world-gpt2 read 15 MiB in a fresh process and 19 MiB after the
other tables had run.
"""

import ctypes
import gc
from pathlib import Path

_STATUS, _CLEAR_REFS = Path("/proc/self/status"), Path("/proc/self/clear_refs")


def _kib(field: str) -> int:
    for line in _STATUS.read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1])
    raise RuntimeError(f"no {field} in {_STATUS}")


def available() -> str | None:
    """None where the measurement works, else why it does not."""
    try:
        _CLEAR_REFS.write_text("5")
        ctypes.CDLL("libc.so.6").malloc_trim
        _kib("VmHWM")
    except (OSError, AttributeError, RuntimeError) as error:
        return f"no resetable resident-set peak here ({error})"
    return None


def peak_bytes(run, warm_up: bool = True) -> int:
    """The most bytes resident during `run()` above the resident set just before it, after a warm-up call (pass
    `warm_up=False` when `run` has already run in this process)."""
    if warm_up:
        run()
    gc.collect()
    ctypes.CDLL("libc.so.6").malloc_trim(0)  # free memory the allocator kept goes back, so reusing it counts
    _CLEAR_REFS.write_text("5")  # VmHWM := VmRSS
    before = _kib("VmRSS")
    result = run()
    peak = _kib("VmHWM")
    del result
    return max(0, peak - before) * 1024
