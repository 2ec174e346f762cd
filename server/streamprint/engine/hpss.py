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
        self._buffer = np.zeros((0, N_BINS), dtype=np.float32)
        self._base = 0  # absolute index of _buffer[0]
        self._seen = 0
        self._done = 0

    @property
    def frames_done(self) -> int:
        """Number of frames whose energies have been returned."""
        return self._done

    def push(self, mags: NDArray[np.float32]) -> tuple[NDArray[np.float64], NDArray[np.float64]]:
        """Add frames and return energies of frames now at least ``HALF`` frames old."""
        self._buffer = np.concatenate((self._buffer, mags.astype(np.float32, copy=False)))
        self._seen += mags.shape[0]
        return self._emit(self._seen - HALF, final=False)

    def finish(self) -> tuple[NDArray[np.float64], NDArray[np.float64]]:
        """Energies of the remaining frames, using the reflected end edge."""
        return self._emit(self._seen, final=True)

    def _emit(self, stop: int, *, final: bool) -> tuple[NDArray[np.float64], NDArray[np.float64]]:
        start = self._done
        if stop <= start:
            return np.zeros(0), np.zeros(0)
        wanted = np.arange(start - HALF, stop + HALF, dtype=np.int64)
        if final:
            wanted = reflect_indices(wanted, self._seen)
        else:
            wanted = np.where(wanted < 0, -wanted - 1, wanted)
        window = self._buffer[wanted - self._base]  # [stop-start+30, N_BINS]
        harmonic = sliding_median(window.T, KERNEL).T  # [k, N_BINS]
        centre = self._buffer[start - self._base : stop - self._base]
        padded = centre[:, reflect_indices(np.arange(-HALF, N_BINS + HALF, dtype=np.int64), N_BINS)]
        percussive = sliding_median(padded, KERNEL)
        energies = _masked_energies(centre, harmonic, percussive)
        self._done = stop
        keep_from = max(0, stop - HALF)
        self._buffer = self._buffer[keep_from - self._base :]
        self._base = keep_from
        return energies


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
