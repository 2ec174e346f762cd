"""Frame-level accumulators of the audio fingerprint: descriptors in, values and confidences out.

:class:`AudioFeatures` receives :class:`~streamprint.engine.analysis.FrameDescriptors` for
consecutive frames (any chunking) plus the analysis-rate samples, and turns them into the
analysis-grid dimensions of the registry. Exact definitions: docs/fingerprint.md.
"""

from __future__ import annotations

import math

import numpy as np
from numpy.typing import NDArray

from streamprint.engine import dims
from streamprint.engine.analysis import FrameDescriptors
from streamprint.engine.blocks import SecondBlocks
from streamprint.engine.confidence import calibrated, tempo_confidence
from streamprint.engine.filters import BANDS
from streamprint.engine.grid import FRAME_RATE, SILENCE_RMS
from streamprint.engine.heads import HeadFrameInputs, LearnedHeads
from streamprint.engine.heads import pitch_stability as learned_pitch_stability
from streamprint.engine.hpss import HarmonicPercussive
from streamprint.engine.rhythm import POST_MAX, OnsetEnvelope, OnsetPicker, TempoTracker
from streamprint.engine.stats import MaskedStd, RatioGroup, RatioOfSums, Welford

#: Consecutive voiced frames count as stable when f0 moves less than this (cents).
PITCH_STABLE_CENTS = 50.0
_BAND_NAMES = tuple(BANDS)
_MEANS = ("spectral_centroid", "spectral_rolloff", "spectral_flatness", "chroma_energy")
#: Rows of the ratio group: the four means, silence, pitch stability, then the bands.
_SILENCE_ROW = len(_MEANS)
_PITCH_ROW = _SILENCE_ROW + 1
_BANDS_ROW = _PITCH_ROW + 1
_GROUP_SIZE = _BANDS_ROW + len(_BAND_NAMES)
_EPS = 1e-20


class AudioFeatures:
    """All analysis-grid accumulators of one session."""

    def __init__(self) -> None:
        # One group for every ratio fed the frames as they arrive (rows: _MEANS, silence,
        # pitch, bands); the lagged ones (harmonic, onset rate) stay separate.
        self._ratios = RatioGroup(
            _GROUP_SIZE, empty_values=(0.0, 0.0, 0.0, 1.0 / 12.0) + (0.0,) * (_GROUP_SIZE - 4)
        )
        self._means = {name: self._ratios.member(i) for i, name in enumerate(_MEANS)}
        self._silence = self._ratios.member(_SILENCE_ROW)
        self._level_std = MaskedStd()
        self._harmonic = RatioOfSums()
        self._hpss = HarmonicPercussive()
        self._heads: LearnedHeads | None = None  # set by the first descriptors with head inputs
        self._learned_pitch = False
        self._learned_harmonic = False
        self._pitch = self._ratios.member(_PITCH_ROW)
        self._previous_voiced = False
        self._previous_f0 = 0.0
        self._bands = {
            name: self._ratios.member(_BANDS_ROW + i) for i, name in enumerate(_BAND_NAMES)
        }
        self._envelope = OnsetEnvelope()
        self._picker = OnsetPicker()
        self._tempo = TempoTracker()
        self._onset_rate = RatioOfSums()
        self._onset_frames_decided = 0
        self._onsets = 0
        self._last_onset: int | None = None
        self._intervals = Welford()
        self.seconds = SecondBlocks()
        self.frames = 0

    # -- feeding -------------------------------------------------------------------------

    def add_samples(self, samples: NDArray[np.float32]) -> None:
        """Analysis-rate mono samples ``[n]`` (for the per-second statistics)."""
        self.seconds.push(samples)

    def add_frames(self, d: FrameDescriptors) -> None:
        """Descriptors of the next ``len(d)`` frames."""
        n = len(d)
        if n == 0:
            return
        self.frames += n
        loud = d.rms >= SILENCE_RMS
        # rows 0..k-1 numerators, k..2k-1 denominators of the ratio group (see __init__)
        rows = np.empty((2 * _GROUP_SIZE, n))
        k = _GROUP_SIZE
        weight = rows[k]
        weight[:] = loud
        rows[k + 1 : k + 4] = weight
        for i, column in enumerate(
            (d.centroid, d.rolloff, d.flatness, d.chroma_concentration)
        ):
            np.multiply(column, weight, out=rows[i])
        rows[_SILENCE_ROW] = ~loud
        rows[k + _SILENCE_ROW] = 1.0
        level_db = 20.0 * np.log10(np.maximum(d.rms, 1e-12))
        self._level_std.add(level_db, loud)
        heads = d.heads
        if heads is not None and heads.pitch is not None:
            self._learned_pitch = True
            learned_stable, learned_pair = self._heads_for(heads).pitch.push(heads.pitch, heads.loud)
            rows[_PITCH_ROW] = learned_stable
            rows[k + _PITCH_ROW] = learned_pair
        else:
            stable, pair = self._pitch_pairs(d.f0, d.voiced & loud)
            rows[_PITCH_ROW] = stable
            rows[k + _PITCH_ROW] = pair
        bands = len(_BAND_NAMES)
        rows[_BANDS_ROW : _BANDS_ROW + bands] = d.band_power[:, :bands].T
        rows[k + _BANDS_ROW : k + _BANDS_ROW + bands] = d.band_power[:, -1]
        self._ratios.add_stacked(rows)
        if heads is not None and heads.log_mag is not None:
            self._learned_harmonic = True
            self._harmonic.add(*self._heads_for(heads).harmonic.push(heads))
        else:
            self._add_harmonic(*self._hpss.push(d.magnitude))
        env = self._envelope.push(d.mel_db)
        self._tempo.push(env)
        self._add_onsets(self._picker.push(env), self._picker_decided())

    def finish(self) -> None:
        """Complete the lagged accumulators at the end of the media."""
        if self._heads is not None and self._learned_harmonic:
            self._harmonic.add(*self._heads.harmonic.finish())
        else:
            self._add_harmonic(*self._hpss.finish())
        self._add_onsets(self._picker.finish(), self.frames)

    def _picker_decided(self) -> int:
        return max(0, self.frames - POST_MAX)

    def _add_harmonic(self, harmonic: NDArray[np.float64], percussive: NDArray[np.float64]) -> None:
        self._harmonic.add(harmonic, harmonic + percussive)

    def _heads_for(self, inputs: HeadFrameInputs) -> LearnedHeads:
        """The learned heads' accumulators (made by the first descriptors that carry inputs)."""
        if self._heads is None:
            if inputs.runner is None:
                raise ValueError("head inputs without a heads runner")
            self._heads = LearnedHeads(inputs.runner)
        return self._heads

    def _pitch_pairs(
        self, f0: NDArray[np.float64], voiced: NDArray[np.bool_]
    ) -> tuple[NDArray[np.bool_], NDArray[np.bool_]]:
        """``(stable, pair)`` ``[n]`` each: consecutive voiced frames, and those within
        :data:`PITCH_STABLE_CENTS` of each other."""
        prev_f0 = np.concatenate(([self._previous_f0], f0[:-1]))
        prev_voiced = np.concatenate(([self._previous_voiced], voiced[:-1]))
        pair = voiced & prev_voiced
        with np.errstate(divide="ignore", invalid="ignore"):
            cents = np.abs(1200.0 * np.log2(f0 / np.where(prev_f0 > 0, prev_f0, 1.0)))
        stable = pair & (cents < PITCH_STABLE_CENTS)
        self._previous_f0 = float(f0[-1])
        self._previous_voiced = bool(voiced[-1])
        return stable, pair

    def _add_onsets(self, onsets: list[int], decided_until: int) -> None:
        for t in onsets:
            if self._last_onset is not None:
                self._intervals.add((t - self._last_onset) / FRAME_RATE)
            self._last_onset = t
        self._onsets += len(onsets)
        count = decided_until - self._onset_frames_decided
        if count > 0:
            indicator = np.zeros(count)
            for t in onsets:
                indicator[t - self._onset_frames_decided] = 1.0
            self._onset_rate.add(indicator, np.full(count, 1.0 / FRAME_RATE))
            self._onset_frames_decided = decided_until

    # -- reading ------------------------------------------------------------------------

    def values(self, media_seconds: float) -> dict[str, float]:
        """Current value of every analysis-grid dimension (registry names)."""
        bpm, _ = self._tempo.estimate()
        out = {name: acc.value for name, acc in self._means.items()}
        out.update(
            harmonic_ratio=self._harmonic.value,
            pitch_stability=(
                learned_pitch_stability(self._pitch.num, self._pitch.den) if self._learned_pitch
                else self._pitch.value
            ),
            tempo_bpm=bpm,
            rhythm_stability=self._rhythm_stability(),
            transient_density=self._onsets / media_seconds if media_seconds > 0 else 0.0,
            silence_ratio=self._silence.value,
            loudness_variation_std=self._level_std.value,
            dynamic_range_variation=self.seconds.dynamic_range_variation,
            peak_consistency=self.seconds.peak_consistency,
            bass_mid_ratio=self._bass_mid_ratio(),
        )
        out.update({name: acc.value for name, acc in self._bands.items()})
        return out

    def confidences(self, values: dict[str, float]) -> dict[str, float]:
        """Confidence of each value in ``values`` (see :mod:`confidence`)."""
        se: dict[str, float] = {name: acc.std_error() for name, acc in self._means.items()}
        se.update({name: acc.std_error() for name, acc in self._bands.items()})
        se.update(
            harmonic_ratio=self._harmonic.std_error(),
            pitch_stability=self._pitch.std_error(),
            rhythm_stability=self._intervals.std_error_of_cv(),
            transient_density=self._onset_rate.std_error(),
            silence_ratio=self._silence.std_error(),
            loudness_variation_std=self._level_std.std_error(),
            dynamic_range_variation=self.seconds.crest.std_error_of_std(),
            peak_consistency=self.seconds.peaks.std_error_of_cv(),
            bass_mid_ratio=self._bass_mid_se(),
        )
        out = {
            name: calibrated(name, dims.get(name).tolerance_for(values[name]), err)
            for name, err in se.items()
        }
        out["tempo_bpm"] = self._tempo_confidence()
        return out

    def _rhythm_stability(self) -> float:
        if self._intervals.count < 2:
            return 0.0
        return float(np.clip(1.0 - self._intervals.cv(), 0.0, 1.0))

    def _bass_mid_ratio(self) -> float:
        bass = self._bands["band_bass"].num
        mid = self._bands["band_mid"].num
        if bass <= _EPS and mid <= _EPS:
            return 0.0
        return float(np.clip(10.0 * math.log10((bass + _EPS) / (mid + _EPS)), -60.0, 60.0))

    def _bass_mid_se(self) -> float:
        bass, mid = self._bands["band_bass"], self._bands["band_mid"]
        if bass.value <= 0 or mid.value <= 0:
            return math.inf
        rel = math.hypot(bass.std_error() / bass.value, mid.std_error() / mid.value)
        return 10.0 / math.log(10.0) * rel

    def tempo_evidence(self) -> tuple[float, float, float]:
        """``(bpm, strength, beats)``: the tempo, the comb score of its period (0-1), and
        how many beats of that tempo the envelope holds so far."""
        bpm, strength = self._tempo.estimate()
        beats = self._tempo.frames / FRAME_RATE * bpm / 60.0
        return bpm, strength, beats

    def _tempo_confidence(self) -> float:
        """Calibrated probability that the tempo is final, from the autocorrelation evidence
        (see :func:`~streamprint.engine.confidence.tempo_confidence`)."""
        return tempo_confidence(*self.tempo_evidence())
