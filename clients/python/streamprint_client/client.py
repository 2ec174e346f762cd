"""The synchronous client."""

from __future__ import annotations

import contextlib
import os
import time
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from types import TracebackType
from typing import Any, Self, TypeVar

import grpc

from streamprint_client import _calls, _common
from streamprint_client._generated import fingerprint_service_pb2 as fs_pb
from streamprint_client.media import chunk_size, iter_chunks, probe
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
from streamprint_client.video_media import detect_video, timed_chunks, timeline

DEFAULT_TIMEOUT_S = _calls.DEFAULT_TIMEOUT_S
T = TypeVar("T")


class _ClosedOnExit:
    """``with x:`` calls ``x.close()`` at the end of the block."""

    def close(self) -> None:
        raise NotImplementedError

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()


class UpdateStream(_ClosedOnExit):
    """Iterator over a stream's updates; :meth:`cancel` (or :meth:`close`) ends the call early.

    Errors surface as :class:`~streamprint_client.errors.StreamprintRpcError` while iterating.
    Leaving the loop early does not end the call while the stream object is referenced (the
    upload goes on and the server keeps its stream slot): use it as a context manager
    (``with client.stream_file(path) as updates: ...``) or call :meth:`close`. A stream that
    is garbage-collected unfinished is cancelled.
    """

    def __init__(self, call: Any) -> None:
        self._call = call
        self.session_id = ""

    def __iter__(self) -> Iterator[StreamUpdate]:
        return self

    def __next__(self) -> StreamUpdate:
        try:
            response = next(self._call)
        except grpc.RpcError as exc:
            raise _common.stream_error(exc) from None
        update = StreamUpdate.from_proto(response)
        self.session_id = update.session_id
        return update

    def cancel(self) -> None:
        """Cancel the call (the server cleans the session up)."""
        self._call.cancel()

    def close(self) -> None:
        """End the call if it is still running (a no-op after its final update)."""
        if not self._call.done():
            self._call.cancel()

    def __del__(self) -> None:
        call = getattr(self, "_call", None)
        with contextlib.suppress(Exception):  # e.g. at interpreter exit, grpc half torn down
            if call is not None and not call.done():
                call.cancel()

    def trailing_metadata(self) -> dict[str, str]:
        """Trailing metadata once the call has ended (e.g. ``streamprint-end-reason``)."""
        return {k: v for k, v in (self._call.trailing_metadata() or ()) if isinstance(v, str)}


class StreamprintClient(_ClosedOnExit, _calls.ClientCore):
    """Blocking client. Use as a context manager, or call :meth:`close`."""

    def _open_channel(self, settings: _calls.ChannelSettings) -> Any:
        if settings.credentials is not None:
            return grpc.secure_channel(self.target, settings.credentials, options=settings.options)
        return grpc.insecure_channel(self.target, options=settings.options)

    def close(self) -> None:
        """Close the channel."""
        self._channel.close()

    def wait_ready(self, timeout_s: float = 10.0) -> None:
        """Block until the channel is connected (raises ``grpc.FutureTimeoutError``)."""
        grpc.channel_ready_future(self._channel).result(timeout=timeout_s)

    def _call(self, call: _calls.UnaryCall[T], timeout_s: float | None) -> T:
        """Run a unary call; UNAVAILABLE is retried with backoff within the deadline."""
        method = getattr(self._stubs[call.service], call.method)
        clock = _calls.RetryClock(timeout_s if timeout_s is not None else self.timeout_s)
        while True:
            try:
                response = method(call.request, timeout=clock.remaining_s(), metadata=self._metadata)
            except grpc.RpcError as exc:
                time.sleep(clock.delay_after(exc, connected=self._connected))
                continue
            self._connected = True
            return call.parse(response)

    # ------------------------------------------------------------------ streaming

    def stream(
        self,
        chunks: Iterable[bytes],
        *,
        fmt: AudioFormat | None = None,
        update_interval_s: float = 0.0,
        dimensions: Sequence[str] = (),
        client_stream_id: str = "",
        timeout_s: float | None = None,
        modality: str = "audio",
    ) -> UpdateStream:
        """Stream ``chunks`` (encoded container bytes by default) and iterate the updates.

        ``update_interval_s`` 0 means the server's default (1 s of media). ``modality``
        ``"video"`` streams a video container (MPEG-TS, fragmented MP4, WebM, MKV). Streams
        are never retried.
        """
        requests = _common.stream_requests(
            chunks,
            fmt=fmt,
            update_interval_s=update_interval_s,
            dimensions=dimensions,
            client_stream_id=client_stream_id,
            modality=modality,
        )
        return UpdateStream(
            self._stubs["fingerprint"].StreamFingerprint(requests, timeout=timeout_s, metadata=self._metadata)
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
    ) -> UpdateStream:
        """Stream a file's encoded bytes in chunks of about ``chunk_ms`` ms of media.

        ``realtime`` paces the chunks at media time (video: by the container's timestamps);
        ``on_progress(bytes_sent, total)`` is called after every chunk; ``modality`` ``None``
        detects video containers from the bytes. Other keywords go to :meth:`stream`.
        """
        data = _common.read_file(path)
        total = len(data)
        kind = detect_video(data)
        if modality == "video" or (modality is None and kind is not None):
            video_chunks = timed_chunks(
                data,
                timeline(data, kind),
                chunk_ms,
                realtime=realtime,
                on_chunk=(lambda sent: on_progress(sent, total)) if on_progress else None,
            )
            return self.stream(video_chunks, modality="video", **kwargs)
        media = probe(data)
        chunks = iter_chunks(
            data,
            chunk_size(media, chunk_ms),
            realtime_s_per_chunk=chunk_ms / 1000.0 if realtime else None,
            on_chunk=(lambda sent: on_progress(sent, total)) if on_progress else None,
        )
        return self.stream(chunks, **kwargs)

    # ------------------------------------------------------------------ unary

    def fingerprint(
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
        return self._call(call, timeout_s)

    def fingerprint_file(
        self, path: str | os.PathLike[str], *, modality: str | None = None, **kwargs: Any
    ) -> FingerprintResult:
        """Fingerprint a local file (its bytes are sent); ``modality`` ``None`` detects video."""
        data = _common.read_file(path)
        return self.fingerprint(data, modality=_calls.file_modality(data, modality), **kwargs)

    def batch(
        self,
        media: Sequence[bytes],
        *,
        dimensions: Sequence[str] = (),
        timeout_s: float | None = None,
    ) -> list[BatchItem]:
        """Fingerprint many media items; each item has a result or an error."""
        return self._call(_calls.batch_call(media, dimensions), timeout_s)

    def validate(
        self,
        items: Sequence[fs_pb.ValidationItem],
        *,
        similarity_threshold: float | None = None,
        timeout_s: float | None = None,
    ) -> list[ValidationResult]:
        """Validate items built with :func:`streamprint_client.validation_item`."""
        return self._call(_calls.validate_call(items, similarity_threshold), timeout_s)

    def validate_session(
        self,
        session_id: str,
        candidate: Mapping[str, float] | None = None,
        *,
        similarity_threshold: float | None = None,
    ) -> ValidationReport:
        """Validate a finished session (default candidate: its final streamed fingerprint)."""
        call = _calls.validate_session_call(session_id, candidate, similarity_threshold)
        return self._call(call, None)

    def server_info(self, *, timeout_s: float | None = None) -> ServerInfo:
        """Versions, dimension registry, models, limits."""
        return self._call(_calls.server_info_call(), timeout_s)

    def cache_stats(self, *, timeout_s: float | None = None) -> dict[str, CacheStats]:
        """``{"fingerprints": ..., "sessions": ...}``."""
        return self._call(_calls.cache_stats_call(), timeout_s)

    def clear_cache(
        self, *, include_sessions: bool = False, timeout_s: float | None = None
    ) -> dict[str, int]:
        """Empty the server's cache; ``{"fingerprints_removed": n, "sessions_removed": m}``."""
        return self._call(_calls.clear_cache_call(include_sessions), timeout_s)
