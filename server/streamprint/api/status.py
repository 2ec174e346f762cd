"""The one place where streamprint's error tree becomes gRPC statuses with rich details.

=============================  ======================  =====================================
error                          gRPC code               google.rpc details
=============================  ======================  =====================================
InvalidInputError              INVALID_ARGUMENT        ErrorInfo, BadRequest (field violations)
 └ MediaDecodeError            INVALID_ARGUMENT        ErrorInfo, BadRequest
ResourceLimitError             RESOURCE_EXHAUSTED      ErrorInfo{limit}, RetryInfo if retryable,
                                                        QuotaFailure for a quota (QUOTA_SUBJECTS)
 (time limits: idle, length)   DEADLINE_EXCEEDED       ErrorInfo{limit}
 (limit "draining")            UNAVAILABLE             ErrorInfo{limit}, RetryInfo
NotFoundError                  NOT_FOUND               ErrorInfo, ResourceInfo if known
SessionStateError              FAILED_PRECONDITION     ErrorInfo
UnauthenticatedError           UNAUTHENTICATED         ErrorInfo
PermissionDeniedError          PERMISSION_DENIED       ErrorInfo
ModelError                     FAILED_PRECONDITION     ErrorInfo
other StreamprintError         INTERNAL                ErrorInfo
anything else (a bug)          INTERNAL                ErrorInfo{incident}; logged with traceback
=============================  ======================  =====================================

Every status carries ``ErrorInfo(reason=<error's reason>, domain="streamprint.dev")``.
The same :class:`google.rpc.status_pb2.Status` is used for call statuses (sent in the
``grpc-status-details-bin`` trailer) and for per-item statuses of batch calls.
"""

from __future__ import annotations

import logging
import math
import uuid
from typing import Any, NoReturn

import grpc
from google.protobuf import any_pb2, duration_pb2
from google.rpc import code_pb2, error_details_pb2, status_pb2

from streamprint.api._generated import media_pb2
from streamprint.errors import (
    InvalidInputError,
    ModelError,
    NotFoundError,
    PermissionDeniedError,
    ResourceLimitError,
    SessionStateError,
    StreamprintError,
    UnauthenticatedError,
)

DOMAIN = "streamprint.dev"
DETAILS_KEY = "grpc-status-details-bin"

#: Limits about time rather than capacity: they end a call with DEADLINE_EXCEEDED.
TIME_LIMITS = frozenset({"idle_timeout", "session_duration"})
#: The server is shutting down: UNAVAILABLE, so clients retry elsewhere.
UNAVAILABLE_LIMITS = frozenset({"draining"})
#: Limits that are quotas (a count or a rate per subject) and the subject each one counts
#: against: their RESOURCE_EXHAUSTED also carries a google.rpc.QuotaFailure.
QUOTA_SUBJECTS = {
    "concurrent_streams": "server",
    "concurrent_requests": "server",
    "token_streams": "token",
    "chunk_rate": "stream",
}

log = logging.getLogger("streamprint.api")


def grpc_code(exc: BaseException) -> grpc.StatusCode:
    """The gRPC status code of an exception (see the module table)."""
    if isinstance(exc, InvalidInputError):
        return grpc.StatusCode.INVALID_ARGUMENT
    if isinstance(exc, ResourceLimitError):
        if exc.limit in TIME_LIMITS:
            return grpc.StatusCode.DEADLINE_EXCEEDED
        if exc.limit in UNAVAILABLE_LIMITS:
            return grpc.StatusCode.UNAVAILABLE
        return grpc.StatusCode.RESOURCE_EXHAUSTED
    if isinstance(exc, NotFoundError):
        return grpc.StatusCode.NOT_FOUND
    if isinstance(exc, SessionStateError | ModelError):
        return grpc.StatusCode.FAILED_PRECONDITION
    if isinstance(exc, UnauthenticatedError):
        return grpc.StatusCode.UNAUTHENTICATED
    if isinstance(exc, PermissionDeniedError):
        return grpc.StatusCode.PERMISSION_DENIED
    return grpc.StatusCode.INTERNAL


def _pack(message: object) -> any_pb2.Any:
    packed = any_pb2.Any()
    packed.Pack(message)  # type: ignore[arg-type]
    return packed


def _duration(seconds: float) -> duration_pb2.Duration:
    whole = math.floor(seconds)
    return duration_pb2.Duration(seconds=int(whole), nanos=round((seconds - whole) * 1e9))


def rpc_status(
    exc: BaseException, *, media_field: str | None = None, field_prefix: str = ""
) -> status_pb2.Status:
    """The google.rpc.Status (code, message, details) describing ``exc``.

    ``media_field`` names the request field that carried the media (e.g. ``"chunk.data"``);
    an :class:`InvalidInputError` without field violations (typically undecodable media) gets
    one violation for that field, so clients always see *which* field was bad.
    ``field_prefix`` (e.g. ``"items[2]."``) is put before every violation's field.
    Unexpected exceptions are logged with their traceback and described generically.
    """
    code = grpc_code(exc)
    status = status_pb2.Status(code=code.value[0])
    if not isinstance(exc, StreamprintError):
        incident = uuid.uuid4().hex[:12]
        log.error("internal error (incident %s)", incident, exc_info=exc)
        status.message = f"internal error (incident {incident}); see the server log"
        status.details.append(
            _pack(
                error_details_pb2.ErrorInfo(
                    reason="INTERNAL", domain=DOMAIN, metadata={"incident": incident}
                )
            )
        )
        return status

    status.message = exc.message
    if field_prefix and isinstance(exc, InvalidInputError):
        # "media.server_path: ..." of an item reads "items[2].media.server_path: ...", as its
        # BadRequest field does
        field = exc.violations[0].field if exc.violations else (media_field or "")
        if field and exc.message.startswith(field + ":"):
            status.message = field_prefix + exc.message
    metadata: dict[str, str] = {}
    if isinstance(exc, ResourceLimitError):
        metadata["limit"] = exc.limit
    if isinstance(exc, NotFoundError):
        resource_name = getattr(exc, "resource_name", "")
        if resource_name:
            metadata["resource"] = str(resource_name)
    status.details.append(
        _pack(error_details_pb2.ErrorInfo(reason=exc.reason, domain=DOMAIN, metadata=metadata))
    )

    if isinstance(exc, InvalidInputError):
        violations = list(exc.violations)
        bad = error_details_pb2.BadRequest()
        for v in violations:
            description = v.description + (f" (allowed: {v.allowed})" if v.allowed else "")
            bad.field_violations.add(
                field=field_prefix + v.field, description=description, reason=exc.reason
            )
        if not violations and media_field:
            bad.field_violations.add(
                field=field_prefix + media_field, description=exc.message, reason=exc.reason
            )
        if bad.field_violations:
            status.details.append(_pack(bad))
    elif isinstance(exc, ResourceLimitError):
        if exc.retry_after_s is not None and code is not grpc.StatusCode.DEADLINE_EXCEEDED:
            status.details.append(
                _pack(error_details_pb2.RetryInfo(retry_delay=_duration(exc.retry_after_s)))
            )
        subject = QUOTA_SUBJECTS.get(exc.limit)
        if subject is not None:
            quota = error_details_pb2.QuotaFailure()
            quota.violations.add(subject=subject, description=exc.message)
            status.details.append(_pack(quota))
    elif isinstance(exc, NotFoundError):
        resource_type = getattr(exc, "resource_type", "")
        resource_name = getattr(exc, "resource_name", "")
        if resource_type or resource_name:
            status.details.append(
                _pack(
                    error_details_pb2.ResourceInfo(
                        resource_type=str(resource_type),
                        resource_name=str(resource_name),
                        description=exc.message,
                    )
                )
            )
    return status


def item_status(
    exc: BaseException | None, *, media_field: str | None = None, field_prefix: str = ""
) -> media_pb2.ItemStatus:
    """Per-item status of a batch call (code 0 when ``exc`` is ``None``)."""
    if exc is None:
        return media_pb2.ItemStatus(code=code_pb2.OK)
    status = rpc_status(exc, media_field=media_field, field_prefix=field_prefix)
    return media_pb2.ItemStatus(code=status.code, message=status.message, details=status.details)


async def abort(
    context: grpc.aio.ServicerContext[Any, Any],
    exc: BaseException,
    *,
    media_field: str | None = None,
) -> NoReturn:
    """End the call with the status of ``exc`` (rich details in the trailing metadata)."""
    status = rpc_status(exc, media_field=media_field)
    await context.abort(
        grpc_code(exc),
        status.message,
        trailing_metadata=((DETAILS_KEY, status.SerializeToString()),),
    )
