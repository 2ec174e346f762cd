"""Per-second statistics on the analysis-rate signal (crest factor and peak per second).

The analysis-rate mono signal is cut into consecutive one-second blocks (22,050 samples)
from the start of the media; only complete blocks count, and a block is skipped when its
RMS is below the silence threshold. For each block: ``peak = max |x|`` and
``crest_db = 20 log10(peak / rms)`` (the RMS summed by tenths of a second, see
:class:`SecondBlocks`).

* ``dynamic_range_variation`` = population std of the blocks' ``crest_db`` (0 with < 2 blocks)
* ``peak_consistency`` = ``clip(1 - std(peak) / mean(peak), 0, 1)`` (1 with < 2 blocks)
"""

from __future__ import annotations

import numpy as np
from numpy.typing import NDArray

from streamprint.engine.grid import ANALYSIS_RATE, SILENCE_RMS
from streamprint.engine.stats import Welford

#: A second is summed as this many sub-blocks of :data:`_SUB_BLOCK` samples, each from its
#: own samples, then the sub-block sums in order: the sums depend only on the media (the
#: cuts sit at fixed positions from its start), never on how it was pushed, and a live
#: session holds at most one unfinished sub-block (8.8 KB) instead of a second of samples.
SUB_BLOCKS_PER_SECOND = 10
_SUB_BLOCK = ANALYSIS_RATE // SUB_BLOCKS_PER_SECOND
if _SUB_BLOCK * SUB_BLOCKS_PER_SECOND != ANALYSIS_RATE:
    raise ImportError("a second of the analysis rate must split into whole sub-blocks")


class SecondBlocks:
    """Accumulates per-second crest factors and peaks of the analysis-rate signal.

    ``rms`` of a second is ``sqrt(S / 22050)`` with ``S`` the sum, in order, of its ten
    sub-blocks' sums of squares (float64, numpy's sum of each 2205-sample sub-block):
    mathematically ``sqrt(mean(x^2))``, to float64 rounding, and the same bits in any
    chunking.
    """

    def __init__(self) -> None:
        self._partial = np.zeros(0, dtype=np.float32)  # the unfinished sub-block's samples
        #: The current second's finished sub-blocks: sums of squares and peaks (float64).
        self._sums = np.zeros(0)
        self._peaks = np.zeros(0)
        self.crest = Welford()
        self.peaks = Welford()

    def push(self, samples: NDArray[np.float32]) -> None:
        """Add analysis-rate mono samples ``[n]``."""
        buf = np.concatenate((self._partial, samples)) if self._partial.size else samples
        n_sub = buf.shape[0] // _SUB_BLOCK
        if n_sub:
            subs = buf[: n_sub * _SUB_BLOCK].reshape(n_sub, _SUB_BLOCK).astype(np.float64)
            sums = np.concatenate((self._sums, np.sum(subs * subs, axis=1)))
            peaks = np.concatenate((self._peaks, np.max(np.abs(subs), axis=1)))
            whole = sums.shape[0] // SUB_BLOCKS_PER_SECOND * SUB_BLOCKS_PER_SECOND
            if whole:
                seconds = sums[:whole].reshape(-1, SUB_BLOCKS_PER_SECOND)
                total = seconds[:, 0].copy()
                for k in range(1, SUB_BLOCKS_PER_SECOND):  # in order, whatever the batch
                    total += seconds[:, k]
                rms = np.sqrt(total / ANALYSIS_RATE)
                peak = peaks[:whole].reshape(-1, SUB_BLOCKS_PER_SECOND).max(axis=1)
                loud = rms >= SILENCE_RMS
                self.crest.add_many(20.0 * np.log10(peak[loud] / rms[loud]))
                self.peaks.add_many(peak[loud])
            self._sums, self._peaks = sums[whole:].copy(), peaks[whole:].copy()
        self._partial = np.array(buf[n_sub * _SUB_BLOCK :], dtype=np.float32)

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
