"""The audio engine on analytic signals whose fingerprint is known in advance."""

from __future__ import annotations

import math
from functools import cache

import numpy as np
import pytest
from media import stereo
from numpy.typing import NDArray
from signals import (
    F32,
    buffer,
    click_times,
    click_track,
    music_like,
    silence,
    silence_then_tone,
    sine,
    white_noise,
)

from streamprint.engine import dims, grid, rhythm
from streamprint.engine.analysis import NumpyFrameAnalyzer
from streamprint.engine.fingerprint import Fingerprint
from streamprint.engine.session import fingerprint_buffer

RATE = grid.ANALYSIS_RATE


@cache
def fingerprint(name: str) -> Fingerprint:
    """25D batch fingerprint of a named analytic clip (cached: several tests share them)."""
    if name == "sine":
        samples = sine(440.0, 5.0)
    elif name == "noise":
        samples = white_noise(5.0, seed=11)
    elif name == "silence_tone":
        samples = silence_then_tone(5.0, 5.0)
    elif name == "silence":
        samples = silence(5.0)
    elif name.startswith("clicks_"):
        samples = click_track(float(name.removeprefix("clicks_")), 10.0)
    elif name == "chirp":
        samples = _fast_chirp()
    else:
        raise KeyError(name)
    return fingerprint_buffer(buffer(samples), dims.AUDIO_25D)


def _fast_chirp(seconds: float = 2.0, f_start: float = 100.0, octaves_per_s: float = 2.0) -> F32:
    """Exponential sweep rising ``octaves_per_s`` (2 oct/s = 55 cents per 23.2 ms hop)."""
    t = np.arange(round(RATE * seconds)) / RATE
    phase = (
        2.0 * np.pi * f_start * (2.0 ** (octaves_per_s * t) - 1.0) / (octaves_per_s * math.log(2.0))
    )
    return (0.5 * np.sin(phase)).astype(np.float32)[:, np.newaxis]


def _frames(n_samples: int) -> int:
    return (
        0
        if n_samples < grid.FRAME_LENGTH
        else 1 + (n_samples - grid.FRAME_LENGTH) // grid.HOP_LENGTH
    )


# -- sine ---------------------------------------------------------------------------------


def test_sine_440_centroid_pitch_and_shape() -> None:
    v = fingerprint("sine").values
    assert v["spectral_centroid"] == pytest.approx(440.0, rel=0.05)
    # 85 % roll-off of a windowed sine sits in the bins next to the tone.
    assert abs(v["spectral_rolloff"] - 440.0) <= 2 * RATE / grid.FRAME_LENGTH
    assert v["pitch_stability"] >= 0.99
    assert v["spectral_flatness"] < 1e-3
    assert v["harmonic_ratio"] > 0.99
    # All the energy of A4 is in pitch class A and in the 250-500 Hz band.
    assert v["chroma_energy"] > 0.6
    assert v["band_low_mid"] > 0.999
    assert v["silence_ratio"] == 0.0
    assert v["tempo_bpm"] == 0.0
    assert v["transient_density"] == 0.0
    assert v["loudness_variation_std"] < 0.05
    assert v["peak_consistency"] > 0.99
    # A full-scale-0.5 sine: peak/RMS = sqrt(2) -> 3.01 dB; identical channels.
    assert v["crest_db"] == pytest.approx(20 * math.log10(math.sqrt(2.0)), abs=0.01)
    assert v["phase_correlation"] == pytest.approx(1.0, abs=1e-9)
    assert v["stereo_width"] == pytest.approx(0.0, abs=1e-9)


def test_fast_glide_has_low_pitch_stability() -> None:
    """Counterpart of the sine: f0 moving > 50 cents per frame is not stable."""
    v = fingerprint("chirp").values
    assert v["pitch_stability"] < 0.1
    assert fingerprint("sine").values["pitch_stability"] - v["pitch_stability"] > 0.9


# -- click tracks -------------------------------------------------------------------------


@pytest.mark.parametrize("bpm", [90.0, 120.0, 140.0])
def test_click_track_tempo_density_and_stability(bpm: float) -> None:
    v = fingerprint(f"clicks_{bpm:g}").values
    clicks = click_times(bpm, 10.0)
    assert v["tempo_bpm"] == pytest.approx(bpm, rel=0.04)
    # Exactly one onset per click.
    assert v["transient_density"] == pytest.approx(clicks.shape[0] / 10.0, abs=1e-9)
    # Inter-onset intervals are the beat period quantised to whole frames (21/22 frames at
    # 120 BPM), so the CV is ~0.02, not 0.
    assert v["rhythm_stability"] >= 0.95
    # Broadband clicks on silence: mostly silent frames, bright spectrum.
    assert v["silence_ratio"] > 0.6
    assert v["spectral_centroid"] > 3_000.0


@pytest.mark.parametrize("seconds", [2.0, 3.0, 4.0, 5.0, 6.0, 7.0])
def test_short_noise_has_no_tempo_while_a_short_click_track_has_its_own(seconds: float) -> None:
    """Lags near the media's length rest on a handful of products: on noise they alone gave
    a confident tempo of about 4 periods per clip (40.7 BPM at 6 s, confidence 0.88)."""
    for seed in (0, 5):
        noise = fingerprint_buffer(buffer(white_noise(seconds, seed=seed)), dims.AUDIO_13D)
        assert noise.values["tempo_bpm"] == 0.0, (seconds, seed, noise.values["tempo_bpm"])
    clicks = fingerprint_buffer(buffer(click_track(120.0, seconds)), dims.AUDIO_13D)
    assert clicks.values["tempo_bpm"] == pytest.approx(120.0, rel=0.04)


def test_120_bpm_click_track_density_is_two_per_second() -> None:
    assert fingerprint("clicks_120").values["transient_density"] == pytest.approx(2.0, abs=1e-9)


@pytest.mark.parametrize("bpm", [90.0, 120.0, 140.0])
def test_click_onsets_land_on_the_clicks(bpm: float) -> None:
    """Every click gives one onset, in the first or second frame that contains it."""
    samples = click_track(bpm, 10.0)[:, 0]
    frames = grid.Framer().push(samples)
    env = rhythm.OnsetEnvelope().push(NumpyFrameAnalyzer().analyze(frames).mel_db)
    picker = rhythm.OnsetPicker()
    onsets = np.array(picker.push(env) + picker.finish())
    starts = np.round(click_times(bpm, 10.0) * RATE)
    first_frame = np.ceil((starts - grid.FRAME_LENGTH + 1) / grid.HOP_LENGTH).astype(int)
    first_frame = np.maximum(first_frame, 0)
    assert onsets.shape == first_frame.shape
    lag = onsets - first_frame
    assert np.all((lag >= 0) & (lag <= 1)), lag


# -- noise, silence -----------------------------------------------------------------------


def test_white_noise_is_flat() -> None:
    """Power of white Gaussian noise per bin is exponential: E[log P] = log E[P] - gamma,
    so the flatness (geometric / arithmetic mean) tends to exp(-gamma) = 0.561."""
    noise = fingerprint("noise").values
    tone = fingerprint("sine").values
    assert noise["spectral_flatness"] == pytest.approx(math.exp(-np.euler_gamma), abs=0.02)
    assert noise["spectral_flatness"] > 100 * tone["spectral_flatness"]
    assert noise["chroma_energy"] < 0.15
    assert noise["pitch_stability"] == 0.0
    assert noise["transient_density"] == 0.0
    # Flat spectrum: band shares are the bands' shares of the 20 Hz - Nyquist bandwidth.
    width = RATE / 2.0 - 20.0
    assert noise["band_air"] == pytest.approx((RATE / 2.0 - 6_000.0) / width, abs=0.02)
    assert noise["band_mid"] == pytest.approx(1_500.0 / width, abs=0.02)
    # The seven bands partition 20 Hz - Nyquist: their shares sum to 1.
    bands = [name for name in dims.AUDIO_25D if name.startswith("band_")]
    assert len(bands) == 7
    assert sum(noise[name] for name in bands) == pytest.approx(1.0, abs=1e-9)


def test_silence_then_tone_silence_ratio() -> None:
    v = fingerprint("silence_tone").values
    assert v["silence_ratio"] == pytest.approx(0.5, abs=0.02)
    # Exactly the frames that lie entirely in the silent half.
    half, total = 5 * RATE, 10 * RATE
    expected = _frames(half) / _frames(total)
    assert v["silence_ratio"] == pytest.approx(expected, abs=1e-12)
    # Non-silent frames are the tone's: the means over them are the tone's.
    assert v["spectral_centroid"] == pytest.approx(440.0, rel=0.05)
    assert v["pitch_stability"] >= 0.99


def test_silence_only_is_finite_with_no_tempo() -> None:
    fp = fingerprint("silence")
    assert set(fp.values) == set(dims.AUDIO_25D)
    for name, value in fp.values.items():
        assert math.isfinite(value), name
        d = dims.get(name)
        assert d.low <= value <= d.high, (name, value)
    for name, value in fp.confidence.items():
        assert math.isfinite(value) and 0.0 <= value <= 1.0, name
    v = fp.values
    assert v["tempo_bpm"] == 0.0
    assert v["silence_ratio"] == 1.0
    assert v["transient_density"] == 0.0
    assert v["rhythm_stability"] == 0.0
    assert v["integrated_lufs"] == dims.get("integrated_lufs").low


def test_a_single_onset_has_no_tempo() -> None:
    """An envelope with one spike has no periodicity: tempo 0, not the bottom of the grid."""
    env = np.zeros(600)
    env[200] = 20.0
    env[201] = 8.0
    tracker = rhythm.TempoTracker()
    tracker.push(env)
    assert tracker.estimate() == (0.0, 0.0)


def test_periodic_envelope_gives_its_tempo() -> None:
    """A pulse every 20 frames is 60 * FRAME_RATE / 20 BPM (129.2).

    Its autocorrelation is 1 at multiples of 20 and -1/19 next to them, so the
    [1/4, 1/2, 1/4]-smoothed comb score (the strength) is 1/2 - 1/(2*19) = 0.474.
    """
    env = np.zeros(800)
    env[5::20] = 10.0
    tracker = rhythm.TempoTracker()
    tracker.push(env)
    bpm, strength = tracker.estimate()
    assert bpm == pytest.approx(60.0 * grid.FRAME_RATE / 20.0, rel=0.005)
    assert strength == pytest.approx(0.5 - 0.5 / 19.0, abs=0.02)


# -- stereo -------------------------------------------------------------------------------


def _stereo_clip() -> NDArray[np.float32]:
    """One channel of a music-like mix at 44.1 kHz (6 s)."""
    left: NDArray[np.float32] = music_like(6.0, rate=44_100, channels=1, seed=5)[:, 0]
    return left


def test_identical_channels_have_phase_correlation_one() -> None:
    left = _stereo_clip()
    fp = fingerprint_buffer(buffer(stereo(left, left), 44_100), dims.AUDIO_25D)
    assert fp.values["phase_correlation"] == pytest.approx(1.0, abs=1e-6)
    assert fp.values["stereo_width"] == pytest.approx(0.0, abs=1e-6)


def test_inverted_channels_have_phase_correlation_minus_one() -> None:
    left = _stereo_clip()
    fp = fingerprint_buffer(buffer(stereo(left, -left), 44_100), dims.AUDIO_25D)
    assert fp.values["phase_correlation"] == pytest.approx(-1.0, abs=1e-6)
    assert fp.values["stereo_width"] == pytest.approx(1.0, abs=1e-6)
    # The mono downmix cancels to silence; every value must still be finite.
    assert all(math.isfinite(x) for x in fp.values.values())
    assert fp.values["silence_ratio"] == 1.0



def test_yin_runs_on_loud_frames_only_and_the_fingerprint_is_unchanged(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A tone at -80 dBFS (below the -60 dBFS silence level) is periodic, so YIN would voice
    it; the fingerprint never counts a quiet frame's pitch, so YIN does not run on it and
    every value is the same bits as with YIN on every frame."""
    from streamprint.engine import pitch

    quiet = sine(330.0, 2.0, amplitude=10.0 ** (-80.0 / 20.0))
    media = buffer(np.concatenate((sine(440.0, 2.0), quiet, sine(220.0, 2.0))))
    real_yin = pitch.yin
    assert real_yin(grid.Framer().push(quiet[:, 0]))[1].all()  # YIN voices the quiet tone
    frames_seen: list[int] = []

    def counting_yin(frames: NDArray[np.float32]) -> tuple[NDArray[np.float64], NDArray[np.bool_]]:
        frames_seen.append(frames.shape[0])
        return real_yin(frames)

    monkeypatch.setattr(pitch, "yin", counting_yin)
    got = fingerprint_buffer(media, dims.AUDIO_13D, analyzer=NumpyFrameAnalyzer())
    # the frames wholly inside the quiet 2 s (about 83) were skipped
    assert 0 < sum(frames_seen) <= _frames(6 * RATE) - 80
    # YIN on every frame, as before: the same fingerprint, bit for bit
    monkeypatch.setattr(pitch, "yin_of_loud", lambda frames, loud: real_yin(frames))
    every = fingerprint_buffer(media, dims.AUDIO_13D, analyzer=NumpyFrameAnalyzer())
    assert got.values == every.values and got.confidence == every.confidence
    assert got.values["pitch_stability"] > 0.9
