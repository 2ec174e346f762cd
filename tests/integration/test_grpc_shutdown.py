"""`streamprint serve` as a process: SERVING quickly, and a graceful SIGTERM with live streams."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import grpc
import pytest
from grpc_health.v1 import health_pb2, health_pb2_grpc

from streamprint_client import StreamprintClient, StreamprintRpcError, StreamUpdate
from streamprint_client._generated import fingerprint_service_pb2 as fs_pb
from streamprint_client._generated import fingerprint_service_pb2_grpc as fs_grpc
from streamprint_client._generated import media_pb2 as m_pb

_LISTEN_RE = re.compile(r"serving on \S+:(\d+)")


class ServeProcess:
    def __init__(self, *args: str) -> None:
        env = {**os.environ, "STREAMPRINT_LOG_LEVEL": "info"}
        self.started = time.monotonic()
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "streamprint", "serve", "--port", "0", *args],
            stderr=subprocess.PIPE,
            stdout=subprocess.DEVNULL,
            text=True,
            env=env,
        )
        self.log: list[str] = []
        self.port = self._wait_port()
        self._drain = threading.Thread(target=self._read_rest, daemon=True)
        self._drain.start()

    def _wait_port(self) -> int:
        assert self.proc.stderr is not None
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            line = self.proc.stderr.readline()
            if not line:
                break
            self.log.append(line)
            match = _LISTEN_RE.search(line)
            if match:
                return int(match.group(1))
        self.proc.kill()
        raise AssertionError("server did not start:\n" + "".join(self.log))

    def _read_rest(self) -> None:
        assert self.proc.stderr is not None
        for line in self.proc.stderr:
            self.log.append(line)

    @property
    def address(self) -> str:
        return f"127.0.0.1:{self.port}"

    def sigterm(self, timeout_s: float) -> tuple[int, float]:
        """SIGTERM; the exit code and the seconds it took to come."""
        sent_at = time.monotonic()
        self.proc.send_signal(signal.SIGTERM)
        code = self.proc.wait(timeout_s)
        return code, time.monotonic() - sent_at

    def close(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(10)


@pytest.fixture
def serve_process() -> Iterator[type[ServeProcess]]:
    started: list[ServeProcess] = []

    class Tracked(ServeProcess):
        def __init__(self, *args: str) -> None:
            super().__init__(*args)
            started.append(self)

    yield Tracked
    for p in started:
        p.close()


def test_sigterm_drains_live_streams_with_a_final_update(
    serve_process: type[ServeProcess], media_dir: Path
) -> None:
    server = serve_process("--grace-s", "5")
    channel = grpc.insecure_channel(server.address)
    health = health_pb2_grpc.HealthStub(channel)
    # SERVING within 10 s of start
    status = health.Check(health_pb2.HealthCheckRequest(), timeout=10, wait_for_ready=True).status
    assert status == health_pb2.HealthCheckResponse.SERVING
    assert time.monotonic() - server.started < 10

    watched: list[int] = []
    watch = health.Watch(health_pb2.HealthCheckRequest())

    def watcher() -> None:
        try:
            for response in watch:
                watched.append(response.status)
        except grpc.RpcError:
            pass

    watch_thread = threading.Thread(target=watcher, daemon=True)
    watch_thread.start()

    results: dict[int, list[StreamUpdate]] = {}
    errors: list[BaseException] = []
    first_updates = threading.Barrier(4)

    def stream(i: int) -> None:
        updates: list[StreamUpdate] = []
        try:
            with StreamprintClient(server.address) as client:
                call = client.stream_file(media_dir / "clip.wav", chunk_ms=100, realtime=True)
                for update in call:
                    updates.append(update)
                    if len(updates) == 1:
                        first_updates.wait(10)
                results[i] = updates
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=stream, args=(i,), daemon=True) for i in range(3)]
    for t in threads:
        t.start()
    first_updates.wait(15)

    code, exit_s = server.sigterm(10)
    for t in threads:
        t.join(10)
    watch_thread.join(5)
    channel.close()

    assert code == 0, "".join(server.log)
    assert exit_s < 10
    assert not errors, errors
    assert len(results) == 3
    for updates in results.values():
        assert updates[-1].final, "each live stream got its final update"
        assert updates[-1].fingerprint.media_seconds < 4.0, (
            "finished early, not at the end of the media"
        )
        revisions = [u.revision for u in updates]
        assert revisions == sorted(set(revisions))
    assert watched[0] == health_pb2.HealthCheckResponse.SERVING
    assert health_pb2.HealthCheckResponse.NOT_SERVING in watched
    assert any("draining" in line for line in server.log)


def test_sigterm_ends_streams_without_audio_yet_unavailable_and_does_not_wait_for_them(
    serve_process: type[ServeProcess], media_dir: Path
) -> None:
    """A stream that has sent no config yet used to hold the shutdown for the whole grace;
    one that sent only its config, or only a WAV header, ended INVALID_ARGUMENT ("no audio"),
    blaming a client that did nothing wrong and telling it not to retry. All three now end
    UNAVAILABLE with RetryInfo (limit ``draining``), and the process exits at once."""
    server = serve_process("--grace-s", "30")
    pcm = fs_pb.StreamConfig(
        audio_format=m_pb.AudioFormat(
            encoding=m_pb.AUDIO_ENCODING_PCM_S16LE, sample_rate_hz=16_000, channels=1
        )
    )
    header = (media_dir / "clip.wav").read_bytes()[:44]
    openings = {
        "no config": [],
        "config only": [fs_pb.StreamFingerprintRequest(config=pcm)],
        "wav header only": [
            fs_pb.StreamFingerprintRequest(config=fs_pb.StreamConfig()),
            fs_pb.StreamFingerprintRequest(chunk=fs_pb.MediaChunk(data=header, seq=0)),
        ],
    }
    outcomes: dict[str, StreamprintRpcError | str] = {}
    hold = threading.Event()
    opened = threading.Barrier(len(openings) + 1)

    def stream(name: str, messages: list[fs_pb.StreamFingerprintRequest]) -> None:
        def requests() -> Iterator[fs_pb.StreamFingerprintRequest]:
            yield from messages
            opened.wait(10)
            hold.wait(60)  # the client stays, sending nothing more

        with grpc.insecure_channel(server.address) as channel:
            call = fs_grpc.FingerprintServiceStub(channel).StreamFingerprint(requests(), timeout=60)
            try:
                list(call)
                outcomes[name] = "ended OK"
            except grpc.RpcError as exc:
                outcomes[name] = StreamprintRpcError.from_rpc_error(exc)

    with StreamprintClient(server.address) as client:
        client.wait_ready(10)
    threads = [threading.Thread(target=stream, args=item, daemon=True) for item in openings.items()]
    for t in threads:
        t.start()
    opened.wait(15)
    time.sleep(0.5)  # the last messages reach the server
    code, exit_s = server.sigterm(25)
    for t in threads:
        t.join(10)
    hold.set()
    assert code == 0, "".join(server.log)
    assert exit_s < 15, "no stream held the shutdown for the 30 s grace"
    assert set(outcomes) == set(openings), outcomes
    for name, outcome in outcomes.items():
        assert isinstance(outcome, StreamprintRpcError), (name, outcome)
        assert outcome.code is grpc.StatusCode.UNAVAILABLE, (name, outcome.code, outcome.message)
        assert outcome.retry_after_s is not None, name


def test_idle_server_exits_promptly_on_sigterm(serve_process: type[ServeProcess]) -> None:
    server = serve_process("--grace-s", "8")
    with StreamprintClient(server.address) as client:
        client.wait_ready(10)
        assert client.server_info().api_version == "streamprint.v1"
    sigterm_at = time.monotonic()
    server.proc.send_signal(signal.SIGTERM)
    assert server.proc.wait(10) == 0
    assert time.monotonic() - sigterm_at < 3, "nothing to drain: no need to wait for the grace"


def test_sigterm_does_not_wait_for_a_computation_whose_call_has_ended(
    serve_process: type[ServeProcess],
) -> None:
    """A unary computation runs on a thread that cannot be interrupted; Python joined it at
    exit, so a server past its grace stayed alive (45 s and more, at full CPU) until a
    computation nobody waited for was done."""
    server = serve_process("--grace-s", "1")
    gray = m_pb.VideoFormat(pixel_format=m_pb.PIXEL_FORMAT_GRAY8, width=2, height=2, frame_rate=1000)
    slow = fs_pb.FingerprintRequest(  # 1M tiny frames: about 20 s of server CPU
        media=m_pb.MediaSource(data=bytes(4 * 1_000_000), video_format=gray), modality=m_pb.MODALITY_VIDEO
    )
    with grpc.insecure_channel(server.address) as channel, pytest.raises(grpc.RpcError) as info:
        fs_grpc.FingerprintServiceStub(channel).Fingerprint(slow, timeout=1.5)
    assert info.value.code() == grpc.StatusCode.DEADLINE_EXCEEDED
    code, took = server.sigterm(timeout_s=15)
    assert code == 0
    assert took < 5, f"exited {took:.1f} s after SIGTERM"
    assert any("still running" in line for line in server.log), "".join(server.log)


def test_bad_flag_exits_2(serve_process: type[ServeProcess]) -> None:
    del serve_process
    result = subprocess.run(
        [sys.executable, "-m", "streamprint", "serve", "--port", "0"],
        capture_output=True,
        text=True,
        timeout=60,
        env={**os.environ, "STREAMPRINT_MAX_STREAMS": "lots"},
    )
    assert result.returncode == 2
    assert "STREAMPRINT_MAX_STREAMS" in result.stderr
