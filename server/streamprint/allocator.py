"""Process-wide tuning of glibc's malloc for the engine's numpy temporaries.

The per-frame work allocates and frees arrays of 0.1-10 MB many times per second (a batch of
48 spectra is 0.4 MB in float64, a 30 s block of stereo 10 MB). glibc serves such sizes by
``mmap`` (every allocation is fresh pages, zeroed by the kernel on first touch) or from a
heap whose top it trims back to the kernel as soon as 2x the dynamic mmap threshold is
free, so the same memory is faulted in again on the next batch. On this machine the page
faults doubled the cost of YIN's FFT step in isolation, and the server spent about 8 % more
CPU at 64 streams.

:func:`tune_allocator` fixes the mmap threshold at 32 MB and the trim threshold at 128 MB
(``mallopt``): temporaries are recycled from the heap, and up to 128 MB of free memory at
a heap's top stays mapped before it is returned. The bound is per malloc arena (glibc gives
threads up to 8 arenas per core), so a process can hold more freed memory than that in
the worst case; the measured cost was small (RSS +5 MB at 64 streams, within the 500 MB
target through 96 streams, and the killed-clients memory test holds). It runs at the start of ``streamprint
serve`` (every worker) and ``streamprint fingerprint``. It does nothing when the user
tunes malloc through glibc's own ``MALLOC_*`` variables or ``GLIBC_TUNABLES=glibc.malloc.*``,
when
``STREAMPRINT_MALLOC_TUNING=0``, or on a C library without ``mallopt``.

Freed memory *inside* a heap (not at its top) is not returned by the trim threshold: the
long-lived state of hundreds of live sessions sits between the recycled temporaries, and
the holes stay resident. A tuned server therefore calls glibc's ``malloc_trim(0)`` every
:data:`TRIM_INTERVAL_S` seconds (:func:`trim_periodically`), which gives whole free pages
anywhere in the heaps back to the kernel (``madvise``). Measured through the data plane
with 64 live streams: 163 -> 150 MB RSS, about 2 ms per call with the GIL released; the
temporaries then fault in again once per interval, not per batch.
"""

from __future__ import annotations

import ctypes
import logging
import os
from collections.abc import Mapping

#: mallopt parameters (glibc malloc.h).
_M_TRIM_THRESHOLD = -1
_M_MMAP_THRESHOLD = -3
MMAP_THRESHOLD_BYTES = 32 * 1024 * 1024
TRIM_THRESHOLD_BYTES = 128 * 1024 * 1024
OPT_OUT_VARIABLE = "STREAMPRINT_MALLOC_TUNING"
#: Seconds between two ``malloc_trim(0)`` calls of a tuned server (see the module docstring).
TRIM_INTERVAL_S = 10.0

log = logging.getLogger("streamprint.allocator")


def tune_allocator(environ: Mapping[str, str] | None = None) -> bool:
    """Apply the thresholds above; True when they were applied (see the module docstring)."""
    env: Mapping[str, str] = os.environ if environ is None else environ
    if env.get(OPT_OUT_VARIABLE, "1") == "0" or any(name.startswith("MALLOC_") for name in env):
        return False
    if "glibc.malloc." in env.get("GLIBC_TUNABLES", ""):
        return False
    try:
        mallopt = ctypes.CDLL(None).mallopt
    except (OSError, AttributeError):  # not glibc (e.g. musl, macOS)
        return False
    mallopt.argtypes = [ctypes.c_int, ctypes.c_int]
    mallopt.restype = ctypes.c_int
    applied: bool = mallopt(_M_MMAP_THRESHOLD, MMAP_THRESHOLD_BYTES) == 1
    applied = mallopt(_M_TRIM_THRESHOLD, TRIM_THRESHOLD_BYTES) == 1 and applied
    if not applied:
        log.debug("mallopt refused the thresholds; malloc keeps its defaults")
    return applied


def trim_free_memory() -> bool:
    """Return free heap pages to the kernel (glibc ``malloc_trim(0)``); True when some were.

    False, doing nothing, on a C library without ``malloc_trim``.
    """
    try:
        malloc_trim = ctypes.CDLL(None).malloc_trim
    except (OSError, AttributeError):
        return False
    malloc_trim.argtypes = [ctypes.c_size_t]
    malloc_trim.restype = ctypes.c_int
    return bool(malloc_trim(0))


async def trim_periodically(interval_s: float = TRIM_INTERVAL_S) -> None:
    """:func:`trim_free_memory` every ``interval_s`` seconds until cancelled (a server task)."""
    import asyncio  # here: the CLI imports this module and must not pay for asyncio

    while True:
        await asyncio.sleep(interval_s)
        trim_free_memory()
