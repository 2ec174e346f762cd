"""Native-rate accumulators: BS.1770 loudness against pyloudnorm, stereo image, crest factor.

pyloudnorm is a test-only reference; the package never imports it.
"""

from __future__ import annotations

import math

import numpy as np
import pyloudnorm
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from numpy.typing import NDArray

from streamprint.engine import confidence, native
from streamprint.engine.native import (
    CrestFactor,
    IntegratedLoudness,
    NativeAccumulator,
    StereoImage,
    native_accumulators,
)
from streamprint.errors import InvalidInputError

F32 = NDArray[np.float32]


def sine(rate: int, seconds: float, channels: int, *, dbfs: float = -20.0,
         freq: float = 997.0) -> F32:
    """``[n, channels]`` float32 sine with peak ``dbfs``, identical on every channel."""
    t = np.arange(round(rate * seconds)) / rate
    mono = 10.0 ** (dbfs / 20.0) * np.sin(2.0 * np.pi * freq * t)
    return np.repeat(mono[:, np.newaxis], channels, axis=1).astype(np.float32)


def music_like(rate: int, seconds: float = 20.0, *, seed: int = 1) -> F32:
    """Stereo ``[n, 2]``: harmonic tones, noise bursts and level changes over ``seconds``."""
    rng = np.random.default_rng(seed)
    n = round(rate * seconds)
    t = np.arange(n) / rate
    tones = sum(
        (0.3 / k) * np.sin(2.0 * np.pi * f0 * k * t + rng.uniform(0, 2 * np.pi))
        for f0 in (110.0, 277.2, 440.0)
        for k in (1, 2, 3, 5)
    )
    bursts = np.zeros(n)
    for start in rng.uniform(0, seconds - 0.3, size=int(seconds * 2)):
        i = int(start * rate)
        length = int(rng.uniform(0.02, 0.25) * rate)
        bursts[i : i + length] += rng.standard_normal(min(length, n - i)) * rng.uniform(0.05, 0.4)
    level = np.repeat(10.0 ** (rng.uniform(-30, 0, size=int(seconds / 2.5) + 1) / 20.0),
                      int(2.5 * rate))[:n]
    left = level * (tones + bursts)
    right = level * (0.8 * tones + bursts[::-1] + 0.05 * rng.standard_normal(n))
    stereo: NDArray[np.float64] = np.stack([left, right], axis=1)
    return (0.25 * stereo / float(np.abs(stereo).max())).astype(np.float32)


def reference_lufs(samples: F32, rate: int) -> float:
    """pyloudnorm's integrated loudness of ``samples``."""
    return float(pyloudnorm.Meter(rate).integrated_loudness(samples.astype(np.float64)))


def measure(accumulator: NativeAccumulator, samples: F32, chunk: int | None = None) -> dict[str, float]:
    """Push ``samples`` (in chunks of ``chunk`` rows, or at once) and return the values."""
    step = chunk or max(samples.shape[0], 1)
    for start in range(0, samples.shape[0], step):
        accumulator.push(samples[start : start + step])
    return accumulator.values()


# ------------------------------------------------------------------ integrated loudness


@pytest.mark.parametrize("rate", [44100, 48000, 22050])
@pytest.mark.parametrize("channels", [1, 2])
def test_sine_matches_pyloudnorm(rate: int, channels: int) -> None:
    samples = sine(rate, 5.0, channels)
    ours = measure(IntegratedLoudness(rate, channels), samples, chunk=rate // 7)
    assert ours["integrated_lufs"] == pytest.approx(reference_lufs(samples, rate), abs=0.1)


def test_sine_levels_are_analytic() -> None:
    # a 997 Hz sine at -20 dBFS reads -23.05 LUFS mono (K-weighting gain +0.7 dB at 1 kHz
    # is offset by -0.691 and the -3.01 dB of a sine's power); stereo adds 3.01 LU
    mono = measure(IntegratedLoudness(48000, 1), sine(48000, 3.0, 1))["integrated_lufs"]
    stereo = measure(IntegratedLoudness(48000, 2), sine(48000, 3.0, 2))["integrated_lufs"]
    assert mono == pytest.approx(-23.05, abs=0.01)
    assert stereo - mono == pytest.approx(10.0 * math.log10(2.0), abs=1e-6)


@pytest.mark.parametrize("rate", [44100, 48000, 22050])
def test_music_like_mix_matches_pyloudnorm(rate: int) -> None:
    samples = music_like(rate)
    ours = measure(IntegratedLoudness(rate, 2), samples, chunk=4096)
    assert ours["integrated_lufs"] == pytest.approx(reference_lufs(samples, rate), abs=0.1)


@pytest.mark.parametrize("seconds", [20.07, 20.15, 20.03])
def test_last_partial_block_follows_pyloudnorm(seconds: float) -> None:
    # pyloudnorm counts a zero-padded last block when round((T - 0.4) / 0.1) says so
    samples = music_like(48000, seconds)
    ours = measure(IntegratedLoudness(48000, 2), samples, chunk=5000)["integrated_lufs"]
    assert ours == pytest.approx(reference_lufs(samples, 48000), abs=1e-9)


def test_strict_blocks_count_complete_blocks_only() -> None:
    samples = music_like(48000, 20.07)
    strict = measure(IntegratedLoudness(48000, 2, strict_blocks=True), samples)
    complete = samples[: int(20.0 * 48000)]  # the same complete blocks, nothing after
    assert strict["integrated_lufs"] == pytest.approx(reference_lufs(complete, 48000), abs=1e-9)
    padded = measure(IntegratedLoudness(48000, 2), samples)
    assert abs(padded["integrated_lufs"] - strict["integrated_lufs"]) > 0.1  # loud last block


def test_five_channels_use_surround_weights() -> None:
    rate = 48000
    rng = np.random.default_rng(3)
    samples = (0.05 * rng.standard_normal((rate * 4, 5))).astype(np.float32)
    ours = measure(IntegratedLoudness(rate, 5), samples)
    assert ours["integrated_lufs"] == pytest.approx(reference_lufs(samples, rate), abs=0.1)


def test_k_weighting_matches_pyloudnorm_design() -> None:
    for rate in (8000, 22050, 44100, 48000, 96000):
        meter = pyloudnorm.Meter(rate)
        sos = native.k_weighting_sos(rate)
        for row, stage in zip(sos, (meter._filters["high_shelf"], meter._filters["high_pass"]),
                              strict=True):
            np.testing.assert_allclose(row[:3], stage.b, rtol=1e-12)
            np.testing.assert_allclose(row[3:], stage.a, rtol=1e-12)


def undefined(name: str) -> float:
    """The calibrated confidence of a dimension whose standard error is not defined yet."""
    return confidence.calibrated(name, 1.0, math.inf)


def test_silence_reads_the_registry_floor() -> None:
    meter = IntegratedLoudness(44100, 2)
    measure(meter, np.zeros((44100 * 3, 2), dtype=np.float32))
    assert meter.values() == {"integrated_lufs": -70.0}
    # No gated block: the standard error is undefined, so the confidence is the calibrated
    # base rate for "not enough data yet" (engine/confidence.py), not a computed value.
    assert math.isinf(meter.standard_error())
    assert meter.confidences() == {
        "integrated_lufs": confidence.calibrated("integrated_lufs", 0.5, math.inf)
    }


def test_relative_gate_drops_quiet_passages() -> None:
    rate = 48000
    loud, quiet = sine(rate, 10.0, 1), sine(rate, 10.0, 1, dbfs=-45.0)
    both = np.concatenate([loud, quiet])
    gated = measure(IntegratedLoudness(rate, 1), both)["integrated_lufs"]
    alone = measure(IntegratedLoudness(rate, 1), loud)["integrated_lufs"]
    # ungated, the quiet half would pull the mean 3 LU down; only the three blocks that
    # straddle the step (partly loud) pass the gate and lower it slightly
    assert alone - 0.2 < gated < alone
    assert gated == pytest.approx(reference_lufs(both, rate), abs=0.1)


def test_loudness_confidence_grows_with_steady_audio() -> None:
    rate = 22050
    samples = music_like(rate, 30.0)
    meter = IntegratedLoudness(rate, 2)
    meter.push(samples[: int(1.5 * rate)])
    early = meter.confidences()["integrated_lufs"]
    meter.push(samples[int(1.5 * rate) :])
    assert early == undefined("integrated_lufs")  # under two gated seconds: base rate
    assert 0.0 < meter.confidences()["integrated_lufs"] <= 1.0
    steady = IntegratedLoudness(rate, 1)
    measure(steady, sine(rate, 10.0, 1))
    assert steady.confidences()["integrated_lufs"] > 0.99 * confidence.CAP_BY_DIMENSION.get(
        "integrated_lufs", 1.0
    )


# ------------------------------------------------------------------ stereo image


def test_identical_channels_are_centred() -> None:
    samples = music_like(22050, 5.0)[:, :1].repeat(2, axis=1)
    values = measure(StereoImage(22050, 2), samples)
    assert values["phase_correlation"] == pytest.approx(1.0, abs=1e-12)
    assert values["stereo_width"] == 0.0


def test_inverted_channels_are_fully_wide() -> None:
    left = music_like(22050, 5.0)[:, 0]
    values = measure(StereoImage(22050, 2), np.stack([left, -left], axis=1))
    assert values["phase_correlation"] == pytest.approx(-1.0, abs=1e-12)
    assert values["stereo_width"] == pytest.approx(1.0, abs=1e-12)


def test_independent_noise_is_half_wide() -> None:
    rng = np.random.default_rng(5)
    samples = (0.1 * rng.standard_normal((22050 * 20, 2))).astype(np.float32)
    image = StereoImage(22050, 2)
    values = measure(image, samples)
    assert values["phase_correlation"] == pytest.approx(0.0, abs=0.01)
    assert values["stereo_width"] == pytest.approx(0.5, abs=0.01)
    assert min(image.confidences().values()) > 0.99


def test_mono_and_silence_conventions() -> None:
    mono = StereoImage(22050, 1)
    measure(mono, sine(22050, 1.0, 1))
    assert mono.values() == {"stereo_width": 0.0, "phase_correlation": 1.0}
    assert mono.confidences() == {"stereo_width": 1.0, "phase_correlation": 1.0}
    silent = StereoImage(22050, 2)
    measure(silent, np.zeros((22050 * 3, 2), dtype=np.float32))
    assert silent.values() == {"stereo_width": 0.0, "phase_correlation": 1.0}
    assert silent.confidences() == {
        "stereo_width": undefined("stereo_width"),
        "phase_correlation": undefined("phase_correlation"),
    }
    one_sided = sine(22050, 1.0, 2)
    one_sided[:, 1] = 0.0
    assert measure(StereoImage(22050, 2), one_sided)["phase_correlation"] == 0.0


def test_stereo_uses_only_the_first_two_channels() -> None:
    samples = sine(22050, 2.0, 4)
    samples[:, 2] = -samples[:, 0]
    assert measure(StereoImage(22050, 4), samples)["phase_correlation"] == pytest.approx(1.0)


# ------------------------------------------------------------------ crest factor


def test_sine_crest_is_three_db() -> None:
    values = measure(CrestFactor(44100, 2), sine(44100, 2.0, 2))
    assert values["crest_db"] == pytest.approx(20.0 * math.log10(math.sqrt(2.0)), abs=0.01)


def test_crest_counts_all_channels_and_silence() -> None:
    samples = sine(44100, 2.0, 2)
    samples[:, 1] = 0.0  # rms halves in power: +3.01 dB
    assert measure(CrestFactor(44100, 2), samples)["crest_db"] == pytest.approx(6.02, abs=0.01)
    silent = CrestFactor(44100, 1)
    measure(silent, np.zeros((44100, 1), dtype=np.float32))
    assert silent.values() == {"crest_db": 0.0}
    assert silent.confidences() == {"crest_db": undefined("crest_db")}


def test_crest_confidence_from_per_second_spread() -> None:
    steady = CrestFactor(22050, 1)
    measure(steady, sine(22050, 5.0, 1))
    assert steady.confidences()["crest_db"] > 0.99 * confidence.CAP_BY_DIMENSION.get("crest_db", 1.0)
    short = CrestFactor(22050, 1)
    measure(short, sine(22050, 1.5, 1))
    assert short.confidences()["crest_db"] == undefined("crest_db")


# ------------------------------------------------------------------ streaming == batch


_STREAM_RATE = 8000
_STREAM_SIGNAL = music_like(_STREAM_RATE, 6.07, seed=7)  # ends in a partial block


def _chunked(accumulator: NativeAccumulator, sizes: list[int]) -> None:
    """Push ``_STREAM_SIGNAL`` in chunks of ``sizes`` (cycled), then the rest."""
    start, i = 0, 0
    total = _STREAM_SIGNAL.shape[0]
    while start < total:
        size = sizes[i % len(sizes)]
        accumulator.push(_STREAM_SIGNAL[start : start + size])
        start, i = start + size, i + 1


@settings(max_examples=25, deadline=None)
@given(sizes=st.lists(st.integers(min_value=0, max_value=9000), min_size=1, max_size=12)
       .filter(lambda s: sum(s) > 0))
def test_streaming_equals_batch_in_any_chunking(sizes: list[int]) -> None:
    for make in (IntegratedLoudness, StereoImage, CrestFactor):
        batch, stream = make(_STREAM_RATE, 2), make(_STREAM_RATE, 2)
        batch.push(_STREAM_SIGNAL)
        _chunked(stream, sizes)
        for name, value in batch.values().items():
            assert stream.values()[name] == pytest.approx(value, rel=1e-9, abs=1e-12)
        for name, value in batch.confidences().items():
            assert stream.confidences()[name] == pytest.approx(value, rel=1e-9, abs=1e-12)


def test_non_divisible_rate_keeps_the_same_grid() -> None:
    rate = 11025  # 100 ms is 1102.5 samples
    samples = music_like(rate, 4.0)
    batch, stream = IntegratedLoudness(rate, 2), IntegratedLoudness(rate, 2)
    batch.push(samples)
    measure(stream, samples, chunk=333)
    assert stream.values()["integrated_lufs"] == pytest.approx(
        batch.values()["integrated_lufs"], rel=1e-9
    )
    assert batch.values()["integrated_lufs"] == pytest.approx(
        reference_lufs(samples, rate), abs=0.1
    )


# ------------------------------------------------------------------ factory and input checks


def test_factory_builds_only_what_is_wanted() -> None:
    assert native_accumulators(48000, 2, ["spectral_centroid", "tempo_bpm"]) == []
    built = native_accumulators(48000, 2, ["integrated_lufs", "phase_correlation", "tempo_bpm"])
    assert [type(a) for a in built] == [IntegratedLoudness, StereoImage]
    every = native_accumulators(48000, 2, native.NATIVE_DIMENSIONS)
    assert sorted(n for a in every for n in a.names) == sorted(native.NATIVE_DIMENSIONS)
    assert all(isinstance(a, NativeAccumulator) for a in every)


def test_bad_shapes_and_configs_are_rejected() -> None:
    with pytest.raises(InvalidInputError, match="samples"):
        CrestFactor(48000, 2).push(np.zeros((10, 3), dtype=np.float32))
    with pytest.raises(InvalidInputError, match="samples"):
        StereoImage(48000, 2).push(np.zeros(10, dtype=np.float32))
    with pytest.raises(InvalidInputError, match="sample_rate"):
        IntegratedLoudness(1000, 2)
    with pytest.raises(InvalidInputError, match="channels"):
        IntegratedLoudness(48000, 0)


def test_empty_pushes_change_nothing() -> None:
    meter = IntegratedLoudness(48000, 2)
    meter.push(np.zeros((0, 2), dtype=np.float32))
    assert meter.values() == {"integrated_lufs": -70.0}


def stepped_noise(rate: int, steps: int, seed: int) -> F32:
    """Mono ``[n, 1]`` noise whose level jumps every 100 ms over 60 dB.

    Block loudness then spreads across the relative gate, so gating is exercised hard.
    """
    rng = np.random.default_rng(seed)
    levels = np.repeat(10.0 ** (rng.uniform(-60.0, 0.0, size=steps) / 20.0), rate // 10)
    return (0.3 * levels * rng.standard_normal(levels.shape[0])).astype(np.float32)[:, None]


@settings(max_examples=10, deadline=None)
@given(seed=st.integers(min_value=0, max_value=2**32 - 1))
def test_exact_gating_matches_pyloudnorm(seed: int) -> None:
    samples = stepped_noise(8000, 150, seed)
    ours = measure(IntegratedLoudness(8000, 1), samples)["integrated_lufs"]
    assert ours == pytest.approx(reference_lufs(samples, 8000), abs=1e-9)


@settings(max_examples=15, deadline=None)
@given(seed=st.integers(min_value=0, max_value=2**32 - 1))
def test_histogram_gating_keeps_its_documented_bound(seed: int) -> None:
    # with no exact blocks kept, only the blocks in the 0.01 LU bin holding the relative
    # threshold can be misjudged: error <= -10 log10(1 - k / N) LU
    samples = stepped_noise(8000, 600, seed)
    exact = IntegratedLoudness(8000, 1)
    binned = IntegratedLoudness(8000, 1, exact_blocks=0)
    exact.push(samples)
    binned.push(samples)
    threshold = exact._relative_threshold()
    assert threshold is not None
    block_lufs = native._loudness(exact._exact.energies())
    gated = int(np.sum(block_lufs > threshold))
    same_bin = native._bin_of(block_lufs, 0.01) == native._bin_of(np.array([threshold]), 0.01)
    bound = -10.0 * math.log10(1.0 - int(same_bin.sum()) / gated)
    error = binned.values()["integrated_lufs"] - exact.values()["integrated_lufs"]
    assert abs(error) <= bound + 1e-9


def test_histogram_takes_over_past_the_exact_capacity() -> None:
    samples = music_like(8000, 20.0)
    capped = IntegratedLoudness(8000, 2, exact_blocks=50)
    capped.push(samples)
    assert capped._exact.overflowed
    assert capped.values()["integrated_lufs"] == pytest.approx(
        reference_lufs(samples, 8000), abs=0.02
    )
