"""The shared power spectrum: numpy's definition to float32 rounding, a 440 Hz sine's peak
where it belongs, and each row's bits independent of the rows beside it."""

from __future__ import annotations

import numpy as np

from streamprint.engine.grid import ANALYSIS_RATE, BIN_FREQUENCIES, FRAME_LENGTH
from streamprint.engine.spectrum import WINDOW, power_spectrum


def _frames(n: int, seed: int = 0) -> np.ndarray:
    return (0.3 * np.random.default_rng(seed).standard_normal((n, FRAME_LENGTH))).astype(np.float32)


def test_matches_numpy_rfft_to_float32_rounding() -> None:
    frames = _frames(23)
    spectrum = np.fft.rfft(frames.astype(np.float64) * np.hanning(FRAME_LENGTH + 1)[:-1], axis=1)
    reference = spectrum.real**2 + spectrum.imag**2
    got = power_spectrum(frames)
    assert got.dtype == np.float32 and got.shape == (23, FRAME_LENGTH // 2 + 1) and got.flags.c_contiguous
    scale = reference.max(axis=1, keepdims=True)
    assert np.max(np.abs(got - reference) / scale) < 1e-5


def test_sine_peaks_at_its_bin() -> None:
    t = np.arange(FRAME_LENGTH) / ANALYSIS_RATE
    frame = (0.5 * np.sin(2 * np.pi * 440.0 * t)).astype(np.float32)[None, :]
    peak = BIN_FREQUENCIES[int(np.argmax(power_spectrum(frame)[0]))]
    assert abs(peak - 440.0) <= ANALYSIS_RATE / FRAME_LENGTH / 2


def test_rows_do_not_depend_on_their_neighbours() -> None:
    """Batching frames of several streams into one call must not move a frame's bits."""
    frames = _frames(37, seed=3)
    together = power_spectrum(frames)
    for start, stop in ((0, 1), (5, 6), (3, 11), (8, 37), (36, 37)):
        assert np.array_equal(power_spectrum(frames[start:stop].copy()), together[start:stop])


def test_does_not_modify_its_input_or_the_window() -> None:
    frames = _frames(4)
    before = frames.copy()
    power_spectrum(frames)
    assert np.array_equal(frames, before)
    assert not WINDOW.flags.writeable
