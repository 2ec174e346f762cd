"""`streamprint-client` with video files: stream (paced by container timestamps) and fingerprint."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest
from grpc_harness import ServerThread

from streamprint.engine import dims
from streamprint_client.video_media import detect_video, timed_chunks, timeline

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "unit"))
import video_clips as vc

ROOT = Path(__file__).resolve().parents[2]


def _run(*args: str, server: ServerThread) -> subprocess.CompletedProcess[str]:
    environ = {
        **os.environ,
        "PYTHONPATH": str(ROOT / "clients" / "python"),
        "STREAMPRINT_SERVER": server.address,
    }
    return subprocess.run(
        [sys.executable, "-m", "streamprint_client", *args],
        capture_output=True, text=True, env=environ, timeout=120, check=False,
    )


@pytest.fixture(scope="module")
def clips(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("video")
    out = {}
    for name in ("ts", "mkv", "fmp4"):
        path = root / f"clip.{name}"
        path.write_bytes(vc.encode(vc.moving_with_cut(1.0), seconds=2.5, container=name))
        out[name] = path
    return out


@pytest.mark.parametrize("name", ["ts", "mkv", "fmp4"])
def test_timelines_follow_the_container(clips: dict[str, Path], name: str) -> None:
    data = clips[name].read_bytes()
    assert detect_video(data) is not None
    line = timeline(data)
    assert line.duration == pytest.approx(2.5, abs=0.6)
    chunks = list(timed_chunks(data, line, 500))
    assert b"".join(chunks) == data and len(chunks) >= 2


def test_stream_ts_realtime_json(server: ServerThread, clips: dict[str, Path]) -> None:
    start = time.monotonic()
    result = _run("stream", str(clips["ts"]), "--realtime", "--chunk-ms", "250", "--json", server=server)
    elapsed = time.monotonic() - start
    assert result.returncode == 0, result.stderr
    lines = [json.loads(line) for line in result.stdout.splitlines()]
    assert [line["final"] for line in lines] == [False] * (len(lines) - 1) + [True]
    assert list(lines[-1]["values"]) == list(dims.VIDEO_13D)
    assert lines[-1]["values"]["scene_cut_rate"] == pytest.approx(24.0, rel=0.1)  # 1 cut in 2.5 s
    assert elapsed >= 2.0  # paced by the stream's own timestamps (2.5 s of media)


def test_fingerprint_detects_video(server: ServerThread, clips: dict[str, Path]) -> None:
    result = _run("fingerprint", str(clips["mkv"]), "--json", server=server)
    assert result.returncode == 0, result.stderr
    obj = json.loads(result.stdout.splitlines()[0])
    assert obj["algorithm"] == "video-13d/1" and obj["cached"] is False
    garbage = clips["ts"].parent / "garbage.ts"
    garbage.write_bytes(b"\x47" + b"x" * 5000)
    bad = _run("stream", str(garbage), "--modality", "video", server=server)
    assert bad.returncode != 0 and "INVALID_ARGUMENT" in bad.stderr


def test_async_client_streams_video(server: ServerThread, clips: dict[str, Path]) -> None:
    import asyncio

    from streamprint_client import AsyncStreamprintClient

    async def run() -> list[object]:
        async with AsyncStreamprintClient(server.address, timeout_s=60) as client:
            updates = [u async for u in client.stream_file(clips["mkv"], chunk_ms=200)]
            result = await client.fingerprint_file(clips["mkv"])
            assert result.fingerprint.algorithm == "video-13d/1"
            return list(updates)

    updates = asyncio.run(run())
    assert updates and updates[-1].final  # type: ignore[attr-defined]
    assert updates[-1].fingerprint.algorithm == "video-13d/1"  # type: ignore[attr-defined]
