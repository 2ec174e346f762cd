"""YIN fundamental-frequency estimation per frame (de Cheveigné & Kawahara 2002).

Per frame of 2048 analysis samples: the difference function over lags
``tau in [MIN_PERIOD, MAX_PERIOD]`` from the frame's autocorrelation, cumulative-mean
normalisation, the first local minimum below ``TROUGH_THRESHOLD`` (else the global minimum),
parabolic interpolation. A frame is *voiced* when such a trough below the threshold exists.
This is librosa's ``yin(fmin=65.4, fmax=2093, frame_length=2048, center=False)``.
"""

from __future__ import annotations

import itertools
import math

import numpy as np
from numpy.typing import NDArray

from streamprint.engine.compiled import library
from streamprint.engine.grid import ANALYSIS_RATE, FRAME_LENGTH, HOP_LENGTH, SILENCE_RMS
from streamprint.engine.spectrum import irfft_rows_f64, rfft_rows_f64

F_MIN = 65.40639132514966  # C2
F_MAX = 2093.004522404789  # C7
MIN_PERIOD = math.floor(ANALYSIS_RATE / F_MAX)
MAX_PERIOD = min(math.ceil(ANALYSIS_RATE / F_MIN), FRAME_LENGTH - 1)
TROUGH_THRESHOLD = 0.1


if FRAME_LENGTH % HOP_LENGTH or MAX_PERIOD >= HOP_LENGTH:
    raise ImportError("the block autocorrelation needs whole hops per frame and lags below one hop")


#: Consecutive analysis frames overlap by all but one hop: a frame is BLOCKS blocks of one
#: hop, and each block is shared by BLOCKS frames.
BLOCKS = FRAME_LENGTH // HOP_LENGTH
#: Transform size per block: one hop of samples and a hop of zeros, so lags up to
#: MAX_PERIOD < HOP_LENGTH stay free of wrap-around, and the product of one block with the
#: next sits, circularly, HOP_LENGTH further on.
BLOCK_FFT_SIZE = 2 * HOP_LENGTH


def autocorrelation(frames: NDArray[np.float32]) -> NDArray[np.float64]:
    """Autocorrelation ``[n, MAX_PERIOD + 1]`` (lags 0..MAX_PERIOD) of frames ``[n, FRAME_LENGTH]``.

    By FFT in float64, from blocks of one hop. With ``X_b`` the ``BLOCK_FFT_SIZE``-point
    transform of block ``b`` (one hop of samples and a hop of zeros), a frame made of blocks
    ``s .. s + 3`` has, for lags below one hop,

        acf = irfft( sum_{b=s}^{s+3} |X_b|^2 + (-1)^k sum_{b=s}^{s+2} conj(X_b) X_{b+1} )

    (the products within each block, and those across each block boundary, which the zero
    padding leaves one hop further on, circularly). Frames one hop apart (what the analysis
    grid cuts: a frame's first ``FRAME_LENGTH - HOP_LENGTH`` samples are the previous frame's
    last) share three of their four blocks, so a run of them costs one 1024-point transform
    per block and one inverse per frame, instead of two 2400-point transforms per frame:
    about four times less work. The sum is one compiled pass (``sp_block_acf_spectrum``,
    which forms each block's products once for all the frames holding it;
    tests/unit/test_pitch_fft.py holds its numpy form and the whole-frame transform). A
    frame's lags depend only on its own samples, the same bits whichever frames share its
    call (a batch of several streams, frames that are not one hop apart), and equal the
    whole-frame transform to rounding, about 1e-15 of ``acf[0]``.
    """
    if frames.shape[0] == 0:
        return np.zeros((0, MAX_PERIOD + 1))
    return np.ascontiguousarray(_lag_rows(frames)[:, : MAX_PERIOD + 1])


def _lag_rows(frames: NDArray[np.float32]) -> NDArray[np.float64]:
    """The circular block lags ``[n, BLOCK_FFT_SIZE]`` of frames ``[n, FRAME_LENGTH]`` (n > 0):
    the first ``MAX_PERIOD + 1`` of each row are :func:`autocorrelation`'s."""
    n = frames.shape[0]
    padded, first_block = _padded_blocks(frames)
    spectra = rfft_rows_f64(padded)
    m, bins = spectra.shape
    total = np.empty((n, bins), dtype=np.complex128)
    library().sp_block_acf_spectrum(
        spectra, first_block, n, m, BLOCKS, bins, np.empty((m, bins)),
        np.empty((max(m - 1, 1), bins), dtype=np.complex128), total,
    )
    return irfft_rows_f64(total, BLOCK_FFT_SIZE)


def _padded_blocks(frames: NDArray[np.float32]) -> tuple[NDArray[np.float64], NDArray[np.int64]]:
    """The distinct blocks of frames ``[n, FRAME_LENGTH]``, each zero-padded to a transform
    row (float64 ``[m, BLOCK_FFT_SIZE]``: one hop of samples, then one of zeros), and the index
    ``[n]`` of each frame's first block (its blocks are that one and the next three).

    A frame one hop after the previous one adds its last block; any other frame all four.
    """
    n = frames.shape[0]
    follows = np.zeros(n, dtype=bool)
    follows[1:] = consecutive_rows(frames)
    added = np.where(follows, 1, BLOCKS)
    padded = np.empty((int(added.sum()), BLOCK_FFT_SIZE))
    padded[:, HOP_LENGTH:] = 0.0
    row = 0
    for start, stop in itertools.pairwise([*np.flatnonzero(~follows).tolist(), n]):
        padded[row : row + BLOCKS, :HOP_LENGTH] = frames[start].reshape(BLOCKS, HOP_LENGTH)
        row += BLOCKS
        padded[row : row + stop - start - 1, :HOP_LENGTH] = frames[start + 1 : stop, FRAME_LENGTH - HOP_LENGTH :]
        row += stop - start - 1
    first_block = np.cumsum(added) - added + np.where(follows, 1 - BLOCKS, 0)
    return padded, first_block.astype(np.int64)


def _check_frames(frames: NDArray[np.float32]) -> None:
    """Refuse anything but frames ``[n, FRAME_LENGTH]`` before the compiled code reads them."""
    if frames.ndim != 2 or frames.shape[1] != FRAME_LENGTH:
        raise ValueError(f"frames must be [n, {FRAME_LENGTH}], got {frames.shape}")


def consecutive_rows(frames: NDArray[np.float32]) -> NDArray[np.bool_]:
    """``[n - 1]``: whether each frame of ``[n, FRAME_LENGTH]`` after the first starts one hop
    after the one before (its overlap with it is the same bits: ``sp_consecutive_rows``)."""
    _check_frames(frames)
    n = frames.shape[0]
    out = np.zeros(max(n - 1, 0), dtype=np.uint8)
    if n > 1:
        rows = np.ascontiguousarray(frames, dtype=np.float32)
        library().sp_consecutive_rows(rows, n, FRAME_LENGTH, HOP_LENGTH, out)
    return out.view(np.bool_)


def yin(frames: NDArray[np.float32]) -> tuple[NDArray[np.float64], NDArray[np.bool_]]:
    """f0 in Hz ``[n]`` and voicing ``[n]`` for frames ``[n, FRAME_LENGTH]``.

    The autocorrelation is numpy's FFT; the difference function, its normalisation, the
    trough search and the parabola are one compiled C pass per frame (``sp_yin_rows``: the
    same operations in the same order as the vectorised definition, so the same bits).
    """
    _check_frames(frames)
    if frames.shape[0] == 0:
        return np.zeros(0), np.zeros(0, dtype=bool)
    frames = np.ascontiguousarray(frames, dtype=np.float32)
    n = frames.shape[0]
    f0 = np.empty(n)
    voiced = np.empty(n, dtype=np.uint8)
    library().sp_yin_rows(
        _lag_rows(frames), BLOCK_FFT_SIZE, frames, n, frames.shape[1], MIN_PERIOD, MAX_PERIOD, float(ANALYSIS_RATE),
        TROUGH_THRESHOLD, f0, voiced, np.empty(MAX_PERIOD - MIN_PERIOD + 1),
    )
    return f0, voiced.view(np.bool_)


def yin_of_loud(
    frames: NDArray[np.float32], loud: NDArray[np.bool_]
) -> tuple[NDArray[np.float64], NDArray[np.bool_]]:
    """:func:`yin` of the ``loud`` rows of ``frames`` ``[n, FRAME_LENGTH]``; the other rows
    get f0 0 Hz and unvoiced, as from :func:`unvoiced`.

    The fingerprint counts a frame's pitch only when the frame is loud
    (``features._pitch_pairs`` sees ``voiced & loud``), so YIN of a quiet frame is work
    thrown away. A loud frame's f0 and voicing are the same bits as from :func:`yin` of all
    the frames (a frame's lags depend only on its own samples).
    """
    n = frames.shape[0]
    if loud.shape != (n,):
        raise ValueError(f"loud must be [{n}], got {loud.shape}")
    if loud.all():
        return yin(frames)
    f0, voiced = unvoiced(n)
    rows = np.flatnonzero(loud)
    if rows.shape[0]:
        f0[rows], voiced[rows] = yin(frames[rows])
    return f0, voiced


def of_frames(
    frames: NDArray[np.float32], rms: NDArray[np.float64], *, enabled: bool = True
) -> tuple[NDArray[np.float64], NDArray[np.bool_]]:
    """An analyzer's f0 and voicing of frames ``[n, FRAME_LENGTH]`` with RMS ``rms`` ``[n]``:
    :func:`yin_of_loud` of the frames at or above the silence level, or :func:`unvoiced` when
    YIN is not ``enabled`` (the learned pitch head replaces it)."""
    if not enabled:
        return unvoiced(frames.shape[0])
    return yin_of_loud(frames, rms >= SILENCE_RMS)


def unvoiced(n: int) -> tuple[NDArray[np.float64], NDArray[np.bool_]]:
    """What an analyzer that skips YIN reports: f0 0 Hz and unvoiced, ``[n]`` each."""
    return np.zeros(n), np.zeros(n, dtype=bool)
