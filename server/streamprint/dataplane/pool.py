"""The stream worker pool: live chunks first, stream ends in the room that is left.

Every live stream's engine work runs on a few threads (``--engine-threads``), and it comes
in two kinds:

* **urgent**: decoding a chunk and the analysis and update it completes. A live client
  waits for that update in real time, and the update latency is what a streaming server is
  judged by;
* **deferred**: a stream's end (the last partial analysis, the final fingerprint, keeping
  its media for validation). The stream has stopped sending, its client waits once, and a
  fraction of a second more changes nothing for it.

A plain FIFO pool runs both in arrival order, on every thread at once. When many streams end
together their ends land between the other streams' last updates and delay them: with 256
streams on two workers that all end within one second (the load benchmark), the last
update of each stream took 88-172 ms (median) against 10-20 ms for every earlier one;
with the ends out of the way, 10-11 ms.

:class:`StreamWorkPool` therefore runs urgent work first, on any thread, and deferred work
one item at a time, on a thread that finds no urgent work queued. A deferred item never
waits more than ``max_deferral_s``: once that much older it runs ahead of urgent work, so
under a sustained overload stream ends are late by a bounded amount, never starved.
"""

from __future__ import annotations

import threading
import time
from collections import deque
from collections.abc import Callable
from concurrent.futures import Executor, Future
from dataclasses import dataclass, field
from typing import Any, ParamSpec, TypeVar

P = ParamSpec("P")
T = TypeVar("T")

#: Longest a deferred item waits for the urgent work ahead of it, seconds.
DEFAULT_MAX_DEFERRAL_S = 1.0


@dataclass
class _Item:
    future: Future[Any]
    fn: Callable[[], Any]
    deadline: float = field(default=0.0)

    def run(self) -> None:
        if not self.future.set_running_or_notify_cancel():
            return
        try:
            result = self.fn()
        except BaseException as exc:  # handed to the caller through its future
            self.future.set_exception(exc)
        else:
            self.future.set_result(result)


class StreamWorkPool(Executor):
    """``threads`` threads running urgent work first and deferred work in what is left.

    :meth:`submit` queues urgent work (what ``loop.run_in_executor`` calls);
    :meth:`submit_deferred` queues work that runs when a thread finds no urgent work queued
    and no other deferred item running, or once it has waited ``max_deferral_s``.
    """

    def __init__(
        self,
        threads: int,
        *,
        name_prefix: str,
        max_deferral_s: float = DEFAULT_MAX_DEFERRAL_S,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        if threads < 1:
            raise ValueError(f"threads must be at least 1, got {threads}")
        self.max_deferral_s = max_deferral_s
        self._clock = clock
        self._lock = threading.Condition()
        self._urgent: deque[_Item] = deque()
        self._deferred: deque[_Item] = deque()  # deadlines in submission order, so sorted
        self._deferred_running = 0
        self._shutdown = False
        self._threads = [
            threading.Thread(target=self._work, name=f"{name_prefix}_{i}", daemon=True) for i in range(threads)
        ]
        for thread in self._threads:
            thread.start()

    def submit(self, fn: Callable[P, T], /, *args: P.args, **kwargs: P.kwargs) -> Future[T]:
        """Queue urgent work; its future."""
        return self._queue(self._urgent, lambda: fn(*args, **kwargs), 0.0)

    def submit_deferred(self, fn: Callable[P, T], /, *args: P.args, **kwargs: P.kwargs) -> Future[T]:
        """Queue deferred work (see the class docs); its future."""
        return self._queue(self._deferred, lambda: fn(*args, **kwargs), self._clock() + self.max_deferral_s)

    def _queue(self, queue: deque[_Item], fn: Callable[[], T], deadline: float) -> Future[T]:
        future: Future[T] = Future()
        with self._lock:
            if self._shutdown:
                raise RuntimeError("cannot schedule new work after shutdown")
            queue.append(_Item(future, fn, deadline))
            self._lock.notify()
        return future

    def shutdown(self, wait: bool = True, *, cancel_futures: bool = False) -> None:
        """Stop taking work; ``cancel_futures`` cancels what is queued, ``wait`` joins the
        threads (after the queued work, unless cancelled)."""
        with self._lock:
            self._shutdown = True
            if cancel_futures:
                for item in (*self._urgent, *self._deferred):
                    item.future.cancel()
                self._urgent.clear()
                self._deferred.clear()
            self._lock.notify_all()
        if wait:
            for thread in self._threads:
                thread.join()

    def _next(self) -> tuple[_Item, bool] | None:
        """The next item for a thread (``True``: deferred), waiting for one; ``None`` once
        shut down with nothing queued."""
        with self._lock:
            while True:
                now = self._clock()
                overdue = bool(self._deferred) and self._deferred[0].deadline <= now
                if self._urgent and not overdue:
                    return self._urgent.popleft(), False
                if self._deferred and (overdue or (not self._urgent and self._deferred_running == 0)):
                    self._deferred_running += 1
                    return self._deferred.popleft(), True
                if self._shutdown and not self._urgent and not self._deferred:
                    return None
                self._lock.wait(self._deferred[0].deadline - now if self._deferred else None)

    def _work(self) -> None:
        while True:
            taken = self._next()
            if taken is None:
                return
            item, deferred = taken
            del taken
            item.run()
            # an idle thread must not keep its last item alive while it waits: for a stream's
            # end that is the whole kept media (and its open spill file) after the session
            # store has dropped it
            del item
            if deferred:
                with self._lock:
                    self._deferred_running -= 1
                    self._lock.notify()
