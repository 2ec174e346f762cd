"""Learned heads (harmonic share, pitch pairs): the committed model and its sha256 check,
numpy vs ONNX Runtime parity, streaming == batch, analytic sanity, the ``--heads`` gate
logic and switches, that HPSS and YIN do not run under learned heads, and a training smoke
test when torch is installed."""

from __future__ import annotations

import importlib.util
import io
import json
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
from runtime_helpers import MODELS, ROOT, require_runtime
from signals import music_like

from streamprint.cli import main
from streamprint.config import ServerConfig
from streamprint.engine import dims
from streamprint.engine.analysis import NumpyFrameAnalyzer
from streamprint.engine.fingerprint import AudioBuffer
from streamprint.engine.heads import (
    _FREQ_INDEX,
    HARMONIC_CONTEXT,
    frame_inputs,
    frequency_level,
    harmonic_proxies,
)
from streamprint.engine.session import AudioSession, SessionConfig, fingerprint_buffer
from streamprint.errors import ModelError
from streamprint.runtime import LoadOptions
from streamprint.runtime.heads import (
    HEADS_MODEL,
    HEADS_VERSION,
    HeadsAnalyzer,
    load_heads_manifest,
    load_heads_runner,
    resolve_heads,
)
from streamprint.runtime.manifest import MANIFEST_NAME, sha256_file
from streamprint.runtime.numpy_backend import NumpyAnalyzer

HEADS_DIR = MODELS / HEADS_MODEL / HEADS_VERSION
RATE = 22_050


def _learned() -> HeadsAnalyzer:
    return HeadsAnalyzer(NumpyAnalyzer(), load_heads_runner("numpy"))


def _sine(freq: float, seconds: float, amp: float = 0.5) -> AudioBuffer:
    t = np.arange(int(seconds * RATE)) / RATE
    return AudioBuffer((amp * np.sin(2 * np.pi * freq * t)).astype(np.float32)[:, None], RATE)


def _noise(seconds: float, amp: float = 0.3, seed: int = 5) -> AudioBuffer:
    rng = np.random.default_rng(seed)
    return AudioBuffer((amp * rng.standard_normal(int(seconds * RATE))).astype(np.float32)[:, None], RATE)


def _copy_models(tmp_path: Path) -> Path:
    target = tmp_path / "models" / HEADS_MODEL / HEADS_VERSION
    shutil.copytree(HEADS_DIR, target)
    return tmp_path / "models"


# -- the committed model -------------------------------------------------------------------


def test_every_heads_file_is_listed_and_matches_its_sha256() -> None:
    manifest = load_heads_manifest()
    on_disk = {p.name for p in HEADS_DIR.iterdir() if p.is_file() and p.name != MANIFEST_NAME}
    assert on_disk == set(manifest.files)
    for rel, digest in manifest.files.items():
        assert sha256_file(HEADS_DIR / rel) == digest, rel
    raw = manifest.raw
    assert raw["opset"] == 17
    assert {i["name"] for i in raw["inputs"]} == {"proxies", "frames"}
    assert all(o["unit"] and o["shape"] for o in [*raw["inputs"], *raw["outputs"]])
    assert raw["training"]["corpus"]["seed"] != raw["heldout"]["corpus"]["seed"]
    assert set(raw["accuracy"]) == set(dims.AUDIO_25D)
    assert raw["gate"]["clips"] == raw["heldout"]["corpus"]["clips"]
    assert raw["speed"]["learned_cpu_ms_per_media_second"] > 0


def test_corrupt_heads_file_is_a_clear_error(tmp_path: Path) -> None:
    models = _copy_models(tmp_path)
    path = models / HEADS_MODEL / HEADS_VERSION / "heads.npz"
    data = bytearray(path.read_bytes())
    data[len(data) // 2] ^= 0xFF
    path.write_bytes(bytes(data))
    with pytest.raises(ModelError, match="corrupt"):
        load_heads_runner("numpy", LoadOptions(models_dir=models))
    base = NumpyAnalyzer()
    with pytest.raises(ModelError, match="corrupt"):
        resolve_heads("auto", base, LoadOptions(models_dir=models))


def test_missing_heads_file_is_a_clear_error(tmp_path: Path) -> None:
    models = _copy_models(tmp_path)
    (models / HEADS_MODEL / HEADS_VERSION / "pitch.onnx").unlink()
    with pytest.raises(ModelError, match="missing"):
        resolve_heads("learned", NumpyAnalyzer(), LoadOptions(models_dir=models))
    # --heads dsp needs no heads model at all
    analyzer, heads, _ = resolve_heads("dsp", NumpyAnalyzer(), LoadOptions(models_dir=models))
    assert heads == "dsp" and analyzer.name == "numpy"


# -- parity --------------------------------------------------------------------------------


def _inputs(buffer: AudioBuffer) -> tuple[np.ndarray, np.ndarray]:
    """Harmonic proxies ``[n, 64]`` and pitch features ``[n, F]`` of every frame."""
    from streamprint.engine.grid import Framer
    from streamprint.engine.median import reflect_indices

    frames = Framer().push(buffer.samples[:, 0])
    d = NumpyFrameAnalyzer(pitch=False).analyze(frames)
    x = frame_inputs(d.magnitude, d.mel_db, d.rms)
    assert x.log_mag is not None and x.power is not None and x.pitch is not None
    n = x.energy.shape[0]
    window = x.log_mag[reflect_indices(np.arange(-HARMONIC_CONTEXT, n + HARMONIC_CONTEXT), n)]
    return harmonic_proxies(window, frequency_level(x.log_mag), x.power, x.energy), x.pitch


def test_heads_numpy_and_onnxruntime_agree() -> None:
    require_runtime("onnxruntime")
    ref = load_heads_runner("numpy")
    ort = load_heads_runner("onnxruntime")
    song = music_like(4.0, bpm=100.0, rate=RATE, channels=1, seed=2).astype(np.float32)
    for buffer in (_sine(330.0, 2.0), _noise(2.0), AudioBuffer(song.reshape(-1, 1), RATE)):
        harmonic, pitch = _inputs(buffer)
        assert harmonic.shape == (pitch.shape[0], 64)
        np.testing.assert_allclose(ort.harmonic(harmonic), ref.harmonic(harmonic), atol=2e-5)
        np.testing.assert_allclose(ort.pitch(pitch), ref.pitch(pitch), atol=2e-5)


def test_onnxruntime_heads_fingerprint_matches_numpy_heads() -> None:
    require_runtime("onnxruntime")
    song = music_like(5.0, bpm=120.0, rate=RATE, channels=1, seed=4).astype(np.float32).reshape(-1, 1)
    buffer = AudioBuffer(song, RATE)
    ref = fingerprint_buffer(buffer, analyzer=_learned())
    got = fingerprint_buffer(buffer, analyzer=HeadsAnalyzer(NumpyAnalyzer(), load_heads_runner("onnxruntime")))
    for name in ("harmonic_ratio", "pitch_stability"):
        assert got.values[name] == pytest.approx(ref.values[name], abs=1e-5)


# -- streaming == batch, sanity ------------------------------------------------------------


@pytest.mark.parametrize("seed", [0, 1])
def test_streaming_equals_batch_with_learned_heads(seed: int) -> None:
    rng = np.random.default_rng(seed)
    song = music_like(7.0, bpm=110.0, rate=44_100, channels=2, seed=seed).astype(np.float32)
    analyzer = _learned()
    batch = fingerprint_buffer(AudioBuffer(song, 44_100), dims.AUDIO_13D, analyzer=analyzer)
    assert batch.model.endswith("+heads1")
    session = AudioSession(SessionConfig(44_100, 2, dims.AUDIO_13D, 0.5), analyzer=analyzer)
    pos = 0
    while pos < song.shape[0]:
        step = int(rng.integers(1, 9000))
        session.push(song[pos : pos + step])
        pos += step
    final = session.finish()
    assert final.model == batch.model
    for name in dims.AUDIO_13D:
        assert final.values[name] == pytest.approx(batch.values[name], rel=1e-6, abs=1e-9), name


def test_learned_heads_on_a_sine_and_on_noise() -> None:
    analyzer = _learned()
    sine = fingerprint_buffer(_sine(440.0, 4.0), analyzer=analyzer).values
    assert sine["harmonic_ratio"] > 0.9
    assert sine["pitch_stability"] > 0.95
    noise = fingerprint_buffer(_noise(4.0), analyzer=analyzer).values
    assert noise["pitch_stability"] < 0.3
    assert noise["harmonic_ratio"] < 0.7
    assert noise["harmonic_ratio"] < sine["harmonic_ratio"] - 0.2


def test_learned_heads_leave_every_other_dimension_exact() -> None:
    song = music_like(8.0, bpm=120.0, rate=44_100, channels=2, seed=7).astype(np.float32)
    buffer = AudioBuffer(song, 44_100)
    dsp = fingerprint_buffer(buffer, analyzer=NumpyAnalyzer()).values
    learned = fingerprint_buffer(buffer, analyzer=_learned()).values
    # the harmonic head passed its gate; the pitch head did not (see the manifest), so only
    # its range is checked here
    assert abs(learned["harmonic_ratio"] - dsp["harmonic_ratio"]) <= dims.get("harmonic_ratio").tolerance
    assert 0.0 <= learned["pitch_stability"] <= 1.0
    for name in dims.AUDIO_25D:
        if name not in ("harmonic_ratio", "pitch_stability"):
            assert learned[name] == pytest.approx(dsp[name], rel=1e-9, abs=1e-12), name


def test_hpss_and_yin_do_not_run_under_learned_heads(monkeypatch: pytest.MonkeyPatch) -> None:
    from streamprint.engine import hpss, pitch

    def boom(*args: object, **kwargs: object) -> None:
        raise AssertionError("DSP step ran under learned heads")

    analyzer = _learned()
    monkeypatch.setattr(pitch, "yin", boom)
    monkeypatch.setattr(pitch, "autocorrelation", boom)
    monkeypatch.setattr(hpss.HarmonicPercussive, "_emit", boom)
    fp = fingerprint_buffer(_sine(220.0, 2.0), analyzer=analyzer)
    assert fp.values["pitch_stability"] > 0.9
    with pytest.raises(AssertionError, match="DSP step"):
        fingerprint_buffer(_sine(220.0, 2.0), analyzer=NumpyAnalyzer())


# -- the gate and the switches -------------------------------------------------------------


def _with_gate(tmp_path: Path, shares: dict[str, float] | None) -> Path:
    models = _copy_models(tmp_path)
    path = models / HEADS_MODEL / HEADS_VERSION / MANIFEST_NAME
    data = json.loads(path.read_text())
    if shares is None:
        data.pop("gate", None)
    else:
        data["gate"]["share_within"] = {name: shares.get(name, 1.0) for name in dims.AUDIO_25D}
    path.write_text(json.dumps(data))
    return models


@pytest.mark.parametrize(
    ("shares", "expected"),
    [
        ({}, "learned"),
        ({"pitch_stability": 0.9}, "learned:harmonic"),
        ({"harmonic_ratio": 0.98}, "learned:pitch"),
        ({"harmonic_ratio": 0.5, "pitch_stability": 0.9}, "dsp"),
        ({"spectral_centroid": 0.5}, "dsp"),
        (None, "dsp"),
    ],
)
def test_auto_runs_a_head_only_when_its_gate_passed(
    tmp_path: Path, shares: dict[str, float] | None, expected: str
) -> None:
    opts = LoadOptions(models_dir=_with_gate(tmp_path, shares))
    analyzer, heads, reason = resolve_heads("auto", NumpyAnalyzer(), opts)
    assert heads == expected, reason
    if expected == "dsp":
        assert analyzer.name == "numpy" and "dsp" in reason
        assert "failed its gate" in reason or "never measured" in reason
    else:
        assert isinstance(analyzer, HeadsAnalyzer)
        assert analyzer.name == "numpy+heads1" + expected.removeprefix("learned")
    forced, heads, reason = resolve_heads("learned", NumpyAnalyzer(), opts)
    assert heads == "learned" and isinstance(forced, HeadsAnalyzer) and forced.name == "numpy+heads1"
    assert expected == "learned" or "run anyway" in reason
    plain, heads, reason = resolve_heads("dsp", NumpyAnalyzer(), opts)
    assert heads == "dsp" and plain.name == "numpy" and "--heads dsp" in reason


def test_one_head_keeps_the_other_dimension_exact() -> None:
    song = music_like(6.0, bpm=120.0, rate=22_050, channels=1, seed=9).astype(np.float32).reshape(-1, 1)
    buffer = AudioBuffer(song, RATE)
    runner = load_heads_runner("numpy")
    dsp = fingerprint_buffer(buffer, analyzer=NumpyAnalyzer()).values
    both = fingerprint_buffer(buffer, analyzer=HeadsAnalyzer(NumpyAnalyzer(), runner)).values
    harmonic = fingerprint_buffer(buffer, analyzer=HeadsAnalyzer(NumpyAnalyzer(), runner, heads=("harmonic",))).values
    pitch = fingerprint_buffer(buffer, analyzer=HeadsAnalyzer(NumpyAnalyzer(), runner, heads=("pitch",))).values
    assert harmonic["pitch_stability"] == dsp["pitch_stability"]
    assert harmonic["harmonic_ratio"] == pytest.approx(both["harmonic_ratio"], rel=1e-9)
    assert pitch["harmonic_ratio"] == dsp["harmonic_ratio"]
    assert pitch["pitch_stability"] == both["pitch_stability"]


def test_unknown_heads_mode_is_rejected() -> None:
    from streamprint.errors import InvalidInputError

    with pytest.raises(InvalidInputError):
        resolve_heads("maybe", NumpyAnalyzer())


def test_heads_runtime_follows_the_backend() -> None:
    require_runtime("onnxruntime")
    from streamprint.runtime import select_analyzer

    selection = select_analyzer("onnxruntime", "fp32", heads="learned")
    assert isinstance(selection.analyzer, HeadsAnalyzer)
    assert selection.analyzer.runner.name == "onnxruntime"
    assert selection.to_json_dict()["heads"] == "learned"
    assert selection.analyzer.name == "spectral-onnxruntime-fp32+heads1"


@pytest.mark.parametrize("mode", ["learned", "dsp"])
def test_cli_heads_flag(tmp_path: Path, mode: str) -> None:
    path = tmp_path / "song.wav"
    sf.write(path, music_like(3.0, bpm=120.0, rate=22_050, channels=1, seed=1), 22_050)
    out = io.StringIO()
    assert main(["fingerprint", str(path), "--json", "--backend", "numpy", "--heads", mode], out=out) == 0
    line = json.loads(out.getvalue().splitlines()[-1])
    assert line["heads"] == mode and line["heads_reason"].startswith(f"--heads {mode}")
    assert line["model"] == ("numpy+heads1" if mode == "learned" else "numpy")


def test_serve_config_heads_flag_and_env() -> None:
    assert ServerConfig.from_sources({}, {}).heads == "auto"
    assert ServerConfig.from_sources({"heads": "dsp"}, {"STREAMPRINT_HEADS": "learned"}).heads == "dsp"
    assert ServerConfig.from_sources({}, {"STREAMPRINT_HEADS": "learned"}).heads == "learned"


def test_engine_reports_heads_in_server_info() -> None:
    from streamprint.dataplane.engine import engine_for

    models = engine_for("numpy", "fp32", "learned").models()
    assert models[0].name == "numpy+heads1"
    assert models[1].name == "heads" and models[1].selection_reason.startswith("--heads learned")
    dsp = engine_for("numpy", "fp32", "dsp").models()
    assert dsp[0].name == "numpy" and dsp[1].name == "dsp"


# -- training ------------------------------------------------------------------------------


@pytest.mark.skipif(importlib.util.find_spec("torch") is None, reason="torch (the train extra) is not installed")
def test_training_script_smoke(tmp_path: Path) -> None:
    result = subprocess.run(
        [sys.executable, str(ROOT / "scripts" / "train_heads.py"),
         "--out", str(tmp_path / "heads" / "1"), "--corpus-root", str(tmp_path),
         "--cache", str(tmp_path / "cache"), "--train-clips", "3", "--heldout-clips", "2",
         "--epochs", "1", "--no-gate", "--seconds", "3"],
        capture_output=True, text=True, timeout=600, check=False,
    )
    assert result.returncode == 0, result.stderr[-2000:]
    out = tmp_path / "heads" / "1"
    data = json.loads((out / MANIFEST_NAME).read_text())
    for rel, digest in data["files"].items():
        assert sha256_file(out / rel) == digest
    runner = load_heads_runner("numpy", LoadOptions(models_dir=tmp_path))
    harmonic, pitch = _inputs(_sine(440.0, 1.5))
    assert runner.harmonic(harmonic).shape == (harmonic.shape[0], 2)
    assert runner.pitch(pitch).shape == (pitch.shape[0] - 1, 2)


# -- the compiled proxies against their numpy definition ------------------------------------


def _numpy_frequency_level(log_mag: np.ndarray) -> np.ndarray:
    """The box mean over bins f - 15 .. f + 15 as numpy computes it (the definition)."""
    csum = np.cumsum(log_mag[:, _FREQ_INDEX], axis=1)
    return ((csum[:, 31:] - csum[:, :1025]) / 31).astype(np.float32)


def _numpy_proxies(window: np.ndarray, log_freq: np.ndarray, power: np.ndarray, energy: np.ndarray) -> np.ndarray:
    """harmonic_proxies written in numpy (the definition the compiled passes follow)."""
    csum = np.cumsum(window, axis=0)
    k = window.shape[0] - 2 * HARMONIC_CONTEXT
    sums = csum[HARMONIC_CONTEXT:].copy()
    sums[1:] -= csum[: -HARMONIC_CONTEXT - 1]  # rows j .. j + 15
    log_time = (np.maximum(sums[:k], sums[HARMONIC_CONTEXT : HARMONIC_CONTEXT + k]) / 16).astype(np.float32)
    mask = np.float32(1.0) / (np.float32(1.0) + np.exp(np.clip(2.0 * (log_freq - log_time), -60.0, 60.0)))
    rest = np.float32(1.0) - mask
    harm = (mask * mask * power)[:, :1024].reshape(k, 32, 32).sum(axis=2, dtype=np.float64)
    perc = (rest * rest * power)[:, :1024].reshape(k, 32, 32).sum(axis=2, dtype=np.float64)
    scale = np.where(energy > 0, 1.0 / np.where(energy > 0, energy, 1.0), 0.0)[:, None]
    return np.concatenate((harm * scale, perc * scale), axis=1).astype(np.float32)


@pytest.mark.parametrize("k", [0, 1, 7, 43, 130])
def test_compiled_proxies_are_the_numpy_definition_bit_for_bit(k: int) -> None:
    rng = np.random.default_rng(k)
    rows = k + 2 * HARMONIC_CONTEXT
    magnitude = (np.abs(rng.standard_normal((rows, 1025))) ** 3 * rng.uniform(0.0, 5.0, (rows, 1))).astype(np.float32)
    magnitude[:, 600:] *= np.float32(1e-4)
    if rows > 20:
        magnitude[17] = 0.0  # a silent frame: energy 0, log floor
    power = np.square(magnitude)
    log_mag = np.float32(0.5) * np.log(power + np.float32(1e-30))
    energy = power.sum(axis=1, dtype=np.float64)
    log_freq = frequency_level(log_mag)
    assert np.array_equal(log_freq.view(np.uint32), _numpy_frequency_level(log_mag).view(np.uint32))
    frames = slice(HARMONIC_CONTEXT, HARMONIC_CONTEXT + k)
    got = harmonic_proxies(log_mag, log_freq[frames], power[frames], energy[frames])
    want = _numpy_proxies(log_mag, log_freq[frames], power[frames], energy[frames])
    assert got.shape == (k, 64) and got.dtype == np.float32
    assert np.array_equal(got.view(np.uint32), want.view(np.uint32))


def test_compiled_proxies_refuse_shapes_they_would_overrun() -> None:
    with pytest.raises(ValueError, match="window"):
        harmonic_proxies(np.zeros((10, 1025), np.float32), np.zeros((0, 1025), np.float32),
                         np.zeros((0, 1025), np.float32), np.zeros(0))
    with pytest.raises(ValueError, match="energy"):
        harmonic_proxies(np.zeros((32, 1025), np.float32), np.zeros((2, 1025), np.float32),
                         np.zeros((2, 1025), np.float32), np.zeros(3))
    with pytest.raises(ValueError, match="log magnitudes"):
        frequency_level(np.zeros((3, 1024), np.float32))
