"""Faults against real `streamprint serve` processes: killed clients, a client that never reads,
a server killed and restarted. (SIGTERM with live streams: tests/integration/test_grpc_shutdown.)

Every loop is bounded in count and time.
"""

from __future__ import annotations

import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import grpc
import numpy as np
import pytest
from e2e_harness import Server, free_port, tone_wav, wait_for

from streamprint_client import StreamprintClient, StreamprintRpcError
from streamprint_client._common import STREAM_LOST
from streamprint_client._generated import fingerprint_service_pb2 as fs_pb
from streamprint_client._generated import fingerprint_service_pb2_grpc as fs_grpc
from streamprint_client._generated import media_pb2 as m_pb

pytestmark = pytest.mark.slow

CLIENT_SCRIPT = """
import sys
from streamprint_client import StreamprintClient
with StreamprintClient(sys.argv[1]) as client:
    for update in client.stream_file(sys.argv[2], chunk_ms=100, realtime=True):
        print("update", flush=True)
"""


@pytest.fixture(scope="module")
def long_wav(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("e2e") / "long.wav"
    path.write_bytes(tone_wav(120.0))
    return path


def _spawn_clients(address: str, wav: Path, n: int) -> list[subprocess.Popen[str]]:
    procs = [
        subprocess.Popen(
            [sys.executable, "-c", CLIENT_SCRIPT, address, str(wav)],
            stdout=subprocess.PIPE,
            stderr=subprocess.DEVNULL,
            text=True,
        )
        for _ in range(n)
    ]
    for proc in procs:  # each has its first update: its stream is live
        assert proc.stdout is not None
        assert proc.stdout.readline().startswith("update")
    return procs


@pytest.mark.parametrize("workers", [1, 2])
def test_clients_killed_mid_stream_free_their_sessions(
    servers: list[Server], long_wav: Path, workers: int
) -> None:
    server = Server("--workers", str(workers))
    servers.append(server)
    n = 8
    baseline = 0.0
    for cycle in range(4):
        clients = _spawn_clients(server.address, long_wav, n)
        assert wait_for(lambda: server.gauge() == n, 5.0), server.gauge()
        for proc in clients:
            proc.send_signal(signal.SIGKILL)
        for proc in clients:
            proc.wait(10)
        assert wait_for(lambda: server.gauge() == 0, 5.0), f"cycle {cycle}: {server.gauge()}"
        if cycle == 0:  # warm-up cycle: models, pools and allocator arenas are in place
            time.sleep(0.5)
            baseline = server.rss_mb()
    time.sleep(0.5)
    assert server.rss_mb() < baseline + 40.0, (baseline, server.rss_mb())
    assert server.proc.poll() is None


def test_client_that_never_reads_gets_a_clear_status(servers: list[Server]) -> None:
    server = Server("--idle-timeout-s", "1.5")
    servers.append(server)
    rate = 8000
    pcm = (0.3 * np.sin(np.arange(rate * 600) * 0.05) * 32767).astype("<i2").tobytes()
    config = fs_pb.StreamConfig(
        audio_format=m_pb.AudioFormat(
            encoding=m_pb.AUDIO_ENCODING_PCM_S16LE, sample_rate_hz=rate, channels=1
        ),
        update_interval_seconds=0.1,
    )
    step = rate * 2  # 1 s of media per chunk, 600 chunks, ~6,000 updates due

    def messages() -> Iterator[fs_pb.StreamFingerprintRequest]:
        yield fs_pb.StreamFingerprintRequest(config=config)
        for k, i in enumerate(range(0, len(pcm), step)):
            yield fs_pb.StreamFingerprintRequest(
                chunk=fs_pb.MediaChunk(data=pcm[i : i + step], seq=k)
            )

    with StreamprintClient(server.address, timeout_s=30) as client:  # warm the engine up
        for _ in range(3):
            assert list(client.stream([tone_wav(10.0)], update_interval_s=0.1))[-1].final
    time.sleep(0.3)
    before = server.rss_mb()
    channel = grpc.insecure_channel(server.address, options=[("grpc.http2.bdp_probe", 0)])
    call = fs_grpc.FingerprintServiceStub(channel).StreamFingerprint(messages(), timeout=60)
    peak = before
    assert wait_for(lambda: server.gauge() == 1, 5.0)
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline and server.gauge() != 0:
        peak = max(peak, server.rss_mb())
        time.sleep(0.1)
    assert server.gauge() == 0, "the stuck stream was not ended"
    assert peak - before < 100.0, (before, peak)
    with pytest.raises(grpc.RpcError) as info:
        for _ in call:  # now read: what was buffered, then the status
            pass
    assert info.value.code() is grpc.StatusCode.DEADLINE_EXCEEDED
    assert "read no update" in (info.value.details() or "")
    channel.close()


def test_server_killed_and_restarted(servers: list[Server], long_wav: Path) -> None:
    port = free_port()
    first = Server(port=port, metrics=False)
    servers.append(first)
    wav = tone_wav(2.0)
    with StreamprintClient(first.address, timeout_s=30) as client:
        before = client.fingerprint(wav)
        stream = client.stream_file(long_wav, realtime=True)
        next(stream)
        first.kill()  # SIGKILL: no drain, no final update
        with pytest.raises(StreamprintRpcError) as info:
            list(stream)
        assert info.value.code is grpc.StatusCode.UNAVAILABLE
        assert STREAM_LOST in info.value.message

        def restart() -> None:
            time.sleep(1.0)
            servers.append(Server(port=port, metrics=False))

        thread = threading.Thread(target=restart)
        thread.start()
        started = time.monotonic()
        info_after = client.server_info()  # retried with backoff while the server is down
        waited = time.monotonic() - started
        after = client.fingerprint(wav)
        thread.join(30)
    assert info_after.server_version
    assert waited >= 0.5, "the call should have waited for the restart"
    assert after.fingerprint.values == before.fingerprint.values
    assert not after.cached  # a new process: the cache started empty


def test_unary_gives_up_with_unavailable_when_nobody_listens() -> None:
    with StreamprintClient(f"127.0.0.1:{free_port()}", timeout_s=3) as client:
        started = time.monotonic()
        with pytest.raises(StreamprintRpcError) as info:
            client.server_info()
        assert time.monotonic() - started < 6
    assert info.value.code in (grpc.StatusCode.UNAVAILABLE, grpc.StatusCode.DEADLINE_EXCEEDED)


def test_sigterm_with_live_streams_over_tls_and_tokens(
    servers: list[Server], long_wav: Path, tmp_path: Path
) -> None:
    """The integration test covers plaintext; here 8 streams on a TLS + token server."""
    sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "integration"))
    from tls_certs import make_certs

    certs = make_certs(tmp_path / "pki")
    tokens = tmp_path / "tokens"
    tokens.write_text("e2e-user-token user\n")
    server = Server(
        "--grace-s", "5", "--tls-cert", str(certs.server_cert), "--tls-key",
        str(certs.server_key), "--auth-tokens", str(tokens),
    )  # fmt: skip
    servers.append(server)
    finals: list[bool] = []
    errors: list[BaseException] = []
    first = threading.Barrier(9)

    def one() -> None:
        try:
            with StreamprintClient(
                server.address, ca=str(certs.ca), token="e2e-user-token"
            ) as client:
                updates = []
                for update in client.stream_file(long_wav, realtime=True):
                    updates.append(update)
                    if len(updates) == 1:
                        first.wait(20)
                finals.append(updates[-1].final and updates[-1].fingerprint.media_seconds < 60)
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=one, daemon=True) for _ in range(8)]
    for t in threads:
        t.start()
    first.wait(30)
    sent = time.monotonic()
    server.proc.send_signal(signal.SIGTERM)
    code = server.proc.wait(10)
    took = time.monotonic() - sent
    for t in threads:
        t.join(10)
    assert code == 0, "".join(server.log)
    assert took < 10
    assert not errors, errors
    assert finals == [True] * 8
    assert not any("e2e-user-token" in line for line in server.log)
