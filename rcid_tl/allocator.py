"""The C allocator's settings for long CPU runs: keep freed memory for reuse instead of handing it back at once.

A sweep allocates and frees tens of MiB per block (each chunk's activations). glibc's malloc maps large blocks
afresh and trims its heap's free top as soon as it passes a threshold, so the next chunk's allocations touch new
pages, and each first touch is a page fault: 22,000–45,000 a sweep of world-gpt2's every head at every position, up
to a quarter of its time (`experiments/bench_allocator.py` measures it in fresh processes). Raising the two
thresholds keeps up to `RETAIN` bytes of freed memory in the process for the next chunk; blocks larger than
`MAP_ABOVE` are still mapped apart and handed back when freed. The cost: the process's resident memory shrinks more
slowly after a peak.

The command line sets this once per process; a notebook or script opts in with `keep_freed_memory()`. Only glibc
has these settings; elsewhere this does nothing.
"""

import ctypes
import functools

RETAIN = 256 << 20  # bytes of freed memory at the heap's top kept for reuse (glibc's M_TRIM_THRESHOLD)
MAP_ABOVE = 64 << 20  # blocks at least this big are mapped apart and handed back when freed (M_MMAP_THRESHOLD)
_M_TRIM_THRESHOLD, _M_MMAP_THRESHOLD = -1, -3  # glibc's malloc.h


@functools.cache
def keep_freed_memory() -> bool:
    """Set glibc's malloc to keep freed memory for reuse (see the module docstring), once per process. True where it
    took effect, False where the C library is not glibc."""
    try:  # the C library the process already runs on (finding it by name would spawn `ldconfig` at every start)
        mallopt = ctypes.CDLL(None).mallopt
    except (OSError, AttributeError):
        return False
    return bool(mallopt(_M_MMAP_THRESHOLD, MAP_ABOVE)) and bool(mallopt(_M_TRIM_THRESHOLD, RETAIN))
