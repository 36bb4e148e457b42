"""`keep_freed_memory`: after it, a large block freed and allocated again is reused, not faulted in afresh. Measured in
fresh processes (the setting is per process and cannot be undone), with minor page faults as the observable."""

import platform
import subprocess
import sys

import pytest

# allocate, touch and free a 48 MiB block once, then four more times; print the faults per repeat
CYCLES = """
import resource, sys
if sys.argv[1] == "keep":
    from rcid_tl.allocator import keep_freed_memory
    assert keep_freed_memory()
faults = lambda: resource.getrusage(resource.RUSAGE_SELF).ru_minflt
block = bytearray(48 << 20); del block
before = faults()
for _ in range(4):
    block = bytearray(48 << 20); del block
print((faults() - before) // 4)
"""
PAGES = (48 << 20) // 4096


def _faults_per_cycle(mode: str) -> int:
    return int(subprocess.run([sys.executable, "-c", CYCLES, mode], capture_output=True, text=True,
                              check=True).stdout)


@pytest.mark.skipif(platform.system() != "Linux" or platform.libc_ver()[0] != "glibc", reason="glibc's malloc only")
def test_freed_memory_is_reused_instead_of_faulted_in():
    assert _faults_per_cycle("default") >= PAGES // 2  # glibc maps a block this big afresh each time
    assert _faults_per_cycle("keep") < PAGES // 20
