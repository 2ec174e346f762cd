"""The gRPC servicers: thin adapters between protobuf and the data plane.

Each method converts its request (:mod:`streamprint.api.convert`), calls the
:class:`~streamprint.dataplane.DataPlane`, converts the result back, and maps any error to a
status with rich details (:mod:`streamprint.api.status`). Cleanup (stream slots, kept media
budgets) lives in ``finally`` blocks of the data plane, so a cancelled call or a vanished
client costs nothing once its handler has unwound.
"""

from __future__ import annotations

import asyncio
import logging
import os
from collections.abc import AsyncIterator, Callable, Coroutine, Iterable
from typing import Any, TypeVar

import google.protobuf
import grpc

from streamprint.api import convert, status
from streamprint.api._generated import admin_service_pb2 as admin_pb
from streamprint.api._generated import fingerprint_service_pb2 as fs_pb
from streamprint.api.auth import TokenTable
from streamprint.api.peers import Peers, add_cache_stats, is_forwarded
from streamprint.api.wire import (
    BatchFingerprintRequestParts,
    FingerprintRequestParts,
    MalformedRequest,
    OversizedChunk,
)
from streamprint.dataplane import (
    DataPlane,
    FingerprintJob,
    FingerprintResult,
    LiveStream,
    ValidationOutcome,
)
from streamprint.errors import (
    InvalidInputError,
    MediaDecodeError,
    ResourceLimitError,
    StreamprintError,
)
from streamprint.session_log import session_ended, session_started

log = logging.getLogger("streamprint.api")

Req = TypeVar("Req")
Resp = TypeVar("Resp")
Item = TypeVar("Item")
Job = TypeVar("Job")
Context = grpc.aio.ServicerContext[Any, Any]

#: Trailing metadata key saying why a stream ended early but cleanly.
END_REASON_KEY = "streamprint-end-reason"


async def _unary(
    context: Context,
    call: Callable[[], Coroutine[Any, Any, Resp]],
    *,
    media_field: str | None = None,
) -> Resp:
    """Run ``call``; any error ends the RPC with its mapped status."""
    try:
        return await call()
    except Exception as exc:
        await status.abort(context, exc, media_field=media_field)


class _CallEnded(Exception):
    """The call ended (the client cancelled, its deadline passed) while an update was being
    written: the write fails before the handler is cancelled."""


class _DrainableReader:
    """Reads a stream's messages, each under a deadline that a drain pulls to now.

    One timer per message (``asyncio.timeout_at``, rescheduled by the drain) instead of a
    task plus ``asyncio.wait`` per message: several times cheaper per chunk. :meth:`close`
    when done.
    """

    def __init__(self, context: Context, plane: DataPlane) -> None:
        self._context = context
        self.loop = asyncio.get_running_loop()
        #: Done once the server drains.
        self.draining = asyncio.ensure_future(plane.wait_draining())
        self._reading: asyncio.Timeout | None = None
        self.draining.add_done_callback(self._drain_now)

    def _drain_now(self, _: object) -> None:
        if self._reading is not None and not self._reading.expired():
            self._reading.reschedule(self.loop.time())

    async def read(self, deadline: float) -> object:
        """The next message (``grpc.aio.EOF`` at half-close, :class:`MalformedRequest` for
        bytes that do not parse, :class:`OversizedChunk` for a chunk over the size limit);
        ``TimeoutError`` at ``deadline`` (loop time) or on drain."""
        try:
            async with asyncio.timeout_at(deadline) as self._reading:
                return await self._context.read()
        finally:
            self._reading = None

    def close(self) -> None:
        """Stop watching the drain."""
        self.draining.remove_done_callback(self._drain_now)
        self.draining.cancel()


class FingerprintService:
    """streamprint.v1.FingerprintService."""

    def __init__(
        self, plane: DataPlane, tokens: TokenTable | None = None, peers: Peers | None = None
    ) -> None:
        """``peers``: the other worker processes of this server (``--workers`` > 1)."""
        self._plane = plane
        self._tokens = tokens
        self._peers = peers
        self._limits = convert.Limits.from_info(plane.info())

    @property
    def max_chunk_bytes(self) -> int:
        """``--max-chunk-bytes``: the largest chunk data a stream takes."""
        return self._plane.config.max_chunk_bytes

    def _owner(self, context: Context) -> str:
        """Whose quota a stream counts against: the token's id ("" without token auth)."""
        if self._tokens is None:
            return ""
        principal = self._tokens.identify(context.invocation_metadata())  # type: ignore[arg-type]
        return principal.id if principal is not None else ""

    # ------------------------------------------------------------------ StreamFingerprint

    async def StreamFingerprint(
        self, request_iterator: AsyncIterator[fs_pb.StreamFingerprintRequest], context: Context
    ) -> None:
        """Bidirectional stream: config, chunks, half-close → updates, final update."""
        del request_iterator  # the reader API (context.read) is used instead
        stream: LiveStream | None = None
        code = "OK"
        try:
            first = await self._read_first(context)
            spec = convert.stream_spec(first.config, self._limits)
            async with self._plane.open_stream(spec, owner=self._owner(context)) as stream:
                session_started(stream, context.peer())
                await self._pump(stream, context)
        except asyncio.CancelledError:
            code = "CANCELLED"
            raise
        except _CallEnded as ended:  # nobody is left to tell
            code = "CANCELLED"
            log.debug("stream ended by the client during a write: %r", ended.__cause__)
        except Exception as exc:  # every error becomes a status (bugs: INTERNAL)
            code = status.grpc_code(exc).name
            if isinstance(exc, StreamprintError) and not isinstance(exc, InvalidInputError):
                log.info("stream ended: %s: %s", exc.reason, exc.message)
            await status.abort(context, exc, media_field="chunk.data")
        finally:
            if stream is not None:
                self._plane.metrics.session_ended(stream.stats, code)
                session_ended(stream, code)

    async def _read_first(self, context: Context) -> fs_pb.StreamFingerprintRequest:
        """The config message; a drain while waiting for it ends the stream UNAVAILABLE at once
        (it would otherwise hold the shutdown for the whole grace)."""
        if self._plane.draining:
            raise self._plane.draining_error()
        idle = self._plane.config.idle_timeout_s
        reader = _DrainableReader(context, self._plane)
        try:
            first = await reader.read(reader.loop.time() + idle)
        except TimeoutError:
            if reader.draining.done():
                raise self._plane.draining_error() from None
            raise ResourceLimitError(
                f"no config message within {idle:g} s (session idle timeout)", limit="idle_timeout"
            ) from None
        finally:
            reader.close()
        if isinstance(first, MalformedRequest):
            raise first.error()
        if first is grpc.aio.EOF:
            raise InvalidInputError.for_field(
                "config", "the stream ended before its config message", "a StreamConfig first"
            )
        # a chunk, parsed or refused unparsed for its size (an OversizedChunk)
        if not isinstance(first, fs_pb.StreamFingerprintRequest) or first.WhichOneof("payload") != "config":
            raise InvalidInputError.for_field(
                "config", "the first message must carry config", "a StreamConfig first, then chunks"
            )
        return first

    async def _pump(self, stream: LiveStream, context: Context) -> None:
        """Read chunks until half-close (or drain), sending updates as they fall due."""
        config = self._plane.config
        reader = _DrainableReader(context, self._plane)
        draining = reader.draining
        # The idle timer runs from the last chunk that carried media: empty chunks are
        # messages too, but a client sending only those held a stream slot for the whole
        # session duration (6 h by default).
        last_media = reader.loop.time()
        try:
            while not draining.done():
                deadline = min(last_media + config.idle_timeout_s, reader.loop.time() + stream.remaining_s())
                try:
                    message = await reader.read(deadline)
                except TimeoutError:
                    if draining.done():
                        break
                    stream.check_duration()
                    raise ResourceLimitError(
                        f"no media for {config.idle_timeout_s:g} s (session idle timeout)",
                        limit="idle_timeout",
                    ) from None
                if message is grpc.aio.EOF:
                    break
                if isinstance(message, MalformedRequest):
                    raise message.error()
                if isinstance(message, OversizedChunk):  # refused unparsed (wire.py)
                    self._plane.metrics.chunk_received(stream.stats, message.size)
                    stream.refuse_chunk(message.seq, message.size)
                assert isinstance(message, fs_pb.StreamFingerprintRequest)
                if message.WhichOneof("payload") != "chunk":
                    raise InvalidInputError.for_field(
                        "config" if message.HasField("config") else "chunk",
                        "only the first message may carry config; every later one a chunk",
                        "chunk",
                    )
                chunk = message.chunk
                data = chunk.data  # each read of a bytes field copies the bytes: read once
                self._plane.metrics.chunk_received(stream.stats, len(data))
                stream.accept_chunk(chunk.seq, len(data))
                for update in await stream.push(data, chunk.timestamps_seconds):
                    await self._write(context, stream, update)
                if data:  # from here, not from its arrival: the server's own time never counts
                    last_media = reader.loop.time()
            if draining.done():
                context.set_trailing_metadata(((END_REASON_KEY, "server-shutdown"),))
            stream.stats.input_ended()
            try:
                updates, final = await stream.finish()
            except MediaDecodeError:
                if draining.done():  # cut short before its first sample: not the client's fault
                    raise self._plane.draining_error() from None
                raise
            for update in (*updates, final):
                await self._write(context, stream, update)
        finally:
            reader.close()

    async def _write(self, context: Context, stream: LiveStream, update: Any) -> None:
        idle = self._plane.config.idle_timeout_s
        response = convert.stream_response(stream.session_id, stream.spec.client_stream_id, update)
        try:
            await asyncio.wait_for(context.write(response), timeout=idle)
        except TimeoutError:
            raise ResourceLimitError(
                f"the client read no update for {idle:g} s (session idle timeout)",
                limit="idle_timeout",
            ) from None
        except Exception as exc:  # grpc's ExecuteBatchError: the call ended under the write
            raise _CallEnded from exc
        self._plane.counters.updates_sent += 1
        self._plane.metrics.update_sent(stream.stats, update)

    # ------------------------------------------------------------------ unary RPCs

    async def Fingerprint(
        self, request: FingerprintRequestParts | fs_pb.FingerprintRequest, context: Context
    ) -> fs_pb.FingerprintResponse:
        """Whole media → fingerprint (cached by content).

        ``request`` comes from :func:`wire.parse_fingerprint_request` (the server registers it
        as this method's deserializer), or is a plain message.
        """
        parts = request if isinstance(request, FingerprintRequestParts) else FingerprintRequestParts(request)

        async def call() -> fs_pb.FingerprintResponse:
            job = convert.fingerprint_job(parts.message, self._limits, data=parts.data)
            return convert.fingerprint_response(await self._plane.fingerprint(job))

        return await _unary(context, call, media_field="media.data")

    async def BatchFingerprint(
        self, request: BatchFingerprintRequestParts | fs_pb.BatchFingerprintRequest, context: Context
    ) -> fs_pb.BatchFingerprintResponse:
        """Many items, one status each (``request`` as for :meth:`Fingerprint`)."""
        if isinstance(request, BatchFingerprintRequestParts):
            count, items = request.count, request.items()
        else:
            count, items = len(request.items), (FingerprintRequestParts(m) for m in request.items)

        def item_job(
            parts: FingerprintRequestParts, limits: convert.Limits, *, prefix: str
        ) -> FingerprintJob:
            return convert.fingerprint_job(parts.message, limits, prefix=prefix, data=parts.data)

        async def call() -> fs_pb.BatchFingerprintResponse:
            self._plane.check_batch(count)  # before any item is read
            jobs = _item_jobs(items, item_job, self._limits)
            results = await self._plane.fingerprint_batch(jobs)
            response = fs_pb.BatchFingerprintResponse()
            for i, result in enumerate(results):
                if isinstance(result, FingerprintResult):
                    response.results.add(
                        index=i,
                        status=status.item_status(None),
                        result=convert.fingerprint_response(result),
                    )
                else:
                    response.results.add(index=i, status=_item_error(result, i))
            return response

        return await _unary(context, call)

    async def ValidateFingerprints(
        self, request: fs_pb.ValidateFingerprintsRequest, context: Context
    ) -> fs_pb.ValidateFingerprintsResponse:
        """Recompute from whole media and check candidates, one report per item.

        With several workers, items naming another worker's session are validated there.
        """
        peers, metadata = self._peers, context.invocation_metadata()
        if peers is not None and not is_forwarded(metadata):
            max_items = self._plane.config.max_batch_items
            return await _unary(
                context,
                lambda: peers.validate(request, metadata, self._validate, max_items=max_items),
            )
        return await _unary(context, lambda: self._validate(request))

    async def _validate(
        self, request: fs_pb.ValidateFingerprintsRequest
    ) -> fs_pb.ValidateFingerprintsResponse:
        """ValidateFingerprints in this process."""
        self._plane.check_batch(len(request.items))  # before any item is read
        threshold = convert.similarity_threshold(request)
        jobs = _item_jobs(request.items, convert.validation_job, self._limits)
        results = await self._plane.validate(jobs, threshold)
        response = fs_pb.ValidateFingerprintsResponse()
        for i, (item, result) in enumerate(zip(request.items, results, strict=True)):
            session_id = item.session_id if item.WhichOneof("reference") == "session_id" else ""
            if isinstance(result, ValidationOutcome):
                response.results.add(
                    index=i,
                    status=status.item_status(None),
                    report=convert.validation_report(result),
                    session_id=session_id,
                    media_sha256=result.media_sha256,
                )
            else:
                response.results.add(
                    index=i, status=_item_error(result, i), session_id=session_id
                )
        return response

    async def GetServerInfo(
        self, request: fs_pb.GetServerInfoRequest, context: Context
    ) -> fs_pb.GetServerInfoResponse:
        """Versions, registry, models, limits."""

        async def call() -> fs_pb.GetServerInfoResponse:
            role = self._peers.role if self._peers is not None else None
            process = {
                "workers": str(role.count if role is not None else 1),
                "worker": str(role.index if role is not None else 0),
                "pid": str(os.getpid()),
            }
            return convert.server_info(
                self._plane.info(),
                {"grpcio": grpc.__version__, "protobuf": google.protobuf.__version__, **process},
            )

        return await _unary(context, call)


def _item_jobs(
    items: Iterable[Item], to_job: Callable[..., Job], limits: convert.Limits
) -> list[Job | BaseException]:
    """Each batch item's typed job, or the :class:`InvalidInputError` naming its bad field
    (paths prefixed ``items[i].``); one bad item does not fail the others."""
    jobs: list[Job | BaseException] = []
    for i, item in enumerate(items):
        try:
            jobs.append(to_job(item, limits, prefix=f"items[{i}]."))
        except InvalidInputError as exc:
            jobs.append(exc)
    return jobs


def _item_error(exc: BaseException, index: int) -> Any:
    prefix = f"items[{index}]."
    if isinstance(exc, InvalidInputError) and any(
        v.field.startswith(prefix) for v in exc.violations
    ):
        prefix = ""  # converter errors already carry the item's path
    return status.item_status(exc, media_field="media.data", field_prefix=prefix)


class AdminService:
    """streamprint.v1.AdminService."""

    def __init__(self, plane: DataPlane, peers: Peers | None = None) -> None:
        """``peers``: the other worker processes of this server (``--workers`` > 1)."""
        self._plane = plane
        self._peers = peers

    def _fan_out(self, context: Context) -> Peers | None:
        """The peers to ask too (``None``: a single process, or a call forwarded by a peer)."""
        if self._peers is None or is_forwarded(context.invocation_metadata()):
            return None
        return self._peers

    async def GetCacheStats(
        self, request: admin_pb.GetCacheStatsRequest, context: Context
    ) -> admin_pb.GetCacheStatsResponse:
        """Fingerprint cache and session store statistics (with several workers: their sum)."""

        async def call() -> admin_pb.GetCacheStatsResponse:
            here = admin_pb.GetCacheStatsResponse(
                fingerprints=convert.cache_stats(self._plane.cache.stats()),
                sessions=convert.cache_stats(self._plane.sessions.stats()),
            )
            peers = self._fan_out(context)
            if peers is None:
                return here
            parts = [here, *await peers.cache_stats(context.invocation_metadata())]
            return admin_pb.GetCacheStatsResponse(
                fingerprints=add_cache_stats([p.fingerprints for p in parts]),
                sessions=add_cache_stats([p.sessions for p in parts]),
            )

        return await _unary(context, call)

    async def ClearCache(
        self, request: admin_pb.ClearCacheRequest, context: Context
    ) -> admin_pb.ClearCacheResponse:
        """Empty the cache (and the session store when asked); every worker's."""

        async def call() -> admin_pb.ClearCacheResponse:
            fingerprints, sessions = self._plane.clear_cache(
                include_sessions=request.include_sessions
            )
            log.info("cache cleared: %d fingerprints, %d sessions", fingerprints, sessions)
            peers = self._fan_out(context)
            if peers is not None:
                for other in await peers.clear_cache(request, context.invocation_metadata()):
                    fingerprints += other.fingerprints_removed
                    sessions += other.sessions_removed
            return admin_pb.ClearCacheResponse(
                fingerprints_removed=fingerprints, sessions_removed=sessions
            )

        return await _unary(context, call)
