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


_HOLES = """
import numpy as np
from streamprint.allocator import trim_free_memory, tune_allocator
def rss():
    return int([l for l in open('/proc/self/status') if l.startswith('VmRSS')][0].split()[1]) / 1024
assert tune_allocator()
arrays = [np.ones(1 << 17) for _ in range(400)]  # 400 x 1 MB on the heap (below the mmap threshold)
kept = arrays[9::10]  # every tenth stays alive: the freed ones are holes, not the heap's top
del arrays
before = rss()
released = trim_free_memory()
print(released, round(before - rss()))
"""


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="glibc malloc_trim")
def test_trim_returns_the_holes_between_live_arrays() -> None:
    """Tuned, memory freed between long-lived arrays stays resident; malloc_trim gives its
    pages back (what a server does every TRIM_INTERVAL_S seconds)."""
    env = {"PATH": "/usr/bin:/bin", "PYTHONPATH": ":".join(sys.path)}
    proc = subprocess.run([sys.executable, "-c", _HOLES], capture_output=True, text=True, check=True, env=env)
    released, freed_mb = proc.stdout.split()
    assert released == "True" and int(freed_mb) > 250, proc.stdout


def test_trim_periodically_trims_until_cancelled(monkeypatch: pytest.MonkeyPatch) -> None:
    import asyncio

    calls: list[int] = []
    monkeypatch.setattr(allocator, "trim_free_memory", lambda: calls.append(1) or True)

    async def run() -> None:
        task = asyncio.ensure_future(allocator.trim_periodically(0.01))
        await asyncio.sleep(0.1)
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task

    asyncio.run(run())
    assert 3 <= len(calls) <= 12
