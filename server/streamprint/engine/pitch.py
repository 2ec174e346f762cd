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

from streamprint.engine.compiled import library
from streamprint.engine.grid import ANALYSIS_RATE, FRAME_LENGTH, HOP_LENGTH

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
if FRAME_LENGTH % HOP_LENGTH or MAX_PERIOD >= HOP_LENGTH:
    raise ImportError("the block autocorrelation needs whole hops per frame and lags below one hop")


#: Consecutive analysis frames overlap by all but one hop: a frame is BLOCKS blocks of one
#: hop, and each block is shared by BLOCKS frames.
BLOCKS = FRAME_LENGTH // HOP_LENGTH
#: Transform size per block: one hop of samples and a hop of zeros, so lags up to
#: MAX_PERIOD < HOP_LENGTH stay free of wrap-around, and the product of one block with the
#: next sits, circularly, HOP_LENGTH further on.
BLOCK_FFT_SIZE = 2 * HOP_LENGTH
#: ``e^{2 pi i k HOP / BLOCK_FFT_SIZE} = (-1)^k``: moves a cross-correlation by one hop.
_HOP_SHIFT = (-1.0) ** np.arange(BLOCK_FFT_SIZE // 2 + 1)


def autocorrelation(frames: NDArray[np.float32]) -> NDArray[np.float64]:
    """Autocorrelation ``[n, MAX_PERIOD + 1]`` (lags 0..MAX_PERIOD) of frames ``[n, FRAME_LENGTH]``.

    By FFT in float64. Frames one hop apart (what the analysis grid cuts: each frame's first
    ``FRAME_LENGTH - HOP_LENGTH`` samples are the previous frame's last) share their blocks
    of one hop: with ``X_b`` the ``BLOCK_FFT_SIZE``-point transform of block ``b``, frame
    ``f`` (blocks ``f .. f + 3``) has, for lags below one hop,

        acf_f = irfft( sum_{b=f}^{f+3} |X_b|^2 + (-1)^k sum_{b=f}^{f+2} conj(X_b) X_{b+1} )

    (within-block products, and the products across each block boundary moved by one hop):
    one 1024-point transform per block and one per frame instead of two 2400-point ones per
    frame, about four times less work; the sum is one compiled pass
    (``sp_block_acf_spectrum``, :func:`block_spectrum_numpy` in numpy). The same lags as the
    whole-frame transform to rounding (about 1e-15 of ``acf[0]``), and the same bits for a
    frame whichever batch it comes in. Frames that are not one hop apart take the
    whole-frame transform (:func:`autocorrelation_direct`).
    """
    n = frames.shape[0]
    if n == 0 or not consecutive_frames(frames):
        return autocorrelation_direct(frames)
    blocks = np.concatenate((frames[0].reshape(BLOCKS, HOP_LENGTH), frames[1:, -HOP_LENGTH:]))
    spectra = np.fft.rfft(blocks.astype(np.float64), BLOCK_FFT_SIZE, axis=1)  # [n + 3, 513]
    total = np.empty((n, spectra.shape[1]), dtype=np.complex128)
    library().sp_block_acf_spectrum(np.ascontiguousarray(spectra), n, BLOCKS, spectra.shape[1], total)
    return np.ascontiguousarray(np.fft.irfft(total, BLOCK_FFT_SIZE, axis=1)[:, : MAX_PERIOD + 1])


def block_spectrum_numpy(spectra: NDArray[np.complex128], n: int) -> NDArray[np.complex128]:
    """The frames' lag spectra ``[n, bins]`` from their blocks' ``[n + 3, bins]``, in numpy: the
    definition ``sp_block_acf_spectrum`` computes in one pass (kept for the tests)."""
    power = spectra.real**2 + spectra.imag**2
    cross = np.conj(spectra[:-1]) * spectra[1:]
    cross *= _HOP_SHIFT
    total: NDArray[np.complex128] = power[:n] + cross[:n]
    for b in range(1, BLOCKS):
        total += power[b : b + n]
        if b < BLOCKS - 1:
            total += cross[b : b + n]
    return total


def consecutive_frames(frames: NDArray[np.float32]) -> bool:
    """Whether each of the frames ``[n, FRAME_LENGTH]`` starts one hop after the one before."""
    return bool(np.array_equal(frames[1:, : FRAME_LENGTH - HOP_LENGTH], frames[:-1, HOP_LENGTH:]))


def autocorrelation_direct(frames: NDArray[np.float32]) -> NDArray[np.float64]:
    """:func:`autocorrelation` of any frames: one ``ACF_FFT_SIZE``-point transform each way.

    The inverse transform is given a complex power spectrum: numpy's ``irfft`` of a real
    array takes a slow conversion path (1.3 ms per 43 frames here against 0.5 ms for the
    same values as complex, with the same bits).
    """
    spectrum = np.fft.rfft(frames.astype(np.float64), ACF_FFT_SIZE, axis=1)
    power = (spectrum.real**2 + spectrum.imag**2).astype(np.complex128)
    return np.ascontiguousarray(np.fft.irfft(power, ACF_FFT_SIZE, axis=1)[:, : MAX_PERIOD + 1])


def yin(frames: NDArray[np.float32]) -> tuple[NDArray[np.float64], NDArray[np.bool_]]:
    """f0 in Hz ``[n]`` and voicing ``[n]`` for frames ``[n, FRAME_LENGTH]``.

    The autocorrelation is numpy's FFT; the difference function, its normalisation, the
    trough search and the parabola are one compiled C pass per frame (``sp_yin_rows``: the
    same operations in the same order as the vectorised definition, so the same bits).
    """
    if frames.ndim != 2 or frames.shape[1] != FRAME_LENGTH:
        raise ValueError(f"frames must be [n, {FRAME_LENGTH}], got {frames.shape}")
    if frames.shape[0] == 0:
        return np.zeros(0), np.zeros(0, dtype=bool)
    frames = np.ascontiguousarray(frames, dtype=np.float32)
    n = frames.shape[0]
    f0 = np.empty(n)
    voiced = np.empty(n, dtype=np.uint8)
    library().sp_yin_rows(
        autocorrelation(frames), frames, n, frames.shape[1], MIN_PERIOD, MAX_PERIOD, float(ANALYSIS_RATE),
        TROUGH_THRESHOLD, f0, voiced, np.empty(MAX_PERIOD - MIN_PERIOD + 1),
    )
    return f0, voiced.view(np.bool_)


def unvoiced(n: int) -> tuple[NDArray[np.float64], NDArray[np.bool_]]:
    """What an analyzer that skips YIN reports: f0 0 Hz and unvoiced, ``[n]`` each."""
    return np.zeros(n), np.zeros(n, dtype=bool)
