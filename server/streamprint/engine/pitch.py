"""YIN fundamental-frequency estimation per frame (de Cheveigné & Kawahara 2002).

Per frame of 2048 analysis samples: the difference function over lags
``tau in [MIN_PERIOD, MAX_PERIOD]`` from the frame's autocorrelation, cumulative-mean
normalisation, the first local minimum below ``TROUGH_THRESHOLD`` (else the global minimum),
parabolic interpolation. A frame is *voiced* when such a trough below the threshold exists.
This is librosa's ``yin(fmin=65.4, fmax=2093, frame_length=2048, center=False)``.
"""

from __future__ import annotations

import math

import numpy as np
from numpy.typing import NDArray

from streamprint.engine.grid import ANALYSIS_RATE, FRAME_LENGTH

F_MIN = 65.40639132514966  # C2
F_MAX = 2093.004522404789  # C7
MIN_PERIOD = math.floor(ANALYSIS_RATE / F_MAX)
MAX_PERIOD = min(math.ceil(ANALYSIS_RATE / F_MIN), FRAME_LENGTH - 1)
TROUGH_THRESHOLD = 0.1


def _fast_fft_size(minimum: int) -> int:
    """The smallest ``2^a 3^b 5^c >= minimum`` (sizes pocketfft transforms fastest)."""
    best = 1 << (minimum - 1).bit_length()
    power5 = 1
    while power5 < best:
        power3 = power5
        while power3 < best:
            size = power3
            while size < minimum:
                size *= 2
            best = min(best, size)
            power3 *= 3
        power5 *= 5
    return best


#: Autocorrelation by FFT needs ``FRAME_LENGTH + MAX_PERIOD`` points to keep the lags up
#: to ``MAX_PERIOD`` free of wrap-around (2400 here, where ``2 * FRAME_LENGTH`` would be
#: 4096: the same lags, 40 % less work).
ACF_FFT_SIZE = _fast_fft_size(FRAME_LENGTH + MAX_PERIOD)


def cmnd(frames: NDArray[np.float32]) -> NDArray[np.float64]:
    """Cumulative mean normalised difference ``[n, MAX_PERIOD - MIN_PERIOD + 1]``.

    ``d(k) = 2 (r(0) - r(k)) - sum_{m<k} y[m]^2`` with ``r`` the frame's autocorrelation,
    normalised by its running mean over ``k = 1..tau``.
    """
    y = frames.astype(np.float64)
    spectrum = np.fft.rfft(y, ACF_FFT_SIZE, axis=1)
    acf = np.fft.irfft(spectrum.real**2 + spectrum.imag**2, ACF_FFT_SIZE, axis=1)
    acf = acf[:, : MAX_PERIOD + 1]
    energy = np.cumsum(y[:, :MAX_PERIOD] ** 2, axis=1)
    diff = np.zeros((y.shape[0], MAX_PERIOD + 1))
    diff[:, 1:] = 2.0 * (acf[:, :1] - acf[:, 1:]) - energy
    numerator = diff[:, MIN_PERIOD : MAX_PERIOD + 1]
    cumulative = np.cumsum(diff[:, 1:], axis=1) / np.arange(1, MAX_PERIOD + 1)
    denominator = cumulative[:, MIN_PERIOD - 1 : MAX_PERIOD]
    result: NDArray[np.float64] = numerator / (denominator + np.finfo(np.float64).tiny)
    return result


def yin(frames: NDArray[np.float32]) -> tuple[NDArray[np.float64], NDArray[np.bool_]]:
    """f0 in Hz ``[n]`` and voicing ``[n]`` for frames ``[n, FRAME_LENGTH]``."""
    n = frames.shape[0]
    if n == 0:
        return np.zeros(0), np.zeros(0, dtype=bool)
    d = cmnd(frames)
    is_trough = np.zeros_like(d, dtype=bool)
    is_trough[:, 1:-1] = (d[:, 1:-1] < d[:, :-2]) & (d[:, 1:-1] <= d[:, 2:])
    is_trough[:, 0] = d[:, 0] < d[:, 1]
    below = is_trough & (d < TROUGH_THRESHOLD)
    voiced = below.any(axis=1)
    period = np.where(voiced, np.argmax(below, axis=1), np.argmin(d, axis=1))
    lag = MIN_PERIOD + period + _parabolic_shift_at(d, period)
    f0: NDArray[np.float64] = ANALYSIS_RATE / lag
    return f0, np.asarray(voiced, dtype=bool)


def unvoiced(n: int) -> tuple[NDArray[np.float64], NDArray[np.bool_]]:
    """What an analyzer that skips YIN reports: f0 0 Hz and unvoiced, ``[n]`` each."""
    return np.zeros(n), np.zeros(n, dtype=bool)


def _parabolic_shift_at(d: NDArray[np.float64], index: NDArray[np.intp]) -> NDArray[np.float64]:
    """Sub-sample offset ``[n]`` of row ``r``'s extremum at ``index[r]`` by a parabola through
    3 points (0 at the row's ends, where there is no neighbour on one side)."""
    inner = (index > 0) & (index < d.shape[1] - 1)
    at = np.clip(index, 1, d.shape[1] - 2)[:, np.newaxis]
    left = np.take_along_axis(d, at - 1, axis=1)[:, 0]
    mid = np.take_along_axis(d, at, axis=1)[:, 0]
    right = np.take_along_axis(d, at + 1, axis=1)[:, 0]
    a = right + left - 2.0 * mid
    b = (right - left) / 2.0
    with np.errstate(divide="ignore", invalid="ignore"):
        shift = np.where(np.abs(b) >= np.abs(a), 0.0, -b / a)
    return np.where(inner, np.nan_to_num(shift), 0.0)
