"""Onset strength, onset picking and tempo, all streaming and exact.

* Onset strength (librosa's spectral flux on the log-mel spectrum, ``lag=1``, ``max_size=1``):
  ``env[t] = mean_m max(0, D[t, m] - D[t-1, m])`` with ``D`` the floored mel dB spectrum
  (:mod:`analysis`); ``env[0] = 0``. About 43 values per second.
* Onsets: ``t`` is an onset when ``env[t]`` is the maximum of ``env[t-3 .. t+3]`` (strictly
  greater than the three before), at least ``ONSET_DELTA`` above the mean of
  ``env[t-10 .. t+3]``, and at least 4 frames (93 ms) after the previous onset. Decided with
  a fixed lag of 3 frames; at the end of the media the windows are cut at the last frame.
* Tempo: the autocorrelation ``C(l)`` of the mean-removed envelope for lags ``0..MAX_LAG``
  is kept as running sums (``sum e[t] e[t-l]`` plus the first and last ``MAX_LAG`` values
  for the mean correction), so it is exact for everything seen so far in fixed memory.
  ``r(l) = (C(l) / (n - l)) / (C(0) / n)`` for lags up to ``n / 2`` (0 beyond: a lag near
  ``n`` rests on a handful of products, and on noise those alone gave a confident tempo
  in the first seconds), smoothed with ``[1/4, 1/2, 1/4]``; each
  candidate tempo on a 0.25 %-spaced grid over 30-300 BPM with period ``p`` frames scores
  ``mean_{k=1..4} r(k p)`` (linear interpolation; a multiple beyond ``n / 2`` adds 0, so
  short media score low) times a log-normal prior centred on
  120 BPM with a one-octave standard deviation (librosa's prior). The best candidate is
  refined by a parabola through its neighbours. When no candidate scores above 0 (no
  periodicity at all, e.g. a single onset) the tempo is 0, as for a flat envelope.
"""

from __future__ import annotations

import math

import numpy as np
from numpy.typing import NDArray

from streamprint.engine.grid import FRAME_RATE

PRE_MAX = 3
POST_MAX = 3
PRE_AVG = 10
WAIT = 4
#: Minimum onset strength above the local mean (mean dB rise per mel band).
ONSET_DELTA = 1.0

#: Envelope variance (dB^2) below which there is no rhythm to measure (steady tones, silence).
MIN_ENVELOPE_VARIANCE = 1e-4
#: Comb score below which the envelope has no pulse (white noise scores ~0.02, a perfect
#: click track ~0.47, music-like mixes 0.43-0.65 in the tests).
MIN_PULSE_STRENGTH = 0.1
MIN_BPM = 30.0
MAX_BPM = 300.0
COMB = 4
MAX_LAG = math.ceil(COMB * 60.0 * FRAME_RATE / MIN_BPM) + 2
_GRID_STEP = 1.0025
TEMPO_GRID: NDArray[np.float64] = MIN_BPM * _GRID_STEP ** np.arange(  # type: ignore[assignment]
    int(math.log(MAX_BPM / MIN_BPM) / math.log(_GRID_STEP)) + 1
)
_PRIOR = np.exp(-0.5 * (np.log2(TEMPO_GRID) - np.log2(120.0)) ** 2)
_PERIODS = 60.0 * FRAME_RATE / TEMPO_GRID  # frames per beat, per candidate


class OnsetEnvelope:
    """Streaming onset strength from floored mel dB rows."""

    def __init__(self) -> None:
        self._previous: NDArray[np.float32] | None = None

    def push(self, mel_db: NDArray[np.float32]) -> NDArray[np.float64]:
        """Onset strength ``[m]`` for mel dB rows ``[m, N_MELS]``."""
        if mel_db.shape[0] == 0:
            return np.zeros(0)
        if self._previous is None:
            previous = mel_db[:1]
            first = True
        else:
            previous = self._previous[None, :]
            first = False
        stacked = np.concatenate((previous, mel_db), axis=0).astype(np.float64)
        flux = np.maximum(0.0, np.diff(stacked, axis=0)).mean(axis=1)
        if first:
            flux[0] = 0.0
        self._previous = mel_db[-1].copy()
        result: NDArray[np.float64] = flux
        return result


class OnsetPicker:
    """Fixed-lag peak picking on the onset envelope; returns onset frame indices."""

    def __init__(self) -> None:
        self._env = np.zeros(0)
        self._base = 0  # absolute frame index of _env[0]
        self._seen = 0
        self._decided = 0
        self._last_onset = -(10**9)

    def push(self, env: NDArray[np.float64]) -> list[int]:
        """Add envelope values; return onsets among frames that became decidable."""
        self._env = np.concatenate((self._env, env))
        self._seen += env.shape[0]
        return self._decide(self._seen - POST_MAX)

    def finish(self) -> list[int]:
        """Decide the last frames with windows cut at the end of the media."""
        return self._decide(self._seen)

    def _decide(self, stop: int) -> list[int]:
        env, base = self._env, self._base
        # Frames whose whole windows lie inside ``env`` are tested together; the few at the
        # start and the end of the media (cut windows) one by one, with the same sums.
        lo = max(self._decided, base + PRE_AVG)
        hi = min(stop, base + env.shape[0] - POST_MAX)
        candidates: list[int] = []
        if lo >= hi:
            candidates = [t for t in range(self._decided, stop) if self._peak(t)]
        else:
            candidates = [t for t in range(self._decided, lo) if self._peak(t)]
            candidates += self._peaks_between(lo, hi)
            candidates += [t for t in range(hi, stop) if self._peak(t)]
        onsets: list[int] = []
        for t in candidates:
            if t - self._last_onset < WAIT:
                continue
            onsets.append(t)
            self._last_onset = t
        self._decided = max(self._decided, stop)
        keep_from = max(0, self._decided - PRE_AVG)
        self._env = self._env[keep_from - base :]
        self._base = keep_from
        return onsets


    def _peak(self, t: int) -> bool:
        """Whether frame ``t`` passes the peak and threshold tests (windows cut at the ends)."""
        env = self._env
        i = t - self._base
        value = env[i]
        before = env[max(0, i - PRE_MAX) : i]
        after = env[i + 1 : i + 1 + POST_MAX]
        if before.size and value <= before.max():
            return False
        if after.size and value < after.max():
            return False
        local = env[max(0, i - PRE_AVG) : i + 1 + POST_MAX]
        return bool(value >= local.mean() + ONSET_DELTA)

    def _peaks_between(self, lo: int, hi: int) -> list[int]:
        """Frames in ``[lo, hi)`` (whole windows available) passing :meth:`_peak`'s tests."""
        env = self._env
        first = lo - self._base - PRE_AVG
        span = hi - lo
        width = PRE_AVG + 1 + POST_MAX
        windows = np.lib.stride_tricks.sliding_window_view(env[first : first + span + width - 1], width)
        values = windows[:, PRE_AVG]
        before = windows[:, PRE_AVG - PRE_MAX : PRE_AVG].max(axis=1)
        after = windows[:, PRE_AVG + 1 :].max(axis=1)
        # the local mean of each window: a contiguous copy, reduced row by row like
        # ``np.mean`` of one window (same pairwise sum, same bits)
        local = np.ascontiguousarray(windows).mean(axis=1)
        ok = (values > before) & (values >= after) & (values >= local + ONSET_DELTA)
        return [lo + int(j) for j in np.flatnonzero(ok)]


class TempoTracker:
    """Running autocorrelation of the onset envelope and the tempo estimate from it."""

    def __init__(self) -> None:
        self._lagged = np.zeros(MAX_LAG + 1)  # sum_t e[t] e[t-l]
        self._history = np.zeros(0)  # last MAX_LAG values
        self._head = np.zeros(0)  # first MAX_LAG values
        self._count = 0
        self._total = 0.0
        self._estimate: tuple[int, tuple[float, float]] | None = None  # (count, estimate)

    @property
    def frames(self) -> int:
        """Envelope values seen."""
        return self._count

    def push(self, env: NDArray[np.float64]) -> None:
        """Add envelope values ``[m]``."""
        m = env.shape[0]
        if m == 0:
            return
        h = self._history.shape[0]
        padded = np.concatenate((np.zeros(MAX_LAG - h), self._history, env))
        windows = np.lib.stride_tricks.sliding_window_view(padded, MAX_LAG + 1)[:m]
        self._lagged += (env @ windows)[::-1]
        if self._head.shape[0] < MAX_LAG:
            self._head = np.concatenate((self._head, env[: MAX_LAG - self._head.shape[0]]))
        self._history = padded[-MAX_LAG:].copy() if self._count + m >= MAX_LAG else padded[MAX_LAG - h :].copy()
        self._count += m
        self._total += float(env.sum())

    def autocorrelation(self) -> NDArray[np.float64]:
        """Normalised autocorrelation ``r(l)`` for ``l = 0..MAX_LAG``: zeros where undefined,
        and for lags ``l > n / 2``, whose ``n - l`` products are too few to estimate it."""
        n = self._count
        lags = np.arange(MAX_LAG + 1)
        valid = lags <= n // 2
        r = np.zeros(MAX_LAG + 1)
        if n < 2:
            return r
        mu = self._total / n
        head_prefix = np.concatenate(([0.0], np.cumsum(self._head)))
        tail = self._history[::-1]
        tail_prefix = np.concatenate(([0.0], np.cumsum(tail)))
        idx = np.minimum(lags, self._head.shape[0])
        sum_late = self._total - head_prefix[idx]  # sum_{t >= l} e[t]
        sum_early = self._total - tail_prefix[np.minimum(lags, tail.shape[0])]  # sum_{t < n-l} e[t]
        count = np.maximum(n - lags, 1)
        cov = (self._lagged - mu * (sum_late + sum_early) + count * mu * mu) / count
        if cov[0] <= MIN_ENVELOPE_VARIANCE:
            return r
        r[valid] = cov[valid] / cov[0]
        return r

    def estimate(self) -> tuple[float, float]:
        """``(bpm, strength)``: tempo and the comb score of the winning candidate (0-1).

        Computed once per envelope length: a snapshot asks for it for the value and again
        for the confidence.
        """
        if self._estimate is None or self._estimate[0] != self._count:
            self._estimate = (self._count, self._compute_estimate())
        return self._estimate[1]

    def _compute_estimate(self) -> tuple[float, float]:
        r = self.autocorrelation()
        if not np.any(r):
            return 0.0, 0.0
        smooth = r.copy()
        smooth[1:-1] = 0.25 * r[:-2] + 0.5 * r[1:-1] + 0.25 * r[2:]
        lags = np.arange(MAX_LAG + 1, dtype=np.float64)
        combs = np.zeros_like(TEMPO_GRID)
        for k in range(1, COMB + 1):
            combs += np.interp(k * _PERIODS, lags, smooth, right=0.0)
        combs /= COMB
        scores = np.maximum(combs, 0.0) * _PRIOR
        best = int(np.argmax(scores))
        if combs[best] < MIN_PULSE_STRENGTH or best in (0, TEMPO_GRID.shape[0] - 1):
            # No period has real autocorrelation support (a single onset, noise), or the
            # winner is pinned at the edge of the range (a sweep): there is no tempo, not
            # the lowest or highest candidate of the grid.
            return 0.0, 0.0
        bpm = float(TEMPO_GRID[best])
        if 0 < best < TEMPO_GRID.shape[0] - 1:
            a, b, c = scores[best - 1], scores[best], scores[best + 1]
            denom = a - 2 * b + c
            if denom < 0:
                offset = 0.5 * (a - c) / denom
                bpm = float(bpm * _GRID_STEP ** float(np.clip(offset, -1.0, 1.0)))
        return bpm, float(np.clip(combs[best], 0.0, 1.0))
