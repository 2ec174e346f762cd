"""Tiny, fast runs of the corpus, benchmark and calibration scripts, so they cannot rot.

Each test exercises a script's real code path on seconds of audio: a 5-clip x 3 s corpus,
a 6 s benchmark through the actual CLI (worker processes included), calibration maths on
synthetic data with known answers, and an end-to-end calibration run.
"""

from __future__ import annotations

import json
import math
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from streamprint.engine import confidence

SCRIPTS = Path(__file__).resolve().parents[2] / "scripts"
sys.path.insert(0, str(SCRIPTS))

import bench_engine  # noqa: E402
import calibrate_confidence as cc  # noqa: E402
import make_corpus  # noqa: E402

# -- make_corpus -----------------------------------------------------------------------


def test_corpus_is_deterministic_varied_and_described(tmp_path: Path) -> None:
    items = make_corpus.build_corpus(tmp_path / "a", 5, 3.0, 7)
    assert [i.kind for i in items] == list(make_corpus.KIND_CYCLE[:5])
    manifest = json.loads((tmp_path / "a" / "manifest.json").read_text())
    assert [c["file"] for c in manifest["clips"]] == [i.file for i in items]
    for item, entry in zip(items, manifest["clips"], strict=True):
        assert set(entry) >= {"file", "kind", "tempo", "key", "seconds", "seed"}
        info = sf.info(item.path)
        assert info.samplerate == item.sample_rate and info.channels == item.channels
        assert item.seconds == pytest.approx(3.0, abs=1e-3)
        data, _ = sf.read(item.path, dtype="float32")
        assert np.isfinite(data).all() and np.abs(data).max() <= 1.0
    music = items[0]
    assert music.tempo is not None and 60.0 <= music.tempo <= 180.0
    assert music.key is not None and music.key.split()[1] in ("major", "minor")
    assert items[1].tempo is None  # speech has no pulse
    # Same request: the cached corpus is reused; another directory gets identical files.
    assert make_corpus.build_corpus(tmp_path / "a", 5, 3.0, 7) == items
    again = make_corpus.build_corpus(tmp_path / "b", 5, 3.0, 7)
    for one, two in zip(items, again, strict=True):
        assert one.path.read_bytes() == two.path.read_bytes()
    _, loaded = make_corpus.load_manifest(tmp_path / "a")
    assert loaded == items


@pytest.mark.parametrize("kind", make_corpus.KINDS)
def test_every_kind_generates_bounded_audio(kind: str) -> None:
    samples, rate, meta = make_corpus.generate_clip(kind, 1.5, 123)
    assert samples.dtype == np.float32 and samples.ndim == 2 and samples.shape[1] in (1, 2)
    assert samples.shape[0] == round(1.5 * rate)
    assert np.isfinite(samples).all() and np.abs(samples).max() <= 1.0
    assert set(meta) == {"tempo", "key", "params", "attachments"}


def _read_smf_meta(smf: bytes) -> dict[int, bytes]:
    """Meta events (type -> data) of a format-0 SMF's track, read back by hand."""
    assert smf[:4] == b"MThd" and int.from_bytes(smf[8:10], "big") == 0  # format 0
    assert smf[14:18] == b"MTrk"
    track, pos, meta = smf[22:], 0, {}
    while pos < len(track):
        while track[pos] & 0x80:  # delta time (variable-length quantity)
            pos += 1
        pos += 1
        status = track[pos]
        if status == 0xFF:
            kind, length = track[pos + 1], track[pos + 2]
            meta[kind] = track[pos + 3 : pos + 3 + length]
            pos += 3 + length
        else:
            pos += 2 if status & 0xF0 == 0xC0 else 3
    return meta


def test_midi_file_carries_the_known_tempo_and_key() -> None:
    rng = np.random.default_rng(3)
    notes, programs, params = make_corpus.midi_song(rng, 8.0, tempo=123.0)
    smf = make_corpus.write_smf(notes, tempo_bpm=123.0, tonic=params["tonic"], mode=params["mode"],
                                programs=programs)
    meta = _read_smf_meta(smf)
    assert 60e6 / int.from_bytes(meta[0x51], "big") == pytest.approx(123.0, abs=1e-3)
    assert meta[0x2F] == b""  # end of track reached exactly
    assert make_corpus.key_signature(9, "minor") == (0, 1)  # A minor: no sharps
    assert make_corpus.key_signature(2, "major") == (2, 0)  # D major: two sharps
    assert make_corpus.key_signature(10, "major") == (-2, 0)  # B flat major: two flats
    sharps, minor = make_corpus.key_signature(params["tonic"], params["mode"])
    assert meta[0x59] == bytes([sharps & 0xFF, minor])
    assert any(n.channel == 9 for n in notes) and {0, 1, 2} <= {n.channel for n in notes}


@pytest.mark.skipif(
    make_corpus.shutil.which("fluidsynth") is None or not make_corpus.SOUNDFONT.is_file(),
    reason="fluidsynth / fluid-soundfont-gm not installed (make setup installs them)",
)
def test_midi_clip_renders_with_fluidsynth_at_its_known_tempo() -> None:
    from streamprint.engine import dims
    from streamprint.engine.fingerprint import AudioBuffer
    from streamprint.engine.session import fingerprint_buffer

    samples, rate, meta = make_corpus.generate_clip("midi", 10.0, 11)
    params = meta["params"]
    assert params["renderer"].startswith("fluidsynth") and meta["attachments"]["mid"][:4] == b"MThd"
    assert samples.shape[0] == round(10.0 * rate) and np.abs(samples).max() > 0.05
    assert meta["tempo"] == params["tempo"] and meta["key"] == params["key"]
    again, _, _ = make_corpus.generate_clip("midi", 10.0, 11)
    assert np.array_equal(samples, again)  # fluidsynth renders deterministically
    fp = fingerprint_buffer(AudioBuffer(samples, rate))
    tempo = float(meta["tempo"])
    assert abs(fp.values["tempo_bpm"] - tempo) <= dims.get("tempo_bpm").tolerance_for(tempo)


def test_midi_clips_are_appended_and_fall_back_without_fluidsynth(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    plain = make_corpus.build_corpus(tmp_path / "plain", 10, 2.0, 5, midi_clips=0)
    monkeypatch.setattr(make_corpus.shutil, "which", lambda name: None)  # no espeak-ng, no fluidsynth
    items = make_corpus.build_corpus(tmp_path / "midi", 10, 2.0, 5)  # default: one per ten
    assert [i.kind for i in items] == [*make_corpus.KIND_CYCLE[:10], "midi"]
    for one, two in zip(plain, items, strict=False):  # the cycle's clips are unchanged
        if one.kind not in ("speech", "speech_music"):  # (speech fell back to babble here)
            assert one.path.read_bytes() == two.path.read_bytes(), one.file
    midi = items[-1]
    assert midi.tempo is not None and midi.key is not None and midi.seconds == pytest.approx(2.0, abs=1e-3)
    assert midi.params["renderer"].startswith("numpy-wavetable")
    assert (tmp_path / "midi" / midi.params["mid_file"]).read_bytes()[:4] == b"MThd"
    manifest = json.loads((tmp_path / "midi" / "manifest.json").read_text())
    assert manifest["request"]["midi_clips"] == 1
    assert any("midi clips: numpy-wavetable" in note for note in manifest["notes"])


def test_parse_seconds() -> None:
    assert make_corpus.parse_seconds("25") == 25.0
    assert make_corpus.parse_seconds("20-30") == (20.0, 30.0)


# -- bench_engine ----------------------------------------------------------------------


def test_bench_cli_runs_all_three_measurements(tmp_path: Path) -> None:
    audio = bench_engine.bench_file(0.1, cache=tmp_path)
    assert sf.info(audio).duration == pytest.approx(6.0)
    proc = subprocess.run(
        [sys.executable, str(SCRIPTS / "bench_engine.py"), "--minutes", "0.1", "--audio", str(audio), "--json"],
        capture_output=True, text=True, timeout=120, check=False,
    )
    assert proc.returncode == 0, proc.stderr
    summary = json.loads(proc.stdout.strip().splitlines()[-1])
    for key in ("engine_batch_rtf", "engine_stream_rtf", "librosa_rtf",
                "speedup_batch_vs_librosa", "speedup_stream_vs_librosa"):
        assert summary[key] > 0
    assert summary["media_seconds"] == pytest.approx(6.0)
    assert summary["speedup_batch_vs_librosa"] == pytest.approx(
        summary["librosa_seconds"] / summary["engine_batch_seconds"])
    assert set(summary["librosa_steps"]) >= {"hpss", "yin", "tempo", "chroma", "stft"}
    text = bench_engine.render_markdown(summary, "python scripts/bench_engine.py --write-docs")
    assert "realtime factor" in text and "speed vs librosa" in text


def test_speed_probe_times_a_fixed_workload(monkeypatch: pytest.MonkeyPatch) -> None:
    """Best of the repeats, in ms: a fake clock whose runs take 30, 20 and 25 ms gives 20."""
    ticks = iter([0.0, 0.030, 1.0, 1.020, 2.0, 2.025])
    monkeypatch.setattr(bench_engine.time, "perf_counter", lambda: next(ticks))
    assert bench_engine.speed_probe_ms(repeats=3) == 20.0


def test_doc_sections_are_replaced_between_markers(tmp_path: Path) -> None:
    doc = tmp_path / "benchmarks.md"
    bench_engine.write_doc_section("engine-speed", "first", path=doc)
    bench_engine.write_doc_section("confidence-calibration", "table", path=doc)
    bench_engine.write_doc_section("engine-speed", "second", path=doc)
    text = doc.read_text()
    assert "second" in text and "first" not in text and "table" in text
    assert text.count("<!-- engine-speed:begin -->") == 1


# -- calibrate_confidence: maths on synthetic data ---------------------------------------


def test_decile_table_of_calibrated_and_miscalibrated_probabilities() -> None:
    rng = np.random.default_rng(0)
    p = rng.uniform(0.0, 1.0, 40_000)
    honest = rng.uniform(0.0, 1.0, p.size) < p
    table = cc.decile_table(p, honest)
    assert [b.count for b in table] == pytest.approx([4000] * 10, rel=0.1)
    ece, gap = cc.calibration_error(table)
    assert ece < 0.02 and gap < 0.04
    overconfident = rng.uniform(0.0, 1.0, p.size) < p**2
    ece, gap = cc.calibration_error(cc.decile_table(p, overconfident))
    assert ece > 0.1 and gap > 0.2
    empty = cc.decile_table(np.zeros(0), np.zeros(0, dtype=bool))
    assert cc.calibration_error(empty) == (0.0, 0.0)


def test_fit_recovers_a_known_inflation_cap_and_base_rate() -> None:
    rng = np.random.default_rng(1)
    n = 20_000
    se = rng.uniform(0.2, 2.0, n)
    tol = 1.0
    error = rng.normal(0.0, 2.5 * se)  # the stated errors are 2.5x too small
    regime_change = rng.uniform(size=n) < 0.1  # and 10 % of updates jump anyway
    within = (np.abs(error) <= tol) & ~regime_change
    z = tol / (math.sqrt(2.0) * se)
    z[:500] = 0.0  # no standard error yet
    within[:500] = rng.uniform(size=500) < 0.7
    k, cap, base = cc.fit_dimension(z, within)
    assert k == pytest.approx(2.5, rel=0.1)
    assert cap == pytest.approx(0.9, abs=0.03)
    assert base == pytest.approx(0.7, abs=0.05)


def test_fit_logistic_recovers_weights() -> None:
    rng = np.random.default_rng(2)
    x = np.column_stack((np.ones(30_000), rng.uniform(0, 1, 30_000), rng.uniform(0, 4, 30_000)))
    w_true = np.array([-3.0, 4.0, 0.8])
    y = rng.uniform(size=x.shape[0]) < 1.0 / (1.0 + np.exp(-(x @ w_true)))
    assert cc.fit_logistic(x, y) == pytest.approx(w_true, rel=0.08)


def test_raw_confidences_invert_exactly_for_both_call_styles() -> None:
    tol, se = 0.05, 0.013
    z_true = tol / (math.sqrt(2.0) * se)
    with cc.raw_confidences():
        raw_new = confidence.calibrated("harmonic_ratio", tol, se)
        raw_old = confidence.within_tolerance(tol, se)
        assert confidence.calibrated("harmonic_ratio", tol, math.inf) == 0.0
        assert confidence.calibrated("harmonic_ratio", tol, 0.0) == 1.0
    z = cc.z_from_confidence(np.array([raw_new, raw_old, 0.0, 1.0]))
    assert z[:2] == pytest.approx([z_true, z_true], rel=1e-9)
    assert z[2] == 0.0 and math.isinf(z[3])


def _synthetic_records(n: int, seed: int) -> cc.Records:
    rng = np.random.default_rng(seed)
    dims = np.arange(n) % len(cc.DIMENSIONS)
    z = rng.exponential(1.0, n)
    z[::7] = 0.0
    z[::11] = np.inf
    bpm = np.where(rng.uniform(size=n) < 0.8, rng.uniform(60, 180, n), 0.0)
    return cc.Records(
        files=["a.wav", "b.wav"], kinds=["music", "speech"], clip=(np.arange(n) % 2).astype(np.int64),
        dim=dims.astype(np.int64), t=rng.uniform(1, 30, n), value=rng.normal(size=n), final=rng.normal(size=n),
        within=rng.uniform(size=n) < 0.7, z=z, bpm=bpm, strength=rng.uniform(0, 1, n),
        beats=rng.uniform(0, 60, n),
    )


def test_engine_functions_match_the_fitting_formula() -> None:
    rec = _synthetic_records(2000, 3)
    cal = cc.fit(rec)
    stated = cc.calibrated_confidences(rec, cal)
    assert ((stated >= 0.0) & (stated <= 1.0)).all()
    tempo = rec.dim == cc.DIMENSIONS.index(cc.TEMPO)
    expected = np.empty(len(rec))
    for d, name in enumerate(cc.DIMENSIONS):
        rows = (rec.dim == d) & ~tempo
        e = np.where(np.isinf(rec.z[rows]), 1.0, cc.erf(np.where(np.isinf(rec.z[rows]), 0, rec.z[rows])
                                                          / cal.inflation.get(name, 1.0)))
        expected[rows] = np.where(rec.z[rows] == 0.0, cal.undefined.get(name, 0.0), cal.cap.get(name, 1.0) * e)
    w0, ws, wb = cal.tempo_w
    logit = w0 + ws * np.clip(rec.strength, 0, 1) + wb * np.log1p(rec.beats)
    expected[tempo] = np.where(rec.bpm[tempo] > 0, 1.0 / (1.0 + np.exp(-logit[tempo])), cal.tempo_no_pulse)
    assert stated == pytest.approx(expected, abs=1e-12)
    legacy = cc.legacy_confidences(rec)
    assert legacy[(rec.z == 0.0) & ~tempo].max() == 0.0 and (legacy[np.isinf(rec.z) & ~tempo] == 1.0).all()
    assert (legacy[tempo & (rec.bpm <= 0)] == 0.0).all()


def test_factors_round_trip_through_confidence_py(tmp_path: Path) -> None:
    source = Path(confidence.__file__).read_text()
    copy = tmp_path / "confidence_copy.py"
    copy.write_text(source)
    cal = cc.Calibration({"spectral_centroid": 0.7}, {"spectral_centroid": 0.95}, {"spectral_centroid": 0.6},
                         tempo_w=(-4.0, 6.0, 1.2), tempo_no_pulse=0.8)
    cc.write_factors(cal, "python scripts/calibrate_confidence.py --write-factors", "summary.", path=copy)
    namespace: dict[str, object] = {}
    exec(compile(copy.read_text(), str(copy), "exec"), namespace)
    assert namespace["INFLATION_BY_DIMENSION"] == {"spectral_centroid": 0.7}
    assert namespace["CAP_BY_DIMENSION"] == {"spectral_centroid": 0.95}
    assert namespace["UNDEFINED_BY_DIMENSION"] == {"spectral_centroid": 0.6}
    assert (namespace["TEMPO_W0"], namespace["TEMPO_NO_PULSE"]) == (-4.0, 0.8)
    calibrated = namespace["calibrated"]
    assert callable(calibrated)
    assert calibrated("spectral_centroid", 1.0, math.inf) == 0.6
    assert calibrated("spectral_centroid", 1.0, 0.0) == 0.95


def test_split_alternates_within_each_kind() -> None:
    train = cc.split_by_kind(["music", "speech", "music", "music", "speech"])
    assert train.tolist() == [True, True, False, True, False]


# -- calibrate_confidence: end to end ------------------------------------------------------


def test_calibration_end_to_end_on_a_tiny_corpus(tmp_path: Path) -> None:
    result, cal, rec = cc.run(clips=5, seconds=3.0, seed=0, corpus_dir=tmp_path / "corpus", jobs=1)
    assert len(rec) == result["updates_train"] + result["updates_test"] > 0
    assert set(rec.kinds) == set(make_corpus.KIND_CYCLE[:5])
    assert result["after"]["table"] and len(result["after"]["table"]) == 10
    assert sum(b.count for b in result["before"]["table"]) == result["updates_test"]
    assert set(cal.inflation) <= set(cc.DIMENSIONS)
    check = result["engine_check"]
    assert check is not None and set(check) == set(cc.DIMENSIONS)
    text = cc.render_markdown(result, "python scripts/calibrate_confidence.py")
    assert "| decile |" in text and "spectral_centroid" in text


# -- heads_gate --pitch-confidence -----------------------------------------------------------


def test_pitch_confidence_counts_sure_but_wrong_pairs(monkeypatch: pytest.MonkeyPatch) -> None:
    """The counting behind the pitch head's "confidently wrong" table, on stand-in clips: a
    head that says q for each pair, against YIN's pairs."""
    import heads_gate
    import train_heads

    from streamprint.engine import heads as H

    q = np.array([0.0005, 0.5, 0.9995, 0.95, 0.01, 0.9995])  # per pair (t-1, t)
    yin_pair = np.array([True, True, False, True, False, True])  # YIN: the pair is voiced

    class Clip:
        loud = np.ones(7, dtype=bool)
        pitch = np.zeros((7, H.PITCH_FEATURES), dtype=np.float32)
        pair = np.concatenate(([False], yin_pair))

    class Net:
        def pitch(self, frames: np.ndarray) -> np.ndarray:
            return np.stack((q, q), axis=1).astype(np.float32)

    monkeypatch.setattr(train_heads, "load_clips", lambda spec, cache: [Clip()])
    monkeypatch.setattr(H, "NumpyHeads", lambda weights: Net())
    monkeypatch.setattr(H.HeadWeights, "load", classmethod(lambda cls, path: None))
    rows = {(r["corpus"], tuple(r["margin"])): r for r in heads_gate.pitch_confidence(Path("models"))}
    assert len(rows) == 2 * len(heads_gate.CONFIDENCE_BANDS)
    # margin 0.1/0.9: sure of all but 0.5; wrong: 0.0005 (YIN voiced), 0.9995 (YIN not)
    loose = rows[("train", (0.1, 0.9))]
    assert loose["pairs"] == 6 and loose["sure_but_wrong"] == 2 and loose["unsure_share"] == round(1 / 6, 4)
    # margin 0.001/0.999: sure only of 0.0005, 0.9995, 0.9995; wrong: two of them
    strict = rows[("held-out", (0.001, 0.999))]
    assert strict["sure_but_wrong"] == 2 and strict["unsure_share"] == 0.5
