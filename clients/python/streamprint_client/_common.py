"""What the sync and asyncio clients share: channel options, request builders, converters."""

from __future__ import annotations

import os
import time
from collections.abc import Iterable, Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any

import grpc

from streamprint_client._generated import fingerprint_service_pb2 as fs_pb
from streamprint_client._generated import media_pb2 as m_pb
from streamprint_client.errors import StreamprintRpcError
from streamprint_client.types import (
    AudioFormat,
    BatchItem,
    FingerprintResult,
    ValidationReport,
    ValidationResult,
)

DEFAULT_SERVER = "127.0.0.1:50051"
SERVER_ENV = "STREAMPRINT_SERVER"
MAX_MESSAGE_BYTES = 256 * 1024 * 1024

CA_ENV = "STREAMPRINT_CA"
TOKEN_ENV = "STREAMPRINT_TOKEN"
CLIENT_CERT_ENV = "STREAMPRINT_CLIENT_CERT"
CLIENT_KEY_ENV = "STREAMPRINT_CLIENT_KEY"


def tls_credentials(
    ca: str | os.PathLike[str] | None = None,
    *,
    client_cert: str | os.PathLike[str] | None = None,
    client_key: str | os.PathLike[str] | None = None,
) -> grpc.ChannelCredentials | None:
    """TLS channel credentials from PEM files, or ``None`` for a plaintext channel.

    ``ca`` (else ``$STREAMPRINT_CA``) is the CA bundle the server's certificate must chain
    to; ``client_cert``/``client_key`` (else ``$STREAMPRINT_CLIENT_CERT``/``_KEY``) are this
    client's certificate for mutual TLS. TLS is used when any of them is set.
    """
    ca = ca or os.environ.get(CA_ENV) or None
    client_cert = client_cert or os.environ.get(CLIENT_CERT_ENV) or None
    client_key = client_key or os.environ.get(CLIENT_KEY_ENV) or None
    if ca is None and client_cert is None and client_key is None:
        return None
    if (client_cert is None) != (client_key is None):
        raise ValueError("a client certificate needs its key (and a key its certificate)")
    return grpc.ssl_channel_credentials(
        root_certificates=Path(ca).read_bytes() if ca is not None else None,
        private_key=Path(client_key).read_bytes() if client_key is not None else None,
        certificate_chain=Path(client_cert).read_bytes() if client_cert is not None else None,
    )


def auth_metadata(token: str | None = None) -> tuple[tuple[str, str], ...]:
    """``authorization: Bearer TOKEN`` metadata for ``token`` (else ``$STREAMPRINT_TOKEN``)."""
    token = token or os.environ.get(TOKEN_ENV) or None
    if token is None:
        return ()
    token = token.strip()
    if not token or any(c.isspace() for c in token):
        raise ValueError("a token is one word without spaces")
    return (("authorization", f"Bearer {token}"),)


#: Client-side retries of unary calls on UNAVAILABLE (all unary RPCs are idempotent), on top
#: of grpc's own: the waits between attempts, within the call's deadline. They cover a server
#: restart of a few seconds. Streams are never retried.
UNARY_RETRY_DELAYS_S = (0.25, 0.5, 1.0, 2.0, 4.0, 4.0)
#: The same before the client has ever reached the server: a wrong address or a server that
#: is not running fails within about a second instead of after the whole schedule.
FIRST_CONTACT_RETRY_DELAYS_S = (0.25, 0.5)

#: In grpc's message of a call that never had a connection (refused, TLS mismatch, timeout).
NEVER_CONNECTED = "failed to connect to all addresses"

#: Message of a stream that lost its server (killed, restarted, network gone).
STREAM_LOST = (
    "the connection to the server was lost mid-stream (server stopped, restarted or "
    "unreachable); streams are never retried: start a new stream"
)


def retry_delay(
    error: StreamprintRpcError, attempt: int, deadline: float | None, *, connected: bool = True
) -> float | None:
    """How long to wait before retrying a unary call that failed with ``error`` (``None``: don't).

    Only UNAVAILABLE is retried (the server is down, restarting or draining); a server's
    RetryInfo delay is honoured when longer; never past ``deadline`` (``time.monotonic()``).
    ``connected``: whether this client has had an answer from the server before (else only
    :data:`FIRST_CONTACT_RETRY_DELAYS_S`).
    """
    schedule = UNARY_RETRY_DELAYS_S if connected else FIRST_CONTACT_RETRY_DELAYS_S
    if error.code is not grpc.StatusCode.UNAVAILABLE or attempt >= len(schedule):
        return None
    delay = max(schedule[attempt], error.retry_after_s or 0.0)
    if deadline is not None and time.monotonic() + delay >= deadline:
        return None
    return delay


def stream_error(exc: grpc.RpcError) -> StreamprintRpcError:
    """A stream's error; a lost connection (UNAVAILABLE without server details) says so,
    unless the connection was never made (then grpc's own message says why)."""
    error = StreamprintRpcError.from_rpc_error(exc)
    if error.code is grpc.StatusCode.UNAVAILABLE and not error.details:
        if NEVER_CONNECTED in error.message:
            return StreamprintRpcError(
                error.code, f"cannot reach the server (grpc: {error.message})"
            )
        return StreamprintRpcError(error.code, f"{STREAM_LOST} (grpc: {error.message})")
    return error


def default_server() -> str:
    """``$STREAMPRINT_SERVER`` or ``127.0.0.1:50051``."""
    return os.environ.get(SERVER_ENV) or DEFAULT_SERVER


def channel_options(extra: Sequence[tuple[str, object]] = ()) -> list[tuple[str, object]]:
    """Channel arguments: large messages, keepalive, quick reconnects; ``extra`` (the
    caller's ``options``) override them key by key.

    gRPC's own retries are off: unary calls are retried by :func:`retry_delay`'s schedule,
    which honours the server's RetryInfo and the first-contact rule; a retry policy in the
    service config would run inside it and multiply the attempts.
    """
    options: dict[str, object] = {
        "grpc.max_send_message_length": MAX_MESSAGE_BYTES,
        "grpc.max_receive_message_length": MAX_MESSAGE_BYTES,
        "grpc.enable_retries": 0,
        "grpc.keepalive_time_ms": 60_000,
        # Reconnect soon after a server restart (grpc's default waits from 1 s up to 120 s).
        # Not grpc.min_reconnect_backoff_ms: gRPC takes it as the shortest connect timeout
        # too (default 20 s), and at 250 ms a TLS handshake over a slow link never finished.
        "grpc.initial_reconnect_backoff_ms": 250,
        "grpc.max_reconnect_backoff_ms": 4_000,
    }
    options.update(dict(extra))
    return list(options.items())


def media_source(
    data: bytes | None = None,
    *,
    server_path: str | None = None,
    fmt: AudioFormat | None = None,
    modality: str = "audio",
) -> m_pb.MediaSource:
    """A MediaSource of bytes (default: an encoded container) or of a server-side path.

    Video (``modality="video"``) sends encoded containers only, so no audio format is set.
    """
    audio = None if modality == "video" else (fmt or AudioFormat()).to_proto()
    if server_path is not None:
        return m_pb.MediaSource(server_path=server_path, format=audio)
    return m_pb.MediaSource(data=data or b"", format=audio)


def modality_proto(modality: str) -> Any:
    """``"audio"`` / ``"video"`` as the protobuf enum value."""
    if modality not in ("audio", "video"):
        raise ValueError(f"modality must be 'audio' or 'video', not {modality!r}")
    return m_pb.MODALITY_VIDEO if modality == "video" else m_pb.MODALITY_AUDIO


def stream_requests(
    chunks: Iterable[bytes],
    *,
    fmt: AudioFormat | None,
    update_interval_s: float,
    dimensions: Sequence[str],
    client_stream_id: str,
    modality: str = "audio",
) -> Iterator[fs_pb.StreamFingerprintRequest]:
    """The config message, then one chunk message per chunk (seq 0, 1, ...)."""
    config = fs_pb.StreamConfig(
        modality=modality_proto(modality),
        audio_format=None if modality == "video" else (fmt or AudioFormat()).to_proto(),
        update_interval_seconds=update_interval_s,
        dimensions=list(dimensions),
        client_stream_id=client_stream_id,
    )
    yield fs_pb.StreamFingerprintRequest(config=config)
    for seq, data in enumerate(chunks):
        yield fs_pb.StreamFingerprintRequest(chunk=fs_pb.MediaChunk(data=data, seq=seq))


def fingerprint_request(
    source: m_pb.MediaSource, dimensions: Sequence[str] = (), *, modality: str = "audio"
) -> fs_pb.FingerprintRequest:
    """A FingerprintRequest."""
    return fs_pb.FingerprintRequest(
        media=source, modality=modality_proto(modality), dimensions=list(dimensions)
    )


def read_file(path: str | os.PathLike[str]) -> bytes:
    """A file's bytes (the client never decodes: the server does)."""
    return Path(path).read_bytes()


def batch_items(response: fs_pb.BatchFingerprintResponse) -> list[BatchItem]:
    """BatchFingerprintResponse → items in request order."""
    items = []
    for r in response.results:
        if r.status.code == 0:
            items.append(BatchItem(r.index, result=FingerprintResult.from_proto(r.result)))
        else:
            error = StreamprintRpcError.from_item_status(
                r.status.code, r.status.message, r.status.details
            )
            items.append(BatchItem(r.index, error=error))
    return items


def validation_item(
    *,
    session_id: str | None = None,
    source: m_pb.MediaSource | None = None,
    candidate: Mapping[str, float] | None = None,
) -> fs_pb.ValidationItem:
    """A ValidationItem: a session id or media, and an optional candidate."""
    item = fs_pb.ValidationItem(
        candidate=[m_pb.DimensionValue(name=k, value=v) for k, v in (candidate or {}).items()]
    )
    if session_id is not None:
        item.session_id = session_id
    elif source is not None:
        item.media.CopyFrom(source)
    return item


def validate_request(
    items: Sequence[fs_pb.ValidationItem], similarity_threshold: float | None
) -> fs_pb.ValidateFingerprintsRequest:
    """A ValidateFingerprintsRequest."""
    request = fs_pb.ValidateFingerprintsRequest(items=list(items))
    if similarity_threshold is not None:
        request.similarity_threshold = similarity_threshold
    return request


def validation_results(response: fs_pb.ValidateFingerprintsResponse) -> list[ValidationResult]:
    """ValidateFingerprintsResponse → results in request order."""
    results = []
    for r in response.results:
        if r.status.code == 0:
            results.append(
                ValidationResult(
                    r.index,
                    r.session_id,
                    r.media_sha256,
                    report=ValidationReport.from_proto(r.report),
                )
            )
        else:
            error = StreamprintRpcError.from_item_status(
                r.status.code, r.status.message, r.status.details
            )
            results.append(ValidationResult(r.index, r.session_id, r.media_sha256, error=error))
    return results
