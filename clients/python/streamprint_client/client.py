"""The synchronous client."""

from __future__ import annotations

import os
import time
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from types import TracebackType
from typing import Any

import grpc

from streamprint_client import _common
from streamprint_client._generated import admin_service_pb2 as admin_pb
from streamprint_client._generated import admin_service_pb2_grpc as admin_grpc
from streamprint_client._generated import fingerprint_service_pb2 as fs_pb
from streamprint_client._generated import fingerprint_service_pb2_grpc as fs_grpc
from streamprint_client.errors import StreamprintRpcError
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

DEFAULT_TIMEOUT_S = 120.0


class UpdateStream:
    """Iterator over a stream's updates; :meth:`cancel` ends the call early.

    Errors surface as :class:`~streamprint_client.errors.StreamprintRpcError` while iterating.
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

    def trailing_metadata(self) -> dict[str, str]:
        """Trailing metadata once the call has ended (e.g. ``streamprint-end-reason``)."""
        return {k: v for k, v in (self._call.trailing_metadata() or ()) if isinstance(v, str)}


class StreamprintClient:
    """Blocking client. Use as a context manager, or call :meth:`close`."""

    def __init__(
        self,
        target: str | None = None,
        *,
        timeout_s: float | None = DEFAULT_TIMEOUT_S,
        credentials: grpc.ChannelCredentials | None = None,
        options: Sequence[tuple[str, object]] = (),
        ca: str | os.PathLike[str] | None = None,
        token: str | None = None,
        client_cert: str | os.PathLike[str] | None = None,
        client_key: str | os.PathLike[str] | None = None,
    ) -> None:
        """``ca`` (or ``$STREAMPRINT_CA``): PEM CA bundle, connect with TLS; ``token`` (or
        ``$STREAMPRINT_TOKEN``): sent as ``authorization: Bearer TOKEN`` on every call;
        ``client_cert``/``client_key`` (or ``$STREAMPRINT_CLIENT_CERT``/``_KEY``): mutual TLS.
        ``credentials`` (ready-made channel credentials) beats ``ca`` and the client pair.
        """
        self.target = target or _common.default_server()
        self.timeout_s = timeout_s
        if credentials is None:
            credentials = _common.tls_credentials(
                ca, client_cert=client_cert, client_key=client_key
            )
        self._metadata = _common.auth_metadata(token)
        self._connected = False  # set by the first answered call: then restarts are retried
        opts = _common.channel_options(options)
        self._channel = (
            grpc.secure_channel(self.target, credentials, options=opts)
            if credentials is not None
            else grpc.insecure_channel(self.target, options=opts)
        )
        self._stub = fs_grpc.FingerprintServiceStub(self._channel)  # type: ignore[no-untyped-call]
        self._admin = admin_grpc.AdminServiceStub(self._channel)  # type: ignore[no-untyped-call]

    def __enter__(self) -> StreamprintClient:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    def close(self) -> None:
        """Close the channel."""
        self._channel.close()

    def wait_ready(self, timeout_s: float = 10.0) -> None:
        """Block until the channel is connected (raises ``grpc.FutureTimeoutError``)."""
        grpc.channel_ready_future(self._channel).result(timeout=timeout_s)

    def _unary(self, method: Callable[..., Any], request: Any, timeout_s: float | None) -> Any:
        """Call a unary RPC; UNAVAILABLE is retried with backoff within the deadline."""
        timeout = timeout_s if timeout_s is not None else self.timeout_s
        deadline = None if timeout is None else time.monotonic() + timeout
        attempt = 0
        while True:
            remaining = None if deadline is None else max(0.001, deadline - time.monotonic())
            try:
                response = method(request, timeout=remaining, metadata=self._metadata)
                self._connected = True
                return response
            except grpc.RpcError as exc:
                error = StreamprintRpcError.from_rpc_error(exc)
            delay = _common.retry_delay(error, attempt, deadline, connected=self._connected)
            if delay is None:
                raise error
            attempt += 1
            time.sleep(delay)

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
            self._stub.StreamFingerprint(requests, timeout=timeout_s, metadata=self._metadata)
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
        source = _common.media_source(data, server_path=server_path, fmt=fmt, modality=modality)
        request = _common.fingerprint_request(source, dimensions, modality=modality)
        response: fs_pb.FingerprintResponse = self._unary(
            self._stub.Fingerprint, request, timeout_s
        )
        return FingerprintResult.from_proto(response)

    def fingerprint_file(
        self, path: str | os.PathLike[str], *, modality: str | None = None, **kwargs: Any
    ) -> FingerprintResult:
        """Fingerprint a local file (its bytes are sent); ``modality`` ``None`` detects video."""
        data = _common.read_file(path)
        if modality is None:
            modality = "video" if detect_video(data) else "audio"
        return self.fingerprint(data, modality=modality, **kwargs)

    def batch(
        self,
        media: Sequence[bytes],
        *,
        dimensions: Sequence[str] = (),
        timeout_s: float | None = None,
    ) -> list[BatchItem]:
        """Fingerprint many media items; each item has a result or an error."""
        request = fs_pb.BatchFingerprintRequest(
            items=[_common.fingerprint_request(_common.media_source(d), dimensions) for d in media]
        )
        response: fs_pb.BatchFingerprintResponse = self._unary(
            self._stub.BatchFingerprint, request, timeout_s
        )
        return _common.batch_items(response)

    def validate(
        self,
        items: Sequence[fs_pb.ValidationItem],
        *,
        similarity_threshold: float | None = None,
        timeout_s: float | None = None,
    ) -> list[ValidationResult]:
        """Validate items built with :func:`streamprint_client.validation_item`."""
        request = _common.validate_request(items, similarity_threshold)
        response: fs_pb.ValidateFingerprintsResponse = self._unary(
            self._stub.ValidateFingerprints, request, timeout_s
        )
        return _common.validation_results(response)

    def validate_session(
        self,
        session_id: str,
        candidate: Mapping[str, float] | None = None,
        *,
        similarity_threshold: float | None = None,
    ) -> ValidationReport:
        """Validate a finished session (default candidate: its final streamed fingerprint)."""
        (result,) = self.validate(
            [_common.validation_item(session_id=session_id, candidate=candidate)],
            similarity_threshold=similarity_threshold,
        )
        if result.error is not None:
            raise result.error
        assert result.report is not None
        return result.report

    def server_info(self, *, timeout_s: float | None = None) -> ServerInfo:
        """Versions, dimension registry, models, limits."""
        response: fs_pb.GetServerInfoResponse = self._unary(
            self._stub.GetServerInfo, fs_pb.GetServerInfoRequest(), timeout_s
        )
        return ServerInfo.from_proto(response)

    def cache_stats(self, *, timeout_s: float | None = None) -> dict[str, CacheStats]:
        """``{"fingerprints": ..., "sessions": ...}``."""
        response: admin_pb.GetCacheStatsResponse = self._unary(
            self._admin.GetCacheStats, admin_pb.GetCacheStatsRequest(), timeout_s
        )
        return {
            "fingerprints": CacheStats.from_proto(response.fingerprints),
            "sessions": CacheStats.from_proto(response.sessions),
        }

    def clear_cache(
        self, *, include_sessions: bool = False, timeout_s: float | None = None
    ) -> dict[str, int]:
        """Empty the server's cache; ``{"fingerprints_removed": n, "sessions_removed": m}``."""
        response: admin_pb.ClearCacheResponse = self._unary(
            self._admin.ClearCache,
            admin_pb.ClearCacheRequest(include_sessions=include_sessions),
            timeout_s,
        )
        return {
            "fingerprints_removed": response.fingerprints_removed,
            "sessions_removed": response.sessions_removed,
        }
