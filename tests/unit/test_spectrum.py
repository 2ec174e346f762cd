"""The shared power spectrum: numpy's definition to float32 rounding, a 440 Hz sine's peak
where it belongs, and each row's bits independent of the rows beside it."""

from __future__ import annotations

import numpy as np
import pytest
from child import python_stdout

from streamprint.engine import spectrum as spectrum_module
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


@pytest.mark.parametrize("rows", [1, 43, 384])
def test_the_standalone_pocketfft_is_scipy_fft_bit_for_bit(rows: int) -> None:
    """The transform is scipy's own extension called as ``scipy.fft.rfft`` calls it: the
    same bits, without the package's import cost."""
    import scipy.fft

    assert spectrum_module.rfft_rows.__name__ == "standalone"
    x = np.random.default_rng(rows).standard_normal((rows, 2048)).astype(np.float32)
    got = spectrum_module.rfft_rows(x.copy())
    assert got.dtype == np.complex64
    assert np.array_equal(got, scipy.fft.rfft(x, axis=1))


def test_without_the_standalone_extension_it_falls_back_to_scipy_fft(monkeypatch: pytest.MonkeyPatch) -> None:
    import scipy.fft

    monkeypatch.setattr(spectrum_module, "_standalone_pocketfft", lambda: None)
    transform = spectrum_module._row_transform()
    assert transform.__name__ == "packaged"
    x = np.random.default_rng(1).standard_normal((5, 2048)).astype(np.float32)
    assert np.array_equal(transform(x.copy()), scipy.fft.rfft(x, axis=1))


def test_the_power_spectrum_does_not_import_the_scipy_fft_package() -> None:
    """``import scipy.fft`` costs a server process about 15 MB resident."""
    code = (
        "import sys, numpy as np\n"
        "from streamprint.engine.spectrum import power_spectrum\n"
        "power_spectrum(np.ones((2, 2048), np.float32))\n"
        "print(sorted(m for m in sys.modules if m.startswith('scipy')))\n"
    )
    assert python_stdout(code).strip() == "[]"
