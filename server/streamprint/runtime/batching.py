"""Dynamic batching: frames of all live sessions go through shared analyzer calls.

:class:`BatchingAnalyzer` wraps one :class:`~streamprint.engine.analysis.FrameAnalyzer`
(the *inner* one) and is shared by every live session of a server. A session's
``analyze(frames)`` call (``frames`` ``[n, 2048]`` float32) queues a request and blocks;
the queued requests of all sessions are grouped into one inner ``analyze`` call of at most
``max_batch_frames`` frames, whose output rows are split back to the callers.

How a batch is formed (no collector thread: the caller threads do the work):

* The oldest queued request's caller is the *leader*. It waits until the queue holds
  ``max_batch_frames`` frames, or ``max_wait_s`` has passed since its request arrived, or
  nobody else can add a request any more (see *work-conserving* below), or the batcher is
  closing; then it takes the batch, hands leadership to the oldest request left, and runs
  the inner call in its own thread. Several batches can therefore run at once (the inner
  analyzers are thread-safe), and no thread waits for a thread that may never run: a
  leader waits only for the clock, so a worker pool with fewer threads than sessions
  cannot deadlock.
* Fair: requests are taken in arrival order (FIFO), at most one per session per batch (a
  session's second request waits for the next batch, at the head of the queue, so it
  cannot starve or be starved); the oldest request is always taken, even when it alone
  exceeds ``max_batch_frames``; taking stops at the first request that does not fit.
* Work-conserving: callers that wrap their work in :meth:`BatchingAnalyzer.working` (the
  data plane wraps every stream work item) let the leader see when every such thread is
  already waiting in the batcher; then no one can join and the batch goes at once, so a
  lone stream never pays ``max_wait_s``. Without any ``working`` scope open, only the size
  and the clock end the wait.
* Errors: when the inner call fails, each request of the batch is re-run alone, so an
  exception reaches only the caller whose frames cause it and the others get their rows.
* Shutdown: :meth:`close` sends every queued request at once and later calls run the
  inner analyzer directly (unbatched), so sessions finishing during a drain still get
  their final results.

Results: a caller gets exactly the rows the inner analyzer computed for its frames inside
the batch. Whether those equal an unbatched call bit for bit depends on the inner
analyzer being row-independent: OpenVINO's CPU plugin is; numpy's BLAS and ONNX Runtime's
MLAS pick matmul kernels by the batch's row count, so their rows can differ in the last
float bits (see docs/runtime.md, "Dynamic batching").
"""

from __future__ import annotations

import contextlib
import itertools
import threading
import time
from collections import deque
from collections.abc import Callable, Iterator
from dataclasses import fields
from typing import Any

import numpy as np
from numpy.typing import NDArray

from streamprint.engine.analysis import FrameAnalyzer, FrameDescriptors
from streamprint.engine.fingerprint import REFERENCE_MODEL_VERSION
from streamprint.engine.grid import FRAME_LENGTH
from streamprint.errors import InvalidInputError

#: Defaults of ``--batch-max-frames`` / ``--batch-max-wait-ms`` (docs/benchmarks.md says why).
DEFAULT_MAX_BATCH_FRAMES = 256
DEFAULT_MAX_WAIT_MS = 2.0

#: ``observer(frames, requests, waits_s)`` after each batch: its frame count, how many
#: requests it served and how long each of them waited in the queue (seconds).
BatchObserver = Callable[[int, int, list[float]], None]

_keys = itertools.count(1)


class _Request:
    """One caller's frames, its session key, and the slot its result arrives in."""

    __slots__ = ("arrived", "done", "error", "frames", "key", "result", "wake")

    def __init__(self, frames: NDArray[np.float32], key: object, lock: threading.Lock) -> None:
        self.frames = frames
        self.key = key
        self.arrived = 0.0  # set from the batcher's clock when queued
        self.wake = threading.Condition(lock)
        self.done = False
        self.result: FrameDescriptors | None = None
        self.error: BaseException | None = None


class BatchingAnalyzer:
    """A shared :class:`FrameAnalyzer` that batches concurrent calls (see module docstring).

    ``name`` and the other attributes of the inner analyzer (``backend``, ``version`` ...)
    are forwarded, so fingerprints and model descriptions do not change.
    """

    def __init__(
        self,
        inner: FrameAnalyzer,
        *,
        max_batch_frames: int = DEFAULT_MAX_BATCH_FRAMES,
        max_wait_s: float = DEFAULT_MAX_WAIT_MS / 1e3,
        observer: BatchObserver | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        if max_batch_frames < 1:
            raise InvalidInputError.for_field("max_batch_frames", f"{max_batch_frames}", ">= 1")
        if not max_wait_s >= 0.0:
            raise InvalidInputError.for_field("max_wait_s", f"{max_wait_s}", ">= 0")
        self.inner = inner
        self.name = inner.name
        #: The inner analyzer's model version (fingerprints carry it).
        self.version: str = str(getattr(inner, "version", REFERENCE_MODEL_VERSION))
        self.max_batch_frames = max_batch_frames
        self.max_wait_s = max_wait_s
        self._observer = observer
        self._clock = clock
        self._lock = threading.Lock()
        self._queue: deque[_Request] = deque()
        self._queued_frames = 0
        self._leader: _Request | None = None
        self._working = 0
        self._parked = 0
        self._closed = False
        #: Batches run and requests served so far (for tests and benchmarks).
        self.batches = 0
        self.requests = 0

    # ------------------------------------------------------------------ the FrameAnalyzer API

    def analyze(self, frames: NDArray[np.float32]) -> FrameDescriptors:
        """Descriptors of ``frames`` ``[n, 2048]``, computed in a shared batch.

        Each call is its own session; sessions use :meth:`bind` so that the one-request-per-
        session-per-batch rule applies across their calls.
        """
        return self.submit(frames, object())

    def bind(self, key: object | None = None) -> SessionAnalyzer:
        """The analyzer one session uses: its calls share ``key`` (default: a fresh key)."""
        return SessionAnalyzer(self, next(_keys) if key is None else key)

    def submit(self, frames: NDArray[np.float32], key: object) -> FrameDescriptors:
        """Queue ``frames`` for session ``key``, wait for its batch, and return its rows."""
        if frames.ndim != 2 or frames.shape[1] != FRAME_LENGTH:
            raise InvalidInputError.for_field(
                "frames", f"shape {frames.shape}", f"[n, {FRAME_LENGTH}] float32"
            )
        if frames.shape[0] == 0 or self._closed:
            return self.inner.analyze(frames)
        request = _Request(frames, key, self._lock)
        with self._lock:
            if self._closed:  # closed since the check above
                batch = None
            else:
                request.arrived = self._clock()
                self._queue.append(request)
                self._queued_frames += frames.shape[0]
                if self._leader is None:
                    self._leader = request
                else:
                    self._leader.wake.notify()
                batch = self._park(request)
        if batch is None:
            return self.inner.analyze(frames)
        if batch:
            self._run(batch)
        if request.error is not None:
            raise request.error
        assert request.result is not None
        return request.result

    def __getattr__(self, name: str) -> Any:
        return getattr(self.inner, name)

    # ------------------------------------------------------------------ data-plane hooks

    @contextlib.contextmanager
    def working(self) -> Iterator[None]:
        """Scope of one unit of work (a stream's chunk) that may call :meth:`analyze`.

        While at least one scope is open, a leader sends its batch as soon as every thread
        inside a scope is waiting in the batcher (nobody else could join it).
        """
        with self._lock:
            self._working += 1
        try:
            yield
        finally:
            with self._lock:
                self._working -= 1
                if self._leader is not None:
                    self._leader.wake.notify()

    def close(self) -> None:
        """Send every queued request now; later calls run unbatched. Idempotent."""
        with self._lock:
            self._closed = True
            if self._leader is not None:
                self._leader.wake.notify()

    @property
    def closed(self) -> bool:
        return self._closed

    @property
    def queued(self) -> int:
        """Requests waiting for a batch now."""
        with self._lock:
            return len(self._queue)

    # ------------------------------------------------------------------ internals (lock held)

    def _park(self, request: _Request) -> list[_Request]:
        """Wait (lock held) until ``request`` has its result, or leads: then its batch."""
        self._parked += 1
        try:
            while True:
                if request.done:
                    return []
                if self._leader is request:
                    wait = self._leader_wait(request)
                    if wait <= 0.0:
                        return self._take()
                    request.wake.wait(wait)
                else:
                    request.wake.wait()
        finally:
            self._parked -= 1

    def _leader_wait(self, leader: _Request) -> float:
        """Seconds the leader may still wait; ``<= 0``: send the batch now."""
        if self._closed or self._queued_frames >= self.max_batch_frames:
            return 0.0
        if self._working and self._parked >= self._working:
            return 0.0  # every working thread waits here: no one can join
        return leader.arrived + self.max_wait_s - self._clock()

    def _take(self) -> list[_Request]:
        """Remove the next batch from the queue (FIFO, one request per key, frame budget)."""
        batch: list[_Request] = []
        keys: set[object] = set()
        frames = 0
        kept: list[_Request] = []
        queue = self._queue
        while queue:
            request = queue[0]
            n = request.frames.shape[0]
            if batch and frames + n > self.max_batch_frames:
                break
            queue.popleft()
            if request.key in keys:
                kept.append(request)  # the session already has a request in this batch
                continue
            keys.add(request.key)
            batch.append(request)
            frames += n
        queue.extendleft(reversed(kept))
        self._queued_frames -= frames
        self._leader = queue[0] if queue else None
        if self._leader is not None:
            self._leader.wake.notify()
        return batch

    # ------------------------------------------------------------------ running a batch

    def _run(self, batch: list[_Request]) -> None:
        """Run ``batch`` in one inner call (outside the lock) and hand out the rows.

        Whatever happens, every request of the batch ends done (with rows or an error), so
        no caller waits forever.
        """
        start = self._clock()
        waits = [max(0.0, start - r.arrived) for r in batch]
        outputs: list[FrameDescriptors | BaseException] = []
        try:
            if len(batch) == 1:
                outputs = [self._alone(batch[0].frames)]
            else:
                try:
                    joined = self.inner.analyze(np.concatenate([r.frames for r in batch]))
                    outputs = list(split(joined, [r.frames.shape[0] for r in batch]))
                except Exception:
                    outputs = [self._alone(r.frames) for r in batch]
        finally:
            with self._lock:
                for i, request in enumerate(batch):
                    output = outputs[i] if i < len(outputs) else None
                    if isinstance(output, FrameDescriptors):
                        request.result = output
                    else:
                        request.error = output or RuntimeError("the batch was interrupted")
                    request.done = True
                    request.wake.notify()
                self.batches += 1
                self.requests += len(batch)
        if self._observer is not None:
            self._observer(sum(r.frames.shape[0] for r in batch), len(batch), waits)

    def _alone(self, frames: NDArray[np.float32]) -> FrameDescriptors | BaseException:
        try:
            return self.inner.analyze(frames)
        except Exception as exc:
            return exc


class SessionAnalyzer:
    """One session's view of a :class:`BatchingAnalyzer` (its calls share one key)."""

    def __init__(self, batcher: BatchingAnalyzer, key: object) -> None:
        self.batcher = batcher
        self.key = key
        self.name = batcher.name

    def analyze(self, frames: NDArray[np.float32]) -> FrameDescriptors:
        """Descriptors of ``frames`` ``[n, 2048]`` from the session's next batch."""
        return self.batcher.submit(frames, self.key)

    def __getattr__(self, name: str) -> Any:
        return getattr(self.batcher.inner, name)


def split(descriptors: FrameDescriptors, sizes: list[int]) -> Iterator[FrameDescriptors]:
    """Cut ``descriptors`` into consecutive pieces of ``sizes`` rows (copies, not views, so
    a session keeping its rows does not keep the whole batch alive)."""
    names = [f.name for f in fields(FrameDescriptors) if f.name != "heads"]
    start = 0
    for n in sizes:
        heads = descriptors.heads
        yield FrameDescriptors(
            **{name: getattr(descriptors, name)[start : start + n].copy() for name in names},
            heads=None if heads is None else heads.rows(start, start + n),
        )
        start += n
