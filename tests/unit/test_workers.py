"""Pieces of `serve --workers N` that need no server: config, session ids, the shared stream
ledger (across real processes too), merged metrics and the port reservation."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest
from child import python_stdout
from prometheus_client.parser import text_string_to_metric_families

from streamprint.config import ServerConfig, default_workers
from streamprint.errors import InvalidInputError
from streamprint.metrics import ServerMetrics
from streamprint.subprocesses import python_child_env
from streamprint.workers import (
    LocalLedger,
    SharedLedger,
    WorkerRole,
    metrics_merge,
    owner_of_session,
)
from streamprint.workers.supervisor import Supervisor, WorkerStartError, _Worker, reserve_port

REPO = Path(__file__).resolve().parents[2]


# ----------------------------------------------------------------------------- config


def test_workers_default_to_one_process_and_auto_means_one_per_cpu() -> None:
    assert ServerConfig.from_sources({}, {}).effective_workers == 1
    auto = ServerConfig.from_sources({"workers": "auto"}, {})
    assert auto.workers == 0 and auto.effective_workers == default_workers()
    env = ServerConfig.from_sources({}, {"STREAMPRINT_WORKERS": "3"})
    assert env.effective_workers == 3
    assert ServerConfig.from_sources({"workers": "2"}, {"STREAMPRINT_WORKERS": "3"}).workers == 2
    threads = ServerConfig.from_sources({}, {"STREAMPRINT_ENGINE_THREADS": "5"})
    assert threads.effective_engine_threads == 5 and threads.effective_workers == 1


@pytest.mark.parametrize("bad", ["two", "-1", "1.5"])
def test_bad_workers_values_name_the_flag(bad: str) -> None:
    with pytest.raises(InvalidInputError, match="--workers"):
        ServerConfig.from_sources({"workers": bad}, {})


# ----------------------------------------------------------------------------- session ids


def test_session_ids_name_their_worker() -> None:
    role = WorkerRole(index=3, count=4, run_dir="/tmp/x", parent_pid=1)
    sid = role.session_prefix + "a" * 32
    assert owner_of_session(sid) == 3
    assert owner_of_session("a" * 32) is None, "one process: plain hex ids"
    assert owner_of_session("w1-" + "g" * 32) is None
    assert owner_of_session("w1-" + "a" * 31) is None
    assert role.peer_socket(0) != role.peer_socket(1) != role.metrics_socket(1)


# ----------------------------------------------------------------------------- ledgers


def test_local_ledger_limits_and_release() -> None:
    ledger = LocalLedger()
    assert ledger.admit("", max_streams=2, per_owner=0) is None
    assert ledger.admit("tok-a", max_streams=2, per_owner=1) is None
    assert ledger.admit("tok-b", max_streams=2, per_owner=1) == "concurrent_streams"
    ledger.release("")
    assert ledger.admit("tok-a", max_streams=2, per_owner=1) == "token_streams"
    assert ledger.admit("tok-b", max_streams=2, per_owner=1) is None
    assert (ledger.total(), ledger.of("tok-a"), ledger.of("tok-b")) == (2, 1, 1)
    ledger.release("tok-a")
    ledger.release("tok-b")
    assert (ledger.total(), ledger.of("tok-a")) == (0, 0)


def test_shared_ledger_counts_every_worker(tmp_path: Path) -> None:
    path = tmp_path / "streams.ledger"
    owners = ("tok-a", "tok-b")
    boss = SharedLedger.create(path, workers=2, owners=owners)
    w0 = SharedLedger(path, workers=2, owners=owners, row=0)
    w1 = SharedLedger(path, workers=2, owners=owners, row=1)
    assert w0.admit("tok-a", max_streams=3, per_owner=1) is None
    assert w1.admit("tok-a", max_streams=3, per_owner=1) == "token_streams", "quota is global"
    assert w1.admit("tok-b", max_streams=3, per_owner=1) is None
    assert w1.admit("", max_streams=3, per_owner=1) is None
    assert w0.admit("", max_streams=3, per_owner=1) == "concurrent_streams", "limit is global"
    assert (boss.total(), boss.of("tok-a"), boss.row_total(1)) == (3, 1, 2)
    w0.release("tok-a")
    assert w1.admit("tok-a", max_streams=3, per_owner=1) is None
    assert boss.reset_row(1) == 3, "a dead worker's streams are forgotten"
    assert (boss.total(), w0.of("tok-a"), w0.of("tok-b")) == (0, 0, 0)
    with pytest.raises(RuntimeError):
        boss.admit("", max_streams=3, per_owner=0)
    for ledger in (boss, w0, w1):
        ledger.close()


_ADMIT_IN_ANOTHER_PROCESS = """
import sys
from streamprint.workers import SharedLedger
ledger = SharedLedger(sys.argv[1], workers=2, owners=(), row=1)
print(ledger.admit("", max_streams=2, per_owner=0), ledger.admit("", max_streams=2, per_owner=0))
"""


def test_shared_ledger_holds_across_processes(tmp_path: Path) -> None:
    path = tmp_path / "streams.ledger"
    boss = SharedLedger.create(path, workers=2, owners=())
    w0 = SharedLedger(path, workers=2, owners=(), row=0)
    assert w0.admit("", max_streams=2, per_owner=0) is None
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(REPO / "server"), *sys.path])}
    out = subprocess.run(
        [sys.executable, "-c", _ADMIT_IN_ANOTHER_PROCESS, str(path)],
        capture_output=True, text=True, env=env, timeout=60, check=True,
    ).stdout.split()  # fmt: skip
    assert out == ["None", "concurrent_streams"]
    assert boss.total() == 2 and boss.row_total(1) == 1
    boss.close()
    w0.close()


# ----------------------------------------------------------------------------- metrics


class _WorkerLife:
    """One life of a worker's metrics: what its ``/metrics`` shows as it goes on."""

    def __init__(self, active: int, draining: bool = False) -> None:
        from streamprint.cache import FingerprintCache, SessionStore
        from streamprint.dataplane.plane import Counters

        class Plane:
            """Just what the metrics collector reads."""

            def __init__(self) -> None:
                self.counters = Counters(streams_started=active)
                self.active_streams = active
                self.active_requests = 0
                self.live_media_bytes = 0
                self.draining = draining
                self.cache = FingerprintCache(max_entries=4, max_bytes=1 << 20, ttl_s=60.0)
                self.sessions = SessionStore(max_entries=4, max_bytes=1 << 20, ttl_s=60.0)

        self.metrics = ServerMetrics(Plane())  # type: ignore[arg-type]

    def observe(self, *latencies: float) -> _WorkerLife:
        for seconds in latencies:
            self.metrics.update_latency.observe(seconds)
        return self

    def text(self) -> str:
        return self.metrics.render().decode()


def _exposition(active: int, draining: bool, latencies: list[float]) -> str:
    return _WorkerLife(active, draining).observe(*latencies).text()


def _samples(text: str) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    return {
        (s.name, tuple(sorted(s.labels.items()))): s.value
        for family in text_string_to_metric_families(text)
        for s in family.samples
    }


def test_merged_metrics_add_up_the_workers() -> None:
    a = _exposition(3, False, [0.002, 0.02])
    b = _exposition(2, True, [0.2])
    merged = _samples(metrics_merge.render(metrics_merge.merge([a, b])).decode())
    assert merged[("streamprint_active_streams", ())] == 5
    assert merged[("streamprint_draining", ())] == 1, "draining: the largest, not the sum"
    assert merged[("streamprint_streams_total", (("outcome", "started"),))] == 5
    assert merged[("streamprint_update_latency_seconds_count", ())] == 3
    assert merged[("streamprint_update_latency_seconds_bucket", (("le", "0.025"),))] == 2
    assert merged[("streamprint_update_latency_seconds_sum", ())] == pytest.approx(0.222)
    one = _samples(metrics_merge.render(metrics_merge.merge([a])).decode())
    assert one == _samples(a), "one worker: its exposition unchanged"


# ----------------------------------------------------------------------------- the port


def test_reserve_port_refuses_a_port_in_use_and_holds_a_free_one() -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        with pytest.raises(OSError):
            reserve_port("127.0.0.1", taken.getsockname()[1])
    port, holder = reserve_port("127.0.0.1", 0)
    try:
        assert port > 0
        with socket.socket() as plain, pytest.raises(OSError):
            plain.bind(("127.0.0.1", port))  # held: nobody else takes it meanwhile
        with socket.socket() as worker:  # but a worker (SO_REUSEPORT) can listen on it
            worker.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
            worker.bind(("127.0.0.1", port))
            worker.listen()
    finally:
        holder.close()


# ----------------------------------------------------------------------------- logs


@pytest.mark.parametrize("fmt", ["text", "json"])
def test_worker_log_lines_name_the_worker(fmt: str) -> None:
    import io
    import json
    import logging

    from streamprint.session_log import configure_logging

    buf = io.StringIO()
    try:
        configure_logging("info", fmt, buf, worker=1)
        logging.getLogger("streamprint.test").info("hello")
        configure_logging("info", fmt, buf)
        logging.getLogger("streamprint.test").info("single")
    finally:
        configure_logging("warning", "text")
    tagged, plain = buf.getvalue().splitlines()
    if fmt == "json":
        assert json.loads(tagged)["worker"] == 1 and "worker" not in json.loads(plain)
    else:
        assert "streamprint.test[w1]: hello" in tagged and "streamprint.test: single" in plain


def test_the_supervisor_process_imports_no_numpy_grpc_or_engine() -> None:
    """`streamprint serve --workers N`'s own process only supervises: what it imports to
    parse the command line and run the workers keeps it small (numpy alone is about 12 MB
    resident; prometheus_client, about 4 MB, only with ``--metrics-port``)."""
    code = (
        "import sys\n"
        "import streamprint.cli, streamprint.serve_cli\n"
        "from streamprint.workers.supervisor import run_supervisor\n"
        "print(sorted({m.split('.')[0] for m in sys.modules}\n"
        "             & {'numpy', 'grpc', 'scipy', 'onnxruntime', 'prometheus_client'}),\n"
        "      sorted(m for m in sys.modules if m.startswith('streamprint.engine.') and m != 'streamprint.engine.dims'))\n"
    )
    assert python_stdout(code).split("\n")[0] == "[] []"


# ----------------------------------------------------------------------------- worker start-up


def _worker_like(code: str) -> _Worker:
    """A ``_Worker`` around a child running ``code`` with its ready pipe's write end as fd
    ``READY`` (what ``python -m streamprint.workers.process`` gets)."""
    from multiprocessing.connection import Connection

    receive, send = os.pipe()
    try:
        process = subprocess.Popen(
            [sys.executable, "-c", f"READY = {send}\n{code}"], pass_fds=(send,)
        )
    finally:
        os.close(send)
    return _Worker(0, process, Connection(receive, writable=False))


@pytest.mark.parametrize(
    ("code", "wanted"),
    [
        ("import sys; sys.exit(3)", "worker 0 exited while starting (exit code 3)"),
        (
            "from multiprocessing.connection import Connection\n"
            "Connection(READY, readable=False).send(('error', 'MODEL_ERROR: no model'))",
            "worker 0: MODEL_ERROR: no model",
        ),
        ("import time; time.sleep(30)", "worker 0 did not start within 0.5 s"),
    ],
    ids=["dies", "reports", "hangs"],
)
def test_a_worker_that_cannot_start_is_a_clear_start_error(code: str, wanted: str) -> None:
    """A worker that dies before its ready message (the pipe's end of file), reports an
    error, or says nothing in time: the supervisor's start-up error names it and why."""
    worker = _worker_like(code)
    try:
        with pytest.raises(WorkerStartError) as raised:
            Supervisor._wait_ready(worker, 0.5)
        assert raised.value.message == wanted
    finally:
        worker.process.kill()
        worker.join(5)
        worker.conn.close()


def test_a_worker_says_ready_with_its_pid() -> None:
    worker = _worker_like(
        "import os\n"
        "from multiprocessing.connection import Connection\n"
        "Connection(READY, readable=False).send(('ready', 1234, os.getpid()))"
    )
    try:
        Supervisor._wait_ready(worker, 10.0)
        assert worker.pid == worker.process.pid
    finally:
        worker.join(5)
        worker.conn.close()


def test_serve_with_workers_that_cannot_load_their_models_exits_with_the_reason(tmp_path: Path) -> None:
    """The real supervisor and workers: a models directory without the model is each
    worker's start-up error, and ``serve`` exits non-zero saying so (no hang, no restart
    loop)."""
    env = dict(python_child_env(), STREAMPRINT_MODELS_DIR=str(tmp_path))
    done = subprocess.run(
        [sys.executable, "-m", "streamprint", "serve", "--workers", "2", "--port", "0",
         "--backend", "onnxruntime", "--precision", "fp32"],
        env=env, capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert done.returncode != 0
    assert "worker" in done.stderr and "MODEL" in done.stderr, done.stderr[-2000:]


def test_merged_counters_never_go_down_when_a_worker_misses_a_scrape_or_restarts() -> None:
    """A worker too slow for the 2 s fetch, or restarted (its counters from 0), made the sum
    of counters drop, and Prometheus reads a drop as a reset: a spike of the whole sum."""
    carry = metrics_merge.CounterCarry()

    def scrape(*texts: str | None) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
        return _samples(metrics_merge.render(metrics_merge.merge(carry.texts(list(texts)))).decode())

    started = ("streamprint_streams_total", (("outcome", "started"),))
    count = ("streamprint_update_latency_seconds_count", ())
    active = ("streamprint_active_streams", ())
    a, b = _WorkerLife(3).observe(0.002, 0.02).text(), _WorkerLife(2).observe(0.2).text()
    both = scrape(a, b)
    assert both[started] == 5 and both[count] == 3 and both[active] == 5
    skipped = scrape(a, None)  # b did not answer: its counters as last seen, no gauges
    assert skipped[started] == 5 and skipped[count] == 3 and skipped[active] == 3
    time.sleep(0.01)  # a new process life starts later
    new_life = _WorkerLife(1).observe(0.5)  # b restarted: counters from 0
    restarted = scrape(a, new_life.text())
    assert restarted[started] == 6 and restarted[count] == 4 and restarted[active] == 4
    again = scrape(a, new_life.observe(0.6).text())  # the new life goes on
    assert again[count] == 5 and again[started] == 6


def test_a_restarted_worker_whose_counters_overtake_its_old_ones_is_still_a_new_life() -> None:
    """Restarts were seen only as counters going back: a new life that counted past the old
    totals before the next scrape lost the old life's totals (the sum jumped back)."""
    carry = metrics_merge.CounterCarry()

    def scrape(text: str) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
        return _samples(metrics_merge.render(metrics_merge.merge(carry.texts([text]))).decode())

    count = ("streamprint_update_latency_seconds_count", ())
    first = _WorkerLife(1)
    assert scrape(first.observe(0.1, 0.1).text())[count] == 2
    time.sleep(0.01)  # a new process life starts later
    second = _WorkerLife(1)
    merged = scrape(second.observe(0.1, 0.1, 0.1).text())
    assert merged[count] == 5, "2 carried + 3 new"
    assert merged[("streamprint_start_time_seconds", ())] == first.metrics.started_at


def test_the_merged_start_time_is_when_the_merged_counters_started_and_never_moves() -> None:
    """The merged start time was the smallest of the workers answering now: it moved forward
    when the oldest worker restarted (its totals carried on) and back and forth when one
    missed a scrape."""
    carry = metrics_merge.CounterCarry()
    key = ("streamprint_start_time_seconds", ())

    def start(*texts: str | None) -> float:
        return _samples(metrics_merge.render(metrics_merge.merge(carry.texts(list(texts)))).decode())[key]

    a = _WorkerLife(1)
    time.sleep(0.01)
    b = _WorkerLife(1)
    assert start(a.text(), b.text()) == a.metrics.started_at
    time.sleep(0.01)
    a2 = _WorkerLife(1)  # the oldest worker restarted
    assert start(a2.text(), b.text()) == a.metrics.started_at
    assert start(None, b.text()) == a.metrics.started_at  # it missed a scrape
    assert start(a2.text(), None) == a.metrics.started_at


def test_a_series_the_new_life_has_not_recreated_keeps_its_total() -> None:
    """A labelled counter child exists only once used: after a restart, the old life's
    ``sessions_ended{code="INVALID_ARGUMENT"}`` left the sum until it was seen again."""
    carry = metrics_merge.CounterCarry()
    other, old = _WorkerLife(0), _WorkerLife(0)
    other.metrics.sessions_ended.labels(code="INVALID_ARGUMENT").inc(5)
    old.metrics.sessions_ended.labels(code="INVALID_ARGUMENT").inc(3)
    key = ("streamprint_sessions_ended_total", (("code", "INVALID_ARGUMENT"),))

    def scrape(*texts: str) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
        return _samples(metrics_merge.render(metrics_merge.merge(carry.texts(list(texts)))).decode())

    assert scrape(other.text(), old.text())[key] == 8
    time.sleep(0.01)
    new = _WorkerLife(0)
    new.metrics.sessions_ended.labels(code="OK").inc()
    after = scrape(other.text(), new.text())
    assert after[key] == 8, "the old life's 3 stay in the sum"
    assert after[("streamprint_sessions_ended_total", (("code", "OK"),))] == 1
    new.metrics.sessions_ended.labels(code="INVALID_ARGUMENT").inc()
    assert scrape(other.text(), new.text())[key] == 9
    time.sleep(0.01)  # a third life: the carried series carry on again
    assert scrape(other.text(), _WorkerLife(0).text())[key] == 9
