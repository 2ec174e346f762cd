"""Calls between the worker processes of one server (``--workers N``), over unix sockets.

Every worker also listens on a private unix socket in the supervisor's run directory (mode
0700). A session's decoded media live in the worker that served its stream, and its id names
that worker (``w<index>-<hex>``), so:

* ValidateFingerprints items naming another worker's session are forwarded to that worker
  (one call per worker, the caller's ``authorization`` metadata passed on), the rest are
  validated here, and the results are put back in request order;
* ClearCache clears every worker's caches, GetCacheStats adds every worker's statistics up.

A forwarded call carries ``streamprint-forwarded: 1`` and is never forwarded again.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Iterable, Sequence
from typing import Any, TypeVar

import grpc
from google.rpc import error_details_pb2

from streamprint.api import status
from streamprint.api._generated import admin_service_pb2 as admin_pb
from streamprint.api._generated import admin_service_pb2_grpc as admin_grpc
from streamprint.api._generated import fingerprint_service_pb2 as fs_pb
from streamprint.api._generated import fingerprint_service_pb2_grpc as fs_grpc
from streamprint.cache import SessionNotFoundError
from streamprint.errors import ResourceLimitError, StreamprintError
from streamprint.workers.role import WorkerRole, owner_of_session

log = logging.getLogger("streamprint.peers")

FORWARDED_KEY = "streamprint-forwarded"
#: Metadata passed on to the worker a call is forwarded to.
_PASSED_ON = ("authorization",)
#: Seconds a forwarded call may take.
FORWARD_TIMEOUT_S = 60.0

R = TypeVar("R")
Metadata = Iterable[tuple[str, Any]]


def is_forwarded(metadata: Metadata | None) -> bool:
    """Whether a call was forwarded by another worker."""
    return any(key == FORWARDED_KEY for key, _ in metadata or ())


class PeerError(StreamprintError):
    """A worker could not be asked on another worker's behalf."""

    reason = "WORKER_UNREACHABLE"


class Peers:
    """Channels to the other workers of this server (opened on first use)."""

    def __init__(self, role: WorkerRole, *, max_message_bytes: int, retry_after_s: float) -> None:
        self.role = role
        self._max_message_bytes = max_message_bytes
        self._retry_after_s = retry_after_s
        self._channels: dict[int, grpc.aio.Channel] = {}

    def _channel(self, index: int) -> grpc.aio.Channel:
        channel = self._channels.get(index)
        if channel is None:
            channel = grpc.aio.insecure_channel(
                f"unix:{self.role.peer_socket(index)}",
                options=[
                    ("grpc.max_receive_message_length", self._max_message_bytes),
                    ("grpc.max_send_message_length", self._max_message_bytes),
                ],
            )
            self._channels[index] = channel
        return channel

    @property
    def others(self) -> list[int]:
        """Indices of the other workers."""
        return [i for i in range(self.role.count) if i != self.role.index]

    @staticmethod
    def _metadata(metadata: Metadata | None) -> tuple[tuple[str, str], ...]:
        kept = tuple((k, str(v)) for k, v in metadata or () if k.lower() in _PASSED_ON)
        return (*kept, (FORWARDED_KEY, "1"))

    async def close(self) -> None:
        """Close every channel."""
        channels, self._channels = list(self._channels.values()), {}
        await asyncio.gather(*(ch.close() for ch in channels), return_exceptions=True)

    # ------------------------------------------------------------------ validation

    def owner(self, item: fs_pb.ValidationItem) -> int:
        """The worker that must validate ``item`` (this one unless it names another's session)."""
        if item.WhichOneof("reference") == "session_id":
            index = owner_of_session(item.session_id)
            if index is not None and index < self.role.count:
                return index
        return self.role.index

    async def validate(
        self,
        request: fs_pb.ValidateFingerprintsRequest,
        metadata: Metadata | None,
        local: Callable[
            [fs_pb.ValidateFingerprintsRequest], Awaitable[fs_pb.ValidateFingerprintsResponse]
        ],
        *,
        max_items: int,
    ) -> fs_pb.ValidateFingerprintsResponse:
        """Validate ``request``: each item in the worker holding its session, results in order."""
        if not 0 < len(request.items) <= max_items:
            return await local(request)  # the whole call is refused there, before any item is read
        groups: dict[int, list[int]] = {}
        for i, item in enumerate(request.items):
            groups.setdefault(self.owner(item), []).append(i)
        if list(groups) == [self.role.index]:
            return await local(request)  # nothing to forward

        async def part(index: int, positions: list[int]) -> list[fs_pb.ValidationResult]:
            sub = fs_pb.ValidateFingerprintsRequest(items=[request.items[i] for i in positions])
            if request.HasField("similarity_threshold"):
                sub.similarity_threshold = request.similarity_threshold
            if index == self.role.index:
                response = await local(sub)
            else:
                try:
                    response = await self._forward_validation(index, sub, metadata)
                except grpc.aio.AioRpcError as exc:
                    return [self._failed_item(exc, index, request.items[i], i) for i in positions]
            return [_renumbered(result, positions[result.index]) for result in response.results]

        parts = await asyncio.gather(*(part(w, p) for w, p in groups.items()))
        results = sorted((r for rs in parts for r in rs), key=lambda r: r.index)
        return fs_pb.ValidateFingerprintsResponse(results=results)

    async def _forward_validation(
        self, index: int, request: fs_pb.ValidateFingerprintsRequest, metadata: Metadata | None
    ) -> fs_pb.ValidateFingerprintsResponse:
        stub = fs_grpc.FingerprintServiceStub(self._channel(index))  # type: ignore[no-untyped-call]
        response: fs_pb.ValidateFingerprintsResponse = await stub.ValidateFingerprints(
            request, metadata=self._metadata(metadata), timeout=FORWARD_TIMEOUT_S
        )
        return response

    def _failed_item(
        self, exc: grpc.aio.AioRpcError, index: int, item: fs_pb.ValidationItem, position: int
    ) -> fs_pb.ValidationResult:
        session_id = item.session_id
        error: StreamprintError
        if exc.code() is grpc.StatusCode.UNAVAILABLE:
            error = SessionNotFoundError(
                f"session {session_id!r} is no longer available: worker {index}, which served "
                "it, is not running (it exited, and its sessions' media with it)",
                session_id=session_id,
            )
        elif exc.code() is grpc.StatusCode.RESOURCE_EXHAUSTED:
            error = ResourceLimitError(
                f"worker {index}, which holds session {session_id!r}, is busy; retry later",
                limit="concurrent_requests",
                retry_after_s=self._retry_after_s,
            )
        else:
            log.warning("validation forwarded to worker %d failed: %s", index, exc.code().name)
            error = PeerError(
                f"asking worker {index} about session {session_id!r} failed: "
                f"{exc.code().name}: {exc.details()}"
            )
        return fs_pb.ValidationResult(
            index=position, status=status.item_status(error), session_id=session_id
        )

    # ------------------------------------------------------------------ admin

    async def _each_other(
        self, call: Callable[[admin_grpc.AdminServiceStub], Awaitable[R]]
    ) -> list[R]:
        """``call`` on every other worker that answers (one that does not is restarting:
        its caches are empty)."""

        async def one(index: int) -> R | None:
            stub = admin_grpc.AdminServiceStub(self._channel(index))  # type: ignore[no-untyped-call]
            try:
                return await call(stub)
            except grpc.aio.AioRpcError as exc:
                log.warning("worker %d did not answer an admin call: %s", index, exc.code().name)
                return None

        answers = await asyncio.gather(*(one(i) for i in self.others))
        return [a for a in answers if a is not None]

    async def clear_cache(
        self, request: admin_pb.ClearCacheRequest, metadata: Metadata | None
    ) -> list[admin_pb.ClearCacheResponse]:
        """ClearCache on every other worker; their answers."""
        md = self._metadata(metadata)
        return await self._each_other(
            lambda stub: stub.ClearCache(request, metadata=md, timeout=FORWARD_TIMEOUT_S)
        )

    async def cache_stats(self, metadata: Metadata | None) -> list[admin_pb.GetCacheStatsResponse]:
        """GetCacheStats of every other worker."""
        md = self._metadata(metadata)
        return await self._each_other(
            lambda stub: stub.GetCacheStats(
                admin_pb.GetCacheStatsRequest(), metadata=md, timeout=FORWARD_TIMEOUT_S
            )
        )


def _renumbered(result: fs_pb.ValidationResult, index: int) -> fs_pb.ValidationResult:
    """``result`` of a part of a request as the result of the whole request's item ``index``.

    The part numbered its items from 0: the index, the message and the BadRequest field
    paths (``items[k].…``) are renumbered.
    """
    moved = fs_pb.ValidationResult()
    moved.CopyFrom(result)
    moved.index = index
    before, after = f"items[{result.index}]", f"items[{index}]"
    if before == after or not moved.HasField("status"):
        return moved
    moved.status.message = moved.status.message.replace(before, after)
    for detail in moved.status.details:
        bad = error_details_pb2.BadRequest()
        if detail.Unpack(bad):
            for violation in bad.field_violations:
                if violation.field.startswith(before):
                    violation.field = after + violation.field.removeprefix(before)
            detail.Pack(bad)
    return moved


def add_cache_stats(parts: Sequence[admin_pb.CacheStats]) -> admin_pb.CacheStats:
    """Several workers' statistics of one cache as one: counts and bounds added up."""
    total = admin_pb.CacheStats()
    for p in parts:
        for name in ("hits", "misses", "evictions", "expirations", "size", "size_bytes"):
            setattr(total, name, getattr(total, name) + getattr(p, name))
        total.max_size += p.max_size
        total.max_bytes += p.max_bytes
        total.ttl_seconds = p.ttl_seconds
    lookups = total.hits + total.misses
    total.hit_rate = total.hits / lookups if lookups else 0.0
    return total
