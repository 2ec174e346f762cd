"""The offline CLI, including every README example (run as the README shows them)."""

from __future__ import annotations

import io
import json
import math
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
from signals import music_like

from streamprint.cli import main
from streamprint.engine import dims

STREAMPRINT = [sys.executable, "-m", "streamprint"]


@pytest.fixture(scope="module")
def song(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A 6 s stereo 44.1 kHz FLAC "song" (README calls it song.flac)."""
    path = tmp_path_factory.mktemp("cli") / "song.flac"
    sf.write(path, music_like(6.0, bpm=120.0, rate=44_100, channels=2, seed=3), 44_100)
    return path


def run_cli(*args: str, cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [*STREAMPRINT, *args], capture_output=True, text=True, timeout=120, cwd=cwd, check=False
    )


def test_readme_table(song: Path) -> None:
    result = run_cli("fingerprint", "song.flac", cwd=song.parent)
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    assert lines[0].startswith("song.flac: audio-25d/1")
    names = [line.split()[0] for line in lines[2:]]
    assert names == list(dims.AUDIO_25D)


def test_readme_json(song: Path) -> None:
    result = run_cli("fingerprint", "song.flac", "--json", cwd=song.parent)
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    assert len(lines) == 1
    obj = json.loads(lines[0])
    assert obj["algorithm"] == "audio-25d/1"
    assert set(obj["values"]) == set(dims.AUDIO_25D) == set(obj["confidence"])
    assert obj["final"] is True
    assert all(math.isfinite(v) for v in obj["values"].values())
    assert all(0.0 <= c <= 1.0 for c in obj["confidence"].values())
    assert abs(obj["values"]["tempo_bpm"] - 120.0) <= 0.04 * 120.0
    assert obj["media_seconds"] == pytest.approx(6.0)
    # every key of the README's example line
    readme_keys = {"algorithm", "values", "confidence", "revision", "media_seconds", "final",
                   "model", "model_version", "path", "backend", "precision", "selection_reason"}
    assert readme_keys <= set(obj)
    assert obj["backend"] in ("numpy", "onnxruntime", "openvino")
    assert obj["precision"] in ("fp32", "int8")


def test_threads_do_not_change_the_result(song: Path) -> None:
    outputs = []
    for threads in ("0", "1", "3"):
        out = io.StringIO()
        assert main(["fingerprint", str(song), "--json", "--backend", "numpy", "--threads", threads], out=out) == 0
        obj = json.loads(out.getvalue().splitlines()[-1])
        outputs.append((obj["values"], obj["confidence"]))
    assert outputs[0] == outputs[1] == outputs[2]


def test_auto_choice_is_remembered_until_reselect(song: Path, tmp_path: Path) -> None:
    import os

    env = {**os.environ, "STREAMPRINT_SELECTION_MEMO": str(tmp_path / "selection.json")}
    reasons = []
    for extra in ([], [], ["--reselect"]):
        result = subprocess.run(
            [*STREAMPRINT, "fingerprint", str(song), "--json", *extra],
            capture_output=True, text=True, timeout=120, env=env, check=False,
        )
        assert result.returncode == 0, result.stderr
        reasons.append(json.loads(result.stdout.splitlines()[-1])["selection_reason"])
    assert "remembered in" not in reasons[0]
    assert "remembered in" in reasons[1] and reasons[1].startswith(reasons[0])
    assert "remembered in" not in reasons[2]


def test_negative_threads_is_a_usage_error(song: Path) -> None:
    result = run_cli("fingerprint", str(song), "--threads", "-1")
    assert result.returncode == 2
    assert "--threads" in result.stderr and "out of range" in result.stderr


def test_readme_stream(song: Path) -> None:
    result = run_cli("fingerprint", "song.flac", "--stream", "--chunk-ms", "100", "--json", cwd=song.parent)
    assert result.returncode == 0, result.stderr
    updates = [json.loads(line) for line in result.stdout.splitlines()]
    assert len(updates) == 7  # one per second of media, then the final
    assert [u["final"] for u in updates] == [False] * 6 + [True]
    revisions = [u["revision"] for u in updates]
    assert revisions == sorted(set(revisions))
    assert updates[0]["media_seconds"] <= 1.5
    for u in updates:
        assert u["algorithm"] == "audio-13d/1"
        assert set(u["values"]) == set(dims.AUDIO_13D)
    batch = json.loads(run_cli("fingerprint", "song.flac", "--json", cwd=song.parent).stdout)
    for name in dims.AUDIO_13D:
        ref = batch["values"][name]
        assert updates[-1]["values"][name] == pytest.approx(ref, rel=1e-3, abs=1e-6), name


def test_stream_chunking_does_not_change_final(song: Path) -> None:
    finals = []
    for chunk_ms in ("37", "100", "1000"):
        out = io.StringIO()
        assert main(["fingerprint", str(song), "--stream", "--chunk-ms", chunk_ms, "--json"], out=out) == 0
        finals.append(json.loads(out.getvalue().splitlines()[-1])["values"])
    for name in dims.AUDIO_13D:
        assert finals[0][name] == pytest.approx(finals[1][name], rel=1e-3, abs=1e-6)
        assert finals[2][name] == pytest.approx(finals[1][name], rel=1e-3, abs=1e-6)


@pytest.mark.parametrize(
    ("content", "reason"),
    [
        (b"", "MEDIA_UNDECODABLE"),
        (b"this is not audio at all" * 100, "MEDIA_UNDECODABLE"),
        (bytes(range(256)) * 64, "MEDIA_UNDECODABLE"),
    ],
    ids=["empty", "text", "garbage"],
)
def test_bad_files_give_one_line(tmp_path: Path, content: bytes, reason: str) -> None:
    path = tmp_path / "bad.wav"
    path.write_bytes(content)
    result = run_cli("fingerprint", str(path))
    assert result.returncode == 1
    assert result.stdout == ""
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith("streamprint: error: ")
    assert reason in lines[0] or "INVALID_INPUT" in lines[0]
    assert "Traceback" not in result.stderr


def test_nan_samples_rejected(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = tmp_path / "nan.wav"
    samples = np.zeros((22_050, 1), dtype=np.float32)
    samples[100] = np.nan
    sf.write(path, samples, 22_050, subtype="FLOAT")
    assert main(["fingerprint", str(path)]) == 1
    err = capsys.readouterr().err
    assert "NaN" in err or "finite" in err


def test_missing_file(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["fingerprint", "/nonexistent/file.wav"]) == 1
    assert "no such file" in capsys.readouterr().err


def test_absurd_rate_rejected(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = tmp_path / "rate.wav"
    sf.write(path, np.zeros((100, 1), dtype=np.float32), 1_000, subtype="PCM_16")
    assert main(["fingerprint", str(path)]) == 1
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "sample" in err.lower()


def test_bad_chunk_ms_is_usage_error(song: Path) -> None:
    result = run_cli("fingerprint", str(song), "--stream", "--chunk-ms", "0")
    assert result.returncode == 2
    assert "--chunk-ms" in result.stderr


def test_flac_fingerprint_loads_neither_pyav_nor_the_server(song: Path) -> None:
    """WAV and FLAC cannot hold video and libsndfile reads them: the CLI does not import PyAV to probe
    it, nor asyncio / grpc for the serve parser (start-up time every run pays)."""
    code = (
        "import sys; from streamprint.cli import main; "
        f"assert main(['fingerprint', {str(song)!r}, '--json', '--backend', 'numpy']) == 0; "
        "print(sorted(m for m in ('av', 'asyncio', 'grpc') if m in sys.modules))"
    )
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert proc.stdout.strip().splitlines()[-1] == "[]"


def test_audio_only_containers_are_known_by_their_header() -> None:
    from streamprint.engine.decode import is_audio_only

    assert is_audio_only(b"RIFF\x24\x00\x00\x00WAVEfmt ")
    assert is_audio_only(b"fLaC\x00\x00\x00\x22")
    assert not is_audio_only(b"RIFF\x24\x00\x00\x00AVI LIST")  # RIFF AVI holds video
    assert not is_audio_only(b"\x1aE\xdf\xa3")  # Matroska / WebM
    assert not is_audio_only(b"OggS\x00\x02")  # Ogg may carry Theora
