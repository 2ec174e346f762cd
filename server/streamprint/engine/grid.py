"""The audio analysis grid and the streaming framer.

Mono (channel mean), 22,050 Hz, frames of 2048 samples every 512 samples, Hann window, no
centring: frame ``i`` covers analysis samples ``[512 i, 512 i + 2048)``. These equal
librosa's defaults with ``center=False``.
"""

from __future__ import annotations

import numpy as np
from numpy.typing import NDArray

ANALYSIS_RATE = 22_050
FRAME_LENGTH = 2_048
HOP_LENGTH = 512
N_BINS = FRAME_LENGTH // 2 + 1
#: A frame is silent when its RMS is below this level (dB re full scale).
SILENCE_DBFS = -60.0
SILENCE_RMS = 10.0 ** (SILENCE_DBFS / 20.0)
#: Frames per second of the frame grid (about 43.07).
FRAME_RATE = ANALYSIS_RATE / HOP_LENGTH
#: Frames per statistics block (batch means for standard errors): about one second.
FRAMES_PER_BLOCK = 43

#: Frequency of each rfft bin in Hz, shape ``[N_BINS]``.
BIN_FREQUENCIES: NDArray[np.float64] = np.fft.rfftfreq(FRAME_LENGTH, d=1.0 / ANALYSIS_RATE).astype(np.float64)


class Framer:
    """Cuts a stream of analysis-rate mono samples into overlapping frames.

    ``push`` accepts any number of samples and returns every frame that became complete,
    as ``[n_frames, FRAME_LENGTH]`` float32. It keeps at most ``FRAME_LENGTH - HOP_LENGTH``
    + one chunk of samples, so any chunking gives exactly the same frames.
    """

    def __init__(self) -> None:
        self._buffer: NDArray[np.float32] = np.zeros(0, dtype=np.float32)
        self.frames_emitted = 0

    def push(self, samples: NDArray[np.float32]) -> NDArray[np.float32]:
        """Append ``samples`` ``[n]`` and return the frames now complete ``[m, FRAME_LENGTH]``."""
        buf = np.concatenate((self._buffer, samples.astype(np.float32, copy=False)))
        if buf.shape[0] < FRAME_LENGTH:
            self._buffer = buf
            return np.zeros((0, FRAME_LENGTH), dtype=np.float32)
        n_frames = 1 + (buf.shape[0] - FRAME_LENGTH) // HOP_LENGTH
        frames = np.lib.stride_tricks.sliding_window_view(buf, FRAME_LENGTH)[::HOP_LENGTH][:n_frames]
        frames = np.ascontiguousarray(frames)
        self._buffer = buf[n_frames * HOP_LENGTH :].copy()
        self.frames_emitted += n_frames
        return frames
