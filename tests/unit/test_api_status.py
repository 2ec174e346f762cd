"""The error tree → gRPC status mapping (the one place it happens)."""

from __future__ import annotations

import grpc
import pytest
from google.rpc import error_details_pb2

from streamprint.api import status
from streamprint.cache import SessionNotFoundError
from streamprint.errors import (
    FieldViolation,
    InvalidInputError,
    MediaDecodeError,
    ModelError,
    NotFoundError,
    ResourceLimitError,
    SessionStateError,
    StreamprintError,
)


def _details(st: object) -> dict[str, object]:
    out: dict[str, object] = {}
    for detail in st.details:  # type: ignore[attr-defined]
        for cls in (
            error_details_pb2.ErrorInfo,
            error_details_pb2.BadRequest,
            error_details_pb2.RetryInfo,
            error_details_pb2.ResourceInfo,
            error_details_pb2.QuotaFailure,
        ):
            if detail.Is(cls.DESCRIPTOR):
                msg = cls()
                detail.Unpack(msg)
                out[cls.__name__] = msg
    return out


@pytest.mark.parametrize(
    ("error", "code"),
    [
        (InvalidInputError("bad"), grpc.StatusCode.INVALID_ARGUMENT),
        (MediaDecodeError("garbage"), grpc.StatusCode.INVALID_ARGUMENT),
        (
            ResourceLimitError("full", limit="concurrent_streams", retry_after_s=1),
            grpc.StatusCode.RESOURCE_EXHAUSTED,
        ),
        (ResourceLimitError("idle", limit="idle_timeout"), grpc.StatusCode.DEADLINE_EXCEEDED),
        (ResourceLimitError("old", limit="session_duration"), grpc.StatusCode.DEADLINE_EXCEEDED),
        (ResourceLimitError("bye", limit="draining", retry_after_s=1), grpc.StatusCode.UNAVAILABLE),
        (NotFoundError("gone"), grpc.StatusCode.NOT_FOUND),
        (SessionStateError("order"), grpc.StatusCode.FAILED_PRECONDITION),
        (ModelError("sha"), grpc.StatusCode.FAILED_PRECONDITION),
        (StreamprintError("odd"), grpc.StatusCode.INTERNAL),
        (ValueError("bug"), grpc.StatusCode.INTERNAL),
    ],
)
def test_codes(error: BaseException, code: grpc.StatusCode) -> None:
    assert status.grpc_code(error) is code
    assert status.rpc_status(error).code == code.value[0]


def test_every_status_has_error_info_with_reason_and_domain() -> None:
    st = status.rpc_status(MediaDecodeError("garbage"))
    info = _details(st)["ErrorInfo"]
    assert info.reason == "MEDIA_UNDECODABLE" and info.domain == "streamprint.dev"  # type: ignore[attr-defined]


def test_bad_request_lists_every_violation_with_prefix() -> None:
    error = InvalidInputError(
        "two bad fields",
        [FieldViolation("a.b", "too big", "1..2"), FieldViolation("c", "missing")],
    )
    bad = _details(status.rpc_status(error, field_prefix="items[3]."))["BadRequest"]
    fields = [(v.field, v.description) for v in bad.field_violations]  # type: ignore[attr-defined]
    assert fields == [("items[3].a.b", "too big (allowed: 1..2)"), ("items[3].c", "missing")]


def test_an_item_message_names_the_field_with_its_item_prefix() -> None:
    error = InvalidInputError.for_field("media.server_path", "the path leaves the media root")
    st = status.rpc_status(error, field_prefix="items[2].")
    assert st.message == "items[2].media.server_path: the path leaves the media root"
    bad = _details(st)["BadRequest"]
    assert [v.field for v in bad.field_violations] == ["items[2].media.server_path"]  # type: ignore[attr-defined]
    # a message that does not start with its field is left as it is
    other = InvalidInputError("two bad fields", [FieldViolation("a", "x")])
    assert status.rpc_status(other, field_prefix="items[0].").message == "two bad fields"


def test_media_field_used_when_error_names_no_field() -> None:
    bad = _details(status.rpc_status(MediaDecodeError("not audio"), media_field="chunk.data"))[
        "BadRequest"
    ]
    assert [v.field for v in bad.field_violations] == ["chunk.data"]  # type: ignore[attr-defined]


def test_retry_info_only_for_retryable_limits() -> None:
    details = _details(
        status.rpc_status(ResourceLimitError("full", limit="concurrent_streams", retry_after_s=1.5))
    )
    retry = details["RetryInfo"].retry_delay  # type: ignore[attr-defined]
    assert (retry.seconds, retry.nanos) == (1, 500_000_000)
    assert details["ErrorInfo"].metadata["limit"] == "concurrent_streams"  # type: ignore[attr-defined]
    assert "RetryInfo" not in _details(
        status.rpc_status(ResourceLimitError("x", limit="chunk_bytes"))
    )
    assert "RetryInfo" not in _details(
        status.rpc_status(ResourceLimitError("x", limit="idle_timeout", retry_after_s=1))
    )


@pytest.mark.parametrize(
    ("limit", "subject"),
    [("concurrent_streams", "server"), ("concurrent_requests", "server"), ("token_streams", "token"),
     ("chunk_rate", "stream")],
)
def test_a_spent_quota_carries_quota_failure(limit: str, subject: str) -> None:
    details = _details(status.rpc_status(ResourceLimitError("spent", limit=limit, retry_after_s=1)))
    violations = details["QuotaFailure"].violations  # type: ignore[attr-defined]
    assert [(v.subject, v.description) for v in violations] == [(subject, "spent")]


def test_a_size_or_time_limit_is_no_quota() -> None:
    for limit in ("chunk_bytes", "session_buffered_bytes", "max_media_seconds", "batch_items",
                  "idle_timeout", "draining"):  # fmt: skip
        assert "QuotaFailure" not in _details(status.rpc_status(ResourceLimitError("x", limit=limit)))


def test_not_found_carries_resource_info() -> None:
    details = _details(status.rpc_status(SessionNotFoundError("no such session", session_id="abc")))
    info = details["ResourceInfo"]
    assert info.resource_type == "streamprint.v1.Session" and info.resource_name == "abc"  # type: ignore[attr-defined]


def test_internal_errors_do_not_leak_but_give_an_incident() -> None:
    st = status.rpc_status(RuntimeError("secret path /etc/x"))
    assert "secret" not in st.message and "incident" in st.message
    assert _details(st)["ErrorInfo"].metadata["incident"] in st.message  # type: ignore[attr-defined]


def test_item_status_ok_and_error() -> None:
    assert status.item_status(None).code == 0
    item = status.item_status(NotFoundError("gone"))
    assert item.code == grpc.StatusCode.NOT_FOUND.value[0] and item.message == "gone"
    assert item.details[0].type_url.endswith("google.rpc.ErrorInfo")
