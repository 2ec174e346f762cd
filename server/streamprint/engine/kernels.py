"""The engine's compiled (numba) kernels, loaded in one call.

numba's first dispatch in a process costs about half a second (on a machine's very first
run, compiling and caching the kernels: several seconds); later calls cost nothing extra.
:func:`warm_up` pays that up front: the server before it starts serving, the CLI on a
thread while the media decodes, ``make setup`` once per checkout (to fill numba's cache).
"""

from __future__ import annotations

from streamprint.engine import iir, median, pitch


def warm_up() -> None:
    """Load every compiled kernel: the K-weighting pass, YIN, the sliding median (HPSS)."""
    iir.warm_up()
    pitch.warm_up()
    median.warm_up()
