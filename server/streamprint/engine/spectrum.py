"""The analysis frames' power spectrum, shared by every backend and the quantize script.

``|rfft(hann * x)|^2`` of 2048-sample frames, in single precision, with scipy's pocketfft:
it transforms several rows at once with SIMD, faster than ``numpy.fft.rfft`` (which loops
over rows): 5.6x for a live update's 43 frames and 4.4x for a batch call's 384 on the dev
machine (numpy 2.4, scipy 1.17; ``scripts/bench_runtime.py`` reports both). Every analyzer
calls this one function, so magnitudes (and everything built on them: HPSS, the model
inputs) are the same bits on every backend.

The transform is scipy's compiled ``pypocketfft`` extension, loaded on its own
(:func:`_standalone_pocketfft`), with the arguments ``scipy.fft.rfft`` passes it: the same
function, so the same bits. ``import scipy.fft`` itself costs a server process about 15 MB
resident (measured in a worker-like process, 108.9 against 93.9 MB): its Python layer
pulls in the array-API shims, ``numpy.testing``, ``unittest`` and ``pydoc``. If the
extension cannot be loaded that way, or fails a check against ``numpy.fft`` on load, the
module falls back to ``scipy.fft.rfft``.
"""

from __future__ import annotations

import importlib.machinery
import importlib.util
from collections.abc import Callable
from functools import cache
from pathlib import Path
from types import ModuleType

import numpy as np
from numpy.typing import NDArray

from streamprint.engine.grid import FRAME_LENGTH

#: ``rfft(x)`` along axis 1 of a float32 ``[n, m]`` array: complex64 ``[n, m // 2 + 1]``.
RowTransform = Callable[[NDArray[np.float32]], NDArray[np.complex64]]


@cache
def _standalone_pocketfft() -> ModuleType | None:
    """scipy's ``scipy/fft/_pocketfft/pypocketfft`` extension module, loaded from its file
    without importing the ``scipy.fft`` package (nor registering it in ``sys.modules``);
    ``None`` if scipy or the file is not where it should be, or it does not load."""
    spec = importlib.util.find_spec("scipy")  # finds the package; imports nothing
    if spec is None or not spec.submodule_search_locations:
        return None
    folder = Path(next(iter(spec.submodule_search_locations))) / "fft" / "_pocketfft"
    for suffix in importlib.machinery.EXTENSION_SUFFIXES:
        path = folder / f"pypocketfft{suffix}"
        if not path.is_file():
            continue
        loader = importlib.machinery.ExtensionFileLoader("pypocketfft", str(path))
        module_spec = importlib.util.spec_from_file_location("pypocketfft", path, loader=loader)
        if module_spec is None:
            return None
        try:
            module = importlib.util.module_from_spec(module_spec)
            loader.exec_module(module)
        except (ImportError, OSError):
            return None
        return module
    return None


def _row_transform() -> RowTransform:
    """The standalone extension's ``r2c`` as ``scipy.fft.rfft(x, axis=1)`` calls it
    (forward, no normalisation, one thread), if it matches ``numpy.fft.rfft`` on a probe;
    else ``scipy.fft.rfft`` itself."""
    module = _standalone_pocketfft()
    if module is not None:

        def standalone(x: NDArray[np.float32]) -> NDArray[np.complex64]:
            out: NDArray[np.complex64] = module.r2c(x, (1,), True, 0, None, 1)
            return out

        probe = np.random.default_rng(0).standard_normal((3, 64)).astype(np.float32)
        try:
            got = standalone(probe)
            if got.dtype == np.complex64 and np.allclose(got, np.fft.rfft(probe, axis=1), atol=1e-4):
                return standalone
        except (TypeError, ValueError, RuntimeError):
            pass
    import scipy.fft

    def packaged(x: NDArray[np.float32]) -> NDArray[np.complex64]:
        out: NDArray[np.complex64] = scipy.fft.rfft(x, axis=1, overwrite_x=True)
        return out

    return packaged


#: The transform :func:`power_spectrum` uses (see the module docstring).
rfft_rows: RowTransform = _row_transform()

#: ``rfft(x, axis=1)`` of a float64 ``[n, m]`` array: complex128 ``[n, m // 2 + 1]``.
RowTransform64 = Callable[[NDArray[np.float64]], NDArray[np.complex128]]
#: ``irfft(x, size, axis=1)`` of a complex128 ``[n, size // 2 + 1]`` array: float64 ``[n, size]``.
InverseRowTransform64 = Callable[[NDArray[np.complex128], int], NDArray[np.float64]]


def _float64_row_transforms() -> tuple[RowTransform64, InverseRowTransform64]:
    """``(rfft, irfft)`` along axis 1 in double precision (YIN's lags, :mod:`pitch`): the
    standalone extension's ``r2c`` / ``c2r`` (one thread; ``irfft`` scaled by ``1 / size``),
    if they give ``numpy.fft``'s bits on a probe (numpy 2 runs the same pocketfft code, but
    loops over rows where the extension transforms several at once: about 25 % faster for
    YIN's 1024-point rows); else ``numpy.fft`` itself."""

    def numpy_forward(x: NDArray[np.float64]) -> NDArray[np.complex128]:
        return np.fft.rfft(x, axis=1)

    def numpy_inverse(x: NDArray[np.complex128], size: int) -> NDArray[np.float64]:
        return np.fft.irfft(x, size, axis=1)

    module = _standalone_pocketfft()
    if module is None:
        return numpy_forward, numpy_inverse

    def forward(x: NDArray[np.float64]) -> NDArray[np.complex128]:
        out: NDArray[np.complex128] = module.r2c(x, (1,), True, 0, None, 1)
        return out

    def inverse(x: NDArray[np.complex128], size: int) -> NDArray[np.float64]:
        out: NDArray[np.float64] = module.c2r(x, (1,), size, False, 2, None, 1)
        return out

    probe = np.random.default_rng(1).standard_normal((3, 64))
    try:
        spectrum = forward(probe)
        same = np.array_equal(spectrum, numpy_forward(probe)) and np.array_equal(
            inverse(spectrum, 64), numpy_inverse(spectrum, 64)
        )
    except (TypeError, ValueError, RuntimeError):
        same = False
    return (forward, inverse) if same else (numpy_forward, numpy_inverse)


#: The double-precision transforms :mod:`pitch` uses (see :func:`_float64_row_transforms`).
rfft_rows_f64, irfft_rows_f64 = _float64_row_transforms()

#: The periodic Hann window ``[FRAME_LENGTH]`` float32 (librosa's ``window="hann"``).
WINDOW: NDArray[np.float32] = np.hanning(FRAME_LENGTH + 1)[:-1].astype(np.float32)
WINDOW.setflags(write=False)


def power_spectrum(frames: NDArray[np.float32]) -> NDArray[np.float32]:
    """Power ``|rfft(WINDOW * frame)|^2`` float32 ``[n, 1025]`` (C order) of frames
    ``[n, FRAME_LENGTH]`` float32, in single precision."""
    spectrum = rfft_rows(np.multiply(frames, WINDOW, dtype=np.float32))
    power: NDArray[np.float32] = np.square(spectrum.real)
    power += np.square(spectrum.imag)
    return power
