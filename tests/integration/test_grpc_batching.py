"""Dynamic batching on a real aio server: streams get the same updates and finals with
batching on and off, GetServerInfo says which, and the metrics count shared batches."""

from __future__ import annotations

import asyncio
import urllib.request
from collections.abc import Callable

import numpy as np
import pytest
from grpc_harness import ServerThread, music

from streamprint.engine import dims
from streamprint.runtime import get_backend
from streamprint.runtime.registry import ensure_registered
from streamprint_client import (
    AsyncStreamprintClient,
    AudioFormat,
    Encoding,
    StreamprintClient,
    StreamUpdate,
)

STREAMS = 10
RATE = 16_000


def _pcm(i: int) -> list[bytes]:
    """Stream ``i``'s media (3 s, its own tempo and noise) as 100 ms s16le chunks."""
    samples = music(3.0, rate=RATE, channels=1, bpm=90.0 + 7 * i, seed=10 + i)
    pcm = (samples[:, 0] * 32767).astype("<i2").tobytes()
    step = RATE // 10 * 2
    return [pcm[k : k + step] for k in range(0, len(pcm), step)]


def _stream_all(address: str) -> list[list[StreamUpdate]]:
    async def one(client: AsyncStreamprintClient, i: int) -> list[StreamUpdate]:
        return [
            u
            async for u in client.stream(
                _pcm(i), fmt=AudioFormat(Encoding.PCM_S16LE, RATE, 1), client_stream_id=str(i)
            )
        ]

    async def run() -> list[list[StreamUpdate]]:
        async with AsyncStreamprintClient(address) as client:
            return await asyncio.gather(*(one(client, i) for i in range(STREAMS)))

    return asyncio.run(run())


@pytest.mark.parametrize("backend", ["numpy", "openvino"])
def test_streams_get_the_same_fingerprints_with_batching_on_and_off(
    make_server: Callable[..., ServerThread], backend: str
) -> None:
    if backend != "numpy":
        ensure_registered()
        why = get_backend(backend).unavailable_reason()
        if why is not None:
            pytest.skip(why)
    common = {"backend": backend, "precision": "fp32", "metrics_port": 0}
    on = make_server(batching=True, batch_max_frames=256, batch_max_wait_ms=20.0, **common)
    off = make_server(batching=False, **common)
    with StreamprintClient(on.address) as a, StreamprintClient(off.address) as b:
        assert a.server_info().raw["batching"] == {
            "enabled": True, "max_batch_frames": 256, "max_wait_ms": 20.0
        }
        assert b.server_info().raw.get("batching", {}).get("enabled", False) is False
    batched, unbatched = _stream_all(on.address), _stream_all(off.address)
    batcher = on.plane.batcher
    assert off.plane.batcher is None
    assert batcher is not None and batcher.requests > batcher.batches, "no batch was shared"
    for with_batching, without in zip(batched, unbatched, strict=True):
        assert [u.revision for u in with_batching] == [u.revision for u in without]
        assert with_batching[-1].final and without[-1].final
        for u, v in zip(with_batching, without, strict=True):
            if backend == "openvino":  # row-independent: bit for bit
                assert u.fingerprint.values == v.fingerprint.values
                assert u.fingerprint.confidence == v.fingerprint.confidence
            else:  # numpy's BLAS: last-bit differences of the matmuls (docs/runtime.md)
                for name, value in v.fingerprint.values.items():
                    tol = dims.get(name).tolerance_for(value)
                    assert abs(u.fingerprint.values[name] - value) <= 1e-6 * tol, name
    assert on.server.metrics is not None
    port = on.server.metrics.port
    text = urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=10).read().decode()
    count = next(
        float(line.split()[-1])
        for line in text.splitlines()
        if line.startswith("streamprint_batch_requests_count")
    )
    assert count == batcher.batches
    total = next(
        float(line.split()[-1])
        for line in text.splitlines()
        if line.startswith("streamprint_batch_requests_sum")
    )
    assert total == batcher.requests
    assert np.isfinite(total)
