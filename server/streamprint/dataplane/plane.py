"""The data plane: live streams, whole-media jobs, validation, the caches and the limits.

Async methods run on the server's event loop; every CPU-bound engine call goes to a bounded
thread pool (one for streams, one for unary and batch work, so a long batch never holds up
live updates). Nothing here knows about gRPC or protobuf.
"""

from __future__ import annotations

import asyncio
import contextlib
import errno
import functools
import logging
import os
import platform
import stat
import threading
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from contextlib import AbstractContextManager, asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, NoReturn, TypeVar, cast

import numpy as np

import streamprint
from streamprint.cache import (
    FileDigests,
    FingerprintCache,
    FinishedSession,
    KeptMedia,
    SessionStore,
    fingerprint_key,
    media_sha256,
)
from streamprint.config import ServerConfig, default_workers
from streamprint.dataplane.engine import (
    Engine,
    EngineSession,
    NumpyEngine,
    Pcm16,
    Samples,
    StreamDecoder,
    engine_for,
)
from streamprint.dataplane.pool import StreamWorkPool
from streamprint.dataplane.types import (
    FingerprintJob,
    FingerprintResult,
    MediaFormat,
    MediaInput,
    ModelDescription,
    ServerInfo,
    StreamSpec,
    ValidationJob,
    ValidationOutcome,
)
from streamprint.engine import dims
from streamprint.engine.fingerprint import Fingerprint, pcm16_to_float
from streamprint.errors import (
    FieldViolation,
    InvalidInputError,
    MediaDecodeError,
    NotFoundError,
    ResourceLimitError,
    SessionStateError,
)
from streamprint.metrics import ServerMetrics, SessionStats
from streamprint.runtime.batching import BatchingAnalyzer
from streamprint.workers.ledger import LocalLedger, StreamLedger

if TYPE_CHECKING:
    from streamprint.runtime.video_select import VideoSelection

T = TypeVar("T")
J = TypeVar("J")

log = logging.getLogger("streamprint.dataplane")

#: Media this large is hashed off the event loop.
_HASH_OFF_LOOP_BYTES = 256 * 1024
#: Raw PCM chunks up to this size that complete no update are decoded on the event loop.
_INLINE_MAX_BYTES = 64 * 1024
DEFAULT_SIMILARITY_THRESHOLD = 0.95


def reference_dimensions(names: Iterable[str]) -> tuple[str, ...]:
    """The dimensions of the validation reference recomputed for candidate ``names``: the
    13 analysis-grid ones when they cover the names (a streamed 13D session: no loudness,
    stereo or crest pass over the media, about a fifth less CPU), else all 25."""
    wanted = set(names)
    return dims.AUDIO_13D if wanted <= set(dims.AUDIO_13D) else dims.AUDIO_25D


@dataclass
class Counters:
    """Monotonic counters for metrics (mutated on the event loop only)."""

    streams_started: int = 0
    streams_completed: int = 0
    streams_failed: int = 0
    updates_sent: int = 0
    requests_started: int = 0
    requests_rejected: int = 0
    streams_rejected: int = 0


def _in_scope(scope: Callable[[], AbstractContextManager[None]], fn: Callable[[], T]) -> T:
    with scope():
        return fn()


#: Seconds between purges of expired cache entries and sessions (:meth:`DataPlane.purge_expired_periodically`).
PURGE_EVERY_S = 5.0


class MediaFileNotFoundError(NotFoundError):
    """A ``server_path`` that names no file under the media root."""

    resource_type = "file"

    def __init__(self, relative_path: str) -> None:
        super().__init__(f"no file {relative_path!r} under the media root")
        self.resource_name = relative_path


class LiveStream:
    """One live stream: decoder, engine session, chunk bookkeeping and kept media.

    Created by :meth:`DataPlane.open_stream`; not safe for concurrent use (the servicer awaits
    each :meth:`push` before reading the next chunk, which also gives back-pressure).
    """

    def __init__(self, plane: DataPlane, spec: StreamSpec) -> None:
        self._plane = plane
        config = plane.config
        self.spec = spec
        self.session_id = plane.session_prefix + uuid.uuid4().hex
        self.started = plane.clock()
        self._decoder: StreamDecoder = plane.engine.new_decoder(
            spec.format, max_seconds=config.max_media_s
        )
        self._session: EngineSession | None = None
        #: 16-bit PCM chunks are decoded as their int16 samples, kept and analysed without a
        #: float32 round trip (the decoder's ``feed_int16``; see ``_PcmStreamDecoder``).
        self._feed_int16: Callable[[bytes], Pcm16] | None = (
            getattr(self._decoder, "feed_int16", None) if getattr(self._decoder, "exact_int16", False) else None
        )
        self._sample_rate = 0
        self._next_seq = 0
        self._pending_bytes = 0
        self._released = False
        self._keep_cap = config.session_retain_max_bytes
        self._keeping = self._keep_cap > 0
        self._kept: KeptMedia | None = None  # created with the first samples
        self._kept_stored = False  # handed to the session store (which then owns it)
        self._kept_bytes = 0
        self._not_kept = (
            None
            if self._keeping
            else "this server keeps no session media (--session-retain-max-bytes 0)"
        )
        self.last_revision = 0
        self.stats = SessionStats()
        self._rate_tokens = 0.0
        self._rate_at: float | None = None

    # ------------------------------------------------------------------ called by the servicer

    def accept_chunk(self, seq: int, size: int) -> None:
        """Check a chunk's sequence number, size and the session's wall-clock age."""
        if size > self._plane.config.max_chunk_bytes:
            self.refuse_chunk(seq, size)
        self._check_seq(seq)
        self._next_seq += 1
        self._take_rate_token(seq)
        self.check_duration()

    def refuse_chunk(self, seq: int, size: int) -> NoReturn:
        """Refuse chunk ``seq`` of ``size`` bytes as over ``--max-chunk-bytes`` (its sequence
        number checked first, as for any chunk)."""
        self._check_seq(seq)
        limit = self._plane.config.max_chunk_bytes
        raise ResourceLimitError(
            f"chunk {seq} holds {size} bytes; the limit is {limit} bytes", limit="chunk_bytes"
        )

    def _check_seq(self, seq: int) -> None:
        if seq != self._next_seq:
            raise InvalidInputError.for_field(
                "chunk.seq",
                f"expected sequence number {self._next_seq}, got {seq} (chunk lost or repeated)",
                "0 for the first chunk, then one more for each chunk",
            )

    def _take_rate_token(self, seq: int) -> None:
        """Token bucket of ``--max-chunk-rate`` chunks per second, 2 s of burst."""
        rate = self._plane.config.max_chunk_rate
        if rate <= 0:
            return
        burst = self._plane.config.max_chunk_burst
        now = self._plane.clock()
        if self._rate_at is None:
            self._rate_tokens, self._rate_at = burst, now
        self._rate_tokens = min(burst, self._rate_tokens + (now - self._rate_at) * rate)
        self._rate_at = now
        if self._rate_tokens < 1.0:
            raise ResourceLimitError(
                f"chunk {seq} arrived faster than the limit of {rate:g} chunks per second "
                f"(bursts of {burst:g}); send larger or fewer chunks",
                limit="chunk_rate",
                retry_after_s=max(
                    self._plane.config.retry_after_s, (1.0 - self._rate_tokens) / rate
                ),
            )
        self._rate_tokens -= 1.0

    def check_duration(self) -> None:
        """Raise once the stream is older than ``--max-session-duration-s``."""
        limit = self._plane.config.max_session_duration_s
        if self._plane.clock() - self.started > limit:
            raise ResourceLimitError(
                f"the stream exceeded the maximum session duration of {limit:g} s",
                limit="session_duration",
            )

    async def push(self, data: bytes, timestamps: Sequence[float] = ()) -> list[Fingerprint]:
        """Decode and analyse one chunk's bytes; the updates that fell due.

        ``timestamps`` (seconds, one per frame) only for raw video frames.
        """
        if not data:
            return []
        if timestamps:
            if self.spec.modality is not dims.Modality.VIDEO:
                raise InvalidInputError.for_field(
                    "chunk.timestamps_seconds", "only raw video frames take timestamps", "none"
                )
            updates = await self._plane.run_stream_work(self._push_sync, data, tuple(timestamps))
        elif self._cheap(len(data)):
            # decode + queue only: cheaper than a thread hop (the kept block is hashed and
            # spilled on the worker thread, with the next chunk that runs the analysis)
            updates = self._decode_and_analyse(data)
        else:
            updates = await self._plane.run_stream_work(self._push_sync, data)
        return self._fresh(updates)

    def _cheap(self, size: int) -> bool:
        """Whether a chunk of ``size`` bytes only decodes raw PCM and queues it (no analysis).

        Such chunks (most of a live stream's: 9 of 10 at 100 ms chunks and one update per
        second) run on the event loop; the thread pool's hand-off would cost more than the
        work. Container media, video, chunks that complete an update, and chunks that would
        take the kept media held in memory past ``--session-spool-after-bytes`` (the worker
        hashes and spills it) go to the pool.
        """
        if size > _INLINE_MAX_BYTES or self._session is None:
            return False
        kept = self._kept
        if kept is not None and kept.memory_bytes + size > kept.ram_bytes:
            return False
        samples_in = getattr(self._decoder, "samples_in", None)
        analysis_due = getattr(self._session, "analysis_due", None)
        if samples_in is None or analysis_due is None:
            return False
        return not analysis_due(samples_in(size))

    async def finish(self) -> tuple[list[Fingerprint], Fingerprint]:
        """End the media: remaining updates and the final fingerprint; keeps the media."""
        updates, final, finished = await self._plane.run_stream_work(self._finish_sync, deferred=True)
        store = self._plane.sessions
        if finished is not None:
            if store.put(finished) and self._plane.config.validation_prefetch:
                self._plane.prefetch_reference(finished)
        elif self._not_kept is not None:
            store.mark_not_kept(self.session_id, self._not_kept)
        return self._fresh(updates), final

    # ------------------------------------------------------------------ worker-thread side

    def _push_sync(self, data: bytes) -> list[Fingerprint]:
        updates = self._decode_and_analyse(data)
        if self._kept is not None:
            self._kept.settle()  # hashlib and the file write release the GIL
        return updates

    def _decode_and_analyse(self, data: bytes) -> list[Fingerprint]:
        """Decode, keep (unsettled) and analyse one chunk's bytes (either thread)."""
        samples = self._decoder.feed(data) if self._feed_int16 is None else self._feed_int16(data)
        if samples.shape[0] == 0:
            self._pending_bytes += len(data)
            limit = self._plane.config.max_buffered_bytes
            if self._pending_bytes > limit:
                raise ResourceLimitError(
                    f"{self._pending_bytes} bytes received without decodable audio; the limit "
                    f"of buffered media per session is {limit} bytes",
                    limit="session_buffered_bytes",
                )
            return []
        self._pending_bytes = 0
        return self._analyse(samples)

    def _analyse(self, samples: Samples | Pcm16) -> list[Fingerprint]:
        """Keep and analyse decoded samples: float32 ``[n, channels]``, or int16 ``[n, channels]``
        meaning ``k / 32768`` (from ``feed_int16``)."""
        if samples.shape[0] == 0:
            return []
        if self._session is None:
            rate, channels = self._decoder.sample_rate, self._decoder.channels
            if rate is None or channels is None:  # pragma: no cover - decoder contract
                raise MediaDecodeError("decoded audio before its format was known")
            self._sample_rate = rate
            self._session = self._plane.engine.new_session(
                sample_rate=rate,
                channels=channels,
                dimensions=self.spec.dimensions,
                update_interval_s=self.spec.update_interval_s,
                max_seconds=self._plane.config.max_media_s,
            )
        self._keep(samples)
        if samples.dtype != np.int16:
            return self._session.push(cast("Samples", samples))
        push_int16 = getattr(self._session, "push_int16", None)
        if push_int16 is not None:
            updates: list[Fingerprint] = push_int16(samples)
            return updates
        return self._session.push(pcm16_to_float(cast("Pcm16", samples)))  # a session without push_int16

    def _keep(self, samples: Samples | Pcm16) -> None:
        """Keep decoded samples for validation (compactly, see :class:`KeptMedia`)."""
        if not self._keeping:
            return
        config = self._plane.config
        if self._kept is None:
            self._kept = KeptMedia(
                self._sample_rate, int(samples.shape[1]),
                ram_bytes=config.session_spool_after_bytes,
                spool_dir=config.session_spool_dir or None,
            )
        block = self._kept.compact(samples, exact_int16=getattr(self._decoder, "exact_int16", False))
        nbytes = self._kept.added_bytes(block)
        if self._kept_bytes + nbytes > self._keep_cap:
            self._drop_kept(
                f"its decoded media exceeds --session-retain-max-bytes ({self._keep_cap} bytes)"
            )
        elif not self._plane.reserve_live_media(self, nbytes):
            self._drop_kept("the server's budget for live sessions' media was exhausted")
        else:
            self._kept.append(block, settle=False)  # settled by _push_sync / finish

    def _drop_kept(self, why: str) -> None:
        self._keeping = False
        if self._kept is not None:
            self._kept.close()
            self._kept = None
        self._not_kept = why
        self._plane.release_live_media(self, final=False)

    def _finish_sync(self) -> tuple[list[Fingerprint], Fingerprint, FinishedSession | None]:
        updates = self._analyse(self._decoder.finish())
        if self._session is None:
            raise MediaDecodeError(
                "the stream ended before any audio was decoded",
                [
                    FieldViolation(
                        "chunk.data", "no audio samples in the stream", "at least one sample"
                    )
                ],
            )
        final = self._session.finish()
        finished = None
        if self._kept is not None and self._kept.frames:
            finished = FinishedSession(
                session_id=self.session_id,
                stored=self._kept,
                media_sha256=self._kept.sha256(),
                final=final,
                finished_at=time.time(),
            )
            self._kept_stored = True
        return updates, final, finished

    def _fresh(self, updates: list[Fingerprint]) -> list[Fingerprint]:
        fresh = [u for u in updates if u.revision > self.last_revision]
        if len(fresh) != len(updates):  # pragma: no cover - engine contract
            log.warning("session %s: engine repeated a revision; dropped", self.session_id)
        if fresh:
            self.last_revision = fresh[-1].revision
        return fresh

    def remaining_s(self) -> float:
        """Wall-clock seconds left before ``--max-session-duration-s``."""
        limit = self._plane.config.max_session_duration_s
        return max(0.0, limit - (self._plane.clock() - self.started))

    def release(self) -> None:
        """Give the live-media budget back (the store accounts for kept media itself)."""
        self._plane.release_live_media(self, final=True)
        if self._kept is not None and not self._kept_stored:
            self._kept.close()
        self._kept = None


class DataPlane:
    """Everything the servicers call. Create it inside the server's event loop."""

    def __init__(
        self,
        config: ServerConfig,
        engine: Engine | None = None,
        *,
        video: VideoSelection | None = None,
        clock: Callable[[], float] = time.monotonic,
        ledger: StreamLedger | None = None,
        session_prefix: str = "",
        audio_choice: Mapping[str, Any] | None = None,
    ) -> None:
        """``engine`` ``None``: the audio engine ``--backend`` / ``--precision`` select
        (``audio_choice``: what a ``--backend auto`` measurement already chose, see
        :func:`~streamprint.dataplane.engine.engine_for`).

        ``video`` is the video analyzer's selection; ``None`` selects it from the same flags
        (with the start-up check) when ``engine`` is ``None`` too, and otherwise (an engine
        given by a test) is the numpy reference. ``ledger`` counts open streams for the limits
        (default: this process only; worker processes share one); ``session_prefix`` starts
        every session id (a worker's name).
        """
        from streamprint.runtime.video_select import reference_video_selection, video_selection_for

        self.config = config
        self.ledger: StreamLedger = ledger if ledger is not None else LocalLedger()
        self.session_prefix = session_prefix
        self.engine: Engine = (
            engine
            if engine is not None
            else engine_for(config.backend, config.precision, config.heads, chosen=audio_choice)
        )
        if video is None:
            video = (
                video_selection_for(config.backend, config.precision)
                if engine is None
                else reference_video_selection()
            )
        #: How the video per-frame analyzer was chosen; video streams and jobs run it.
        self.video: VideoSelection = video
        self.clock = clock
        workers = config.effective_engine_threads
        #: Live chunks first, stream ends in the room left (streamprint.dataplane.pool).
        self._stream_pool = StreamWorkPool(config.stream_threads, name_prefix="streamprint-stream")
        self._request_pool = ThreadPoolExecutor(workers, thread_name_prefix="streamprint-request")
        self.cache = FingerprintCache(
            max_entries=config.cache_max_entries,
            max_bytes=config.cache_max_bytes,
            ttl_s=config.cache_ttl_s,
        )
        self.sessions = SessionStore(
            max_entries=config.session_store_max_entries,
            max_bytes=config.session_store_max_bytes,
            ttl_s=config.session_store_ttl_s,
        )
        #: Content hashes of ``server_path`` files already read (skips re-reading on a hit).
        self.file_digests = FileDigests()
        self._resolved_root: Path | None = None
        self.counters = Counters()
        self.metrics = ServerMetrics(self)
        self.metrics.instrument(self.engine)
        self.batcher = self._start_batching()
        self._whole_media_pool = self._start_whole_media_pool()
        self._live: dict[str, LiveStream] = {}
        self._active_requests = 0
        self._inflight: dict[str, asyncio.Task[Fingerprint]] = {}
        #: Background validation-reference computations (``--validation-prefetch``).
        self._prefetching: set[asyncio.Task[None]] = set()
        self._prefetch_slot = asyncio.Semaphore(1)
        #: Prefetch computations running now (not counted against --max-requests).
        self._prefetch_running = 0
        self._live_media_lock = threading.Lock()
        self._live_media_bytes = 0
        self._draining = asyncio.Event()

    # ------------------------------------------------------------------ lifecycle

    @property
    def active_streams(self) -> int:
        """Streams open now."""
        return len(self._live)

    def streams_of(self, owner: str) -> int:
        """Streams ``owner`` (an auth token's id) holds open now (every worker's)."""
        return self.ledger.of(owner)

    @property
    def active_requests(self) -> int:
        """Unary and batch calls being worked on now."""
        return self._active_requests

    @property
    def draining(self) -> bool:
        """Whether the server is shutting down."""
        return self._draining.is_set()

    async def wait_draining(self) -> None:
        """Return once :meth:`start_draining` has been called."""
        await self._draining.wait()

    def start_draining(self) -> None:
        """Refuse new work; live streams see :attr:`draining` and finish early."""
        self._draining.set()

    def _start_batching(self) -> BatchingAnalyzer | None:
        """Give the engine a dynamic batcher around its (instrumented) analyzer, if configured.

        Other engines than :class:`NumpyEngine` (test fakes) run unbatched.
        """
        config = self.config
        engine = self.engine
        if not config.batching_enabled or not isinstance(engine, NumpyEngine):
            return None
        from streamprint.engine.session import default_analyzer

        inner = engine.analyzer or default_analyzer()
        batcher = BatchingAnalyzer(
            inner,
            max_batch_frames=config.batch_max_frames,
            max_wait_s=config.batch_max_wait_ms / 1e3,
            observer=self.metrics.observe_batch,
        )
        engine.batcher = batcher
        return batcher

    def _start_whole_media_pool(self) -> ThreadPoolExecutor | None:
        """Worker threads whole-media passes share (``--whole-media-threads``).

        The compiled kernels (loudness filter, YIN, HPSS median) are loaded first: a build
        without them fails at start-up, not in the first stream; the modules a stream uses
        are imported then too (:func:`_import_stream_modules`).
        """
        if not isinstance(self.engine, NumpyEngine):
            return None
        from streamprint.engine import compiled

        compiled.warm_up()
        _import_stream_modules()
        threads = self.config.whole_media_threads or default_workers()
        pool = ThreadPoolExecutor(threads, thread_name_prefix="streamprint-whole-media")
        self.engine.whole_media_pool = pool
        return pool

    async def purge_expired_periodically(self) -> None:
        """Drop expired fingerprints and finished sessions every :data:`PURGE_EVERY_S`
        seconds: the stores expire lazily, at their next access, and an idle server would
        keep expired media (and its spill files) until then. Runs until cancelled."""
        while True:
            await asyncio.sleep(PURGE_EVERY_S)
            self.sessions.purge_expired()
            self.cache.purge_expired()

    def close(self) -> None:
        """Stop the worker pools (running jobs finish, queued ones are dropped)."""
        if self.batcher is not None:
            self.batcher.close()
        if self._whole_media_pool is not None:
            self._whole_media_pool.shutdown(wait=False, cancel_futures=True)
        for task in list(self._prefetching):
            with contextlib.suppress(RuntimeError):  # its loop is already closed
                task.cancel()
        self._stream_pool.shutdown(wait=False, cancel_futures=True)
        self._request_pool.shutdown(wait=False, cancel_futures=True)

    def _check_accepting(self) -> None:
        if self.draining:
            raise self.draining_error()

    def draining_error(self) -> ResourceLimitError:
        """What a call the drain cut short ends with: UNAVAILABLE, retry elsewhere."""
        return ResourceLimitError(
            "the server is shutting down; retry on another instance",
            limit="draining",
            retry_after_s=self.config.retry_after_s,
        )

    async def run_stream_work(self, fn: Callable[..., T], *args: object, deferred: bool = False) -> T:
        """Run ``fn(*args)`` on the stream worker pool (inside the batcher's ``working`` scope);
        ``deferred`` work (a stream's end) yields to the live chunks queued beside it."""
        work = functools.partial(fn, *args)
        if self.batcher is not None:
            work = functools.partial(_in_scope, self.batcher.working, work)
        if deferred:
            return await asyncio.wrap_future(self._stream_pool.submit_deferred(work))
        return await asyncio.get_running_loop().run_in_executor(self._stream_pool, work)

    async def _run_request_work(self, fn: Callable[..., T], *args: object) -> T:
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(self._request_pool, functools.partial(fn, *args))

    # ------------------------------------------------------------------ live-media budget

    def reserve_live_media(self, stream: LiveStream, nbytes: int) -> bool:
        """Account ``nbytes`` more media kept by a live stream; ``False`` if over budget.

        Live streams together keep at most ``--session-store-max-bytes`` (each at most
        ``--session-retain-max-bytes``), so kept media never grows without bound.
        """
        with self._live_media_lock:
            if stream._released:
                return False
            if self._live_media_bytes + nbytes > self.config.session_store_max_bytes:
                return False
            self._live_media_bytes += nbytes
            stream._kept_bytes += nbytes
            return True

    def release_live_media(self, stream: LiveStream, *, final: bool) -> None:
        """Return everything a stream reserved; ``final`` also refuses later reservations."""
        with self._live_media_lock:
            self._live_media_bytes -= stream._kept_bytes
            stream._kept_bytes = 0
            if final:
                stream._released = True

    @property
    def live_media_bytes(self) -> int:
        """Bytes of media live streams keep for validation now."""
        with self._live_media_lock:
            return self._live_media_bytes

    # ------------------------------------------------------------------ streams

    @asynccontextmanager
    async def open_stream(self, spec: StreamSpec, *, owner: str = "") -> AsyncIterator[LiveStream]:
        """Admit a stream (or raise RESOURCE_EXHAUSTED-style limits) for the ``with`` body.

        ``owner`` (an auth token's id; empty without token auth) is what
        ``--max-streams-per-token`` counts against.
        """
        self._check_accepting()
        quota = self.config.max_streams_per_token
        refusal = self.ledger.admit(owner, max_streams=self.config.max_streams, per_owner=quota)
        if refusal == "concurrent_streams":
            self.counters.streams_rejected += 1
            raise ResourceLimitError(
                f"the server is serving its maximum of {self.config.max_streams} streams; retry later",
                limit="concurrent_streams",
                retry_after_s=self.config.retry_after_s,
            )
        if refusal == "token_streams":
            self.counters.streams_rejected += 1
            raise ResourceLimitError(
                f"this token already holds its quota of {quota} open streams; "
                "retry when one has ended",
                limit="token_streams",
                retry_after_s=self.config.retry_after_s,
            )
        stream: LiveStream
        try:
            if spec.modality is dims.Modality.VIDEO:
                from streamprint.dataplane.video import VideoLiveStream

                stream = VideoLiveStream(self, spec)
            else:
                stream = LiveStream(self, spec)
        except BaseException:
            self.ledger.release(owner)
            raise
        self._live[stream.session_id] = stream
        self.counters.streams_started += 1
        ok = False
        try:
            yield stream
            ok = True
        finally:
            # counters and the media budget first, the slot last: whoever sees the stream
            # gone (active_streams) also sees how it ended
            if ok:
                self.counters.streams_completed += 1
            else:
                self.counters.streams_failed += 1
            stream.release()
            del self._live[stream.session_id]
            self.ledger.release(owner)

    # ------------------------------------------------------------------ unary and batch

    @asynccontextmanager
    async def _admit_request(self) -> AsyncIterator[None]:
        """A ``--max-requests`` slot for a call. Computations count too: one whose callers
        all went away (deadline, cancel) keeps running for the cache, and must not leave room
        for more work than the limit. The one validation prefetch does not count (it runs
        one at a time beside the calls, as documented)."""
        self._check_accepting()
        computations = len(self._inflight) - self._prefetch_running
        if max(self._active_requests, computations) >= self.config.max_requests:
            self.counters.requests_rejected += 1
            raise ResourceLimitError(
                f"the server is working on its maximum of {self.config.max_requests} requests; "
                "retry later",
                limit="concurrent_requests",
                retry_after_s=self.config.retry_after_s,
            )
        self._active_requests += 1
        self.counters.requests_started += 1
        try:
            yield
        finally:
            self._active_requests -= 1

    def check_batch(self, n: int) -> None:
        """Refuse a batch of ``n`` items: none (INVALID_ARGUMENT on ``items``) or more than
        ``--max-batch-items`` (RESOURCE_EXHAUSTED). Callers check before they read any item."""
        limit = self.config.max_batch_items
        if n == 0:
            raise InvalidInputError.for_field("items", "no items", f"1..{limit} items")
        if n > limit:
            raise ResourceLimitError(
                f"{n} items in one call; the limit is {limit}", limit="batch_items"
            )

    async def fingerprint(self, job: FingerprintJob) -> FingerprintResult:
        """Fingerprint whole media (cached by content)."""
        async with self._admit_request():
            return await self._fingerprint(job)

    async def fingerprint_batch(
        self, jobs: Sequence[FingerprintJob | BaseException]
    ) -> list[FingerprintResult | BaseException]:
        """Fingerprint many items; each result is a result or the exception of that item.

        ``jobs`` may hold exceptions (items that failed conversion); they pass through.
        """
        self.check_batch(len(jobs))
        async with self._admit_request():
            return await self._gather(jobs, self._fingerprint)

    async def validate(
        self,
        jobs: Sequence[ValidationJob | BaseException],
        similarity_threshold: float | None,
    ) -> list[ValidationOutcome | BaseException]:
        """Validate many items; each result is an outcome or the exception of that item."""
        self.check_batch(len(jobs))
        threshold = (
            DEFAULT_SIMILARITY_THRESHOLD if similarity_threshold is None else similarity_threshold
        )
        async with self._admit_request():
            return await self._gather(jobs, functools.partial(self._validate, threshold=threshold))

    async def _gather(
        self,
        jobs: Sequence[J | BaseException],
        work: Callable[[J], Awaitable[T]],
    ) -> list[T | BaseException]:
        """Run ``work`` on every job (at most one per worker thread at a time), in order."""
        limit = asyncio.Semaphore(self.config.effective_engine_threads)

        async def one(job: J | BaseException) -> T:
            if isinstance(job, BaseException):
                raise job
            async with limit:
                return await work(job)

        results: list[T | BaseException] = await asyncio.gather(
            *(one(j) for j in jobs), return_exceptions=True
        )
        for r in results:
            if isinstance(r, asyncio.CancelledError):
                raise r
        return results

    async def _fingerprint(self, job: FingerprintJob) -> FingerprintResult:
        known = self._known_digest(job.media)
        if known is not None:  # a server file hashed before and unchanged: no read, no hash
            known_key = self._job_key(job, known)
            # peek first: a miss is counted once, below, after the file is read
            if self.cache.peek(known_key) is not None:
                hit = self.cache.get(known_key)
                if hit is not None:
                    return FingerprintResult(hit, True, known)
        data, before = await self._load_with_stat(job.media)
        digest = await self._digest(data)
        if before is not None and job.media.server_path is not None:
            self.file_digests.remember(self._resolve(job.media.server_path), before, digest)
        key = self._job_key(job, digest)
        if job.modality is dims.Modality.VIDEO:
            from streamprint.dataplane import video

            work = functools.partial(
                video.compute,
                job.media,
                data,
                job.dimensions,
                self.config.max_media_s,
                analyzer=self.video.analyzer,
            )
        else:
            work = functools.partial(self._compute, data, job.media.format, job.dimensions)
        hit = self.cache.get(key)
        if hit is not None:
            return FingerprintResult(hit, True, digest)
        fingerprint = await self._single_flight(key, lambda: self._run_request_work(work))
        return FingerprintResult(fingerprint, False, digest)

    def _job_key(self, job: FingerprintJob, digest: str) -> str:
        """The cache key of ``job`` for media whose content hash is ``digest``."""
        if job.modality is dims.Modality.VIDEO:
            params = job.media.video.cache_params()
            return self._key(digest, params, job.dimensions, modality=job.modality)
        return self._key(digest, job.media.format.cache_params(), job.dimensions)

    def _known_digest(self, media: MediaInput) -> str | None:
        """The remembered content hash of a ``server_path`` file, if it is unchanged since."""
        if media.server_path is None or not self.config.media_root:
            return None
        try:
            path = self._resolve(media.server_path)
        except InvalidInputError:
            return None  # the normal path raises it with its field
        return self.file_digests.lookup(path)

    def _compute(self, data: bytes | memoryview, fmt: MediaFormat, dimensions: tuple[str, ...]) -> Fingerprint:
        media = self.engine.decode(data, fmt, max_seconds=self.config.max_media_s)
        return self.engine.fingerprint(media, dimensions)

    def _key(
        self,
        digest: str,
        params: dict[str, object],
        dimensions: tuple[str, ...],
        *,
        modality: dims.Modality = dims.Modality.AUDIO,
    ) -> str:
        if modality is dims.Modality.VIDEO:
            name, version = self.video.model, self.video.model_version
        else:
            model = self.engine.models()[0]
            name, version = model.name, model.version
        return fingerprint_key(
            digest,
            modality=modality.value,
            params={**params, "dimensions": list(dimensions)},
            algorithm=dims.algorithm_for(dimensions),
            model=name,
            model_version=version,
        )

    async def _single_flight(
        self, key: str, compute: Callable[[], Awaitable[Fingerprint]]
    ) -> Fingerprint:
        """Compute once per key at a time; the result goes into the cache."""
        task = self._inflight.get(key)
        if task is None:
            task = asyncio.ensure_future(compute())
            self._inflight[key] = task

            def done(t: asyncio.Task[Fingerprint]) -> None:
                self._inflight.pop(key, None)
                if not t.cancelled() and t.exception() is None:
                    self.cache.put(key, t.result())

            task.add_done_callback(done)
        return await asyncio.shield(task)

    async def _digest(self, data: bytes | memoryview) -> str:
        if len(data) >= _HASH_OFF_LOOP_BYTES:
            return await asyncio.to_thread(media_sha256, data)
        return media_sha256(data)

    async def _load_with_stat(
        self, media: MediaInput
    ) -> tuple[bytes | memoryview, os.stat_result | None]:
        """The media bytes, and for a ``server_path`` the file's ``stat`` before it was read."""
        if media.server_path is not None:
            path = self._resolve(media.server_path)
            return await asyncio.to_thread(self._read_file, path, media.server_path)
        if not media.data:
            raise InvalidInputError.for_field(
                "media.data", "no media bytes", "an encoded audio file, or raw PCM with its format"
            )
        return media.data, None

    def _media_root(self) -> Path:
        """``--media-root`` with symlinks resolved (once: ``Path.resolve`` stats every part)."""
        if self._resolved_root is None:
            self._resolved_root = Path(self.config.media_root).resolve()
        return self._resolved_root

    def _resolve(self, server_path: str) -> Path:
        if not self.config.media_root:
            raise InvalidInputError.for_field(
                "media.server_path",
                "server-side paths are disabled on this server",
                "media.data (or start the server with --media-root)",
            )
        if "\0" in server_path:
            raise InvalidInputError.for_field(
                "media.server_path", "the path contains a NUL character", "a path inside the media root"
            )
        root = self._media_root()
        path = Path(os.path.realpath(root / server_path))
        if not path.is_relative_to(root):
            raise InvalidInputError.for_field(
                "media.server_path",
                "the path leaves the media root",
                "a path inside the media root",
            )
        return path

    def _read_file(self, path: Path, requested: str) -> tuple[bytes, os.stat_result]:
        """The bytes and ``stat`` of the resolved ``path``; errors name the ``requested``
        server_path: NOT_FOUND for no such file (also a path through a file, or a symlink
        loop), INVALID_ARGUMENT for anything else the file system refuses."""
        try:
            before = path.stat()
            if not stat.S_ISREG(before.st_mode):
                raise InvalidInputError.for_field("media.server_path", "not a regular file")
            if before.st_size > self.config.max_message_bytes:
                raise ResourceLimitError(
                    f"the file holds {before.st_size} bytes; the limit is "
                    f"{self.config.max_message_bytes} bytes",
                    limit="media_bytes",
                )
            return path.read_bytes(), before
        except (FileNotFoundError, NotADirectoryError):
            raise MediaFileNotFoundError(requested) from None
        except OSError as exc:
            if exc.errno == errno.ELOOP:
                raise MediaFileNotFoundError(requested) from None
            raise InvalidInputError.for_field(
                "media.server_path",
                f"the server cannot read this path: {exc.strerror or exc}",
                "a readable regular file inside the media root",
            ) from None

    # ------------------------------------------------------------------ validation

    async def _validate(self, job: ValidationJob, *, threshold: float) -> ValidationOutcome:
        if job.session_id is not None:
            if job.session_id in self._live:
                raise SessionStateError(
                    f"session {job.session_id!r} is still streaming; validate it after its final update"
                )
            finished = self.sessions.get(job.session_id)
            candidate = dict(job.candidate) if job.candidate else dict(finished.final.values)
            covering = self._covering(finished, reference_dimensions(candidate))
            reference = self._cached_reference(covering)
            if reference is None:
                # a covering pass already running (a 25D check, a prefetch) is awaited, not repeated
                key, dimensions = next(((k, d) for k, d in covering if k in self._inflight), covering[0])
                reference = await self._single_flight(
                    key, lambda: self._run_request_work(self._session_reference, finished, dimensions)
                )
            digest = finished.media_sha256
        else:
            if job.media is None:
                raise InvalidInputError.for_field(
                    "reference", "neither a session id nor media", "session_id or media"
                )
            if not job.candidate:
                raise InvalidInputError.for_field(
                    "candidate",
                    "a candidate fingerprint is required with media",
                    "name/value pairs",
                )
            candidate = dict(job.candidate)
            from streamprint.dataplane.video import is_video_candidate

            reference_job = (
                FingerprintJob(job.media, dims.VIDEO_13D, dims.Modality.VIDEO)
                if is_video_candidate(list(candidate))
                else FingerprintJob(job.media, dims.AUDIO_25D)
            )
            result = await self._fingerprint(reference_job)
            reference, digest = result.fingerprint, result.media_sha256
        names = self._candidate_names(candidate, reference)
        report = await self._run_request_work(
            functools.partial(
                self.engine.validate,
                reference.values,
                candidate,
                names=names,
                similarity_threshold=threshold,
            )
        )
        return ValidationOutcome(
            report=report,
            similarity_threshold=threshold,
            reference_algorithm=reference.algorithm,
            media_sha256=digest,
            session_id=job.session_id or "",
        )

    def _reference_key(self, finished: FinishedSession, dimensions: tuple[str, ...]) -> str:
        """Cache key of a finished session's validation reference of ``dimensions`` (from its
        decoded media)."""
        return self._key(finished.media_sha256, {"encoding": "decoded"}, dimensions)

    def _covering(
        self, finished: FinishedSession, dimensions: tuple[str, ...]
    ) -> list[tuple[str, tuple[str, ...]]]:
        """``(key, dimensions)`` of the references of ``finished`` that cover ``dimensions``:
        its own first and, for the 13D set, the 25D one."""
        sets = [dimensions] if dimensions == dims.AUDIO_25D else [dimensions, dims.AUDIO_25D]
        return [(self._reference_key(finished, d), d) for d in sets]

    def _cached_reference(self, covering: list[tuple[str, tuple[str, ...]]]) -> Fingerprint | None:
        """The first cached reference of ``covering`` (from :meth:`_covering`; counts one hit
        or one miss)."""
        found = next((k for k, _ in covering if self.cache.peek(k) is not None), covering[0][0])
        return self.cache.get(found)

    def _session_reference(self, finished: FinishedSession, dimensions: tuple[str, ...]) -> Fingerprint:
        """The reference of ``dimensions`` of a finished session (worker thread: reading the
        kept media back, block by block as the pass consumes it, stays off the event loop)."""
        return self.engine.fingerprint(finished.analysis_blocks(), dimensions)

    def prefetch_reference(self, finished: FinishedSession) -> None:
        """Start computing ``finished``'s validation reference in the background
        (``--validation-prefetch``); it lands in the fingerprint cache.

        One prefetch runs at a time (the other request-pool threads stay free for calls), at
        most ``max_requests`` wait; past that, sessions are not prefetched (their validation
        computes the reference on demand as without the flag).
        """
        covering = self._covering(finished, reference_dimensions(finished.final.values))
        key, wanted = covering[0]
        session_id = finished.session_id
        del finished  # a waiting prefetch holds the id only: the store decides the media's life

        def known() -> bool:
            return any(k in self._inflight or self.cache.peek(k) is not None for k, _ in covering)

        if known() or len(self._prefetching) >= self.config.max_requests:
            return

        async def run() -> None:
            async with self._prefetch_slot:
                session = self.sessions.peek(session_id)
                if session is None or known():  # evicted, expired or cleared meanwhile; or done
                    return
                self._prefetch_running += 1
                try:
                    await self._single_flight(
                        key, lambda: self._run_request_work(self._session_reference, session, wanted)
                    )
                finally:
                    self._prefetch_running -= 1

        def done(t: asyncio.Task[None]) -> None:
            self._prefetching.discard(t)
            if not t.cancelled() and t.exception() is not None:
                log.warning(
                    "session %s: validation prefetch failed: %s", session_id, t.exception()
                )

        task = asyncio.ensure_future(run())
        self._prefetching.add(task)
        task.add_done_callback(done)

    @staticmethod
    def _candidate_names(candidate: dict[str, float], reference: Fingerprint) -> list[str]:
        bad = [n for n in candidate if n not in reference.values]
        if bad:
            raise InvalidInputError(
                f"candidate names not in the reference: {', '.join(bad)}",
                [
                    FieldViolation(
                        "candidate",
                        f"unknown or unsupported dimension {n!r}",
                        ", ".join(reference.values),
                    )
                    for n in bad
                ],
            )
        return list(dims.ordered(candidate))

    # ------------------------------------------------------------------ info and admin

    def info(self) -> ServerInfo:
        """The server's description (static registry aside)."""
        from streamprint.engine import decode, requests
        from streamprint.engine.video.grid import MAX_SIDE

        return ServerInfo(
            server_version=streamprint.__version__,
            component_versions={
                "streamprint": streamprint.__version__,
                "python": platform.python_version(),
                "numpy": np.__version__,
                "platform": f"{platform.system()}-{platform.machine()}",
                "cpus": str(os.cpu_count() or 0),
            },
            models=(*self.engine.models(), self._video_model()),
            container_formats=self.engine.container_formats(),
            config=self.config,
            min_update_interval_s=requests.MIN_UPDATE_INTERVAL_S,
            max_update_interval_s=requests.MAX_UPDATE_INTERVAL_S,
            min_sample_rate=decode.MIN_SAMPLE_RATE,
            max_sample_rate=decode.MAX_SAMPLE_RATE,
            max_channels=decode.MAX_CHANNELS,
            max_video_frame_side=MAX_SIDE,
            batching=self.batcher is not None,
        )

    def _video_model(self) -> ModelDescription:
        selection = self.video
        return ModelDescription(
            name=selection.model,
            version=selection.model_version,
            backend=selection.backend,
            precision=selection.precision,
            device=selection.device,
            selection_reason=selection.reason,
            modality=dims.Modality.VIDEO,
        )

    def clear_cache(self, *, include_sessions: bool) -> tuple[int, int]:
        """Empty the fingerprint cache (and the session store); counts removed."""
        removed_sessions = self.sessions.clear() if include_sessions else 0
        self.file_digests.clear()
        return self.cache.clear(), removed_sessions


def _import_stream_modules() -> None:
    """Import, at start-up, what the first audio stream would: the engine session with its
    accumulators and resampler (soxr), and the streaming decoders. About 35 ms of imports,
    mostly with the GIL held: in the first stream they would stall every other stream of
    the process, and the start-up GC freeze would not cover their objects."""
    import streamprint.engine.decode.streaming
    import streamprint.engine.session  # noqa: F401
