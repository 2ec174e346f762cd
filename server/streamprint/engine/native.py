"""Exact online accumulators over the native-rate multichannel input (before downmix).

The four batch-only dimensions that need the original channels and sample rate are
computed here: ``integrated_lufs`` (:class:`IntegratedLoudness`), ``crest_db``
(:class:`CrestFactor`), ``stereo_width`` and ``phase_correlation`` (:class:`StereoImage`).

Every accumulator takes float32 blocks shaped ``[n_samples, channels]`` at the native
sample rate, in any chunking; all state is bounded (it does not grow with the media
length) and the result of many pushes equals the result of one push of everything, up to
float64 rounding (~1e-12 relative). Each accumulator also reports, per dimension, the
probability that its current value is already within the registry tolerance of the final
value (see :mod:`streamprint.engine.confidence`), estimated from batch means over
one-second batches so that correlated samples are not counted as independent.
"""

from __future__ import annotations

import math
from collections.abc import Collection
from typing import Protocol, runtime_checkable

import numpy as np
from numpy.typing import NDArray

from streamprint.engine import confidence, dims
from streamprint.engine.compiled import library
from streamprint.engine.iir import weighted_energy
from streamprint.errors import InvalidInputError

F64 = NDArray[np.float64]

#: Names of the dimensions computed from the native-rate input, in registry order.
NATIVE_DIMENSIONS: tuple[str, ...] = (
    "integrated_lufs",
    "crest_db",
    "stereo_width",
    "phase_correlation",
)

#: Lowest native sample rate accepted (Hz); the K-weighting shelf at 1.5 kHz needs it.
MIN_SAMPLE_RATE = 8000

#: Samples processed per internal step, so a huge push never needs huge temporaries.
_SLICE = 1 << 16


@runtime_checkable
class NativeAccumulator(Protocol):
    """What every native-rate accumulator offers.

    ``names`` are the dimension names it reports; ``push`` takes float32
    ``[n_samples, channels]`` blocks at the native rate; ``values`` and ``confidences``
    are keyed by those names (confidences are probabilities in [0, 1]).
    """

    @property
    def names(self) -> tuple[str, ...]:
        """Dimension names this accumulator reports."""
        ...

    def push(self, samples: NDArray[np.float32]) -> None:
        """Feed the next block, float32 ``[n_samples, channels]``, in [-1, 1]."""
        ...

    def values(self) -> dict[str, float]:
        """Current values by dimension name."""
        ...

    def confidences(self) -> dict[str, float]:
        """Probability (0-1) per dimension that the current value is final within tolerance."""
        ...


def native_accumulators(
    sample_rate: int, channels: int, wanted: Collection[str]
) -> list[NativeAccumulator]:
    """Build the accumulators that the native dimensions in ``wanted`` need.

    Names in ``wanted`` that are not native dimensions (e.g. the 13 streamed ones) are
    ignored; an accumulator may report more names than asked for (``StereoImage`` always
    reports both of its dimensions), so callers pick the names they want from ``values()``.
    """
    asked = set(wanted)
    built: list[NativeAccumulator] = []
    if "integrated_lufs" in asked:
        built.append(IntegratedLoudness(sample_rate, channels))
    if "crest_db" in asked:
        built.append(CrestFactor(sample_rate, channels))
    if asked & {"stereo_width", "phase_correlation"}:
        built.append(StereoImage(sample_rate, channels))
    return built


# --------------------------------------------------------------------------------------
# Shared plumbing: input checks, a sample grid cut at fixed times, batch statistics.
# --------------------------------------------------------------------------------------


def _check_config(sample_rate: int, channels: int) -> None:
    """Reject sample rates and channel counts no accumulator can handle."""
    if sample_rate < MIN_SAMPLE_RATE:
        raise InvalidInputError.for_field(
            "sample_rate", f"{sample_rate} Hz is too low", f">= {MIN_SAMPLE_RATE} Hz"
        )
    if channels < 1:
        raise InvalidInputError.for_field("channels", f"{channels} channels", ">= 1")


def _check_block(samples: NDArray[np.float32], channels: int) -> None:
    """Check a pushed block's shape ``[n_samples, channels]``."""
    if samples.ndim != 2 or samples.shape[1] != channels:
        raise InvalidInputError.for_field(
            "samples", f"shape {samples.shape}", f"[n_samples, {channels}]"
        )


class _Grid:
    """Segment boundaries at sample ``floor(k * sample_rate / per_second)``, k = 1, 2, ...

    Integer arithmetic keeps the boundaries identical however the samples are chunked,
    also for rates that ``per_second`` does not divide.
    """

    def __init__(self, sample_rate: int, per_second: int) -> None:
        self._rate = sample_rate
        self._per_second = per_second
        self._pos = 0
        self._next_k = 1

    def cuts(self, n: int) -> NDArray[np.int64]:
        """Boundaries crossed by the next ``n`` samples, as offsets in ``(0, n]``; advances."""
        end = self._pos + n
        last_k = ((end + 1) * self._per_second - 1) // self._rate
        ks = np.arange(self._next_k, last_k + 1, dtype=np.int64)
        offsets = (ks * self._rate) // self._per_second - self._pos
        self._pos = end
        self._next_k = last_k + 1
        return offsets


class _SegmentReducer:
    """Reduces the columns of ``[width, n]`` arrays over the segments of a :class:`_Grid`.

    ``push`` returns one reduced column per segment completed by the pushed columns
    (``[width, m]``, the carried part of a segment merged in); the open segment is carried.
    """

    def __init__(self, sample_rate: int, per_second: int, width: int, ufunc: np.ufunc) -> None:
        self._grid = _Grid(sample_rate, per_second)
        self._ufunc = ufunc
        self._identity: F64 = np.full(width, float(ufunc.identity or 0.0))
        self._partial: F64 = self._identity.copy()

    def push(self, columns: F64) -> F64:
        """Reduce ``columns`` (``[width, n]``); return the completed segments ``[width, m]``."""
        starts, m = self.split(columns.shape[1])
        if starts.shape[0] == 0:
            return np.empty((self._partial.shape[0], 0))
        return self.merge(self._ufunc.reduceat(columns, starts, axis=1), m)

    def split(self, n: int) -> tuple[NDArray[np.int64], int]:
        """Cut the next ``n`` columns at the grid (advances it): the pieces' start offsets
        ``[k]`` (none when ``n == 0``) and ``m``, how many of the pieces close a segment
        (the last piece stays open when ``k > m``). A caller that reduces the pieces itself
        hands the result to :meth:`merge`."""
        cuts = self._grid.cuts(n)
        if n == 0:
            return np.empty(0, dtype=np.int64), 0
        return np.concatenate(([0], cuts[cuts < n])).astype(np.int64), int(cuts.shape[0])

    def merge(self, reduced: F64, m: int) -> F64:
        """Given the reductions ``[width, k]`` of :meth:`split`'s pieces, carry the open
        part and return the ``m`` completed segments ``[width, m]``."""
        tail = reduced[:, m] if reduced.shape[1] > m else self._identity
        closed = reduced[:, :m]
        if m == 0:
            self._partial = self._ufunc(self._partial, tail)
            return closed
        closed[:, 0] = self._ufunc(closed[:, 0], self._partial)
        self._partial = np.array(tail, dtype=np.float64)
        return closed

    @property
    def partial(self) -> F64:
        """Reduction ``[width]`` of the open segment so far (the identity when empty)."""
        return self._partial


class _BatchMoments:
    """Count, mean vector and co-moment matrix of per-batch vectors (Chan's merge).

    Batches are one-second sums; their sample covariance drives the delta-method
    standard errors of ratio statistics. State: ``[width]`` mean, ``[width, width]`` M2.
    """

    def __init__(self, width: int) -> None:
        self.count = 0
        self.mean: F64 = np.zeros(width)
        self._m2: F64 = np.zeros((width, width))

    def add(self, rows: F64) -> None:
        """Merge the batches ``rows`` (``[m, width]``)."""
        m = rows.shape[0]
        if m == 0:
            return
        row_mean = rows.mean(axis=0)
        centred = rows - row_mean
        delta = row_mean - self.mean
        total = self.count + m
        self._m2 += centred.T @ centred + np.outer(delta, delta) * (self.count * m / total)
        self.mean = self.mean + delta * (m / total)
        self.count = total

    def standard_error(self, gradient: F64) -> float:
        """Delta-method standard error of ``f(mean)`` given ``gradient`` = grad f at the mean."""
        if self.count < confidence.MIN_BLOCKS:
            return math.inf
        covariance = self._m2 / (self.count - 1)
        variance = float(gradient @ covariance @ gradient) / self.count
        if not math.isfinite(variance):
            return math.inf
        return math.sqrt(max(variance, 0.0))


def _confidence(name: str, standard_error: float) -> float:
    """Confidence of dimension ``name`` from a standard error in its unit."""
    return confidence.calibrated(name, dims.get(name).tolerance, standard_error)


# --------------------------------------------------------------------------------------
# Integrated loudness (ITU-R BS.1770-4)
# --------------------------------------------------------------------------------------

#: Result when no 400 ms block reaches the absolute gate (the registry's range floor).
SILENCE_LUFS = -70.0
_ABSOLUTE_GATE = -70.0
_RELATIVE_GATE = -10.0
_LOUDNESS_OFFSET = -0.691
_SUB_BLOCKS_PER_SECOND = 10  # 100 ms sub-blocks
_SUB_BLOCKS_PER_BLOCK = 4  # 400 ms blocks, 75 % overlap
_BLOCKS_PER_GROUP = 10  # one-second groups of blocks for the standard error
_HIST_TOP = 10.0  # LUFS; louder blocks share the top bin (their energy stays exact)
_HIST_BIN = 0.01  # LU
_GROUP_BIN = 0.1  # LU

#: Gated block energies kept exactly before the histogram takes over (one hour, 288 KB).
EXACT_BLOCKS = 36_000


def _rbj_high_shelf(gain_db: float, q: float, fc: float, rate: int) -> F64:
    """RBJ cookbook high-shelf biquad as one SOS row ``[b0, b1, b2, 1, a1, a2]``."""
    a = 10.0 ** (gain_db / 40.0)
    w0 = 2.0 * math.pi * fc / rate
    alpha = math.sin(w0) / (2.0 * q)
    cos_w0, root = math.cos(w0), 2.0 * math.sqrt(a) * alpha
    b = [
        a * ((a + 1) + (a - 1) * cos_w0 + root),
        -2 * a * ((a - 1) + (a + 1) * cos_w0),
        a * ((a + 1) + (a - 1) * cos_w0 - root),
    ]
    den = [
        (a + 1) - (a - 1) * cos_w0 + root,
        2 * ((a - 1) - (a + 1) * cos_w0),
        (a + 1) - (a - 1) * cos_w0 - root,
    ]
    row: F64 = np.array(b + den) / den[0]
    return row


def _rbj_high_pass(q: float, fc: float, rate: int) -> F64:
    """RBJ cookbook high-pass biquad as one SOS row ``[b0, b1, b2, 1, a1, a2]``."""
    w0 = 2.0 * math.pi * fc / rate
    alpha = math.sin(w0) / (2.0 * q)
    cos_w0 = math.cos(w0)
    coefficients = [(1 + cos_w0) / 2, -(1 + cos_w0), (1 + cos_w0) / 2,
                    1 + alpha, -2 * cos_w0, 1 - alpha]
    row: F64 = np.array(coefficients) / coefficients[3]
    return row


def k_weighting_sos(sample_rate: int) -> F64:
    """K-weighting for ``sample_rate`` as second-order sections, ``[2, 6]``.

    Designed for any rate the way pyloudnorm designs its ``K-weighting`` filters: the
    RBJ-cookbook high shelf (+4 dB, Q 1/sqrt(2), 1500 Hz) followed by the RBJ high-pass
    (Q 0.5, 38 Hz). At 48 kHz this is within 0.01 dB of the BS.1770 coefficients.
    """
    return np.stack([
        _rbj_high_shelf(4.0, 1.0 / math.sqrt(2.0), 1500.0, sample_rate),
        _rbj_high_pass(0.5, 38.0, sample_rate),
    ])


def channel_weights(channels: int) -> F64:
    """BS.1770 channel weights ``[channels]``: 1.0 for L, R, C; 1.41 for Ls, Rs (4th, 5th).

    BS.1770-4 defines no weight past the fifth channel (pyloudnorm rejects such input);
    further channels get 1.0 here.
    """
    weights = np.ones(channels)
    weights[3:5] = 1.41
    return weights


def _loudness(energy: F64) -> F64:
    """Block loudness in LUFS from weighted mean-square energy (``-inf`` for zero)."""
    with np.errstate(divide="ignore"):
        return _LOUDNESS_OFFSET + 10.0 * np.log10(energy)


def _bin_of(loudness: F64, bin_width: float) -> NDArray[np.int64]:
    """Histogram bin of each loudness (>= -70 LUFS), clipped into ``[-70, +10)`` LUFS."""
    n_bins = round((_HIST_TOP - _ABSOLUTE_GATE) / bin_width)
    index = np.floor((loudness - _ABSOLUTE_GATE) / bin_width).astype(np.int64)
    return np.clip(index, 0, n_bins - 1)


class _LoudnessHistogram:
    """Fixed bins over [-70, +10) LUFS holding, per bin, a count and sums of energy powers.

    ``sums[p]`` is the sum of ``energy ** (p + 1)`` of the items in each bin.
    """

    def __init__(self, bin_width: float, powers: int) -> None:
        self.bin_width = bin_width
        n_bins = round((_HIST_TOP - _ABSOLUTE_GATE) / bin_width)
        self.counts: F64 = np.zeros(n_bins)
        self.sums: F64 = np.zeros((powers, n_bins))

    def add(self, energy: F64) -> None:
        """Add items with mean-square ``energy`` ``[m]`` (all at or above -70 LUFS)."""
        if energy.shape[0] == 0:
            return
        index = _bin_of(_loudness(energy), self.bin_width)
        n_bins = self.counts.shape[0]
        self.counts += np.bincount(index, minlength=n_bins)
        for p in range(self.sums.shape[0]):
            self.sums[p] += np.bincount(index, weights=energy ** (p + 1), minlength=n_bins)

    def above(self, threshold: float) -> tuple[float, F64]:
        """Count and power sums of the items louder than ``threshold`` LUFS.

        Bins wholly above count fully; the bin holding ``threshold`` counts pro rata by the
        share of its width above the threshold.
        """
        position = (threshold - _ABSOLUTE_GATE) / self.bin_width
        if position < 0.0:
            return float(self.counts.sum()), self.sums.sum(axis=1)
        first = min(math.floor(position), self.counts.shape[0] - 1)
        share = min(1.0, first + 1.0 - position)
        count = float(self.counts[first + 1 :].sum() + share * self.counts[first])
        sums = self.sums[:, first + 1 :].sum(axis=1) + share * self.sums[:, first]
        return count, sums


class _ExactBlocks:
    """Energies of the absolutely gated blocks, kept while there are at most ``capacity``."""

    def __init__(self, capacity: int) -> None:
        self._capacity = capacity
        self._parts: list[F64] = []
        self._count = 0
        self.overflowed = capacity <= 0

    def add(self, energy: F64) -> None:
        """Keep the gated block energies ``[m]``; drop everything once over capacity."""
        if self.overflowed or energy.shape[0] == 0:
            return
        self._count += energy.shape[0]
        if self._count > self._capacity:
            self.overflowed, self._parts = True, []
            return
        self._parts.append(energy.copy())

    def energies(self) -> F64:
        """The kept block energies ``[N]`` in arrival order (empty once overflowed)."""
        energy = np.concatenate(self._parts) if self._parts else np.empty(0)
        self._parts = [energy]
        return energy

    def gated_loudness(self, threshold: float, extra: F64) -> float | None:
        """Loudness (LUFS) of the kept and ``extra`` blocks louder than ``threshold``.

        ``None`` if no block is louder.
        """
        energy = np.concatenate((self.energies(), extra))
        kept = energy[_loudness(energy) > threshold]
        if kept.shape[0] == 0:
            return None
        return _LOUDNESS_OFFSET + 10.0 * math.log10(float(kept.mean()))


class IntegratedLoudness:
    """ITU-R BS.1770-4 gated integrated loudness (LUFS) of the native-rate input.

    Pipeline, matching pyloudnorm's ``Meter(rate).integrated_loudness``:

    * K-weighting per channel (:func:`k_weighting_sos`) as a stateful IIR cascade
      (scipy's ``sosfilt`` recursion, with carried ``zi``), so chunking does not matter;
    * per-sample weighted energy ``sum_i G_i y_i^2`` (:func:`channel_weights`), computed in
      the same compiled pass as the filter (:func:`iir.weighted_energy`), summed
      per 100 ms sub-block (boundaries at ``floor(k * rate / 10)`` samples);
    * 400 ms blocks at 100 ms steps (75 % overlap) = four consecutive sub-blocks, mean
      square over ``0.4 * rate`` samples, loudness ``-0.691 + 10 log10(energy)``;
    * absolute gate -70 LUFS, relative gate 10 LU below the absolutely gated mean.

    The end of the media follows pyloudnorm's block layout: when its block count
    ``round((T - 0.4) / 0.1) + 1`` (``T`` the duration so far in seconds) exceeds the
    complete blocks, it also counts the last, incomplete block as if zero-padded to
    400 ms; :meth:`values` adds that block to its snapshot (never to the state), so the
    result still does not depend on chunking. BS.1770-4 counts complete blocks only,
    which ``strict_blocks=True`` selects. The two differ by one block: 0.24 LU on a
    20.07 s test mix whose last seconds are loud, well under 0.01 LU on long media.

    Bounded state: the energies of the blocks that pass the absolute gate are kept
    exactly up to ``exact_blocks`` of them (default :data:`EXACT_BLOCKS`, one hour of
    gated audio, 288 KB), and gating is then exact BS.1770. Beyond that only a fixed
    histogram remains: 8000 bins of 0.01 LU over [-70, +10) LUFS holding each bin's block
    count and exact energy sum (louder blocks go in the top bin with their exact energy),
    always kept. The absolute gate is applied exactly per block before binning, and the
    first-pass mean, hence the relative threshold ``Gr``, is exact. In the second pass
    every bin wholly above or below ``Gr`` is decided exactly; only the blocks in the one
    bin straddling ``Gr`` (included pro rata) can be misjudged. Adding or dropping ``k``
    blocks no louder than ``Gr`` (+0.01 LU) to or from the ``N`` exactly gated ones
    moves the mean energy by a factor between ``1 / (1 + p)`` and ``1 / (1 - p)``,
    ``p = k / N``, so the error is at most ``-10 log10(1 - p)`` ≈ ``4.3 p`` LU: under
    0.01 LU while fewer than 0.23 % of the gated blocks sit in that one 0.01 LU bin.
    Past the exact phase more than 36 000 blocks have passed the absolute gate (``N``
    is most of them for programme material), so that takes some 80 blocks in one
    0.01 LU bin at ``Gr``. Blocks cluster in fours (the four overlapping blocks around
    one dominant 100 ms sub-block read nearly alike), but programme material spreads its
    block loudness over tens of LU with ``Gr`` in the quiet tail, so a bin there holds
    far fewer; only a large share of blocks at one level exactly 10 LU below the mean
    breaks it, a knife edge where exact BS.1770 itself jumps by LU for a 0.01 dB change
    of those blocks. (A histogram alone is not enough for short media: with 400 gated
    blocks a cluster of four in the straddling bin moves the result up to 0.04 LU.)

    Silence: when no block reaches -70 LUFS the value is -70.0, the floor of the
    registry's range (BS.1770 leaves it undefined; pyloudnorm returns ``-inf``).

    Confidence: blocks are grouped into non-overlapping one-second groups (10 blocks);
    each complete group's mean block energy (over blocks passing the absolute gate) goes
    into a second histogram (0.1 LU bins, count, sum of energy, sum of squared energy).
    The groups louder than the current relative threshold are the batch means: their
    standard error ``s / sqrt(G)`` relative to their mean, turned into LU by the delta
    method (``10 / ln 10`` LU per unit of relative energy), goes to
    :func:`confidence.calibrated` with the 0.5 LU tolerance. Fewer than two gated
    groups (about 2 s of gated audio) give 0.0.
    """

    names: tuple[str, ...] = ("integrated_lufs",)

    def __init__(
        self,
        sample_rate: int,
        channels: int,
        *,
        exact_blocks: int = EXACT_BLOCKS,
        strict_blocks: bool = False,
    ) -> None:
        """Meter for float32 ``[n_samples, channels]`` input at ``sample_rate`` Hz.

        ``exact_blocks`` bounds the gated block energies kept for exact gating;
        ``strict_blocks`` drops pyloudnorm's zero-padded last block (see class docs).
        """
        _check_config(sample_rate, channels)
        self.sample_rate = sample_rate
        self.channels = channels
        self.strict_blocks = strict_blocks
        self._samples = 0
        self._sos = k_weighting_sos(sample_rate)
        self._zi: F64 = np.zeros((self._sos.shape[0], channels, 2))
        self._weights = channel_weights(channels)
        self._sub_blocks = _SegmentReducer(sample_rate, _SUB_BLOCKS_PER_SECOND, 1, np.add)
        self._recent: F64 = np.empty(0)  # up to 3 last sub-block energies (sums)
        self._block_count = 0
        self._group_carry: F64 = np.zeros(2)  # gated energy sum, gated block count
        self._blocks = _LoudnessHistogram(_HIST_BIN, powers=1)
        self._exact = _ExactBlocks(exact_blocks)
        self._groups = _LoudnessHistogram(_GROUP_BIN, powers=2)

    def push(self, samples: NDArray[np.float32]) -> None:
        """Feed float32 ``[n_samples, channels]`` at the native rate."""
        _check_block(samples, self.channels)
        for start in range(0, samples.shape[0], _SLICE):
            part = samples[start : start + _SLICE]
            self._samples += part.shape[0]
            energy, self._zi = weighted_energy(self._sos, part, self._zi, self._weights)
            closed = self._sub_blocks.push(energy[np.newaxis, :])[0]
            self._add_blocks(self._complete_blocks(closed))

    def _complete_blocks(self, sub_blocks: F64) -> F64:
        """Mean-square energies ``[m]`` of the 400 ms blocks completed by new sub-blocks."""
        run = np.concatenate((self._recent, sub_blocks))
        keep = _SUB_BLOCKS_PER_BLOCK - 1
        self._recent = run[-keep:] if run.shape[0] >= keep else run
        if run.shape[0] <= keep:
            return np.empty(0)
        sums = run[:-3] + run[1:-2] + run[2:-1] + run[3:]
        return sums / (0.4 * self.sample_rate)

    def _add_blocks(self, energy: F64) -> None:
        """Gate new blocks absolutely, bin them, and update the one-second groups."""
        m = energy.shape[0]
        if m == 0:
            return
        gated = _loudness(energy) >= _ABSOLUTE_GATE
        self._blocks.add(energy[gated])
        self._exact.add(energy[gated])
        first = self._block_count
        self._block_count += m
        group = (np.arange(first, first + m) // _BLOCKS_PER_GROUP) - first // _BLOCKS_PER_GROUP
        sums = np.bincount(group, weights=np.where(gated, energy, 0.0))
        counts = np.bincount(group, weights=gated.astype(np.float64))
        sums[0] += self._group_carry[0]
        counts[0] += self._group_carry[1]
        done = self._block_count // _BLOCKS_PER_GROUP - first // _BLOCKS_PER_GROUP
        self._group_carry = (
            np.array([sums[done], counts[done]]) if done < sums.shape[0] else np.zeros(2)
        )
        filled = counts[:done] > 0
        self._groups.add(sums[:done][filled] / counts[:done][filled])

    def _tail_block(self) -> F64:
        """Energy ``[0 or 1]`` of pyloudnorm's zero-padded last block, if counted and gated."""
        keep = _SUB_BLOCKS_PER_BLOCK - 1
        if self.strict_blocks or self._recent.shape[0] < keep:
            return np.empty(0)
        seconds = self._samples / self.sample_rate
        counted = round((seconds - 0.4) / (0.4 * 0.25)) + 1  # pyloudnorm's expression
        if counted <= self._block_count:
            return np.empty(0)
        total = float(self._recent.sum() + self._sub_blocks.partial[0])
        energy = np.array([total / (0.4 * self.sample_rate)])
        return energy[_loudness(energy) >= _ABSOLUTE_GATE]

    def _relative_threshold(self, extra: F64 | None = None) -> float | None:
        """The relative gate in LUFS counting ``extra`` blocks too; ``None`` if no blocks."""
        extra = np.empty(0) if extra is None else extra
        count = float(self._blocks.counts.sum()) + extra.shape[0]
        if count == 0.0:
            return None
        mean_energy = (float(self._blocks.sums[0].sum()) + float(extra.sum())) / count
        return _LOUDNESS_OFFSET + 10.0 * math.log10(mean_energy) + _RELATIVE_GATE

    def _binned_loudness(self, threshold: float, extra: F64) -> float | None:
        """Histogram estimate of the loudness of the blocks louder than ``threshold``."""
        count, sums = self._blocks.above(threshold)
        kept = extra[_loudness(extra) > threshold]
        count += kept.shape[0]
        if count <= 0.0:  # cannot happen: the mean block is above the threshold
            return None
        mean_energy = (float(sums[0]) + float(kept.sum())) / count
        return _LOUDNESS_OFFSET + 10.0 * math.log10(mean_energy)

    def values(self) -> dict[str, float]:
        """``{"integrated_lufs": LUFS}``; -70.0 until a block reaches -70 LUFS."""
        tail = self._tail_block()
        threshold = self._relative_threshold(tail)
        if threshold is None:
            return {"integrated_lufs": SILENCE_LUFS}
        if self._exact.overflowed:
            loudness = self._binned_loudness(threshold, tail)
        else:
            loudness = self._exact.gated_loudness(threshold, tail)
        return {"integrated_lufs": SILENCE_LUFS if loudness is None else loudness}

    def confidences(self) -> dict[str, float]:
        """``{"integrated_lufs": p}`` from the standard error of gated one-second groups."""
        return {"integrated_lufs": _confidence("integrated_lufs", self.standard_error())}

    def standard_error(self) -> float:
        """Standard error (LU) of the integrated loudness; ``inf`` below two gated groups."""
        threshold = self._relative_threshold()
        if threshold is None:
            return math.inf
        count, sums = self._groups.above(threshold)
        if count < confidence.MIN_BLOCKS:
            return math.inf
        mean = float(sums[0]) / count
        variance = max(float(sums[1]) / count - mean * mean, 0.0) * count / (count - 1.0)
        relative_se = math.sqrt(variance / count) / mean
        return 10.0 / math.log(10.0) * relative_se


# --------------------------------------------------------------------------------------
# Stereo image
# --------------------------------------------------------------------------------------

# Rows of the per-second sums kept by StereoImage.
_LL, _RR, _LR, _SIDE = range(4)


class StereoImage:
    """``stereo_width`` and ``phase_correlation`` of the first two channels.

    With ``M = (L + R) / 2`` and ``S = (L - R) / 2`` over every sample so far:
    ``stereo_width = sum(S^2) / (sum(M^2) + sum(S^2))`` (0 = identical channels, 1 =
    inverted channels), computed as ``2 sum(S^2) / (sum(L^2) + sum(R^2))`` since
    ``M^2 + S^2 = (L^2 + R^2) / 2``; ``phase_correlation = sum(L R) / sqrt(sum(L^2)
    sum(R^2))`` (-1 to 1). Sums are float64; the side energy is summed directly, so
    nearly identical channels lose no precision. Mono input gives 0.0 and 1.0 (with
    confidence 1); silence gives 0.0 and 1.0; a single silent channel gives correlation
    0.0 (nothing in common, as a hardware correlation meter shows).

    Confidence: the four sums ``[L^2, R^2, LR, S^2]`` are also kept per one-second batch;
    the covariance ``C`` of the batch vectors gives, by the delta method on each ratio,
    the standard error ``sqrt(g' C g / B)`` of the current value (``g`` the gradient of
    the ratio at the batch mean, ``B`` batches), fed to
    :func:`confidence.calibrated`. Fewer than two seconds, or silence, give the calibrated
    base rate (the standard error is undefined).
    """

    names: tuple[str, ...] = ("stereo_width", "phase_correlation")

    def __init__(self, sample_rate: int, channels: int) -> None:
        """Accumulator for float32 ``[n_samples, channels]`` input at ``sample_rate`` Hz."""
        _check_config(sample_rate, channels)
        self.sample_rate = sample_rate
        self.channels = channels
        self._totals: F64 = np.zeros(4)
        self._seconds = _SegmentReducer(sample_rate, 1, 4, np.add)
        self._batches = _BatchMoments(4)

    def push(self, samples: NDArray[np.float32]) -> None:
        """Feed float32 ``[n_samples, channels]`` at the native rate (mono is ignored)."""
        _check_block(samples, self.channels)
        if self.channels < 2:
            return
        block = np.ascontiguousarray(samples, dtype=np.float32)
        starts, closed = self._seconds.split(block.shape[0])
        if starts.shape[0] == 0:
            return
        # one compiled pass: [L^2, R^2, LR, S^2] summed per piece of the one-second grid
        sums = np.empty((starts.shape[0], 4))
        library().sp_stereo_segments(block, block.shape[0], self.channels, starts, starts.shape[0], sums)
        self._totals += sums.sum(axis=0)
        self._batches.add(self._seconds.merge(np.ascontiguousarray(sums.T), closed).T)

    def values(self) -> dict[str, float]:
        """``{"stereo_width": 0-1, "phase_correlation": -1-1}``."""
        if self.channels < 2:
            return {"stereo_width": 0.0, "phase_correlation": 1.0}
        return {
            "stereo_width": _width(self._totals),
            "phase_correlation": _correlation(self._totals),
        }

    def confidences(self) -> dict[str, float]:
        """Per-dimension confidence from the one-second batch covariance."""
        if self.channels < 2:
            return {"stereo_width": 1.0, "phase_correlation": 1.0}
        mean = self._batches.mean
        width_se = self._batches.standard_error(_width_gradient(mean))
        correlation_se = self._batches.standard_error(_correlation_gradient(mean))
        return {
            "stereo_width": _confidence("stereo_width", width_se),
            "phase_correlation": _confidence("phase_correlation", correlation_se),
        }


def _width(sums: F64) -> float:
    """Side share of mid + side energy, ``2 S^2 / (L^2 + R^2)`` (0.0 for silence)."""
    total = float(sums[_LL] + sums[_RR])
    return min(1.0, 2.0 * float(sums[_SIDE]) / total) if total > 0.0 else 0.0


def _correlation(sums: F64) -> float:
    """Normalised L/R correlation (1.0 for silence, 0.0 when one channel is silent)."""
    ll, rr = float(sums[_LL]), float(sums[_RR])
    if ll == 0.0 and rr == 0.0:
        return 1.0
    if ll == 0.0 or rr == 0.0:
        return 0.0
    return max(-1.0, min(1.0, float(sums[_LR]) / math.sqrt(ll * rr)))


def _width_gradient(mean: F64) -> F64:
    """Gradient ``[4]`` of ``2 S / (LL + RR)`` at the batch mean (NaN when undefined)."""
    total = float(mean[_LL] + mean[_RR])
    if total <= 0.0:
        return np.full(4, np.nan)
    gradient = np.zeros(4)
    gradient[_SIDE] = 2.0 / total
    gradient[_LL] = gradient[_RR] = -2.0 * float(mean[_SIDE]) / total**2
    return gradient


def _correlation_gradient(mean: F64) -> F64:
    """Gradient ``[4]`` of ``LR / sqrt(LL RR)`` at the batch mean (NaN when undefined)."""
    ll, rr = float(mean[_LL]), float(mean[_RR])
    if ll <= 0.0 or rr <= 0.0:
        return np.full(4, np.nan)
    value = float(mean[_LR]) / math.sqrt(ll * rr)
    gradient = np.zeros(4)
    gradient[_LR] = 1.0 / math.sqrt(ll * rr)
    gradient[_LL] = -value / (2.0 * ll)
    gradient[_RR] = -value / (2.0 * rr)
    return gradient


# --------------------------------------------------------------------------------------
# Crest factor
# --------------------------------------------------------------------------------------


class CrestFactor:
    """``crest_db = 20 log10(peak / rms)`` over every sample of every channel so far.

    ``peak`` is the largest ``|x|``, ``rms`` the root mean square over all samples and
    channels (float64 sums). Silence gives 0.0. A -20 dBFS sine gives 3.01 dB.

    Confidence: the crest of each complete one-second batch (skipping silent seconds) is
    a batch value; the standard error of their mean, ``s / sqrt(B)`` in dB, is the
    uncertainty proxy fed to :func:`confidence.calibrated` (1 dB tolerance). The
    global crest is not the mean of per-second crests (its peak is a running maximum),
    but both move only as far as the programme's second-to-second crest varies, so a
    steady programme gets a confident value and a varying one does not; with fewer than
    two non-silent seconds the standard error is undefined and the calibrated base rate
    applies (the fitted factor for crest_db is > 1: this proxy understates the spread).
    """

    names: tuple[str, ...] = ("crest_db",)

    def __init__(self, sample_rate: int, channels: int) -> None:
        """Accumulator for float32 ``[n_samples, channels]`` input at ``sample_rate`` Hz."""
        _check_config(sample_rate, channels)
        self.sample_rate = sample_rate
        self.channels = channels
        self._peak = 0.0
        self._sum_squares = 0.0
        self._count = 0
        self._second_squares = _SegmentReducer(sample_rate, 1, 1, np.add)
        self._second_peaks = _SegmentReducer(sample_rate, 1, 1, np.maximum)
        self._batches = _BatchMoments(1)

    def push(self, samples: NDArray[np.float32]) -> None:
        """Feed float32 ``[n_samples, channels]`` at the native rate."""
        _check_block(samples, self.channels)
        block = np.ascontiguousarray(samples, dtype=np.float32)
        starts, closed = self._second_squares.split(block.shape[0])
        self._second_peaks.split(block.shape[0])  # the same grid, kept in step
        if starts.shape[0] == 0:
            return
        # one compiled pass: sum of squares and peak per piece of the one-second grid
        squares, peaks = np.empty((1, starts.shape[0])), np.empty((1, starts.shape[0]))
        library().sp_crest_segments(
            block, block.shape[0], self.channels, starts, starts.shape[0], squares, peaks
        )
        self._peak = max(self._peak, float(peaks.max()))
        self._sum_squares += float(squares.sum())
        self._count += block.size
        self._add_seconds(self._second_peaks.merge(peaks, closed)[0], self._second_squares.merge(squares, closed)[0])

    def _add_seconds(self, peaks: F64, sum_squares: F64) -> None:
        """Add the crest (dB) of each complete, non-silent second as a batch value."""
        loud = sum_squares > 0.0
        rms = np.sqrt(sum_squares[loud] / (self.sample_rate * self.channels))
        crest = 20.0 * np.log10(peaks[loud] / rms)
        self._batches.add(crest[:, np.newaxis])

    def values(self) -> dict[str, float]:
        """``{"crest_db": dB}`` (0.0 for silence)."""
        if self._sum_squares <= 0.0:
            return {"crest_db": 0.0}
        rms = math.sqrt(self._sum_squares / self._count)
        return {"crest_db": 20.0 * math.log10(self._peak / rms)}

    def confidences(self) -> dict[str, float]:
        """``{"crest_db": p}`` from the standard error of per-second crests."""
        return {"crest_db": _confidence("crest_db", self._batches.standard_error(np.ones(1)))}
