"""Exact online statistics with data-driven standard errors.

All accumulators here are fed arrays in any chunking and give the same value as one pass
(up to float64 rounding). Standard errors use *batch means*: frames are grouped into
fixed blocks of :data:`~streamprint.engine.grid.FRAMES_PER_BLOCK` frames (about one
second of audio; ``block_frames`` overrides it, e.g. 10 frames for the 10 fps video grid), and the spread of the block statistics, not of the strongly correlated frames,
gives the uncertainty.
"""

from __future__ import annotations

import math

import numpy as np
from numpy.typing import NDArray

from streamprint.engine.grid import FRAMES_PER_BLOCK


class Welford:
    """Count, mean and variance of a stream of scalars (Chan/Welford merging)."""

    __slots__ = ("count", "m2", "mean")

    def __init__(self) -> None:
        self.count = 0
        self.mean = 0.0
        self.m2 = 0.0

    def add_many(self, values: NDArray[np.float64]) -> None:
        """Add every value of ``values`` ``[n]``."""
        n = int(values.shape[0])
        if n == 0:
            return
        mean_b = float(np.mean(values))
        m2_b = float(np.sum((values - mean_b) ** 2))
        total = self.count + n
        delta = mean_b - self.mean
        self.mean += delta * n / total
        self.m2 += m2_b + delta * delta * self.count * n / total
        self.count = total

    def add(self, value: float) -> None:
        """Add one value."""
        self.count += 1
        delta = value - self.mean
        self.mean += delta / self.count
        self.m2 += delta * (value - self.mean)

    @property
    def variance(self) -> float:
        """Population variance (ddof=0); 0 for fewer than 2 values."""
        return self.m2 / self.count if self.count > 1 else 0.0

    @property
    def std(self) -> float:
        """Population standard deviation (ddof=0)."""
        return math.sqrt(max(self.variance, 0.0))

    @property
    def sample_variance(self) -> float:
        """Sample variance (ddof=1); inf for fewer than 2 values."""
        return self.m2 / (self.count - 1) if self.count > 1 else math.inf

    def std_error_of_std(self) -> float:
        """Approximate standard error of :attr:`std` (normal theory: ``s / sqrt(2 (n - 1))``)."""
        if self.count < 2:
            return math.inf
        return self.std / math.sqrt(2.0 * (self.count - 1))

    def cv(self) -> float:
        """Coefficient of variation ``std / |mean|`` (0 when the mean is 0)."""
        return self.std / abs(self.mean) if self.mean != 0 else 0.0

    def std_error_of_cv(self) -> float:
        """Approximate standard error of :meth:`cv` (``cv sqrt(1/(2n) + cv^2 / n)``)."""
        if self.count < 2:
            return math.inf
        cv = self.cv()
        return cv * math.sqrt(1.0 / (2.0 * self.count) + cv * cv / self.count) + 1e-12


class _Blocks:
    """Assigns consecutive frames to fixed blocks and sums per-frame columns per block."""

    def __init__(self, columns: int, block_frames: int = FRAMES_PER_BLOCK) -> None:
        self.frames = 0
        self.block_frames = block_frames
        self._partial = np.zeros(columns)

    def add(self, data: NDArray[np.float64]) -> NDArray[np.float64]:
        """Add rows ``data`` ``[n, columns]``; return sums of the blocks completed ``[k, columns]``."""
        n = data.shape[0]
        if n == 0:
            return np.zeros((0, self._partial.shape[0]))
        ids = (self.frames + np.arange(n)) // self.block_frames
        first = self.frames // self.block_frames
        sums = np.zeros((int(ids[-1]) - first + 1, data.shape[1]))
        np.add.at(sums, ids - first, data)
        sums[0] += self._partial
        self.frames += n
        complete = self.frames // self.block_frames - first
        self._partial = sums[complete].copy() if complete < sums.shape[0] else np.zeros_like(self._partial)
        return sums[:complete]


class RatioOfSums:
    """``value = sum(num) / sum(den)`` over frames, with a batch-means standard error.

    Examples: a mean over non-silent frames (``num = x * mask``, ``den = mask``), an
    energy share (``num = part energy``, ``den = total energy``).
    """

    def __init__(self, *, empty_value: float = 0.0, block_frames: int = FRAMES_PER_BLOCK) -> None:
        self.num = 0.0
        self.den = 0.0
        self.empty_value = empty_value
        self._blocks = _Blocks(2, block_frames)
        self._block_values = Welford()

    def add(self, num: NDArray[np.float64], den: NDArray[np.float64]) -> None:
        """Add per-frame numerators and denominators ``[n]`` each."""
        self.num += float(np.sum(num))
        self.den += float(np.sum(den))
        for block_num, block_den in self._blocks.add(np.stack((num, den), axis=1)):
            if block_den > 0:
                self._block_values.add(block_num / block_den)

    @property
    def value(self) -> float:
        """The current ratio (``empty_value`` before any weight arrived)."""
        return self.num / self.den if self.den > 0 else self.empty_value

    def std_error(self) -> float:
        """Standard error of :attr:`value` from the spread of per-block ratios."""
        blocks = self._block_values
        if blocks.count < 2:
            return math.inf
        return math.sqrt(blocks.sample_variance / blocks.count)


class MaskedStd:
    """Population std of per-frame values over masked frames, with a batch-means standard error.

    The standard error is the delta-method error of ``sqrt(E[x^2] - E[x]^2)`` from the
    covariance of per-block means of ``x`` and ``x^2``.
    """

    def __init__(self, *, block_frames: int = FRAMES_PER_BLOCK) -> None:
        self._all = Welford()
        self._blocks = _Blocks(3, block_frames)
        self._cov = _Covariance()

    def add(self, values: NDArray[np.float64], mask: NDArray[np.bool_]) -> None:
        """Add per-frame ``values`` ``[n]`` where ``mask`` ``[n]`` is true."""
        chosen = values[mask]
        self._all.add_many(chosen)
        m = mask.astype(np.float64)
        v = np.where(mask, values, 0.0)
        for count, s1, s2 in self._blocks.add(np.stack((m, v, v * v), axis=1)):
            if count > 0:
                self._cov.add(s1 / count, s2 / count)

    @property
    def value(self) -> float:
        """The current standard deviation (0 with fewer than two frames)."""
        return self._all.std

    def std_error(self) -> float:
        """Standard error of :attr:`value`."""
        if self._cov.count < 2 or self._all.count < 2:
            return math.inf
        mu = self._all.mean
        g1, g2 = -2.0 * mu, 1.0
        var_v = (g1 * g1 * self._cov.var_a + 2 * g1 * g2 * self._cov.cov_ab + g2 * g2 * self._cov.var_b)
        se_var = math.sqrt(max(var_v, 0.0) / self._cov.count)
        std = max(self.value, 1e-9)
        return se_var / (2.0 * std)


class _Covariance:
    """Online sample covariance of pairs ``(a, b)``."""

    def __init__(self) -> None:
        self.count = 0
        self.mean_a = 0.0
        self.mean_b = 0.0
        self.c_aa = 0.0
        self.c_bb = 0.0
        self.c_ab = 0.0

    def add(self, a: float, b: float) -> None:
        self.count += 1
        da = a - self.mean_a
        db = b - self.mean_b
        self.mean_a += da / self.count
        self.mean_b += db / self.count
        self.c_aa += da * (a - self.mean_a)
        self.c_bb += db * (b - self.mean_b)
        self.c_ab += da * (b - self.mean_b)

    @property
    def var_a(self) -> float:
        return self.c_aa / (self.count - 1) if self.count > 1 else 0.0

    @property
    def var_b(self) -> float:
        return self.c_bb / (self.count - 1) if self.count > 1 else 0.0

    @property
    def cov_ab(self) -> float:
        return self.c_ab / (self.count - 1) if self.count > 1 else 0.0
