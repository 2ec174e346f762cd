"""Token authentication and roles: the ``--auth-tokens`` file and a grpc.aio interceptor.

The token file holds lines ``TOKEN ROLE`` (role ``user`` or ``admin``); blank lines and lines
starting with ``#`` are skipped. Callers send ``authorization: Bearer TOKEN`` metadata.

* gRPC health and server reflection stay open (load balancers and grpcurl need them);
* every other RPC needs a known token, else ``UNAUTHENTICATED``;
* AdminService RPCs (cache stats and clear) need the ``admin`` role, else
  ``PERMISSION_DENIED``.

Tokens are compared with :func:`hmac.compare_digest` against every known token (so the time
taken does not depend on which token, or how much of one, matched) and are never logged:
a caller is named by :attr:`Principal.id`, a short SHA-256 prefix of its token.
"""

from __future__ import annotations

import hashlib
import hmac
import logging
from collections.abc import Awaitable, Callable, Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import grpc

from streamprint.api.status import abort
from streamprint.errors import PermissionDeniedError, StreamprintError, UnauthenticatedError

if TYPE_CHECKING:
    Handler = grpc.RpcMethodHandler[Any, Any]

log = logging.getLogger("streamprint.auth")

ROLES = ("user", "admin")
METADATA_KEY = "authorization"
SCHEME = "bearer"

#: Method prefixes that need no token.
OPEN_PREFIXES = (
    "/grpc.health.v1.Health/",
    "/grpc.reflection.v1alpha.ServerReflection/",
    "/grpc.reflection.v1.ServerReflection/",
)
#: Method prefixes that need the admin role.
ADMIN_PREFIXES = ("/streamprint.v1.AdminService/",)


class TokenFileError(ValueError):
    """The token file cannot be used (the message never contains a token)."""


@dataclass(frozen=True)
class Principal:
    """An authenticated caller: a token's short id (never the token) and its role."""

    id: str
    role: str

    @property
    def is_admin(self) -> bool:
        """Whether the caller holds the admin role."""
        return self.role == "admin"


def token_id(token: str) -> str:
    """A short, non-reversible id of a token for logs and quotas."""
    return "tok-" + hashlib.sha256(token.encode()).hexdigest()[:12]


class TokenTable:
    """Known tokens and their roles."""

    def __init__(self, entries: Iterable[tuple[str, str]]) -> None:
        self._entries: list[tuple[bytes, Principal]] = []
        for token, role in entries:
            if role not in ROLES:
                raise TokenFileError("unknown role (allowed: user, admin)")
            self._entries.append((token.encode(), Principal(token_id(token), role)))
        if not self._entries:
            raise TokenFileError("no tokens")

    def __len__(self) -> int:
        return len(self._entries)

    @property
    def ids(self) -> tuple[str, ...]:
        """The principals' ids (never tokens), one per distinct token, in file order."""
        return tuple(dict.fromkeys(p.id for _, p in self._entries))

    @classmethod
    def parse(cls, text: str, *, source: str = "token file") -> TokenTable:
        """Parse ``TOKEN ROLE`` lines; errors name the line, never the token."""
        entries: list[tuple[str, str]] = []
        for number, line in enumerate(text.splitlines(), start=1):
            stripped = line.strip()
            if not stripped or stripped.startswith("#"):
                continue
            parts = stripped.split()
            if len(parts) != 2:
                raise TokenFileError(
                    f"{source} line {number}: expected 'TOKEN ROLE' (two fields), "
                    f"got {len(parts)} field(s)"
                )
            token, role = parts
            if role not in ROLES:
                # The value is not echoed: a line written "ROLE TOKEN" would leak the token.
                raise TokenFileError(
                    f"{source} line {number}: the second field is not a role (allowed: user, admin)"
                )
            entries.append((token, role))
        if not entries:
            raise TokenFileError(f"{source}: no 'TOKEN ROLE' lines")
        return cls(entries)

    @classmethod
    def load(cls, path: str) -> TokenTable:
        """Read and parse a token file."""
        try:
            text = Path(path).read_text(encoding="utf-8")
        except OSError as exc:
            raise TokenFileError(f"cannot read --auth-tokens {path!r}: {exc.strerror}") from None
        return cls.parse(text, source=f"--auth-tokens {path!r}")

    def lookup(self, token: str) -> Principal | None:
        """The principal of ``token``, compared in constant time against every entry."""
        candidate = token.encode()
        found: Principal | None = None
        for known, principal in self._entries:
            if hmac.compare_digest(known, candidate) and found is None:
                found = principal
        return found

    def identify(self, metadata: Sequence[tuple[str, Any]] | None) -> Principal | None:
        """The principal named by ``authorization: Bearer TOKEN`` metadata, if any."""
        token = bearer_token(metadata)
        return None if token is None else self.lookup(token)


def bearer_token(metadata: Sequence[tuple[str, Any]] | None) -> str | None:
    """The token of the first ``authorization: Bearer TOKEN`` entry (``None``: none)."""
    for key, value in metadata or ():
        if key.lower() != METADATA_KEY or not isinstance(value, str):
            continue
        scheme, _, token = value.strip().partition(" ")
        if scheme.lower() == SCHEME and token.strip():
            return token.strip()
        return None
    return None


def _rejecting(handler: Handler, error: StreamprintError) -> Handler:
    """A handler of the same kind as ``handler`` that ends the call with ``error``'s status
    (with its ErrorInfo, as every status of the server)."""

    async def reject(request: Any, context: grpc.aio.ServicerContext[Any, Any]) -> None:
        del request
        await abort(context, error)

    kinds: dict[str, Callable[..., Handler]] = {
        "unary_unary": grpc.unary_unary_rpc_method_handler,
        "unary_stream": grpc.unary_stream_rpc_method_handler,
        "stream_unary": grpc.stream_unary_rpc_method_handler,
        "stream_stream": grpc.stream_stream_rpc_method_handler,
    }
    for kind, factory in kinds.items():
        if getattr(handler, kind, None) is not None:
            return factory(
                reject,
                request_deserializer=handler.request_deserializer,
                response_serializer=handler.response_serializer,
            )
    return handler  # pragma: no cover - every handler has one of the four kinds


class AuthInterceptor(grpc.aio.ServerInterceptor):
    """Checks the bearer token and role of every RPC except health and reflection."""

    def __init__(self, tokens: TokenTable) -> None:
        self.tokens = tokens

    async def intercept_service(
        self,
        continuation: Callable[[grpc.HandlerCallDetails], Awaitable[Handler | None]],
        handler_call_details: grpc.HandlerCallDetails,
    ) -> Handler:
        handler = await continuation(handler_call_details)
        method = str(handler_call_details.method)
        if handler is None or method.startswith(OPEN_PREFIXES):
            return handler  # type: ignore[return-value]  # None: grpc answers UNIMPLEMENTED
        metadata = handler_call_details.invocation_metadata
        principal = self.tokens.identify(metadata)
        if principal is None:
            missing = bearer_token(metadata) is None
            log.info(
                "unauthenticated call to %s (%s)", method, "no token" if missing else "bad token"
            )
            return _rejecting(
                handler,
                UnauthenticatedError(
                    "missing 'authorization: Bearer TOKEN' metadata"
                    if missing
                    else "unknown token (see the server's --auth-tokens)"
                ),
            )
        if method.startswith(ADMIN_PREFIXES) and not principal.is_admin:
            log.info(
                "permission denied: %s (role %s) called %s", principal.id, principal.role, method
            )
            return _rejecting(
                handler,
                PermissionDeniedError(
                    f"{method.lstrip('/')} needs the admin role; this token has role {principal.role!r}"
                ),
            )
        return handler
