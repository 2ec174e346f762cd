"""The analysis frames' power spectrum, shared by every backend and the quantize script.

``|rfft(hann * x)|^2`` of 2048-sample frames, in single precision, with scipy's pocketfft:
it transforms several rows at once with SIMD, faster than ``numpy.fft.rfft`` (which loops
over rows) on the dev machine: about 1.6x for a live update's 43 frames
(``scripts/bench_runtime.py`` reports both) and 3x for a batch call's 384 (window multiply
included). Importing ``scipy.fft`` costs a server process about 13.5 MB. Every
analyzer calls this one function, so magnitudes (and everything built on them: HPSS, the
model inputs) are the same bits on every backend.
"""

from __future__ import annotations

import numpy as np
import scipy.fft
from numpy.typing import NDArray

from streamprint.engine.grid import FRAME_LENGTH

#: The periodic Hann window ``[FRAME_LENGTH]`` float32 (librosa's ``window="hann"``).
WINDOW: NDArray[np.float32] = np.hanning(FRAME_LENGTH + 1)[:-1].astype(np.float32)
WINDOW.setflags(write=False)


def power_spectrum(frames: NDArray[np.float32]) -> NDArray[np.float32]:
    """Power ``|rfft(WINDOW * frame)|^2`` float32 ``[n, 1025]`` (C order) of frames
    ``[n, FRAME_LENGTH]`` float32, in single precision."""
    spectrum = scipy.fft.rfft(np.multiply(frames, WINDOW, dtype=np.float32), axis=1, overwrite_x=True)
    power: NDArray[np.float32] = np.square(spectrum.real)
    power += np.square(spectrum.imag)
    return power
