"""The one error tree of streamprint.

Every failure the engine, cache or runtime can report is a :class:`StreamprintError`.
The api layer maps each subclass to exactly one gRPC status code (with google.rpc rich
details built from the attributes here); the CLI maps them to one stderr line and an exit
code. Nothing below the api layer knows about gRPC.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class FieldViolation:
    """One bad field: which field, what was wrong with it, what is allowed."""

    field: str
    description: str
    allowed: str = ""


class StreamprintError(Exception):
    """Base of every error streamprint reports on purpose.

    ``reason`` is a stable UPPER_SNAKE identifier (google.rpc.ErrorInfo.reason).
    """

    reason: str = "INTERNAL"

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


class InvalidInputError(StreamprintError):
    """The caller sent something we cannot accept (bad config, bad media, bad chunk)."""

    reason = "INVALID_INPUT"

    def __init__(self, message: str, violations: list[FieldViolation] | None = None) -> None:
        super().__init__(message)
        self.violations: list[FieldViolation] = violations or []

    @classmethod
    def for_field(cls, field_name: str, description: str, allowed: str = "") -> InvalidInputError:
        """Build an error about a single field."""
        return cls(
            f"{field_name}: {description}" + (f" (allowed: {allowed})" if allowed else ""),
            [FieldViolation(field_name, description, allowed)],
        )


class MediaDecodeError(InvalidInputError):
    """The media bytes are not decodable audio/video of a supported format."""

    reason = "MEDIA_UNDECODABLE"


class ResourceLimitError(StreamprintError):
    """A configured limit was hit (streams, bytes buffered, session length, message size)."""

    reason = "RESOURCE_LIMIT"

    def __init__(self, message: str, *, limit: str, retry_after_s: float | None = None) -> None:
        super().__init__(message)
        self.limit = limit
        self.retry_after_s = retry_after_s


class NotFoundError(StreamprintError):
    """A referenced object (session, model) does not exist or has expired."""

    reason = "NOT_FOUND"


class SessionStateError(StreamprintError):
    """An operation arrived in the wrong order (e.g. a chunk after finish)."""

    reason = "FAILED_PRECONDITION"


class UnauthenticatedError(StreamprintError):
    """The call carries no known bearer token (``--auth-tokens``)."""

    reason = "UNAUTHENTICATED"


class PermissionDeniedError(StreamprintError):
    """The call's token has a role that may not make it (cache administration needs admin)."""

    reason = "PERMISSION_DENIED"


class ModelError(StreamprintError):
    """A model file is missing, corrupt (sha256 mismatch) or fails its accuracy gate."""

    reason = "MODEL_UNAVAILABLE"


class InstallationError(StreamprintError):
    """Part of streamprint itself is missing, e.g. its compiled kernels were never built."""

    reason = "NOT_INSTALLED"
