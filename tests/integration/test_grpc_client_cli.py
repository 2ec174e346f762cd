"""`streamprint-client` against a real server: JSON-lines contract, exit codes, errors."""

from __future__ import annotations

import io
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from grpc_harness import ServerThread

from streamprint_client import cli

ROOT = Path(__file__).resolve().parents[2]


def _run(
    *args: str, server: ServerThread | None = None, env: dict[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    environ = {**os.environ, "PYTHONPATH": str(ROOT / "clients" / "python"), **(env or {})}
    if server is not None:
        environ["STREAMPRINT_SERVER"] = server.address
    return subprocess.run(
        [sys.executable, "-m", "streamprint_client", *args],
        capture_output=True,
        text=True,
        env=environ,
        timeout=120,
    )


def _lines(stdout: str) -> list[dict[str, object]]:
    return [json.loads(line) for line in stdout.splitlines()]


def test_stream_json_lines(server: ServerThread, media_dir: Path) -> None:
    result = _run("stream", str(media_dir / "clip.wav"), "--json", server=server)
    assert result.returncode == 0, result.stderr
    lines = _lines(result.stdout)
    assert len(lines) >= 3
    for line in lines:
        assert {"session_id", "revision", "final", "values", "confidence", "media_seconds"} <= set(
            line
        )
        assert set(line["values"]) == set(line["confidence"])  # type: ignore[arg-type]
        assert "spectral_centroid" in line["values"]  # type: ignore[operator]
    assert [line["final"] for line in lines] == [False] * (len(lines) - 1) + [True]


def test_chunk_ms_defaults_to_100() -> None:
    args = cli.build_parser().parse_args(["stream", "x.wav"])
    assert args.chunk_ms == 100 and not args.realtime and not args.json


def test_fingerprint_json_carries_cached(server: ServerThread, media_dir: Path) -> None:
    path = str(media_dir / "short.wav")
    assert _run("cache-clear", server=server).returncode == 0
    first = _lines(_run("fingerprint", path, "--json", server=server).stdout)[0]
    second = _lines(_run("fingerprint", path, "--json", server=server).stdout)[0]
    assert (first["cached"], second["cached"]) == (False, True)
    assert len(first["values"]) == 25  # type: ignore[arg-type]


def test_batch_json_and_exit_code(server: ServerThread, media_dir: Path) -> None:
    result = _run(
        "batch",
        str(media_dir / "short.wav"),
        str(media_dir / "garbage.bin"),
        "--json",
        server=server,
    )
    assert result.returncode == 1
    ok, bad = _lines(result.stdout)
    assert ok["cached"] in (True, False) and ok["path"].endswith("short.wav")  # type: ignore[union-attr]
    assert bad["error"]["code"] == "INVALID_ARGUMENT"  # type: ignore[index]


def test_stream_then_validate_session(server: ServerThread, media_dir: Path) -> None:
    lines = _lines(_run("stream", str(media_dir / "short.wav"), "--json", server=server).stdout)
    session_id = str(lines[-1]["session_id"])
    result = _run("validate", "--session", session_id, "--json", server=server)
    assert result.returncode == 0, result.stderr
    (report,) = _lines(result.stdout)
    assert report["passed"] is True and report["session_id"] == session_id
    assert all(d["within_tolerance"] for d in report["dimensions"])  # type: ignore[union-attr]
    text = _run("validate", "--session", session_id, server=server)
    assert text.returncode == 0 and "PASSED" in text.stdout


def test_validate_unknown_session(server: ServerThread) -> None:
    result = _run("validate", "--session", "nope", "--json", server=server)
    assert result.returncode == 1
    assert "NOT_FOUND" in result.stderr
    (line,) = _lines(result.stdout)
    assert line["passed"] is False and line["error"]["code"] == "NOT_FOUND"  # type: ignore[index]


def test_errors_print_code_name_and_details(server: ServerThread, media_dir: Path) -> None:
    result = _run("stream", str(media_dir / "garbage.bin"), server=server)
    assert result.returncode == 1
    assert "INVALID_ARGUMENT" in result.stderr and "field chunk.data" in result.stderr


def test_unreachable_server_is_unavailable(media_dir: Path) -> None:
    result = _run("--server", "127.0.0.1:1", "fingerprint", str(media_dir / "short.wav"))
    assert result.returncode == 1 and "UNAVAILABLE" in result.stderr
    # a stream that never had a connection does not say it was lost mid-stream
    streamed = _run("--server", "127.0.0.1:1", "stream", str(media_dir / "short.wav"))
    assert streamed.returncode == 1 and "cannot reach the server" in streamed.stderr
    assert "mid-stream" not in streamed.stderr


def test_missing_file(server: ServerThread) -> None:
    result = _run("fingerprint", "/no/such/file.wav", server=server)
    assert result.returncode == 1 and "/no/such/file.wav" in result.stderr
    for command in ("fingerprint", "stream"):  # with --json, the {"error": ...} line too
        as_json = _run(command, "/no/such/file.wav", "--json", server=server)
        assert as_json.returncode == 1
        [line] = _lines(as_json.stdout)
        error = line["error"]
        assert isinstance(error, dict) and error["code"] == "LOCAL_FILE"
        assert "/no/such/file.wav" in str(error["message"])


def test_info_and_cache_commands(server: ServerThread) -> None:
    info = _lines(_run("info", "--json", server=server).stdout)[0]
    assert info["api_version"] == "streamprint.v1"
    assert "streamprint" in _run("info", server=server).stdout
    stats = _lines(_run("cache-stats", "--json", server=server).stdout)[0]
    assert {"hits", "misses", "evictions", "size", "hit_rate"} <= set(stats["fingerprints"])  # type: ignore[arg-type]
    cleared = _lines(_run("cache-clear", "--sessions", "--json", server=server).stdout)[0]
    assert set(cleared) == {"fingerprints_removed", "sessions_removed"}


class _Tty(io.StringIO):
    def isatty(self) -> bool:
        return True


def test_live_view_on_a_terminal(server: ServerThread, media_dir: Path) -> None:
    out = _Tty()
    code = cli.main(["--server", server.address, "stream", str(media_dir / "short.wav")], out=out)
    assert code == 0
    screen = out.getvalue()
    assert "100.0%" in screen and "tempo_bpm" in screen and "session " in screen
    assert "\x1b[" in screen  # redrawn in place


def test_plain_stream_output(server: ServerThread, media_dir: Path) -> None:
    out = io.StringIO()
    assert (
        cli.main(["--server", server.address, "stream", str(media_dir / "short.wav")], out=out) == 0
    )
    text = out.getvalue()
    assert "revision 1:" in text and "final" in text and "spectral_centroid" in text


@pytest.mark.parametrize(
    "command", ["stream", "fingerprint", "batch", "validate", "info", "cache-stats", "cache-clear"]
)
def test_every_subcommand_has_json(command: str) -> None:
    parser = cli.build_parser()
    argv = {
        "stream": ["x"],
        "fingerprint": ["x"],
        "batch": ["x"],
        "validate": ["--session", "s"],
    }.get(command, [])
    assert parser.parse_args([command, *argv, "--json"]).json is True
