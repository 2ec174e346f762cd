"""Per-second statistics on the analysis-rate signal (crest factor and peak per second).

The analysis-rate mono signal is cut into consecutive one-second blocks (22,050 samples)
from the start of the media; only complete blocks count, and a block is skipped when its
RMS is below the silence threshold. For each block: ``peak = max |x|`` and
``crest_db = 20 log10(peak / rms)``.

* ``dynamic_range_variation`` = population std of the blocks' ``crest_db`` (0 with < 2 blocks)
* ``peak_consistency`` = ``clip(1 - std(peak) / mean(peak), 0, 1)`` (1 with < 2 blocks)
"""

from __future__ import annotations

import numpy as np
from numpy.typing import NDArray

from streamprint.engine.grid import ANALYSIS_RATE, SILENCE_RMS
from streamprint.engine.stats import Welford


class SecondBlocks:
    """Accumulates per-second crest factors and peaks of the analysis-rate signal."""

    def __init__(self) -> None:
        self._partial = np.zeros(0, dtype=np.float32)
        self.crest = Welford()
        self.peaks = Welford()

    def push(self, samples: NDArray[np.float32]) -> None:
        """Add analysis-rate mono samples ``[n]``."""
        buf = np.concatenate((self._partial, samples)) if self._partial.size else samples
        n_blocks = buf.shape[0] // ANALYSIS_RATE
        if n_blocks:
            blocks = buf[: n_blocks * ANALYSIS_RATE].reshape(n_blocks, ANALYSIS_RATE).astype(np.float64)
            rms = np.sqrt(np.mean(blocks * blocks, axis=1))
            peak = np.max(np.abs(blocks), axis=1)
            loud = rms >= SILENCE_RMS
            self.crest.add_many(20.0 * np.log10(peak[loud] / rms[loud]))
            self.peaks.add_many(peak[loud])
        self._partial = np.array(buf[n_blocks * ANALYSIS_RATE :], dtype=np.float32)

    @property
    def dynamic_range_variation(self) -> float:
        """Std of per-second crest factors, dB."""
        return self.crest.std

    @property
    def peak_consistency(self) -> float:
        """1 - coefficient of variation of per-second peaks, clipped to [0, 1]."""
        if self.peaks.count < 2:
            return 1.0
        return float(np.clip(1.0 - self.peaks.cv(), 0.0, 1.0))
