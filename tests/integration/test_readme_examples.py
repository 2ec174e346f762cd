"""The README's server-side examples, run as written: `make run`, then every
`streamprint-client` line of the "Server and client" block against that server."""

from __future__ import annotations

import json
import os
import re
import shlex
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import grpc
import pytest
from grpc_harness import encode, music
from grpc_health.v1 import health_pb2, health_pb2_grpc

ROOT = Path(__file__).resolve().parents[2]
README = (ROOT / "README.md").read_text()


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _client_lines() -> list[str]:
    """The indented `streamprint-client ...` lines of the README's server section."""
    section = README.split("## Server and client", 1)[1].split("\n## ", 1)[0]
    lines = []
    for raw in section.splitlines():
        line = raw.strip()
        if line.startswith("streamprint-client "):
            lines.append(line.split("#", 1)[0].strip())
    return lines


def _wait_serving(address: str, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    with grpc.insecure_channel(address) as channel:
        stub = health_pb2_grpc.HealthStub(channel)
        while time.monotonic() < deadline:
            try:
                reply = stub.Check(health_pb2.HealthCheckRequest(service=""), timeout=1.0)
                if reply.status == health_pb2.HealthCheckResponse.SERVING:
                    return
            except grpc.RpcError:
                pass
            time.sleep(0.2)
    raise AssertionError(f"server at {address} not SERVING within {timeout} s")


@pytest.fixture(scope="module")
def make_run_server() -> object:
    """`make run` (the README's first command), on a free port via STREAMPRINT_PORT."""
    port = _free_port()
    env = {**os.environ, "STREAMPRINT_PORT": str(port)}
    proc = subprocess.Popen(
        ["make", "--no-print-directory", "run"],
        cwd=ROOT,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        start_new_session=True,
    )
    address = f"127.0.0.1:{port}"
    try:
        _wait_serving(address, timeout=60.0)
        yield address
    finally:
        os.killpg(proc.pid, signal.SIGTERM)
        try:
            proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()


@pytest.fixture(scope="module")
def workdir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """song.mp3, song.flac, a.wav and b.ogg, as the README names them."""
    root = tmp_path_factory.mktemp("readme")
    (root / "song.mp3").write_bytes(encode(music(4.0, rate=44100, seed=5), 44100, "MP3", "MPEG_LAYER_III"))
    (root / "song.flac").write_bytes(encode(music(4.0, rate=44100, seed=6), 44100, "FLAC"))
    (root / "a.wav").write_bytes(encode(music(3.0, seed=7), 22050))
    (root / "b.ogg").write_bytes(encode(music(3.0, rate=44100, seed=8), 44100, "OGG", "VORBIS"))
    return root


def _run(line: str, address: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    argv = shlex.split(line)
    assert argv[0] == "streamprint-client"
    env = {**os.environ, "STREAMPRINT_SERVER": address,
           "PYTHONPATH": str(ROOT / "clients" / "python")}
    return subprocess.run(
        [sys.executable, "-m", "streamprint_client", *argv[1:]],
        capture_output=True, text=True, env=env, cwd=cwd, timeout=120, check=False,
    )


def test_make_run_serves_and_every_client_line_works(make_run_server: str, workdir: Path) -> None:
    address = make_run_server
    lines = _client_lines()
    assert len(lines) == 5, lines
    session_id = ""
    for line in lines:
        commands = [part.strip() for part in re.split(r"\s\|\s", line)]
        if len(commands) > 1:  # "info | cache-stats | cache-clear": three subcommands
            commands = [commands[0]] + [f"streamprint-client {c}" for c in commands[1:]]
        for command in commands:
            command = command.replace("SESSION_ID", session_id)
            result = _run(command, address, workdir)
            assert result.returncode == 0, (command, result.stderr)
            assert result.stdout.strip(), command
            if " stream " in f" {command} ":
                updates = [json.loads(x) for x in result.stdout.splitlines()]
                assert updates[-1]["final"] is True
                session_id = str(updates[-1]["session_id"])
            if " fingerprint " in f" {command} ":
                assert json.loads(result.stdout.splitlines()[-1])["cached"] in (True, False)
            if " validate " in f" {command} ":
                items = [json.loads(x) for x in result.stdout.splitlines()]
                assert all(item["passed"] is True for item in items), items
    assert session_id


def test_make_run_exits_zero_on_sigterm() -> None:
    port = _free_port()
    proc = subprocess.Popen(
        [sys.executable, "-m", "streamprint", "serve", "--port", str(port)],
        cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )
    try:
        _wait_serving(f"127.0.0.1:{port}", timeout=30.0)
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=10) == 0
    finally:
        if proc.poll() is None:
            proc.kill()
