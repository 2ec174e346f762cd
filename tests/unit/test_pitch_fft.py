"""YIN's shorter autocorrelation FFT: the same lags as the 2 * FRAME_LENGTH transform."""

from __future__ import annotations

import numpy as np
import pytest

from streamprint.engine import pitch
from streamprint.engine.grid import ANALYSIS_RATE, FRAME_LENGTH


def _smooth(n: int) -> bool:
    for p in (2, 3, 5):
        while n % p == 0:
            n //= p
    return n == 1


@pytest.mark.parametrize("minimum", [1, 2, 7, 97, 1000, 2386, 4097])
def test_fast_fft_size_is_the_smallest_5_smooth_size(minimum: int) -> None:
    expected = next(n for n in range(minimum, 4 * minimum + 2) if _smooth(n))
    assert pitch._fast_fft_size(minimum) == expected


def test_acf_size_leaves_every_lag_free_of_wrap_around() -> None:
    assert pitch.ACF_FFT_SIZE >= FRAME_LENGTH + pitch.MAX_PERIOD
    assert pitch.ACF_FFT_SIZE < 2 * FRAME_LENGTH


def _yin_with_full_fft(frames: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The definition with the 2 * FRAME_LENGTH transform and parabolas everywhere."""
    y = frames.astype(np.float64)
    spectrum = np.fft.rfft(y, 2 * FRAME_LENGTH, axis=1)
    acf = np.fft.irfft(spectrum.real**2 + spectrum.imag**2, 2 * FRAME_LENGTH, axis=1)[:, : pitch.MAX_PERIOD + 1]
    energy = np.cumsum(y[:, : pitch.MAX_PERIOD] ** 2, axis=1)
    diff = np.zeros((y.shape[0], pitch.MAX_PERIOD + 1))
    diff[:, 1:] = 2.0 * (acf[:, :1] - acf[:, 1:]) - energy
    cumulative = np.cumsum(diff[:, 1:], axis=1) / np.arange(1, pitch.MAX_PERIOD + 1)
    d = diff[:, pitch.MIN_PERIOD :] / (cumulative[:, pitch.MIN_PERIOD - 1 :] + np.finfo(np.float64).tiny)
    is_trough = np.zeros_like(d, dtype=bool)
    is_trough[:, 1:-1] = (d[:, 1:-1] < d[:, :-2]) & (d[:, 1:-1] <= d[:, 2:])
    is_trough[:, 0] = d[:, 0] < d[:, 1]
    below = is_trough & (d < pitch.TROUGH_THRESHOLD)
    voiced = below.any(axis=1)
    period = np.where(voiced, np.argmax(below, axis=1), np.argmin(d, axis=1))
    shifts = np.zeros_like(d)
    left, mid, right = d[:, :-2], d[:, 1:-1], d[:, 2:]
    a = right + left - 2.0 * mid
    b = (right - left) / 2.0
    with np.errstate(divide="ignore", invalid="ignore"):
        shifts[:, 1:-1] = np.nan_to_num(np.where(np.abs(b) >= np.abs(a), 0.0, -b / a))
    lag = pitch.MIN_PERIOD + period + shifts[np.arange(len(d)), period]
    return ANALYSIS_RATE / lag, voiced


def test_yin_equals_the_full_transform_definition() -> None:
    rng = np.random.default_rng(11)
    t = np.arange(FRAME_LENGTH) / ANALYSIS_RATE
    tones = np.sin(2 * np.pi * rng.uniform(60.0, 2200.0, (60, 1)) * t)
    chords = tones[:30] + 0.5 * np.sin(2 * np.pi * rng.uniform(60.0, 2200.0, (30, 1)) * t)
    frames = np.concatenate([rng.standard_normal((60, FRAME_LENGTH)), tones, chords, np.zeros((2, FRAME_LENGTH))])
    f0, voiced = pitch.yin(frames.astype(np.float32))
    ref_f0, ref_voiced = _yin_with_full_fft(frames.astype(np.float32))
    assert np.array_equal(voiced, ref_voiced)
    assert np.allclose(f0, ref_f0, rtol=1e-12, atol=0.0)
