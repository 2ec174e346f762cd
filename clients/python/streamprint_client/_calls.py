"""Transport-free halves of the clients: channel settings, unary calls, the retry clock.

The sync (:mod:`streamprint_client.client`) and asyncio (:mod:`streamprint_client.aio`)
clients differ only in how they wait (blocking vs ``await``); everything else (which RPC,
the request, how the response is read, the retry schedule) is built here once.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Generic, Literal, TypeVar

import grpc

from streamprint_client import _common
from streamprint_client._generated import admin_service_pb2 as admin_pb
from streamprint_client._generated import admin_service_pb2_grpc as admin_grpc
from streamprint_client._generated import fingerprint_service_pb2 as fs_pb
from streamprint_client._generated import fingerprint_service_pb2_grpc as fs_grpc
from streamprint_client.errors import StreamprintRpcError
from streamprint_client.types import (
    AudioFormat,
    BatchItem,
    CacheStats,
    FingerprintResult,
    ServerInfo,
    ValidationReport,
    ValidationResult,
)
from streamprint_client.video_media import detect_video

T = TypeVar("T")

#: Default deadline of a unary call, in seconds (streams have none unless given).
DEFAULT_TIMEOUT_S = 120.0


@dataclass(frozen=True)
class ChannelSettings:
    """What both clients need to open a channel and call it."""

    target: str
    credentials: grpc.ChannelCredentials | None
    options: list[tuple[str, object]]
    metadata: tuple[tuple[str, str], ...]


def channel_settings(
    target: str | None,
    *,
    credentials: grpc.ChannelCredentials | None,
    options: Sequence[tuple[str, object]],
    ca: str | os.PathLike[str] | None,
    token: str | None,
    client_cert: str | os.PathLike[str] | None,
    client_key: str | os.PathLike[str] | None,
) -> ChannelSettings:
    """Resolve the target, TLS credentials and auth metadata (arguments beat environment)."""
    if credentials is None:
        credentials = _common.tls_credentials(ca, client_cert=client_cert, client_key=client_key)
    return ChannelSettings(
        target=target or _common.default_server(),
        credentials=credentials,
        options=_common.channel_options(options),
        metadata=_common.auth_metadata(token),
    )


class ClientCore:
    """Constructor and state both clients share; a subclass opens its kind of channel."""

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
        ``timeout_s``: default deadline of unary calls (``None``: none).
        """
        settings = channel_settings(
            target, credentials=credentials, options=options, ca=ca, token=token,
            client_cert=client_cert, client_key=client_key,
        )
        self.target = settings.target
        self.timeout_s = timeout_s
        self._metadata = settings.metadata
        self._connected = False  # set by the first answered call: then restarts are retried
        self._channel = self._open_channel(settings)
        self._stubs: dict[str, Any] = {
            "fingerprint": fs_grpc.FingerprintServiceStub(self._channel),  # type: ignore[no-untyped-call]
            "admin": admin_grpc.AdminServiceStub(self._channel),  # type: ignore[no-untyped-call]
        }

    def _open_channel(self, settings: ChannelSettings) -> Any:
        """A sync or asyncio channel to ``settings.target``."""
        raise NotImplementedError


@dataclass(frozen=True)
class UnaryCall(Generic[T]):
    """One unary RPC: the service and method to call, the request, and how to read the answer."""

    service: Literal["fingerprint", "admin"]
    method: str
    request: Any
    parse: Callable[[Any], T]


def fingerprint_call(
    data: bytes | None,
    *,
    server_path: str | None,
    fmt: AudioFormat | None,
    dimensions: Sequence[str],
    modality: str,
) -> UnaryCall[FingerprintResult]:
    """Fingerprint of whole media (bytes, or a path on the server)."""
    source = _common.media_source(data, server_path=server_path, fmt=fmt, modality=modality)
    request = _common.fingerprint_request(source, dimensions, modality=modality)
    return UnaryCall("fingerprint", "Fingerprint", request, FingerprintResult.from_proto)


def batch_call(media: Sequence[bytes], dimensions: Sequence[str]) -> UnaryCall[list[BatchItem]]:
    """Fingerprints of many encoded media items."""
    request = fs_pb.BatchFingerprintRequest(
        items=[_common.fingerprint_request(_common.media_source(d), dimensions) for d in media]
    )
    return UnaryCall("fingerprint", "BatchFingerprint", request, _common.batch_items)


def validate_call(
    items: Sequence[fs_pb.ValidationItem], similarity_threshold: float | None
) -> UnaryCall[list[ValidationResult]]:
    """Validation of items built with :func:`_common.validation_item`."""
    request = _common.validate_request(items, similarity_threshold)
    return UnaryCall("fingerprint", "ValidateFingerprints", request, _common.validation_results)


def validate_session_call(
    session_id: str, candidate: Mapping[str, float] | None, similarity_threshold: float | None
) -> UnaryCall[ValidationReport]:
    """Validation of one finished session; its error is raised, its report returned."""
    item = _common.validation_item(session_id=session_id, candidate=candidate)
    request = _common.validate_request([item], similarity_threshold)
    return UnaryCall("fingerprint", "ValidateFingerprints", request, _single_report)


def _single_report(response: fs_pb.ValidateFingerprintsResponse) -> ValidationReport:
    (result,) = _common.validation_results(response)
    if result.error is not None:
        raise result.error
    assert result.report is not None
    return result.report


def server_info_call() -> UnaryCall[ServerInfo]:
    """Versions, dimension registry, models, limits."""
    return UnaryCall(
        "fingerprint", "GetServerInfo", fs_pb.GetServerInfoRequest(), ServerInfo.from_proto
    )


def cache_stats_call() -> UnaryCall[dict[str, CacheStats]]:
    """``{"fingerprints": ..., "sessions": ...}``."""

    def parse(response: admin_pb.GetCacheStatsResponse) -> dict[str, CacheStats]:
        return {
            "fingerprints": CacheStats.from_proto(response.fingerprints),
            "sessions": CacheStats.from_proto(response.sessions),
        }

    return UnaryCall("admin", "GetCacheStats", admin_pb.GetCacheStatsRequest(), parse)


def clear_cache_call(include_sessions: bool) -> UnaryCall[dict[str, int]]:
    """``{"fingerprints_removed": n, "sessions_removed": m}``."""

    def parse(response: admin_pb.ClearCacheResponse) -> dict[str, int]:
        return {
            "fingerprints_removed": response.fingerprints_removed,
            "sessions_removed": response.sessions_removed,
        }

    request = admin_pb.ClearCacheRequest(include_sessions=include_sessions)
    return UnaryCall("admin", "ClearCache", request, parse)


def file_modality(data: bytes, modality: str | None) -> str:
    """``modality`` if given, else ``"video"`` for a video container and ``"audio"`` otherwise."""
    if modality is not None:
        return modality
    return "video" if detect_video(data) else "audio"


class RetryClock:
    """The deadline and attempt count of one unary call that may be retried.

    ``timeout_s`` ``None``: no deadline. :meth:`delay_after` says how long to wait before the
    next attempt, or raises the error when the call must not be retried.
    """

    def __init__(self, timeout_s: float | None) -> None:
        self._deadline = None if timeout_s is None else time.monotonic() + timeout_s
        self._attempt = 0

    def remaining_s(self) -> float | None:
        """Seconds left for the next attempt (at least 1 ms), ``None`` without a deadline."""
        if self._deadline is None:
            return None
        return max(0.001, self._deadline - time.monotonic())

    def delay_after(self, exc: grpc.RpcError, *, connected: bool) -> float:
        """Seconds to wait after the failed attempt ``exc``; raises it as
        :class:`StreamprintRpcError` when it is not retried."""
        error = StreamprintRpcError.from_rpc_error(exc)
        delay = _common.retry_delay(error, self._attempt, self._deadline, connected=connected)
        if delay is None:
            raise error from None
        self._attempt += 1
        return delay
