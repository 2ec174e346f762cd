"""Fixed filterbanks on the analysis grid (mel, chroma, bands).

Each is a matrix applied to per-frame power or magnitude spectra ``[n_frames, N_BINS]``.
The mel and chroma banks follow librosa's definitions (Slaney mel scale with Slaney area
normalisation; Ellis' Gaussian chroma bank, A440 tuning, centre octave 5 with width 2,
L2-normalised per bin, starting at C) so librosa is a valid reference in the tests.
"""

from __future__ import annotations

from functools import cache

import numpy as np
from numpy.typing import NDArray

from streamprint.engine.grid import ANALYSIS_RATE, BIN_FREQUENCIES, FRAME_LENGTH

N_MELS = 128
N_CHROMA = 12

#: Band name -> (low Hz, high Hz); the last band ends at the analysis Nyquist.
BANDS: dict[str, tuple[float, float]] = {
    "band_sub_bass": (20.0, 60.0),
    "band_bass": (60.0, 250.0),
    "band_low_mid": (250.0, 500.0),
    "band_mid": (500.0, 2_000.0),
    "band_upper_mid": (2_000.0, 4_000.0),
    "band_presence": (4_000.0, 6_000.0),
    "band_air": (6_000.0, ANALYSIS_RATE / 2.0),
}


def _hz_to_mel(hz: NDArray[np.float64]) -> NDArray[np.float64]:
    """Slaney mel scale: linear below 1 kHz, logarithmic above."""
    f_sp = 200.0 / 3.0
    min_log_hz = 1000.0
    min_log_mel = min_log_hz / f_sp
    logstep = np.log(6.4) / 27.0
    mel = hz / f_sp
    high = hz >= min_log_hz
    mel[high] = min_log_mel + np.log(hz[high] / min_log_hz) / logstep
    return mel


def _mel_to_hz(mel: NDArray[np.float64]) -> NDArray[np.float64]:
    """Inverse of :func:`_hz_to_mel`."""
    f_sp = 200.0 / 3.0
    min_log_hz = 1000.0
    min_log_mel = min_log_hz / f_sp
    logstep = np.log(6.4) / 27.0
    hz = f_sp * mel
    high = mel >= min_log_mel
    hz[high] = min_log_hz * np.exp(logstep * (mel[high] - min_log_mel))
    return hz


@cache
def mel_bank() -> NDArray[np.float32]:
    """Mel filterbank ``[N_BINS, N_MELS]`` (0 Hz to Nyquist, Slaney-normalised triangles)."""
    edges_mel = np.linspace(
        _hz_to_mel(np.array([0.0]))[0], _hz_to_mel(np.array([ANALYSIS_RATE / 2.0]))[0], N_MELS + 2
    )
    edges = _mel_to_hz(edges_mel)
    widths = np.diff(edges)
    ramps = edges[:, None] - BIN_FREQUENCIES[None, :]
    weights = np.zeros((N_MELS, BIN_FREQUENCIES.shape[0]))
    for i in range(N_MELS):
        lower = -ramps[i] / widths[i]
        upper = ramps[i + 2] / widths[i + 1]
        weights[i] = np.maximum(0.0, np.minimum(lower, upper))
    weights *= (2.0 / (edges[2 : N_MELS + 2] - edges[:N_MELS]))[:, None]
    return np.ascontiguousarray(weights.T, dtype=np.float32)


@cache
def chroma_bank() -> NDArray[np.float32]:
    """Chroma filterbank ``[N_BINS, 12]`` (pitch classes C, C#, ..., B)."""
    n_fft = FRAME_LENGTH
    freqs = np.linspace(0, ANALYSIS_RATE, n_fft, endpoint=False)[1:]
    octs = np.log2(freqs / (440.0 / 16.0))
    bins = N_CHROMA * octs
    bins = np.concatenate(([bins[0] - 1.5 * N_CHROMA], bins))
    bin_widths = np.concatenate((np.maximum(bins[1:] - bins[:-1], 1.0), [1.0]))
    dist = np.subtract.outer(bins, np.arange(0, N_CHROMA, dtype=np.float64)).T
    half = np.round(N_CHROMA / 2.0)
    dist = np.remainder(dist + half + 10 * N_CHROMA, N_CHROMA) - half
    weights = np.exp(-0.5 * (2.0 * dist / np.tile(bin_widths, (N_CHROMA, 1))) ** 2)
    weights /= np.maximum(np.sqrt(np.sum(weights**2, axis=0, keepdims=True)), np.finfo(np.float64).tiny)
    weights *= np.tile(np.exp(-0.5 * (((bins / N_CHROMA - 5.0) / 2.0) ** 2)), (N_CHROMA, 1))
    weights = np.roll(weights, -3, axis=0)
    return np.ascontiguousarray(weights[:, : n_fft // 2 + 1].T, dtype=np.float32)


@cache
def band_bank() -> NDArray[np.float32]:
    """Indicator matrix ``[N_BINS, 8]``: the seven bands, then the 20 Hz-Nyquist total.

    A bin belongs to a band when ``low <= f < high`` (the last band includes Nyquist).
    """
    f = BIN_FREQUENCIES
    cols = []
    for low, high in BANDS.values():
        upper = f <= high if high >= ANALYSIS_RATE / 2.0 else f < high
        cols.append((f >= low) & upper)
    cols.append(f >= 20.0)
    return np.stack(cols, axis=1).astype(np.float32)
