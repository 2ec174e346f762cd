"""Streaming harmonic/percussive separation (median-filter HPSS) with a fixed lag.

For magnitude spectra ``X[t, f]`` (frames x bins): the harmonic enhancement is the median
over 31 frames in time, the percussive one the median over 31 bins in frequency, both with
reflected edges; soft masks ``M_h = H^2 / (H^2 + P^2)`` (``M_p = 1 - M_h``; both 0 where
``H`` and ``P`` are ~0). A frame's harmonic energy is ``sum_f (M_h X)^2``, its percussive
energy ``sum_f (M_p X)^2``. This is librosa's ``decompose.hpss(kernel_size=31, power=2,
margin=1)`` on the same magnitudes.

The time median needs 15 frames of look-ahead, so a frame's energies are known 15 frames
(~0.35 s) after the frame arrives; ``finish`` completes the last 15 with the reflected
edge, which makes streaming in any chunking identical to one pass over everything.
"""

from __future__ import annotations

import numpy as np
from numpy.typing import NDArray

from streamprint.engine.grid import N_BINS
from streamprint.engine.lagwindow import LagWindow
from streamprint.engine.median import reflect_indices, sliding_median

KERNEL = 31
HALF = KERNEL // 2
_TINY = np.finfo(np.float32).tiny


class HarmonicPercussive:
    """Stateful HPSS over a stream of magnitude spectra.

    ``push(mags [m, N_BINS])`` returns ``(harmonic_energy [k], percussive_energy [k])`` for
    the ``k`` frames that became decidable (each once, in order); ``finish()`` returns the rest.
    """

    def __init__(self) -> None:
        self._window = LagWindow(HALF, N_BINS)

    @property
    def frames_done(self) -> int:
        """Number of frames whose energies have been returned."""
        return self._window.done

    def push(self, mags: NDArray[np.float32]) -> tuple[NDArray[np.float64], NDArray[np.float64]]:
        """Add frames and return energies of frames now at least ``HALF`` frames old."""
        self._window.push(mags)
        return self._emit(final=False)

    def finish(self) -> tuple[NDArray[np.float64], NDArray[np.float64]]:
        """Energies of the remaining frames, using the reflected end edge."""
        return self._emit(final=True)

    def _emit(self, *, final: bool) -> tuple[NDArray[np.float64], NDArray[np.float64]]:
        window = self._window.take(final=final)  # [k + 30, N_BINS]
        if window is None:
            return np.zeros(0), np.zeros(0)
        harmonic = sliding_median(window.T, KERNEL).T  # [k, N_BINS]
        centre = window[HALF:-HALF]
        padded = centre[:, reflect_indices(np.arange(-HALF, N_BINS + HALF, dtype=np.int64), N_BINS)]
        percussive = sliding_median(padded, KERNEL)
        return _masked_energies(centre, harmonic, percussive)


def _masked_energies(
    mags: NDArray[np.float32], harmonic: NDArray[np.float32], percussive: NDArray[np.float32]
) -> tuple[NDArray[np.float64], NDArray[np.float64]]:
    """Per-frame energies of the soft-masked harmonic and percussive parts, ``[k]`` each."""
    h = harmonic.astype(np.float64)
    p = percussive.astype(np.float64)
    z = np.maximum(h, p)
    good = z >= _TINY
    z = np.where(good, z, 1.0)
    hh = (h / z) ** 2
    pp = (p / z) ** 2
    denom = np.where(good, hh + pp, 1.0)
    mask_h = np.where(good, hh / denom, 0.0)
    mask_p = np.where(good, pp / denom, 0.0)
    x2 = mags.astype(np.float64) ** 2
    return np.sum(mask_h**2 * x2, axis=1), np.sum(mask_p**2 * x2, axis=1)
