"""The asyncio client (grpc.aio): the same operations as :class:`StreamprintClient`."""

from __future__ import annotations

import asyncio
import contextlib
import os
from collections.abc import (
    AsyncIterable,
    AsyncIterator,
    Callable,
    Iterable,
    Mapping,
    Sequence,
)
from types import TracebackType
from typing import Any

import grpc
import grpc.aio

from streamprint_client import _calls, _common
from streamprint_client._generated import fingerprint_service_pb2 as fs_pb
from streamprint_client.client import T
from streamprint_client.media import chunk_size, probe
from streamprint_client.types import (
    AudioFormat,
    BatchItem,
    CacheStats,
    FingerprintResult,
    ServerInfo,
    StreamUpdate,
    ValidationReport,
    ValidationResult,
)
from streamprint_client.video_media import Timeline, detect_video, timed_chunks, timeline


class AsyncUpdateStream:
    """Async iterator over a stream's updates; :meth:`cancel` (or :meth:`aclose`) ends the
    call early.

    Leaving the loop early does not end the call by itself (grpc.aio keeps an unfinished
    call alive, uploading): use ``async with client.stream_file(path) as updates: ...`` or
    call :meth:`aclose`. A stream object that is garbage-collected unfinished cancels its call.
    """

    def __init__(self, call: Any) -> None:
        self._call = call
        self._responses: AsyncIterator[fs_pb.StreamFingerprintResponse] = call.__aiter__()
        self.session_id = ""

    def __aiter__(self) -> AsyncUpdateStream:
        return self

    async def __anext__(self) -> StreamUpdate:
        try:
            response = await self._responses.__anext__()
        except grpc.aio.AioRpcError as exc:
            raise _common.stream_error(exc) from None
        update = StreamUpdate.from_proto(response)
        self.session_id = update.session_id
        return update

    def cancel(self) -> None:
        """Cancel the call (the server cleans the session up)."""
        self._call.cancel()

    async def aclose(self) -> None:
        """End the call if it is still running (a no-op after its final update)."""
        if not self._call.done():
            self._call.cancel()

    async def __aenter__(self) -> AsyncUpdateStream:
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.aclose()

    def __del__(self) -> None:
        call = getattr(self, "_call", None)
        if call is not None and not call.done():
            with contextlib.suppress(Exception):  # its event loop is already closed, ...
                call.cancel()

    async def trailing_metadata(self) -> dict[str, str]:
        """Trailing metadata once the call has ended."""
        metadata = await self._call.trailing_metadata()
        return {k: v for k, v in (metadata or ()) if isinstance(v, str)}


async def _paced_by_timeline(
    data: bytes,
    line: Timeline,
    chunk_ms: int,
    realtime: bool,
    on_chunk: Callable[[int], None] | None,
) -> AsyncIterator[bytes]:
    """Video chunks cut by the container timeline; with ``realtime`` paced by its timestamps."""
    loop = asyncio.get_running_loop()
    start = loop.time()
    offset = 0
    for chunk in timed_chunks(data, line, chunk_ms):
        if realtime:
            delay = start + line.time_at(offset) - loop.time()
            if delay > 0:
                await asyncio.sleep(delay)
        yield chunk
        offset += len(chunk)
        if on_chunk is not None:
            on_chunk(offset)


async def _paced(
    data: bytes,
    chunk_bytes: int,
    s_per_chunk: float | None,
    on_chunk: Callable[[int], None] | None,
) -> AsyncIterator[bytes]:
    loop = asyncio.get_running_loop()
    start = loop.time()
    sent = 0
    for k, offset in enumerate(range(0, len(data), chunk_bytes)):
        if s_per_chunk is not None:
            delay = start + k * s_per_chunk - loop.time()
            if delay > 0:
                await asyncio.sleep(delay)
        chunk = data[offset : offset + chunk_bytes]
        yield chunk
        sent += len(chunk)
        if on_chunk is not None:
            on_chunk(sent)


class AsyncStreamprintClient(_calls.ClientCore):
    """Asyncio client. Use ``async with``, or await :meth:`close`."""

    def _open_channel(self, settings: _calls.ChannelSettings) -> Any:
        if settings.credentials is not None:
            return grpc.aio.secure_channel(self.target, settings.credentials, options=settings.options)
        return grpc.aio.insecure_channel(self.target, options=settings.options)

    async def __aenter__(self) -> AsyncStreamprintClient:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.close()

    async def close(self) -> None:
        """Close the channel."""
        await self._channel.close()

    async def wait_ready(self, timeout_s: float = 10.0) -> None:
        """Wait until the channel is connected."""
        await asyncio.wait_for(self._channel.channel_ready(), timeout=timeout_s)

    async def _call(self, call: _calls.UnaryCall[T], timeout_s: float | None) -> T:
        """Run a unary call; UNAVAILABLE is retried with backoff within the deadline."""
        method = getattr(self._stubs[call.service], call.method)
        clock = _calls.RetryClock(timeout_s if timeout_s is not None else self.timeout_s)
        while True:
            try:
                response = await method(
                    call.request, timeout=clock.remaining_s(), metadata=self._metadata
                )
            except grpc.aio.AioRpcError as exc:
                await asyncio.sleep(clock.delay_after(exc, connected=self._connected))
                continue
            self._connected = True
            return call.parse(response)

    # ------------------------------------------------------------------ streaming

    def stream(
        self,
        chunks: Iterable[bytes] | AsyncIterable[bytes],
        *,
        fmt: AudioFormat | None = None,
        update_interval_s: float = 0.0,
        dimensions: Sequence[str] = (),
        client_stream_id: str = "",
        timeout_s: float | None = None,
        modality: str = "audio",
    ) -> AsyncUpdateStream:
        """Stream ``chunks`` (sync or async iterable) and iterate the updates asynchronously.

        ``modality`` ``"video"`` streams a video container.
        """

        async def requests() -> AsyncIterator[fs_pb.StreamFingerprintRequest]:
            async def chunk_source() -> AsyncIterator[bytes]:
                if isinstance(chunks, AsyncIterable):
                    async for c in chunks:
                        yield c
                else:
                    for c in chunks:
                        yield c

            config, *_ = _common.stream_requests(
                (),
                fmt=fmt,
                update_interval_s=update_interval_s,
                dimensions=dimensions,
                client_stream_id=client_stream_id,
                modality=modality,
            )
            yield config
            seq = 0
            async for data in chunk_source():
                yield fs_pb.StreamFingerprintRequest(chunk=fs_pb.MediaChunk(data=data, seq=seq))
                seq += 1

        return AsyncUpdateStream(
            self._stubs["fingerprint"].StreamFingerprint(requests(), timeout=timeout_s, metadata=self._metadata)
        )

    def stream_file(
        self,
        path: str | os.PathLike[str],
        *,
        chunk_ms: int = 100,
        realtime: bool = False,
        on_progress: Callable[[int, int], None] | None = None,
        modality: str | None = None,
        **kwargs: Any,
    ) -> AsyncUpdateStream:
        """Stream a file's encoded bytes in chunks of about ``chunk_ms`` ms of media.

        ``modality`` ``None`` detects video containers; video is cut and paced by the
        container's timestamps.
        """
        data = _common.read_file(path)
        total = len(data)
        kind = detect_video(data)
        if modality == "video" or (modality is None and kind is not None):
            line = timeline(data, kind)
            video_chunks = _paced_by_timeline(
                data,
                line,
                chunk_ms,
                realtime,
                (lambda sent: on_progress(sent, total)) if on_progress else None,
            )
            return self.stream(video_chunks, modality="video", **kwargs)
        chunks = _paced(
            data,
            chunk_size(probe(data), chunk_ms),
            chunk_ms / 1000.0 if realtime else None,
            (lambda sent: on_progress(sent, total)) if on_progress else None,
        )
        return self.stream(chunks, **kwargs)

    # ------------------------------------------------------------------ unary

    async def fingerprint(
        self,
        data: bytes | None = None,
        *,
        server_path: str | None = None,
        fmt: AudioFormat | None = None,
        dimensions: Sequence[str] = (),
        timeout_s: float | None = None,
        modality: str = "audio",
    ) -> FingerprintResult:
        """Fingerprint whole media (bytes, or a path on the server); ``modality`` audio or video."""
        call = _calls.fingerprint_call(
            data, server_path=server_path, fmt=fmt, dimensions=dimensions, modality=modality
        )
        return await self._call(call, timeout_s)

    async def fingerprint_file(
        self, path: str | os.PathLike[str], *, modality: str | None = None, **kwargs: Any
    ) -> FingerprintResult:
        """Fingerprint a local file (its bytes are sent); ``modality`` ``None`` detects video."""
        data = _common.read_file(path)
        return await self.fingerprint(data, modality=_calls.file_modality(data, modality), **kwargs)

    async def batch(
        self,
        media: Sequence[bytes],
        *,
        dimensions: Sequence[str] = (),
        timeout_s: float | None = None,
    ) -> list[BatchItem]:
        """Fingerprint many media items; each item has a result or an error."""
        return await self._call(_calls.batch_call(media, dimensions), timeout_s)

    async def validate(
        self,
        items: Sequence[fs_pb.ValidationItem],
        *,
        similarity_threshold: float | None = None,
        timeout_s: float | None = None,
    ) -> list[ValidationResult]:
        """Validate items built with :func:`streamprint_client.validation_item`."""
        return await self._call(_calls.validate_call(items, similarity_threshold), timeout_s)

    async def validate_session(
        self,
        session_id: str,
        candidate: Mapping[str, float] | None = None,
        *,
        similarity_threshold: float | None = None,
    ) -> ValidationReport:
        """Validate a finished session (default candidate: its final streamed fingerprint)."""
        call = _calls.validate_session_call(session_id, candidate, similarity_threshold)
        return await self._call(call, None)

    async def server_info(self, *, timeout_s: float | None = None) -> ServerInfo:
        """Versions, dimension registry, models, limits."""
        return await self._call(_calls.server_info_call(), timeout_s)

    async def cache_stats(self, *, timeout_s: float | None = None) -> dict[str, CacheStats]:
        """``{"fingerprints": ..., "sessions": ...}``."""
        return await self._call(_calls.cache_stats_call(), timeout_s)

    async def clear_cache(
        self, *, include_sessions: bool = False, timeout_s: float | None = None
    ) -> dict[str, int]:
        """Empty the server's cache; ``{"fingerprints_removed": n, "sessions_removed": m}``."""
        return await self._call(_calls.clear_cache_call(include_sessions), timeout_s)
