"""Learned heads: small networks that replace HPSS (harmonic share) and YIN (pitch pairs).

Two heads, trained by ``scripts/train_heads.py`` on a generated corpus against the DSP
reference (``hpss.py`` and ``pitch.py``), stored in ``models/heads/<version>/``:

* **harmonic head**: per frame ``t`` it estimates the fractions of the frame power
  ``E_t = sum_f X[t, f]^2`` that HPSS gives the harmonic part, ``a_t ~ E_h[t] / E_t``, and
  the percussive part, ``b_t ~ E_p[t] / E_t``. HPSS's two 31-point medians (the slow part)
  are replaced by *means of the log magnitude* (box filters: running sums, so a few
  operations per bin): ``ln H~`` the larger of the means over frames ``t - 15 .. t`` and
  ``t .. t + 15`` (:func:`harmonic_proxies`), ``ln P~`` the mean over bins ``f - 15 .. f + 15``,
  both with HPSS's reflected edges; the soft mask
  ``m = H~^2 / (H~^2 + P~^2)`` then splits each of 32 bands of 32 bins into proxy fractions
  ``sum_band m^2 X^2 / E_t`` and ``sum_band (1 - m)^2 X^2 / E_t`` (64 inputs). A 2-layer MLP
  maps those to ``(a_t, b_t)``: it learns how the medians differ from the means (a median
  ignores a transient or a spectral peak that a mean of logs only dampens). Like HPSS it
  needs 15 frames of look-ahead, so a frame's estimate is known 15 frames after it
  arrives, and the end of the media uses the reflected end edge: streaming equals batch.
  ``harmonic_ratio = sum_t a_t E_t / sum_t (a_t + b_t) E_t``: the structure of
  ``sum E_h / sum (E_h + E_p)``.
* **pitch head**: per pair of consecutive frames ``(t - 1, t)`` it estimates
  ``q_pair = P(both frames voiced)`` and ``q_stable = P(|df0| < 50 cents | voiced pair)``
  from per-frame features of both frames (low-bin log magnitudes, the pooled normalised
  autocorrelation of the windowed frame, its peak value, and log2 of its peak lag) through
  a 2-layer MLP. Decisions are hard, as YIN's are: a pair counts when both frames are loud
  and ``q_pair > 0.5``, and is stable when also ``q_stable > 0.5``;
  ``pitch_stability = stable pairs / pairs``, 0 with fewer than :data:`MIN_PAIRS` pairs
  (one stray pair would otherwise decide the value of a clip without voiced frames).

The networks are :class:`HeadWeights` applied in numpy here (the reference); the same
weights as ONNX graphs run on ONNX Runtime (``runtime/heads.py``). Everything is float32
except the energies and sums (float64).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Protocol

import numpy as np
from numpy.typing import NDArray

from streamprint.engine.compiled import library
from streamprint.engine.grid import N_BINS, SILENCE_RMS
from streamprint.engine.lagwindow import LagWindow
from streamprint.engine.median import reflect_indices

#: Frames of look-ahead (and look-back) of the harmonic proxies: as HPSS.
HARMONIC_CONTEXT = 15
#: Half-width in bins of the frequency box filter (31 bins, as HPSS's frequency median).
FREQ_HALF = 15
#: Bands of 32 bins (bins 0..1023) of the harmonic proxies.
N_BANDS = 32
BAND_BINS = 32
HARMONIC_FEATURES = 2 * N_BANDS
#: Low magnitude bins 1..128 (10.8 Hz..1378 Hz) of the pitch input.
PITCH_BINS = 128
#: Autocorrelation lags 10..338 (YIN's period range), max-pooled by 7 into 47 values.
ACF_MIN_LAG = 10
ACF_MAX_LAG = 338
ACF_POOL = 7
ACF_POOLED = (ACF_MAX_LAG - ACF_MIN_LAG + 1) // ACF_POOL
#: Per frame: low bins, pooled autocorrelation, its peak value, log2 of its peak lag.
PITCH_FEATURES = PITCH_BINS + ACF_POOLED + 2
#: Column of log2(peak lag) in the pitch features (its pair difference ~ the f0 change).
LAG_COLUMN = PITCH_FEATURES - 1
#: Fewer decided voiced pairs than this: pitch_stability 0 (as "no voiced pair").
MIN_PAIRS = 2
DECISION = 0.5
_LOG_FLOOR = 1e-30
_LOGMAG_RANGE = 12.0

F32 = NDArray[np.float32]
F64 = NDArray[np.float64]


class HeadsRunner(Protocol):
    """Runs both networks (numpy reference, ONNX Runtime, ...)."""

    name: str

    def harmonic(self, proxies: F32) -> F32:
        """``[m, HARMONIC_FEATURES]`` proxy fractions -> ``[m, 2]`` (``a_t``, ``b_t``)."""
        ...

    def pitch(self, frames: F32) -> F32:
        """``[m + 1, PITCH_FEATURES]`` (previous frame first) -> ``[m, 2]`` (``q_pair``, ``q_stable``)."""
        ...


@dataclass(frozen=True)
class HeadFrameInputs:
    """What the heads need of ``n`` frames (computed by :func:`frame_inputs`).

    Harmonic head (``None`` when HPSS runs instead): ``log_mag`` ``[n, 1025]`` (natural
    log of the magnitude, floored), ``power`` ``[n, 1025]`` (``X^2``); the head's other
    input, the 31-bin box mean of ``log_mag`` along frequency (:func:`frequency_level`), is
    computed when the frames are decided (:class:`LearnedHarmonic`), so a live session does
    not hold it for the 15 frames it waits. Pitch head (``None`` when YIN runs
    instead): ``pitch`` ``[n, PITCH_FEATURES]``. Always: ``energy`` ``[n]`` float64
    (``sum_f X^2``), ``loud`` ``[n]`` bool, and ``runner`` the networks (the analyzer's
    choice, so the accumulators need no configuration of their own).
    """

    log_mag: F32 | None
    power: F32 | None
    pitch: F32 | None
    energy: F64
    loud: NDArray[np.bool_]
    runner: HeadsRunner | None = None

    def rows(self, start: int, stop: int) -> HeadFrameInputs:
        """Copies of frames ``start:stop`` (every input is per frame; the runner is shared)."""

        def cut(a: NDArray[Any] | None) -> NDArray[Any] | None:
            return None if a is None else a[start:stop].copy()

        return HeadFrameInputs(
            log_mag=cut(self.log_mag),
            power=cut(self.power),
            pitch=cut(self.pitch),
            energy=self.energy[start:stop].copy(),
            loud=self.loud[start:stop].copy(),
            runner=self.runner,
        )


_FREQ_INDEX = reflect_indices(np.arange(-FREQ_HALF - 1, N_BINS + FREQ_HALF, dtype=np.int64), N_BINS)


def frame_inputs(
    magnitude: F32, mel_db: F32, rms: F64, runner: HeadsRunner | None = None,
    *, harmonic: bool = True, pitch: bool = True,
) -> HeadFrameInputs:
    """Head inputs of frames from the analyzer's own outputs.

    ``magnitude`` ``[n, 1025]`` (``|rfft(hann x)|``), ``rms`` ``[n]`` (linear); ``mel_db`` is
    part of the analyzer contract but not used. Costs a log of the spectrum, a running
    sum along frequency and one 2048-point inverse FFT per frame (the windowed
    autocorrelation); no HPSS, no YIN. ``harmonic`` / ``pitch`` False leave that head's
    inputs out (its DSP step runs instead).
    """
    del mel_db
    power = np.square(magnitude, dtype=np.float32)
    energy = power.sum(axis=1, dtype=np.float64)
    log_mag = np.float32(0.5) * np.log(power + np.float32(_LOG_FLOOR))
    return HeadFrameInputs(
        log_mag=log_mag if harmonic else None, power=power if harmonic else None,
        pitch=pitch_inputs(log_mag, power) if pitch else None,
        energy=energy, loud=np.asarray(rms >= SILENCE_RMS), runner=runner,
    )


def pitch_inputs(log_mag: F32, power: F32) -> F32:
    """Per-frame pitch-head features ``[n, PITCH_FEATURES]`` (see module docstring)."""
    n = power.shape[0]
    low = log_mag[:, 1 : PITCH_BINS + 1]
    low = np.maximum(low - low.max(axis=1, keepdims=True), np.float32(-_LOGMAG_RANGE))
    acf = np.fft.irfft(power, axis=1)[:, : ACF_MAX_LAG + 2]
    r0 = acf[:, :1]
    norm = (acf / np.where(r0 > 0, r0, 1.0)).astype(np.float32)
    lags = norm[:, ACF_MIN_LAG : ACF_MAX_LAG + 1]  # [n, 329]
    pooled = lags.reshape(n, ACF_POOLED, ACF_POOL).max(axis=2)
    best = np.argmax(lags, axis=1)
    peak = lags[np.arange(n), best][:, None]
    lag = _refined_lag(norm, best + ACF_MIN_LAG)
    out: F32 = np.ascontiguousarray(
        np.concatenate((low, pooled, peak, np.log2(lag)[:, None]), axis=1), dtype=np.float32
    )
    return out


def _refined_lag(norm: F32, lag: NDArray[np.int64]) -> F32:
    """Peak lag refined by a parabola through its neighbours (samples)."""
    rows = np.arange(norm.shape[0])
    left = norm[rows, lag - 1].astype(np.float64)
    mid = norm[rows, lag].astype(np.float64)
    right = norm[rows, lag + 1].astype(np.float64)
    a = left + right - 2.0 * mid
    with np.errstate(divide="ignore", invalid="ignore"):
        shift = np.where(a < 0, np.clip(0.5 * (left - right) / a, -0.5, 0.5), 0.0)
    out: F32 = (lag + np.nan_to_num(shift)).astype(np.float32)
    return out


def frequency_level(log_mag: F32) -> F32:
    """``ln P~`` ``[n, 1025]``: per frame, the mean of the log magnitudes ``[n, 1025]`` over bins
    ``f - 15 .. f + 15`` with HPSS's reflected edges.

    Compiled (``sp_box_mean_rows``): numpy's ``cumsum`` of the reflected row and the
    difference of its ends, the same float32 operations in the same order, so the same bits.
    """
    log_mag = np.ascontiguousarray(log_mag, dtype=np.float32)
    if log_mag.ndim != 2 or log_mag.shape[1] != N_BINS:
        raise ValueError(f"log magnitudes must be [n, {N_BINS}], got {log_mag.shape}")
    out = np.empty_like(log_mag)
    library().sp_box_mean_rows(
        log_mag, log_mag.shape[0], N_BINS, _FREQ_INDEX, _FREQ_INDEX.shape[0], 2 * FREQ_HALF + 1, out,
        np.empty(_FREQ_INDEX.shape[0], dtype=np.float32),
    )
    return out


def harmonic_proxies(window: F32, log_freq: F32, power: F32, energy: F64) -> F32:
    """Proxy fractions ``[k, HARMONIC_FEATURES]`` of ``k`` frames.

    ``window`` ``[k + 30, 1025]`` log magnitudes of frames ``t - 15 .. t + 15`` (reflected
    edges); ``log_freq`` (``ln P~``), ``power`` ``[k, 1025]`` and ``energy`` ``[k]`` of the frames.

    ``ln H~`` is, per bin, the larger of the means over frames ``t - 15 .. t`` and
    ``t .. t + 15`` (float32 running sums of the rows). Like the 31-frame median it keeps a
    tone's level right next to a silence or a change of note (one half lies inside the
    tone), while a one-frame transient weighs only 1/16 of either half. The soft mask is
    ``m = 1 / (1 + exp(clip(2 (ln P~ - ln H~), -60, 60)))``; the outputs are
    ``sum_band m^2 X^2 / E`` and ``sum_band (1 - m)^2 X^2 / E`` over 32 bands of 32 bins.

    Two compiled passes around numpy's ``exp`` (``sp_harmonic_exponent``,
    ``sp_harmonic_bands``): the float32 operations, the float64 pairwise band sums and their
    order are the numpy definition's, so are the bits (the exp is numpy's own).
    """
    window = np.ascontiguousarray(window, dtype=np.float32)
    k = window.shape[0] - 2 * HARMONIC_CONTEXT
    if window.ndim != 2 or window.shape[1] != N_BINS or k < 0:
        raise ValueError(f"window must be [k + {2 * HARMONIC_CONTEXT}, {N_BINS}], got {window.shape}")
    log_freq = np.ascontiguousarray(log_freq, dtype=np.float32)
    power = np.ascontiguousarray(power, dtype=np.float32)
    energy = np.ascontiguousarray(energy, dtype=np.float64)
    if log_freq.shape != (k, N_BINS) or power.shape != (k, N_BINS) or energy.shape != (k,):
        raise ValueError(f"log_freq, power [{k}, {N_BINS}] and energy [{k}] expected, got "
                         f"{log_freq.shape}, {power.shape}, {energy.shape}")
    lib = library()
    exp_term = np.empty((k, N_BINS), dtype=np.float32)
    lib.sp_harmonic_exponent(window, k, N_BINS, HARMONIC_CONTEXT, log_freq, exp_term, np.empty_like(window))
    np.exp(exp_term, out=exp_term)
    out = np.empty((k, HARMONIC_FEATURES), dtype=np.float32)
    lib.sp_harmonic_bands(exp_term, power, energy, k, N_BINS, N_BANDS, BAND_BINS, out, np.empty(2 * BAND_BINS))
    return out


@dataclass(frozen=True)
class HeadWeights:
    """The networks' parameters (float32), as ``scripts/train_heads.py`` stores them.

    For prefix ``h`` (harmonic, input ``HARMONIC_FEATURES``) and ``p`` (pitch, input
    ``3 PITCH_FEATURES``: ``[x_t, x_{t-1}, |x_t - x_{t-1}|]`` after standardisation):
    ``{h,p}_mean`` / ``{h,p}_scale`` (standardisation ``(x - mean) * scale`` of the per-frame
    input), ``_w1`` ``[H, in]``, ``_b1`` ``[H]``, ``_w2`` ``[H, H]``, ``_b2``, ``_wout``
    ``[2, H]``, ``_bout`` ``[2]``; ReLU hidden layers, sigmoid outputs.
    """

    arrays: Mapping[str, F32]

    def __getitem__(self, key: str) -> F32:
        return self.arrays[key]

    @classmethod
    def load(cls, path: str) -> HeadWeights:
        """Read the ``.npz`` written by the training script."""
        with np.load(path) as data:
            return cls({k: np.ascontiguousarray(data[k], dtype=np.float32) for k in data.files})


def _sigmoid(x: F32) -> F32:
    out: F32 = (1.0 / (1.0 + np.exp(-np.clip(x, -60.0, 60.0)))).astype(np.float32)
    return out


class _Mlp:
    def __init__(self, w: HeadWeights, prefix: str) -> None:
        self.mean, self.scale = w[f"{prefix}_mean"], w[f"{prefix}_scale"]
        self.layers = [
            (np.ascontiguousarray(w[f"{prefix}_w{i}"].T), w[f"{prefix}_b{i}"]) for i in ("1", "2", "out")
        ]

    def __call__(self, z: F32) -> F32:
        for i, (wt, b) in enumerate(self.layers):
            z = z @ wt + b
            if i < len(self.layers) - 1:
                z = np.maximum(z, np.float32(0.0))
        return _sigmoid(z)


class NumpyHeads:
    """Both networks in numpy (the reference for the ONNX graphs)."""

    name = "numpy"

    def __init__(self, weights: HeadWeights) -> None:
        self._harmonic = _Mlp(weights, "h")
        self._pitch = _Mlp(weights, "p")

    def harmonic(self, proxies: F32) -> F32:
        return self._harmonic((proxies - self._harmonic.mean) * self._harmonic.scale)

    def pitch(self, frames: F32) -> F32:
        x = (frames - self._pitch.mean) * self._pitch.scale
        cur, prev = x[1:], x[:-1]
        return self._pitch(np.concatenate((cur, prev, np.abs(cur - prev)), axis=1))


class LearnedHarmonic:
    """Streaming harmonic head with HPSS's fixed 15-frame lag and reflected edges.

    ``push(inputs)`` returns ``(harmonic [k], total [k])`` estimated energies (``a_t E_t`` and
    ``(a_t + b_t) E_t``) of the ``k`` frames that became decidable; ``finish()`` the rest.
    """

    def __init__(self, runner: HeadsRunner) -> None:
        self._runner = runner
        self._log_mag = LagWindow(HARMONIC_CONTEXT, N_BINS)
        self._power = np.zeros((0, N_BINS), dtype=np.float32)
        self._energy = np.zeros(0, dtype=np.float64)

    def push(self, inputs: HeadFrameInputs) -> tuple[F64, F64]:
        assert inputs.log_mag is not None and inputs.power is not None
        self._log_mag.push(inputs.log_mag)
        self._power = np.concatenate((self._power, inputs.power))
        self._energy = np.concatenate((self._energy, inputs.energy))
        return self._emit(final=False)

    def finish(self) -> tuple[F64, F64]:
        return self._emit(final=True)

    def _emit(self, *, final: bool) -> tuple[F64, F64]:
        window = self._log_mag.take(final=final)  # [k + 2 HARMONIC_CONTEXT, N_BINS]
        if window is None:
            return np.zeros(0), np.zeros(0)
        k = window.shape[0] - 2 * HARMONIC_CONTEXT
        energy = self._energy[:k]
        # the decided frames' own rows of the window (the reflected edges are context only)
        log_freq = frequency_level(window[HARMONIC_CONTEXT : HARMONIC_CONTEXT + k])
        proxies = harmonic_proxies(window, log_freq, self._power[:k], energy)
        shares = self._runner.harmonic(proxies)
        a = shares[:, 0].astype(np.float64)
        b = shares[:, 1].astype(np.float64)
        # copies: a view would keep the whole concatenated batch alive until the next push
        # (about 0.35 MB per live stream between updates)
        self._power = self._power[k:].copy()
        self._energy = self._energy[k:].copy()
        return a * energy, (a + b) * energy


class LearnedPitch:
    """Streaming pitch head: each frame is paired with the previous one (carried across calls).

    ``push(inputs [m, PITCH_FEATURES], loud [m])`` returns ``(stable [m], pair [m])`` 0/1
    decisions; the first frame of the stream has no pair, as in the YIN reference.
    """

    def __init__(self, runner: HeadsRunner) -> None:
        self._runner = runner
        self._previous = np.zeros((1, PITCH_FEATURES), dtype=np.float32)
        self._previous_loud = False

    def push(self, inputs: F32, loud: NDArray[np.bool_]) -> tuple[F64, F64]:
        m = inputs.shape[0]
        if m == 0:
            return np.zeros(0), np.zeros(0)
        probs = self._runner.pitch(np.concatenate((self._previous, inputs)))
        prev_loud = np.concatenate(([self._previous_loud], loud[:-1]))
        pair = loud & prev_loud & (probs[:, 0] > DECISION)
        stable = pair & (probs[:, 1] > DECISION)
        self._previous = inputs[-1:].copy()
        self._previous_loud = bool(loud[-1])
        return stable.astype(np.float64), pair.astype(np.float64)


def pitch_stability(stable: float, pairs: float) -> float:
    """``stable / pairs``, 0 with fewer than :data:`MIN_PAIRS` pairs."""
    return stable / pairs if pairs >= MIN_PAIRS else 0.0


class LearnedHeads:
    """The streaming heads of one session: ``harmonic`` replaces HPSS, ``pitch`` the YIN pairs.

    ``harmonic.push`` gives ``(harmonic, total)`` energies (``harmonic_ratio = sum harmonic
    / sum total``, 15 frames behind like HPSS); ``pitch.push`` gives ``(stable, pair)``
    decisions (``pitch_stability =`` :func:`pitch_stability` of their sums).
    """

    def __init__(self, runner: HeadsRunner) -> None:
        self.harmonic = LearnedHarmonic(runner)
        self.pitch = LearnedPitch(runner)
