"""The audio engine against librosa on identical frames.

Every signal here is mono at the analysis rate (22,050 Hz), so the engine's resampler is a
pass-through and its frames are exactly ``librosa.util.frame(y, frame_length=2048,
hop_length=512)`` (= ``librosa.stft(center=False)`` framing). Where librosa computes a
feature from a spectrogram we pass it librosa's own ``S`` of those frames, and compare per
frame. librosa is a test-only reference; the package never imports it.
"""

from __future__ import annotations

import itertools
import math
from functools import cache

import librosa
import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from numpy.typing import NDArray
from signals import F32, F64, buffer, click_track, music_like, sine, white_noise

from streamprint.engine import dims, filters, grid, hpss, pitch, rhythm
from streamprint.engine.analysis import FrameDescriptors, NumpyFrameAnalyzer
from streamprint.engine.session import fingerprint_buffer

RATE = grid.ANALYSIS_RATE
BIN_HZ = RATE / grid.FRAME_LENGTH

CLIPS = ("music", "music_140", "noise", "clicks", "chirp", "sine")


def _chirp(seconds: float = 4.0) -> F32:
    """An exponential sweep 70 Hz -> 1.8 kHz (crosses most of YIN's range)."""
    y: NDArray[np.float64] = librosa.chirp(fmin=70.0, fmax=1_800.0, sr=RATE, duration=seconds)
    return (0.5 * y).astype(np.float32)


@cache
def clip(name: str) -> F32:
    """Mono analysis-rate test clip ``[n]`` by name."""
    if name == "music":
        return music_like(8.0, bpm=120.0, rate=RATE, channels=1, seed=0)[:, 0]
    if name == "music_140":
        return music_like(8.0, bpm=140.0, rate=RATE, channels=1, seed=2)[:, 0]
    if name == "music_100":
        return music_like(8.0, bpm=100.0, rate=RATE, channels=1, seed=1)[:, 0]
    if name == "noise":
        return white_noise(3.0, seed=4)[:, 0]
    if name.startswith("clicks"):
        bpm = float(name.partition("_")[2] or 120)
        return click_track(bpm, 8.0)[:, 0]
    if name == "chirp":
        return _chirp()
    if name == "sine":
        return sine(440.0, 2.0)[:, 0]
    raise KeyError(name)


@cache
def frames(name: str) -> F32:
    """librosa's frames of :func:`clip` ``[n_frames, 2048]``."""
    framed = librosa.util.frame(
        clip(name), frame_length=grid.FRAME_LENGTH, hop_length=grid.HOP_LENGTH, axis=0
    )
    return np.ascontiguousarray(framed, dtype=np.float32)


@cache
def ours(name: str) -> FrameDescriptors:
    """The engine's per-frame descriptors of :func:`frames`."""
    return NumpyFrameAnalyzer().analyze(frames(name))


@cache
def lib_mag(name: str) -> F32:
    """librosa's magnitude spectrogram ``[N_BINS, n_frames]`` of the same frames."""
    stft = librosa.stft(
        clip(name), n_fft=grid.FRAME_LENGTH, hop_length=grid.HOP_LENGTH, window="hann", center=False
    )
    mag: F32 = np.abs(stft).astype(np.float32)
    return mag


def loud(name: str) -> NDArray[np.bool_]:
    """Non-silent frames (the frames the engine averages over)."""
    mask: NDArray[np.bool_] = ours(name).rms >= grid.SILENCE_RMS
    return mask


@cache
def envelope(name: str) -> F64:
    """The engine's onset envelope of the clip (streamed through OnsetEnvelope in 3 chunks)."""
    mel_db = ours(name).mel_db
    onset = rhythm.OnsetEnvelope()
    cuts = [0, 7, mel_db.shape[0] // 2, mel_db.shape[0]]
    return np.concatenate([onset.push(mel_db[a:b]) for a, b in itertools.pairwise(cuts)])


# -- frames and spectra -------------------------------------------------------------------


@pytest.mark.parametrize("name", ["music", "clicks"])
def test_framer_gives_librosa_frames_in_any_chunking(name: str) -> None:
    y = clip(name)
    framer = grid.Framer()
    rng = np.random.default_rng(7)
    cuts = np.sort(rng.integers(0, y.shape[0], size=40))
    pieces = np.split(y, cuts)
    got = np.concatenate([framer.push(p) for p in pieces])
    np.testing.assert_array_equal(got, frames(name))


@pytest.mark.parametrize("name", CLIPS)
def test_magnitude_matches_librosa_stft(name: str) -> None:
    ref = lib_mag(name)
    got = ours(name).magnitude.T
    assert got.shape == ref.shape
    assert np.max(np.abs(got - ref)) <= 1e-5 * float(ref.max())


def test_mel_filterbank_matches_librosa() -> None:
    ref = librosa.filters.mel(sr=RATE, n_fft=grid.FRAME_LENGTH, n_mels=filters.N_MELS)
    np.testing.assert_allclose(filters.mel_bank().T, ref, rtol=1e-5, atol=1e-9)


def test_chroma_filterbank_matches_librosa() -> None:
    ref = librosa.filters.chroma(sr=RATE, n_fft=grid.FRAME_LENGTH, tuning=0.0)
    np.testing.assert_allclose(filters.chroma_bank().T, ref, rtol=1e-5, atol=1e-8)


# -- per-frame spectral descriptors ---------------------------------------------------------


@pytest.mark.parametrize("name", CLIPS)
def test_centroid_matches_librosa(name: str) -> None:
    ref = librosa.feature.spectral_centroid(S=lib_mag(name), sr=RATE, n_fft=grid.FRAME_LENGTH)[0]
    m = loud(name)
    assert m.sum() > 20
    rel = np.abs(ours(name).centroid[m] - ref[m]) / ref[m]
    # Both sides use float32 FFTs; their rounding floors (~1e-7 of the peak in every bin)
    # weigh most on the centroid of low pure tones (2e-5 relative on the 70 Hz chirp start).
    assert rel.max() < 1e-4


@pytest.mark.parametrize("name", CLIPS)
def test_rolloff_matches_librosa(name: str) -> None:
    ref = librosa.feature.spectral_rolloff(
        S=lib_mag(name), sr=RATE, n_fft=grid.FRAME_LENGTH, roll_percent=0.85
    )[0]
    m = loud(name)
    got = ours(name).rolloff
    diff = np.abs(got[m] - ref[m])
    # Float32 cumulative sums may land one bin apart, but only on a knife edge: where the
    # cumulative magnitude at the lower of the two bins is within rounding of 85 %.
    assert diff.max() <= BIN_HZ + 1e-9
    mag = lib_mag(name).astype(np.float64)
    for frame in np.flatnonzero(m & (got != ref)):
        cumulative = np.cumsum(mag[:, frame])
        lower = round(float(min(got[frame], ref[frame])) / BIN_HZ)
        threshold = 0.85 * cumulative[-1]
        assert abs(cumulative[lower] - threshold) <= 1e-5 * threshold, frame


@pytest.mark.parametrize("name", CLIPS)
def test_flatness_matches_librosa(name: str) -> None:
    ref = librosa.feature.spectral_flatness(S=lib_mag(name), power=2.0)[0]
    m = loud(name)
    assert np.max(np.abs(ours(name).flatness[m] - ref[m])) < 2e-5


@pytest.mark.parametrize("name", CLIPS)
def test_chroma_concentration_matches_librosa(name: str) -> None:
    power = lib_mag(name).astype(np.float64) ** 2
    chroma = librosa.feature.chroma_stft(S=power, sr=RATE, n_fft=grid.FRAME_LENGTH, tuning=0.0)
    m = loud(name)
    ref = chroma.max(axis=0)[m] / chroma.sum(axis=0)[m]
    got = ours(name).chroma_concentration[m]
    assert np.all((got >= 1.0 / 12.0 - 1e-9) & (got <= 1.0))
    assert np.max(np.abs(got - ref)) < 1e-6


# -- onsets and tempo ---------------------------------------------------------------------


@pytest.mark.parametrize("name", ["music", "music_140", "clicks", "noise", "sine"])
def test_onset_strength_matches_librosa(name: str) -> None:
    ref = librosa.onset.onset_strength(
        S=ours(name).mel_db.T, sr=RATE, lag=1, max_size=1, center=False, detrend=False
    )
    got = envelope(name)
    assert got.shape == ref.shape
    assert got[0] == 0.0
    assert np.max(np.abs(got - ref)) < 1e-4


@pytest.mark.parametrize("name", ["music", "music_140", "clicks", "noise"])
def test_onset_picking_matches_librosa_peak_pick(name: str) -> None:
    """Our rule is ``peak_pick(pre_max=3, post_max=4, pre_avg=10, post_avg=4, delta=1, wait=3)``."""
    env = envelope(name)
    picker = rhythm.OnsetPicker()
    got = picker.push(env[:100]) + picker.push(env[100:]) + picker.finish()
    ref = librosa.util.peak_pick(
        env, pre_max=3, post_max=4, pre_avg=10, post_avg=4, delta=rhythm.ONSET_DELTA, wait=3
    )
    # librosa and we cut the windows differently at the very ends; compare the interior.
    lo, hi = rhythm.PRE_AVG, env.shape[0] - rhythm.POST_MAX - 1
    interior_got = [t for t in got if lo <= t < hi]
    interior_ref = [int(t) for t in ref if lo <= t < hi]
    assert interior_got == interior_ref
    if name == "noise":
        assert interior_got == []
    else:
        assert len(interior_got) >= 10


def _relation(ours_bpm: float, lib_bpm: float) -> str:
    """Tempo relation: same (within 4 %), double / half (ours is 2x / 0.5x librosa's), or miss."""
    for label, factor in (("same", 1.0), ("double", 2.0), ("half", 0.5)):
        if abs(ours_bpm - factor * lib_bpm) <= 0.04 * factor * lib_bpm:
            return label
    return "miss"


@pytest.mark.parametrize(
    ("name", "true_bpm", "relation"),
    [
        # relation of our tempo to librosa.feature.tempo on the same envelope (measured)
        ("clicks_90", 90.0, "same"),
        ("clicks_120", 120.0, "same"),
        ("clicks_140", 140.0, "same"),
        ("music", 120.0, "double"),  # librosa picks 60 BPM, the half tempo; we find 120
        ("music_100", 100.0, "same"),
        ("music_140", 140.0, "double"),  # librosa picks 70 BPM, the half tempo; we find 140
    ],
)
def test_tempo_against_librosa(name: str, true_bpm: float, relation: str) -> None:
    env = envelope(name)
    tracker = rhythm.TempoTracker()
    tracker.push(env)
    bpm, strength = tracker.estimate()
    ref = float(librosa.feature.tempo(onset_envelope=env, sr=RATE, hop_length=grid.HOP_LENGTH)[0])
    assert _relation(bpm, ref) == relation, (bpm, ref)
    assert 0.0 < strength <= 1.0
    # Against the truth: within 4 % on every one of these clips.
    assert abs(bpm - true_bpm) <= 0.04 * true_bpm, bpm


# -- pitch --------------------------------------------------------------------------------


@pytest.mark.parametrize("name", ["music", "chirp", "sine", "noise", "clicks"])
def test_yin_matches_librosa(name: str) -> None:
    ref = librosa.yin(
        clip(name),
        fmin=pitch.F_MIN,
        fmax=pitch.F_MAX,
        sr=RATE,
        frame_length=grid.FRAME_LENGTH,
        center=False,
    )
    got, _ = pitch.yin(frames(name))
    assert got.shape == ref.shape
    cents = np.abs(1200.0 * np.log2(got / ref))
    assert cents.max() < 0.01


def test_yin_is_accurate_on_a_sine_and_flags_voicing() -> None:
    f0 = ours("sine").f0
    voiced = ours("sine").voiced
    assert voiced.all()
    assert np.all(np.abs(1200.0 * np.log2(f0 / 440.0)) < 5.0)
    assert not ours("noise").voiced.any()


# -- HPSS ---------------------------------------------------------------------------------


@cache
def lib_hpss_energies(name: str, n_frames: int) -> tuple[F64, F64]:
    """Per-frame energies of librosa's HPSS components of the first ``n_frames`` frames."""
    mag = lib_mag(name)[:, :n_frames]
    harmonic, percussive = librosa.decompose.hpss(mag, kernel_size=hpss.KERNEL)
    h = np.sum(harmonic.astype(np.float64) ** 2, axis=0)
    p = np.sum(percussive.astype(np.float64) ** 2, axis=0)
    return h, p


@settings(max_examples=12, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    name=st.sampled_from(["music", "clicks"]),
    n_frames=st.sampled_from([1, 9, 20, 40, 200]),
    sizes=st.lists(st.integers(0, 60), max_size=12),
)
def test_hpss_matches_librosa_in_random_chunkings(
    name: str, n_frames: int, sizes: list[int]
) -> None:
    mags = ours(name).magnitude[:n_frames]
    sep = hpss.HarmonicPercussive()
    h_parts: list[F64] = []
    p_parts: list[F64] = []
    start = 0
    for size in [*sizes, mags.shape[0]]:
        h, p = sep.push(mags[start : start + size])
        h_parts.append(h)
        p_parts.append(p)
        start = min(mags.shape[0], start + size)
    h, p = sep.finish()
    h_parts.append(h)
    p_parts.append(p)
    got_h, got_p = np.concatenate(h_parts), np.concatenate(p_parts)
    ref_h, ref_p = lib_hpss_energies(name, n_frames)
    assert got_h.shape == ref_h.shape
    assert sep.frames_done == n_frames
    scale = np.maximum(np.sum(mags.astype(np.float64) ** 2, axis=1), 1e-12)
    assert np.max(np.abs(got_h - ref_h) / scale) < 1e-5
    assert np.max(np.abs(got_p - ref_p) / scale) < 1e-5


# -- fingerprint means against librosa ------------------------------------------------------


def test_fingerprint_means_match_librosa_features() -> None:
    """The 13D/25D frame-grid dimensions are exactly these means of librosa's features."""
    name = "music"
    fp = fingerprint_buffer(buffer(clip(name)[:, np.newaxis]), dims.AUDIO_25D).values
    mag = lib_mag(name).astype(np.float64)
    rms = librosa.feature.rms(
        y=clip(name), frame_length=grid.FRAME_LENGTH, hop_length=grid.HOP_LENGTH, center=False
    )[0]
    m = rms >= grid.SILENCE_RMS
    centroid = librosa.feature.spectral_centroid(S=mag, sr=RATE)[0]
    rolloff = librosa.feature.spectral_rolloff(S=mag, sr=RATE)[0]
    flatness = librosa.feature.spectral_flatness(S=mag, power=2.0)[0]
    chroma = librosa.feature.chroma_stft(S=mag**2, sr=RATE, tuning=0.0)
    h, p = lib_hpss_energies(name, mag.shape[1])
    level = 20.0 * np.log10(rms[m])
    freqs = librosa.fft_frequencies(sr=RATE, n_fft=grid.FRAME_LENGTH)
    power = (mag**2).sum(axis=1)
    total = power[freqs >= 20.0].sum()

    def rel(key: str, value: float) -> float:
        return abs(fp[key] - value) / max(abs(value), 1e-12)

    assert rel("spectral_centroid", float(centroid[m].mean())) < 1e-5
    assert rel("spectral_rolloff", float(rolloff[m].mean())) < 1e-3
    assert abs(fp["spectral_flatness"] - float(flatness[m].mean())) < 1e-6
    assert (
        abs(fp["chroma_energy"] - float((chroma.max(axis=0) / chroma.sum(axis=0))[m].mean())) < 1e-6
    )
    assert abs(fp["harmonic_ratio"] - float(h.sum() / (h + p).sum())) < 1e-5
    assert fp["silence_ratio"] == pytest.approx(float(np.mean(~m)), abs=1e-12)
    assert abs(fp["loudness_variation_std"] - float(level.std())) < 1e-4
    for band, (low, high) in filters.BANDS.items():
        upper = freqs <= high if high >= RATE / 2 else freqs < high
        share = float(power[(freqs >= low) & upper].sum() / total)
        assert abs(fp[band] - share) < 1e-5, band
    bass = power[(freqs >= 60.0) & (freqs < 250.0)].sum()
    mid = power[(freqs >= 500.0) & (freqs < 2_000.0)].sum()
    assert abs(fp["bass_mid_ratio"] - 10.0 * math.log10(bass / mid)) < 1e-4
