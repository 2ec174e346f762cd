"""Limits under load: chunk rate, and an active-stream gauge that stays exact under churn."""

from __future__ import annotations

import asyncio
import random
import threading
import urllib.request
from collections.abc import Callable, Iterator
from pathlib import Path

import grpc
import pytest
from grpc_harness import ServerThread, music
from test_grpc_service import _wait_for

from streamprint_client import AsyncStreamprintClient, StreamprintClient, StreamprintRpcError
from streamprint_client._generated import fingerprint_service_pb2 as fs_pb
from streamprint_client._generated import fingerprint_service_pb2_grpc as fs_grpc
from streamprint_client._generated import media_pb2 as m_pb

PCM_CONFIG = fs_pb.StreamConfig(
    audio_format=m_pb.AudioFormat(
        encoding=m_pb.AUDIO_ENCODING_PCM_S16LE, sample_rate_hz=8000, channels=1
    )
)


def _pcm(seconds: float) -> bytes:
    return (music(seconds, rate=8000, channels=1)[:, 0] * 32767).astype("<i2").tobytes()


def _gauge(srv: ServerThread) -> float:
    url = f"http://127.0.0.1:{srv.server.metrics.port}/metrics"
    text = urllib.request.urlopen(url, timeout=5).read().decode()
    (line,) = [ln for ln in text.splitlines() if ln.startswith("streamprint_active_streams ")]
    return float(line.split()[1])


def test_chunk_rate_limit_is_resource_exhausted_with_retry_info(
    make_server: Callable[..., ServerThread],
) -> None:
    srv = make_server(max_chunk_rate=5.0, retry_after_s=0.5)
    pcm = _pcm(4.0)
    chunks = [pcm[i : i + 800] for i in range(0, len(pcm), 800)]  # 80 chunks of 50 ms
    messages = [fs_pb.StreamFingerprintRequest(config=PCM_CONFIG)] + [
        fs_pb.StreamFingerprintRequest(chunk=fs_pb.MediaChunk(data=c, seq=k))
        for k, c in enumerate(chunks)
    ]
    with StreamprintClient(srv.address) as client:
        stub = fs_grpc.FingerprintServiceStub(client._channel)
        with pytest.raises(grpc.RpcError) as info:
            list(stub.StreamFingerprint(iter(messages), timeout=30))
    error = StreamprintRpcError.from_rpc_error(info.value)
    assert error.code is grpc.StatusCode.RESOURCE_EXHAUSTED
    assert error.error_info_metadata["limit"] == "chunk_rate"
    assert error.retry_after_s is not None and error.retry_after_s >= 0.5
    assert _wait_for(lambda: srv.plane.active_streams == 0)
    # a stream within the rate (burst of 2 s = 10 chunks) is served
    with StreamprintClient(srv.address) as client:
        stub = fs_grpc.FingerprintServiceStub(client._channel)
        responses = list(stub.StreamFingerprint(iter(messages[:9]), timeout=30))
    assert responses[-1].fingerprint.final


def _held(address: str, gate: threading.Event) -> tuple[grpc.Channel, object]:
    channel = grpc.insecure_channel(address)

    def requests() -> Iterator[fs_pb.StreamFingerprintRequest]:
        yield fs_pb.StreamFingerprintRequest(config=PCM_CONFIG)
        yield fs_pb.StreamFingerprintRequest(chunk=fs_pb.MediaChunk(data=_pcm(0.5), seq=0))
        gate.wait(30)

    return channel, fs_grpc.FingerprintServiceStub(channel).StreamFingerprint(requests())


def test_gauge_is_exact_as_streams_open_and_close(
    make_server: Callable[..., ServerThread],
) -> None:
    srv = make_server(metrics_port=0, max_streams=12, retry_after_s=1.0)
    gates = [threading.Event() for _ in range(12)]
    held = [_held(srv.address, gate) for gate in gates]
    try:
        assert _wait_for(lambda: _gauge(srv) == 12, 5.0)
        assert srv.plane.active_streams == 12
        # stream 13 is refused and the gauge does not move
        with StreamprintClient(srv.address) as client, pytest.raises(StreamprintRpcError) as info:
            list(client.stream([_pcm(0.2)], timeout_s=10))
        assert info.value.code is grpc.StatusCode.RESOURCE_EXHAUSTED
        assert _gauge(srv) == 12
        # close them four at a time, half by cancel, half by a vanished channel
        for step in range(3):
            for i in range(step * 4, step * 4 + 4):
                channel, call = held[i]
                if i % 2:
                    call.cancel()  # type: ignore[attr-defined]
                else:
                    channel.close()
            expected = 12 - 4 * (step + 1)
            assert _wait_for(lambda e=expected: _gauge(srv) == e, 1.0), (expected, _gauge(srv))
    finally:
        for gate in gates:
            gate.set()
        for channel, _ in held:
            channel.close()
    assert _wait_for(lambda: _gauge(srv) == 0, 1.0)


def test_gauge_returns_to_zero_after_churn(
    make_server: Callable[..., ServerThread], media_dir: Path
) -> None:
    srv = make_server(metrics_port=0, max_streams=24)
    rng = random.Random(7)

    async def one(client: AsyncStreamprintClient, i: int) -> str:
        stream = client.stream_file(media_dir / "short.wav", chunk_ms=50, realtime=i % 3 == 0)
        try:
            async for update in stream:
                if rng.random() < 0.3:
                    stream.cancel()
                    return "cancelled"
                if update.final:
                    return "final"
        except StreamprintRpcError as exc:
            return exc.code_name
        return "ended"

    async def run() -> list[str]:
        async with AsyncStreamprintClient(srv.address) as client:
            results: list[str] = []
            for _ in range(2):
                results += await asyncio.gather(*(one(client, i) for i in range(24)))
            return results

    outcomes = asyncio.run(run())
    assert set(outcomes) <= {"final", "cancelled", "CANCELLED"}, outcomes
    assert _wait_for(lambda: _gauge(srv) == 0, 1.0)
    assert srv.plane.active_streams == 0
    assert srv.plane.live_media_bytes == 0
