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
    """Assigns consecutive frames to fixed blocks and sums per-frame columns per block.

    Data comes channel-first, ``[columns, n]``. Each block's sum is taken frame by frame in
    arrival order (a running sum per segment, then the carried part of an open block), so
    the block sums do not depend on how the frames are chunked.
    """

    def __init__(self, columns: int, block_frames: int = FRAMES_PER_BLOCK) -> None:
        self.frames = 0
        self.block_frames = block_frames
        self._partial: NDArray[np.float64] = np.zeros(columns)

    def add(self, data: NDArray[np.float64]) -> NDArray[np.float64]:
        """Add frames ``data`` ``[columns, n]``; return sums of the blocks completed ``[k, columns]``."""
        n = data.shape[1]
        if n == 0:
            return np.zeros((0, self._partial.shape[0]))
        bf = self.block_frames
        first = self.frames
        self.frames += n
        completed: list[NDArray[np.float64]] = []
        start = 0
        while start < n:
            stop = min(n, start + bf - (first + start) % bf)
            seg = np.cumsum(data[:, start:stop], axis=1)[:, -1]
            if start == 0:
                seg += self._partial
            if (first + stop) % bf == 0:
                completed.append(seg)
                self._partial = np.zeros_like(self._partial)
            else:
                self._partial = seg
            start = stop
        if not completed:
            return np.zeros((0, self._partial.shape[0]))
        return np.stack(completed)


class RatioGroup:
    """``k`` ratios of sums fed the same frames, updated together in one pass.

    Member ``i`` has ``value = sum(num[i]) / sum(den[i])`` and a batch-means standard
    error, exactly as a :class:`RatioOfSums` fed the same rows would (same summation order,
    so the same bits); :meth:`member` gives a :class:`RatioOfSums`-like view.
    """

    def __init__(
        self, k: int, *, empty_values: tuple[float, ...] | None = None,
        block_frames: int = FRAMES_PER_BLOCK,
    ) -> None:
        self.k = k
        self.num: NDArray[np.float64] = np.zeros(k)
        self.den: NDArray[np.float64] = np.zeros(k)
        self.empty_values = empty_values or (0.0,) * k
        self._blocks = _Blocks(2 * k, block_frames)
        self._block_values = [Welford() for _ in range(k)]

    def add(self, num: NDArray[np.float64], den: NDArray[np.float64]) -> None:
        """Add per-frame numerators and denominators, ``[k, n]`` each."""
        self.add_stacked(np.concatenate((num, den)))

    def add_stacked(self, data: NDArray[np.float64]) -> None:
        """Add ``[2k, n]`` rows: the ``k`` numerators, then the ``k`` denominators.

        ``data`` should be C-contiguous (each row's total is then the same pairwise sum
        ``np.sum`` of that row alone gives).
        """
        k = self.k
        totals = data.sum(axis=1)
        self.num += totals[:k]
        self.den += totals[k:]
        for block in self._blocks.add(data):
            for i in np.flatnonzero(block[k:] > 0):
                self._block_values[i].add(float(block[i] / block[k + i]))

    def value(self, i: int) -> float:
        """Current ratio of member ``i`` (its empty value before any weight arrived)."""
        den = float(self.den[i])
        return float(self.num[i]) / den if den > 0 else self.empty_values[i]

    def std_error(self, i: int) -> float:
        """Standard error of member ``i``'s value from the spread of per-block ratios."""
        blocks = self._block_values[i]
        if blocks.count < 2:
            return math.inf
        return math.sqrt(blocks.sample_variance / blocks.count)

    def member(self, i: int) -> GroupRatio:
        """A read-only view of member ``i`` with the :class:`RatioOfSums` read API."""
        return GroupRatio(self, i)


class GroupRatio:
    """Member ``i`` of a :class:`RatioGroup` (``num``, ``den``, ``value``, ``std_error``)."""

    __slots__ = ("_group", "_i")

    def __init__(self, group: RatioGroup, i: int) -> None:
        self._group = group
        self._i = i

    @property
    def num(self) -> float:
        """Sum of the numerators so far."""
        return float(self._group.num[self._i])

    @property
    def den(self) -> float:
        """Sum of the denominators so far."""
        return float(self._group.den[self._i])

    @property
    def value(self) -> float:
        """The current ratio."""
        return self._group.value(self._i)

    def std_error(self) -> float:
        """Standard error of :attr:`value`."""
        return self._group.std_error(self._i)


class RatioOfSums:
    """``value = sum(num) / sum(den)`` over frames, with a batch-means standard error.

    Examples: a mean over non-silent frames (``num = x * mask``, ``den = mask``), an
    energy share (``num = part energy``, ``den = total energy``). Several ratios fed the
    same frames are cheaper as one :class:`RatioGroup`.
    """

    def __init__(self, *, empty_value: float = 0.0, block_frames: int = FRAMES_PER_BLOCK) -> None:
        self._group = RatioGroup(1, empty_values=(empty_value,), block_frames=block_frames)
        self.empty_value = empty_value

    def add(self, num: NDArray[np.float64], den: NDArray[np.float64]) -> None:
        """Add per-frame numerators and denominators ``[n]`` each."""
        data = np.empty((2, num.shape[0]))
        data[0] = num
        data[1] = den
        self._group.add_stacked(data)

    @property
    def num(self) -> float:
        """Sum of the numerators so far."""
        return float(self._group.num[0])

    @property
    def den(self) -> float:
        """Sum of the denominators so far."""
        return float(self._group.den[0])

    @property
    def value(self) -> float:
        """The current ratio (``empty_value`` before any weight arrived)."""
        return self._group.value(0)

    def std_error(self) -> float:
        """Standard error of :attr:`value` from the spread of per-block ratios."""
        return self._group.std_error(0)


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
        data = np.empty((3, mask.shape[0]))
        data[0] = mask
        v = np.where(mask, values, 0.0)
        data[1] = v
        np.multiply(v, v, out=data[2])
        for count, s1, s2 in self._blocks.add(data):
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
