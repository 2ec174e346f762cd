"""RPC errors with their google.rpc rich details, decoded without googleapis-common-protos.

The server sends a serialized ``google.rpc.Status`` in the ``grpc-status-details-bin``
trailer (and per batch item as ``ItemStatus``, which has the same wire format). The
descriptors of ``google/rpc/status.proto`` and ``error_details.proto`` ship with this package
(:mod:`streamprint_client._generated.google_rpc_descriptors`) and are loaded into a
*private* descriptor pool, so they never clash with googleapis-common-protos if that is
installed too.
"""

from __future__ import annotations

import functools
import json
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

import grpc
from google.protobuf import any_pb2, descriptor_pool, duration_pb2, json_format, message_factory
from google.protobuf.message import DecodeError, Message

from streamprint_client._generated import google_rpc_descriptors

DETAILS_KEY = "grpc-status-details-bin"
_TYPE_PREFIX = "type.googleapis.com/"


@functools.cache
def _pool() -> descriptor_pool.DescriptorPool:
    pool = descriptor_pool.DescriptorPool()
    pool.AddSerializedFile(any_pb2.DESCRIPTOR.serialized_pb)
    pool.AddSerializedFile(duration_pb2.DESCRIPTOR.serialized_pb)
    pool.AddSerializedFile(google_rpc_descriptors.STATUS_PROTO)
    pool.AddSerializedFile(google_rpc_descriptors.ERROR_DETAILS_PROTO)
    return pool


def _message_class(full_name: str) -> type[Message] | None:
    try:
        descriptor = _pool().FindMessageTypeByName(full_name)
    except KeyError:
        return None
    cls: type[Message] = message_factory.GetMessageClass(descriptor)
    return cls


@dataclass(frozen=True)
class FieldViolation:
    """One bad request field (google.rpc.BadRequest.FieldViolation)."""

    field: str
    description: str


@dataclass(frozen=True)
class StatusDetail:
    """One decoded rich detail: its type (e.g. ``"google.rpc.BadRequest"``) and content."""

    type: str
    content: dict[str, Any]


def _detail(type_url: str, value: bytes) -> StatusDetail:
    full_name = type_url.removeprefix(_TYPE_PREFIX).rsplit("/", 1)[-1]
    cls = _message_class(full_name)
    if cls is None:
        return StatusDetail(full_name, {"undecoded_bytes": len(value)})
    msg = cls()
    try:
        msg.ParseFromString(value)
    except DecodeError:
        return StatusDetail(full_name, {"undecodable_bytes": len(value)})
    if full_name == "google.rpc.RetryInfo":
        delay = msg.retry_delay  # type: ignore[attr-defined]
        return StatusDetail(full_name, {"retry_delay_s": delay.seconds + delay.nanos / 1e9})
    content: dict[str, Any] = json_format.MessageToDict(msg, preserving_proto_field_name=True)
    return StatusDetail(full_name, content)


def decode_details(pairs: Iterable[tuple[str, bytes]]) -> list[StatusDetail]:
    """Decode ``(type_url, value)`` pairs of google.protobuf.Any details."""
    return [_detail(url, value) for url, value in pairs]


def _status_from_bytes(raw: bytes) -> tuple[int, str, list[StatusDetail]] | None:
    cls = _message_class("google.rpc.Status")
    if cls is None:  # pragma: no cover - descriptors ship with the package
        return None
    status = cls()
    try:
        status.ParseFromString(raw)
    except DecodeError:
        return None
    pairs = [(d.type_url, d.value) for d in status.details]  # type: ignore[attr-defined]
    return status.code, status.message, decode_details(pairs)  # type: ignore[attr-defined]


_CODE_BY_VALUE = {c.value[0]: c for c in grpc.StatusCode}


class StreamprintRpcError(Exception):
    """A failed call (or batch item): status code, message and decoded rich details."""

    def __init__(
        self, code: grpc.StatusCode, message: str, details: Sequence[StatusDetail] = ()
    ) -> None:
        super().__init__(f"{code.name}: {message}")
        self.code = code
        self.message = message
        self.details: list[StatusDetail] = list(details)

    @property
    def code_name(self) -> str:
        """The status code's name, e.g. ``"INVALID_ARGUMENT"``."""
        return self.code.name

    @property
    def field_violations(self) -> list[FieldViolation]:
        """BadRequest field violations, if any."""
        return [
            FieldViolation(v.get("field", ""), v.get("description", ""))
            for d in self.details
            if d.type == "google.rpc.BadRequest"
            for v in d.content.get("field_violations", [])
        ]

    @property
    def retry_after_s(self) -> float | None:
        """RetryInfo's delay, if the server sent one."""
        for d in self.details:
            if d.type == "google.rpc.RetryInfo":
                return float(d.content["retry_delay_s"])
        return None

    @property
    def reason(self) -> str | None:
        """ErrorInfo's reason (e.g. ``"MEDIA_UNDECODABLE"``), if any."""
        for d in self.details:
            if d.type == "google.rpc.ErrorInfo":
                return str(d.content.get("reason", "")) or None
        return None

    @property
    def error_info_metadata(self) -> dict[str, str]:
        """ErrorInfo's metadata (e.g. ``{"limit": "concurrent_streams"}``)."""
        for d in self.details:
            if d.type == "google.rpc.ErrorInfo":
                return dict(d.content.get("metadata", {}))
        return {}

    @classmethod
    def from_rpc_error(cls, error: grpc.RpcError) -> StreamprintRpcError:
        """Wrap a grpc error (sync or aio), decoding its rich details."""
        call: Any = error  # sync errors are also grpc.Call; aio errors are AioRpcError
        code: grpc.StatusCode = call.code() if hasattr(call, "code") else grpc.StatusCode.UNKNOWN
        message: str = (call.details() if hasattr(call, "details") else "") or ""
        details: list[StatusDetail] = []
        trailing = call.trailing_metadata() if hasattr(call, "trailing_metadata") else None
        pairs: Iterable[tuple[str, str | bytes]] = trailing or ()
        for key, value in pairs:
            if key == DETAILS_KEY and isinstance(value, bytes):
                decoded = _status_from_bytes(value)
                if decoded is not None:
                    details = decoded[2]
        return cls(code, message, details)

    @classmethod
    def from_item_status(
        cls, code: int, message: str, details: Iterable[Any]
    ) -> StreamprintRpcError:
        """Build from a batch item's status (``streamprint.v1.ItemStatus``)."""
        status_code = _CODE_BY_VALUE.get(code, grpc.StatusCode.UNKNOWN)
        return cls(status_code, message, decode_details((d.type_url, d.value) for d in details))

    def to_json_dict(self) -> dict[str, object]:
        """``{"code": "INVALID_ARGUMENT", "message": ..., "details": [{"type": ..., ...}]}``."""
        return {
            "code": self.code_name,
            "message": self.message,
            "details": [{"type": d.type, **d.content} for d in self.details],
        }

    def describe(self) -> str:
        """Multi-line human description: code, message, then each detail."""
        lines = [f"{self.code_name}: {self.message}"]
        for d in self.details:
            if d.type == "google.rpc.BadRequest":
                for v in d.content.get("field_violations", []):
                    lines.append(f"  field {v.get('field', '')}: {v.get('description', '')}")
            elif d.type == "google.rpc.ErrorInfo":
                meta = d.content.get("metadata", {})
                extra = "".join(f", {k}={v}" for k, v in sorted(meta.items()))
                lines.append(
                    f"  reason {d.content.get('reason', '')} ({d.content.get('domain', '')}{extra})"
                )
            elif d.type == "google.rpc.RetryInfo":
                lines.append(f"  retry after {d.content['retry_delay_s']:g} s")
            elif d.type == "google.rpc.ResourceInfo":
                lines.append(
                    f"  resource {d.content.get('resource_type', '')} {d.content.get('resource_name', '')}"
                )
            elif d.type == "google.rpc.QuotaFailure":
                for v in d.content.get("violations", []):
                    lines.append(f"  quota {v.get('subject', '')}: {v.get('description', '')}")
            else:
                lines.append(f"  {d.type}: {json.dumps(d.content, separators=(',', ':'), ensure_ascii=False)}")
        return "\n".join(lines)
