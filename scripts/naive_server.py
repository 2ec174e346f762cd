"""A naive streaming server, for comparison only: recomputes from scratch on every chunk.

It speaks the same ``StreamFingerprint`` RPC as ``streamprint serve`` (PCM s16le / f32le
audio only, 13D, one update per ``update_interval_seconds`` of media) and gRPC health, but
keeps every sample of a stream and, on each chunk, runs the batch fingerprint
(:func:`streamprint.engine.session.fingerprint_buffer`) over all the media so far in a
thread pool; an update is sent when the media crosses an interval boundary. The cost of a
chunk grows with the stream's length, which is what the incremental design avoids.
``scripts/bench_streams.py --naive`` starts it.

Usage::

    python scripts/naive_server.py --port 50061 [--host 127.0.0.1] [--workers 0]
"""

from __future__ import annotations

import argparse
import asyncio
import os
import signal
import sys
import uuid
from collections.abc import AsyncIterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import replace
from functools import partial
from pathlib import Path
from typing import Any

import numpy as np

REPO = Path(__file__).resolve().parents[1]
if str(REPO / "server") not in sys.path:
    sys.path.insert(0, str(REPO / "server"))

import grpc  # noqa: E402
import grpc.aio  # noqa: E402
from grpc_health.v1 import health, health_pb2, health_pb2_grpc  # noqa: E402

from streamprint.api import convert  # noqa: E402
from streamprint.api._generated import fingerprint_service_pb2 as fs_pb  # noqa: E402
from streamprint.api._generated import fingerprint_service_pb2_grpc as fs_grpc  # noqa: E402
from streamprint.api._generated import media_pb2 as m_pb  # noqa: E402
from streamprint.engine import dims  # noqa: E402
from streamprint.engine.fingerprint import AudioBuffer, Fingerprint  # noqa: E402
from streamprint.engine.session import fingerprint_buffer  # noqa: E402

_DTYPES = {m_pb.AUDIO_ENCODING_PCM_S16LE: ("<i2", 32768.0), m_pb.AUDIO_ENCODING_PCM_F32LE: ("<f4", 1.0)}


class NaiveStream:
    """All samples of one stream; :meth:`recompute` fingerprints them from the start."""

    def __init__(self, config: fs_pb.StreamConfig) -> None:
        fmt = config.audio_format
        if fmt.encoding not in _DTYPES or not fmt.sample_rate_hz or not fmt.channels:
            raise ValueError("the naive server takes PCM s16le/f32le with rate and channels")
        self.dtype, self.scale = _DTYPES[fmt.encoding]
        self.rate = int(fmt.sample_rate_hz)
        self.channels = int(fmt.channels)
        self.interval = config.update_interval_seconds or 1.0
        self.dimensions = tuple(config.dimensions) or dims.AUDIO_13D
        self.parts: list[np.ndarray] = []
        self.frames = 0
        self.revision = 0
        self.next_due = self.interval
        self._tail = b""

    def add(self, data: bytes) -> None:
        data = self._tail + data
        width = np.dtype(self.dtype).itemsize * self.channels
        cut = len(data) - len(data) % width
        self._tail = data[cut:]
        samples = np.frombuffer(data[:cut], self.dtype).reshape(-1, self.channels)
        self.parts.append(samples.astype(np.float32) / self.scale)
        self.frames += samples.shape[0]

    @property
    def media_seconds(self) -> float:
        return self.frames / self.rate

    def recompute(self, *, final: bool) -> Fingerprint:
        """The batch fingerprint of everything so far (the naive part: from scratch)."""
        samples = np.concatenate(self.parts) if self.parts else np.zeros((1, self.channels), np.float32)
        fp = fingerprint_buffer(AudioBuffer(samples, self.rate), self.dimensions)
        self.revision += 1
        return replace(fp, revision=self.revision, media_seconds=self.media_seconds, final=final)


class NaiveServicer(fs_grpc.FingerprintServiceServicer):
    """Only StreamFingerprint; every chunk triggers a full recompute in the thread pool."""

    def __init__(self, pool: ThreadPoolExecutor) -> None:
        self.pool = pool

    async def StreamFingerprint(
        self,
        request_iterator: AsyncIterator[fs_pb.StreamFingerprintRequest],
        context: grpc.aio.ServicerContext[Any, Any],
    ) -> AsyncIterator[fs_pb.StreamFingerprintResponse]:
        loop = asyncio.get_running_loop()
        session_id = uuid.uuid4().hex
        stream: NaiveStream | None = None
        async for request in request_iterator:
            if stream is None:
                if request.WhichOneof("payload") != "config":
                    await context.abort(grpc.StatusCode.INVALID_ARGUMENT, "config first")
                try:
                    stream = NaiveStream(request.config)
                except ValueError as exc:
                    await context.abort(grpc.StatusCode.INVALID_ARGUMENT, str(exc))
                client_id = request.config.client_stream_id
                continue
            stream.add(request.chunk.data)
            fp = await loop.run_in_executor(self.pool, partial(stream.recompute, final=False))
            if stream.media_seconds + 1e-9 >= stream.next_due:
                while stream.next_due <= stream.media_seconds + 1e-9:
                    stream.next_due += stream.interval
                yield convert.stream_response(session_id, client_id, fp)
        if stream is not None:
            final = await loop.run_in_executor(self.pool, partial(stream.recompute, final=True))
            yield convert.stream_response(session_id, client_id, final)


async def serve(host: str, port: int, workers: int) -> None:
    pool = ThreadPoolExecutor(max_workers=workers or os.cpu_count() or 1)
    server = grpc.aio.server(
        options=[("grpc.max_receive_message_length", 64 << 20), ("grpc.max_send_message_length", 64 << 20)]
    )
    fs_grpc.add_FingerprintServiceServicer_to_server(  # type: ignore[no-untyped-call]
        NaiveServicer(pool), server
    )
    health_servicer = health.aio.HealthServicer()
    await health_servicer.set("", health_pb2.HealthCheckResponse.SERVING)
    health_pb2_grpc.add_HealthServicer_to_server(health_servicer, server)
    server.add_insecure_port(f"{host}:{port}")
    await server.start()
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    await stop.wait()
    await server.stop(grace=2.0)
    pool.shutdown(wait=False, cancel_futures=True)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=50061)
    parser.add_argument("--workers", type=int, default=0, help="engine threads (0: one per CPU)")
    args = parser.parse_args()
    asyncio.run(serve(args.host, args.port, args.workers))
    return 0


if __name__ == "__main__":
    sys.exit(main())
