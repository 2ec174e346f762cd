"""Every backend x precision against the numpy reference, at the fingerprint level
(``fingerprint_buffer(..., analyzer=...)``), on analytic signals and generated corpus clips.

FP32 on ONNX Runtime and OpenVINO must match the reference within every dimension's
registry tolerance (in practice to ~1e-6). An INT8 variant must too once its corpus
accuracy gate passes; while it fails, the dimensions downstream of its quantized
projections are what the gate measured as failing (and why ``auto`` does not choose it,
see test_runtime_select.py), so only the others are asserted, and they must hold.
"""

from __future__ import annotations

import sys
import threading
from functools import cache

import numpy as np
import pytest
from runtime_helpers import (
    ROOT,
    VARIANTS,
    analyzer,
    errors_in_tolerance_units,
    require_runtime,
    strict_dimensions,
)
from signals import buffer, click_track, music_like, silence_then_tone, sine, white_noise

from streamprint.engine import dims
from streamprint.engine.fingerprint import AudioBuffer, Fingerprint
from streamprint.engine.grid import BIN_FREQUENCIES, FRAME_LENGTH, HOP_LENGTH, N_BINS
from streamprint.engine.session import fingerprint_buffer
from streamprint.runtime.manifest import SPECTRAL_VERSION

sys.path.insert(0, str(ROOT / "scripts"))
from make_corpus import generate_clip


def _analytic() -> dict[str, AudioBuffer]:
    return {
        "sine_440": buffer(sine(440.0, 4.0)),
        "white_noise": buffer(white_noise(4.0)),
        "clicks_120bpm": buffer(click_track(120.0, 6.0)),
        "silence_then_tone": buffer(silence_then_tone(2.0, 2.0)),
        "music_like": buffer(music_like(6.0), 44_100),
    }


CORPUS_KINDS = ("music", "speech", "noise", "sweep", "level_change")


@cache
def signal(name: str) -> AudioBuffer:
    if name in CORPUS_KINDS:
        samples, rate, _ = generate_clip(name, 5.0, 1000 + CORPUS_KINDS.index(name))
        return AudioBuffer(samples, rate)
    return _analytic()[name]


@cache
def reference(name: str) -> Fingerprint:
    return fingerprint_buffer(signal(name), dims.AUDIO_25D, analyzer=analyzer("numpy"))


SIGNALS = (*_analytic(), *CORPUS_KINDS)


@pytest.mark.parametrize("key", VARIANTS)
@pytest.mark.parametrize("name", SIGNALS)
def test_fingerprint_parity_with_the_numpy_reference(key: str, name: str) -> None:
    fp = fingerprint_buffer(signal(name), dims.AUDIO_25D, analyzer=analyzer(key))
    ref = reference(name)
    assert fp.model == analyzer(key).name
    assert fp.model_version == analyzer(key).version == SPECTRAL_VERSION  # the model that ran
    errors = errors_in_tolerance_units(fp, ref)
    checked = strict_dimensions(key)
    bad = {n: round(e, 3) for n, e in errors.items() if n in checked and e > 1.0}
    assert not bad, f"{key} on {name}: outside tolerance (tolerance units): {bad}"
    for n, value in fp.values.items():
        assert np.isfinite(value), n
    if key.endswith("fp32"):
        worst = max(errors.values())
        assert worst < 0.05, f"{key} on {name}: FP32 should be near-identical, worst {worst:.3g}"


def _frames(n: int = 86) -> np.ndarray:
    samples = music_like(4.0, rate=22_050, channels=1)[:, 0]
    windows = np.lib.stride_tricks.sliding_window_view(samples, FRAME_LENGTH)[::HOP_LENGTH][:n]
    return np.ascontiguousarray(windows, dtype=np.float32)


@pytest.mark.parametrize("key", VARIANTS)
def test_numpy_side_of_graph_backends_is_bit_identical(key: str) -> None:
    frames = _frames()
    got = analyzer(key).analyze(frames)
    ref = analyzer("numpy").analyze(frames)
    # the DFT magnitudes (HPSS), RMS (silence) and YIN stay in numpy: identical
    np.testing.assert_array_equal(got.magnitude, ref.magnitude)
    np.testing.assert_array_equal(got.rms, ref.rms)
    np.testing.assert_array_equal(got.f0, ref.f0)
    np.testing.assert_array_equal(got.voiced, ref.voiced)
    assert got.mel_db.dtype == np.float32 and got.centroid.dtype == np.float64
    assert got.band_power.shape == ref.band_power.shape and got.mel_db.shape == ref.mel_db.shape
    if key.endswith("fp32"):
        np.testing.assert_allclose(got.centroid, ref.centroid, rtol=1e-4, atol=1e-3)
        np.testing.assert_allclose(got.flatness, ref.flatness, rtol=1e-3, atol=1e-7)
        np.testing.assert_allclose(got.chroma_concentration, ref.chroma_concentration, rtol=1e-4)
        np.testing.assert_allclose(got.band_power, ref.band_power, rtol=1e-4, atol=1e-6)
        np.testing.assert_allclose(got.mel_db, ref.mel_db, atol=1e-3)
        assert np.mean(got.rolloff == ref.rolloff) > 0.97


@pytest.mark.parametrize("key", VARIANTS)
def test_zero_frames_and_silent_frames(key: str) -> None:
    a = analyzer(key)
    assert len(a.analyze(np.zeros((0, FRAME_LENGTH), np.float32))) == 0
    got = a.analyze(np.zeros((3, FRAME_LENGTH), np.float32))
    ref = analyzer("numpy").analyze(np.zeros((3, FRAME_LENGTH), np.float32))
    np.testing.assert_array_equal(got.centroid, ref.centroid)
    np.testing.assert_allclose(got.chroma_concentration, ref.chroma_concentration)
    np.testing.assert_allclose(got.mel_db, ref.mel_db)
    np.testing.assert_allclose(got.band_power, 0.0)


@pytest.mark.parametrize("key", VARIANTS)
def test_flatness_never_exceeds_one(key: str) -> None:
    """A click's spectrum is flat: the graph's float32 gmean / mean gave 1 + 1e-7."""
    frames = np.zeros((4, FRAME_LENGTH), np.float32)
    for row, (at, level) in enumerate(((1024, 1.0), (7, 0.5), (2047, 1e-3), (600, 1.0))):
        frames[row, at] = level
    flatness = analyzer(key).analyze(frames).flatness
    assert np.all(flatness <= 1.0) and np.all(flatness > 0.99), flatness


@pytest.mark.parametrize("key", ("onnxruntime/fp32", "openvino/fp32"))
def test_concurrent_calls_from_threads_agree(key: str) -> None:
    a = analyzer(key)
    frames = _frames()
    expected = a.analyze(frames).mel_db
    results: list[np.ndarray] = []

    def work() -> None:
        for _ in range(5):
            results.append(a.analyze(frames).mel_db)

    threads = [threading.Thread(target=work) for _ in range(3)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(results) == 15
    for r in results:
        np.testing.assert_array_equal(r, expected)


def _rolloff_reference(power: np.ndarray) -> np.ndarray:
    cumulative = np.cumsum(np.sqrt(power.astype(np.float64)), axis=1)
    return BIN_FREQUENCIES[np.argmax(cumulative >= 0.85 * cumulative[:, -1:], axis=1)]


@pytest.mark.parametrize("key", ("onnxruntime/fp32", "openvino/fp32"))
def test_two_level_rolloff_and_paired_flatness_match_float64(key: str) -> None:
    """The graph finds the roll-off block by block sums, then the bin inside the block, and
    takes the flatness's logs of bin pairs: exact where the answer is not a rounding tie,
    at every block edge, the Nyquist bin, silence and the 1e-10 floor."""
    require_runtime(key.split("/")[0])
    run = analyzer(key)._runner  # the loaded backend's own model call, no DFT or YIN around it
    rows = []
    for k in (0, 1, 31, 32, 33, 63, 64, 500, 1023, 1024):  # all the magnitude in one bin
        row = np.zeros(N_BINS, np.float32)
        row[k] = 4.0
        rows.append(row)
    for first, second in ((10, 40), (31, 32), (95, 96), (200, 1024)):  # 80 % then 20 %
        row = np.zeros(N_BINS, np.float32)
        row[first], row[second] = 0.8**2, 0.2**2
        rows.append(row)
    rows.append(np.ones(N_BINS, np.float32))  # flat: 85 % of 1025 bins is reached at bin 871
    rows.append(np.zeros(N_BINS, np.float32))  # silence: every bin at the floor
    rng = np.random.default_rng(7)
    loud = (rng.random((20, N_BINS)) ** 6 * 1e6).astype(np.float32)  # up to a full-scale bin
    quiet = (rng.random((20, N_BINS)) ** 6 * 1e-8).astype(np.float32)  # around the floor
    power = np.concatenate([np.stack(rows), loud, quiet])
    out = run(power)
    exact = len(rows)
    np.testing.assert_array_equal(out["rolloff"][:exact], _rolloff_reference(power[:exact]))
    assert out["rolloff"][exact - 2] == pytest.approx(BIN_FREQUENCIES[871])
    assert np.mean(out["rolloff"] == _rolloff_reference(power)) > 0.97
    floored = np.maximum(power.astype(np.float64), 1e-10)
    flatness = np.exp(np.mean(np.log(floored), axis=1)) / np.mean(floored, axis=1)
    np.testing.assert_allclose(out["flatness"], flatness, rtol=1e-4, atol=1e-7)
    assert out["flatness"][exact - 1] == pytest.approx(1.0, abs=1e-4)  # float32 sums of logs
