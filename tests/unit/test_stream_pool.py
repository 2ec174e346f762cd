"""The stream worker pool: urgent work first, deferred work in the room left, never starved."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator

import pytest

from streamprint.dataplane.pool import StreamWorkPool


@pytest.fixture
def pool() -> Iterator[StreamWorkPool]:
    p = StreamWorkPool(1, name_prefix="test-stream", max_deferral_s=5.0)
    yield p
    p.shutdown(wait=True, cancel_futures=True)


def _blocked(pool: StreamWorkPool) -> threading.Event:
    """Occupy the pool's (only) thread until the returned event is set."""
    release, started = threading.Event(), threading.Event()

    def hold() -> None:
        started.set()
        release.wait(5)

    pool.submit(hold)
    assert started.wait(5)
    return release


def test_urgent_work_queued_after_deferred_work_runs_first(pool: StreamWorkPool) -> None:
    release = _blocked(pool)
    order: list[str] = []
    ends = [pool.submit_deferred(order.append, f"end{i}") for i in range(2)]
    chunks = [pool.submit(order.append, f"chunk{i}") for i in range(3)]
    release.set()
    for f in (*ends, *chunks):
        f.result(timeout=5)
    assert order == ["chunk0", "chunk1", "chunk2", "end0", "end1"]


def test_deferred_work_runs_at_once_on_an_idle_pool(pool: StreamWorkPool) -> None:
    start = time.monotonic()
    assert pool.submit_deferred(lambda: 42).result(timeout=5) == 42
    assert time.monotonic() - start < 1.0  # far below max_deferral_s


def test_deferred_work_is_not_starved_by_a_stream_of_urgent_work() -> None:
    pool = StreamWorkPool(1, name_prefix="test-stream", max_deferral_s=0.2)
    try:
        release = _blocked(pool)
        order: list[str] = []
        urgent = [pool.submit(lambda i=i: (time.sleep(0.01), order.append(f"chunk{i}"))) for i in range(60)]
        submitted = time.monotonic()
        ran_at: list[float] = []
        end = pool.submit_deferred(lambda: (ran_at.append(time.monotonic()), order.append("end")))
        release.set()
        end.result(timeout=10)
        for f in urgent:
            f.result(timeout=10)
        # it waited out its deferral behind the queued chunks, then ran ahead of the rest
        assert ran_at[0] - submitted >= 0.2
        assert order.index("end") < len(order) - 1, "the end waited for every chunk"
    finally:
        pool.shutdown(wait=True)


def test_one_deferred_item_at_a_time_and_urgent_work_keeps_a_thread() -> None:
    pool = StreamWorkPool(2, name_prefix="test-stream", max_deferral_s=5.0)
    try:
        release = threading.Event()
        running = threading.Event()
        seen: list[str] = []

        def long_end() -> None:
            running.set()
            release.wait(5)
            seen.append("end0")

        first = pool.submit_deferred(long_end)
        assert running.wait(5)
        second = pool.submit_deferred(seen.append, "end1")
        # the second thread stays free for live chunks while the first end runs
        assert pool.submit(lambda: "chunk").result(timeout=1) == "chunk"
        time.sleep(0.1)
        assert seen == []  # the second end waits for the first
        release.set()
        first.result(timeout=5)
        second.result(timeout=5)
        assert seen == ["end0", "end1"]
    finally:
        pool.shutdown(wait=True)


def test_errors_reach_the_caller_and_the_thread_goes_on(pool: StreamWorkPool) -> None:
    def boom() -> None:
        raise ValueError("bad chunk")

    with pytest.raises(ValueError, match="bad chunk"):
        pool.submit(boom).result(timeout=5)
    with pytest.raises(ValueError, match="bad chunk"):
        pool.submit_deferred(boom).result(timeout=5)
    assert pool.submit(lambda: "still serving").result(timeout=5) == "still serving"


def test_shutdown_cancels_queued_work_and_refuses_more() -> None:
    pool = StreamWorkPool(1, name_prefix="test-stream")
    release = _blocked(pool)
    queued = [pool.submit(lambda: 1), pool.submit_deferred(lambda: 2)]
    pool.shutdown(wait=False, cancel_futures=True)
    release.set()
    assert all(f.cancelled() for f in queued)
    with pytest.raises(RuntimeError, match="after shutdown"):
        pool.submit(lambda: 3)
    pool.shutdown(wait=True)
    assert not any(t.is_alive() for t in threading.enumerate() if t.name.startswith("test-stream"))


def test_shutdown_without_cancel_finishes_the_queued_work() -> None:
    pool = StreamWorkPool(1, name_prefix="test-stream")
    release = _blocked(pool)
    queued = [pool.submit(lambda: 1), pool.submit_deferred(lambda: 2)]
    release.set()
    pool.shutdown(wait=True)
    assert [f.result(timeout=0) for f in queued] == [1, 2]


def test_threads_are_named_and_counted() -> None:
    pool = StreamWorkPool(3, name_prefix="named-pool")
    try:
        names = {pool.submit(lambda: threading.current_thread().name).result(timeout=5) for _ in range(20)}
        assert names <= {"named-pool_0", "named-pool_1", "named-pool_2"}
    finally:
        pool.shutdown(wait=True)
    with pytest.raises(ValueError):
        StreamWorkPool(0, name_prefix="x")


@pytest.mark.parametrize("deferred", [False, True])
def test_an_idle_thread_keeps_nothing_of_its_last_work(pool: StreamWorkPool, deferred: bool) -> None:
    """The thread waiting for its next item held the last one (its arguments and result):
    for a stream's end, the whole kept media after the session store had dropped it."""
    import gc
    import weakref

    class Media:
        pass

    media = Media()
    gone = weakref.ref(media)
    submit = pool.submit_deferred if deferred else pool.submit
    future = submit(lambda m: m, media)
    assert future.result(timeout=5) is media
    del media, future
    time.sleep(0.05)  # the thread is back waiting for work
    gc.collect()
    assert gone() is None
