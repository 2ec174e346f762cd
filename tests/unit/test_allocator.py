"""glibc malloc tuning at process start: applied by default, skipped when the user tunes
malloc through glibc's own variables or opts out."""

from __future__ import annotations

import subprocess
import sys

import pytest

from streamprint import allocator


def test_opt_out_and_user_malloc_variables_are_respected() -> None:
    assert allocator.tune_allocator({allocator.OPT_OUT_VARIABLE: "0"}) is False
    assert allocator.tune_allocator({"MALLOC_ARENA_MAX": "2"}) is False


_FAULTS = """
import resource, sys
import numpy as np
from streamprint.allocator import tune_allocator
assert tune_allocator() == (sys.argv[1] == "tuned")
def cycle():
    arrays = [np.ones(2 << 20) for _ in range(3)]  # 3 x 16 MB, all freed at once
    del arrays
cycle()  # the first allocations fault their pages in once, tuned or not
before = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
for _ in range(10):
    cycle()
print(resource.getrusage(resource.RUSAGE_SELF).ru_minflt - before)
"""


def _faults(mode: str) -> int:
    env = {"PATH": "/usr/bin:/bin", "PYTHONPATH": ":".join(sys.path)}
    if mode != "tuned":
        env[allocator.OPT_OUT_VARIABLE] = "0"
    proc = subprocess.run([sys.executable, "-c", _FAULTS, mode], capture_output=True, text=True, check=True, env=env)
    return int(proc.stdout.strip())


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="glibc mallopt")
def test_recycled_temporaries_fault_no_new_pages() -> None:
    """glibc's default trims memory freed at the heap's top past its dynamic trim threshold
    (2x the largest freed mmap chunk), so the cycles fault pages in again (about 10 000
    faults over 10 cycles here); tuned, the memory stays mapped and is reused (none)."""
    default, tuned = _faults("default"), _faults("tuned")
    assert default > 5000, default
    assert tuned < 500, tuned
