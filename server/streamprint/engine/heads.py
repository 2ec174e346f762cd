"""Learned heads: small networks that replace HPSS (harmonic share) and YIN (pitch pairs).

Two heads, trained by ``scripts/train_heads.py`` on a generated corpus against the DSP
reference (``hpss.py`` and ``pitch.py``), stored in ``models/heads/<version>/``:

* **harmonic head**: per frame ``t`` it estimates the two fractions of the frame's power
  ``E_t = sum_f X[t, f]^2`` that HPSS assigns to the harmonic part, ``a_t ~ E_h[t] / E_t``,
  and to the percussive part, ``b_t ~ E_p[t] / E_t``. Its input is the frame's mel dB
  spectrum (128 bands, as the analyzer computes it) plus the log-flatness of 32 linear
  bands (fine spectral peakiness the mel scale hides), over frames ``t - 15 .. t + 15``:
  one 1x1 convolution, four dilated 3-tap convolutions in time (dilation 1, 2, 4, 8: a
  receptive field of exactly 31 frames, HPSS's time median) and a 1x1 output with
  sigmoids. Like HPSS it sees 15 frames ahead, so a frame's estimate is known 15 frames
  after it arrives and the edges are reflected exactly as HPSS reflects them.
  ``harmonic_ratio = sum_t a_t E_t / sum_t (a_t + b_t) E_t``: the structure of
  ``sum E_h / sum (E_h + E_p)``.
* **pitch head**: per pair of consecutive frames ``(t - 1, t)`` it estimates
  ``q_pair = P(both frames voiced)`` and ``q_stable = P(|df0| < 50 cents | voiced pair)``
  from per-frame features of both frames (low-bin log magnitudes, the pooled normalised
  autocorrelation of the windowed frame, its peak value and lag) through a 2-layer MLP.
  Silent frames are never voiced, so the exact loudness of both frames multiplies both:
  ``pitch_stability = sum_t L_t q_pair q_stable / sum_t L_t q_pair`` with
  ``L_t = [t and t - 1 loud]``: the structure of stable pairs / voiced pairs.

The network arithmetic is :class:`HeadWeights` applied in numpy here (the reference); the
same weights as ONNX graphs run on ONNX Runtime (``runtime/heads.py``). Array shapes are in
each docstring; everything is float32 except the energies and sums (float64).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Protocol

import numpy as np
from numpy.typing import NDArray

from streamprint.engine.grid import N_BINS, SILENCE_RMS
from streamprint.engine.median import reflect_indices

#: Frames of look-ahead (and look-back) of the harmonic head: as HPSS.
HARMONIC_CONTEXT = 15
#: Dilations of the harmonic head's 3-tap time convolutions (receptive field 31 frames).
DILATIONS = (1, 2, 4, 8)
N_MEL = 128
#: Linear bands of 32 bins (bins 1..1024) whose log-flatness joins the mel input.
N_FLAT_BANDS = 32
HARMONIC_FEATURES = N_MEL + N_FLAT_BANDS
#: Low magnitude bins 1..128 (10.8 Hz..1378 Hz) of the pitch input.
PITCH_BINS = 128
#: Autocorrelation lags 10..338 (YIN's period range), max-pooled by 7 into 47 values.
ACF_MIN_LAG = 10
ACF_MAX_LAG = 338
ACF_POOL = 7
ACF_POOLED = (ACF_MAX_LAG - ACF_MIN_LAG + 1) // ACF_POOL
PITCH_FEATURES = PITCH_BINS + ACF_POOLED + 2
_LOG_FLOOR = 1e-12
_LOGMAG_RANGE = 12.0

F32 = NDArray[np.float32]
F64 = NDArray[np.float64]


@dataclass(frozen=True)
class HeadFrameInputs:
    """What the heads need of ``n`` frames (computed by :func:`frame_inputs`).

    ``harmonic`` ``[n, HARMONIC_FEATURES]``, ``pitch`` ``[n, PITCH_FEATURES]`` float32;
    ``energy`` ``[n]`` float64 (``sum_f X^2``, linear power); ``loud`` ``[n]`` bool;
    ``runner`` the heads that turn them into estimates (the analyzer's choice, so the
    accumulators need no configuration of their own).
    """

    harmonic: F32
    pitch: F32
    energy: F64
    loud: NDArray[np.bool_]
    runner: HeadsRunner | None = None


def frame_inputs(
    magnitude: F32, mel_db: F32, rms: F64, runner: HeadsRunner | None = None
) -> HeadFrameInputs:
    """Head inputs of frames from the analyzer's own outputs.

    ``magnitude`` ``[n, 1025]`` (``|rfft(hann x)|``), ``mel_db`` ``[n, 128]`` (dB, floored),
    ``rms`` ``[n]`` (linear). Costs one 2048-point inverse FFT per frame (the windowed
    autocorrelation) and a log of the spectrum; no HPSS, no YIN.
    """
    n = magnitude.shape[0]
    power = np.square(magnitude, dtype=np.float32)
    energy = power.sum(axis=1, dtype=np.float64)
    logp = np.log(power[:, 1:N_BINS] + np.float32(_LOG_FLOOR))  # [n, 1024]
    bands = logp.reshape(n, N_FLAT_BANDS, -1)
    band_power = power[:, 1:N_BINS].reshape(n, N_FLAT_BANDS, -1).mean(axis=2)
    flat = bands.mean(axis=2) - np.log(band_power + np.float32(_LOG_FLOOR))  # <= 0
    harmonic = np.concatenate((mel_db.astype(np.float32), flat.astype(np.float32)), axis=1)
    low = logp[:, :PITCH_BINS] * np.float32(0.5)  # log magnitude of bins 1..128
    low = np.maximum(low - low.max(axis=1, keepdims=True), np.float32(-_LOGMAG_RANGE))
    acf = np.fft.irfft(power, axis=1)[:, : ACF_MAX_LAG + 1]
    r0 = acf[:, :1]
    norm = (acf / np.where(r0 > 0, r0, 1.0)).astype(np.float32)
    lags = norm[:, ACF_MIN_LAG : ACF_MAX_LAG + 1]  # [n, 329]
    pooled = lags.reshape(n, ACF_POOLED, ACF_POOL).max(axis=2)
    peak = lags.max(axis=1, keepdims=True)
    where = (np.argmax(lags, axis=1)[:, None].astype(np.float32) + ACF_MIN_LAG) / np.float32(ACF_MAX_LAG)
    pitch = np.concatenate((low, pooled, peak, where), axis=1).astype(np.float32)
    return HeadFrameInputs(
        harmonic=np.ascontiguousarray(harmonic),
        pitch=np.ascontiguousarray(pitch),
        energy=energy,
        loud=np.asarray(rms >= SILENCE_RMS),
        runner=runner,
    )


@dataclass(frozen=True)
class HeadWeights:
    """The heads' parameters (float32), as ``scripts/train_heads.py`` stores them.

    Harmonic: ``h_mean``/``h_scale`` ``[HARMONIC_FEATURES]`` (input standardisation
    ``(x - mean) * scale``), ``h_w0`` ``[C, HARMONIC_FEATURES]``, ``h_b0`` ``[C]``,
    ``h_w{1..4}`` ``[C, C, 3]``, ``h_b{1..4}`` ``[C]``, ``h_wout`` ``[2, C]``, ``h_bout`` ``[2]``.
    Pitch: ``p_mean``/``p_scale`` ``[PITCH_FEATURES]``, ``p_w1`` ``[H, 3 PITCH_FEATURES]``
    (input ``[x_t, x_{t-1}, |x_t - x_{t-1}|]``), ``p_b1``, ``p_w2`` ``[H, H]``, ``p_b2``,
    ``p_wout`` ``[2, H]``, ``p_bout`` ``[2]``.
    """

    arrays: Mapping[str, F32]

    def __getitem__(self, key: str) -> F32:
        return self.arrays[key]

    @classmethod
    def load(cls, path: str) -> HeadWeights:
        """Read the ``.npz`` written by the training script."""
        with np.load(path) as data:
            return cls({k: np.ascontiguousarray(data[k], dtype=np.float32) for k in data.files})


class HeadsRunner(Protocol):
    """Runs both heads (numpy reference, ONNX Runtime, ...)."""

    name: str

    def harmonic(self, window: F32) -> F32:
        """``[m + 30, HARMONIC_FEATURES]`` -> ``[m, 2]`` (``a_t``, ``b_t``)."""
        ...

    def pitch(self, frames: F32) -> F32:
        """``[m + 1, PITCH_FEATURES]`` (previous frame first) -> ``[m, 2]`` (``q_pair``, ``q_stable``)."""
        ...


def _sigmoid(x: F32) -> F32:
    out: F32 = (1.0 / (1.0 + np.exp(-x))).astype(np.float32)
    return out


class NumpyHeads:
    """The heads in numpy (the reference for the ONNX graphs)."""

    name = "numpy"

    def __init__(self, weights: HeadWeights) -> None:
        w = weights
        self._h_mean, self._h_scale = w["h_mean"], w["h_scale"]
        self._h_w0t = np.ascontiguousarray(w["h_w0"].T)
        self._h_b0 = w["h_b0"]
        self._taps = [
            (d, [np.ascontiguousarray(w[f"h_w{i}"][:, :, j].T) for j in range(3)], w[f"h_b{i}"])
            for i, d in enumerate(DILATIONS, start=1)
        ]
        self._h_wout_t = np.ascontiguousarray(w["h_wout"].T)
        self._h_bout = w["h_bout"]
        self._p_mean, self._p_scale = w["p_mean"], w["p_scale"]
        self._p_w1t = np.ascontiguousarray(w["p_w1"].T)
        self._p_b1 = w["p_b1"]
        self._p_w2t = np.ascontiguousarray(w["p_w2"].T)
        self._p_b2 = w["p_b2"]
        self._p_wout_t = np.ascontiguousarray(w["p_wout"].T)
        self._p_bout = w["p_bout"]

    def harmonic(self, window: F32) -> F32:
        x = (window - self._h_mean) * self._h_scale
        h = np.maximum(x @ self._h_w0t + self._h_b0, np.float32(0.0))
        for d, (w0, w1, w2), b in self._taps:
            length = h.shape[0] - 2 * d
            h = np.maximum(h[:length] @ w0 + h[d : d + length] @ w1 + h[2 * d :] @ w2 + b, np.float32(0.0))
        return _sigmoid(h @ self._h_wout_t + self._h_bout)

    def pitch(self, frames: F32) -> F32:
        x = (frames - self._p_mean) * self._p_scale
        cur, prev = x[1:], x[:-1]
        z = np.concatenate((cur, prev, np.abs(cur - prev)), axis=1)
        h = np.maximum(z @ self._p_w1t + self._p_b1, np.float32(0.0))
        h = np.maximum(h @ self._p_w2t + self._p_b2, np.float32(0.0))
        return _sigmoid(h @ self._p_wout_t + self._p_bout)


class LearnedHarmonic:
    """Streaming harmonic head with HPSS's fixed 15-frame lag and reflected edges.

    ``push(inputs [m, HARMONIC_FEATURES], energy [m])`` returns ``(harmonic [k], total [k])``
    estimated energies (``a_t E_t`` and ``(a_t + b_t) E_t``) of the ``k`` frames that became
    decidable; ``finish()`` returns the rest. Any chunking gives the same frames' windows.
    """

    def __init__(self, runner: HeadsRunner) -> None:
        self._runner = runner
        self._buffer = np.zeros((0, HARMONIC_FEATURES), dtype=np.float32)
        self._energy = np.zeros(0, dtype=np.float64)
        self._base = 0
        self._seen = 0
        self._done = 0

    def push(self, inputs: F32, energy: F64) -> tuple[F64, F64]:
        self._buffer = np.concatenate((self._buffer, inputs))
        self._energy = np.concatenate((self._energy, energy))
        self._seen += inputs.shape[0]
        return self._emit(self._seen - HARMONIC_CONTEXT, final=False)

    def finish(self) -> tuple[F64, F64]:
        return self._emit(self._seen, final=True)

    def _emit(self, stop: int, *, final: bool) -> tuple[F64, F64]:
        start = self._done
        if stop <= start:
            return np.zeros(0), np.zeros(0)
        wanted = np.arange(start - HARMONIC_CONTEXT, stop + HARMONIC_CONTEXT, dtype=np.int64)
        if final:
            wanted = reflect_indices(wanted, self._seen)
        else:
            wanted = np.where(wanted < 0, -wanted - 1, wanted)
        shares = self._runner.harmonic(np.ascontiguousarray(self._buffer[wanted - self._base]))
        energy = self._energy[start - self._base : stop - self._base]
        a = shares[:, 0].astype(np.float64)
        b = shares[:, 1].astype(np.float64)
        self._done = stop
        keep_from = max(0, stop - HARMONIC_CONTEXT)
        self._buffer = self._buffer[keep_from - self._base :]
        self._energy = self._energy[keep_from - self._base :]
        self._base = keep_from
        return a * energy, (a + b) * energy


class LearnedPitch:
    """Streaming pitch head: each frame is paired with the previous one (carried across calls).

    ``push(inputs [m, PITCH_FEATURES], loud [m])`` returns ``(stable [m], pair [m])``
    expected counts (``L_t q_pair q_stable`` and ``L_t q_pair``); the first frame of the
    stream has no pair (weight 0), as in the YIN reference.
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
        both = (loud & prev_loud).astype(np.float64)
        pair = both * probs[:, 0].astype(np.float64)
        stable = pair * probs[:, 1].astype(np.float64)
        self._previous = inputs[-1:].copy()
        self._previous_loud = bool(loud[-1])
        return stable, pair


class LearnedHeads:
    """Both streaming heads of one session (what replaces HPSS and the YIN pairs).

    ``push(inputs)`` returns ``(harmonic, total, stable, pair)`` per-frame contributions:
    ``harmonic_ratio = sum harmonic / sum total`` and ``pitch_stability = sum stable / sum
    pair`` (harmonic / total lag 15 frames behind, like HPSS); ``finish()`` the remaining
    ``(harmonic, total)``.
    """

    def __init__(self, runner: HeadsRunner) -> None:
        self.harmonic = LearnedHarmonic(runner)
        self.pitch = LearnedPitch(runner)

    def push(self, inputs: HeadFrameInputs) -> tuple[F64, F64, F64, F64]:
        harmonic, total = self.harmonic.push(inputs.harmonic, inputs.energy)
        stable, pair = self.pitch.push(inputs.pitch, inputs.loud)
        return harmonic, total, stable, pair

    def finish(self) -> tuple[F64, F64]:
        return self.harmonic.finish()
