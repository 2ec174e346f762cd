"""`streamprint serve --workers 2`: two server processes on one port, real processes on 127.0.0.1.

Every client below opens its own HTTP/2 connection (a local subchannel pool), so the kernel
(SO_REUSEPORT) spreads them over the workers; which worker served a stream is read from its
session id (``w<index>-...``) and which one answered a call from GetServerInfo's ``worker`` and
``pid``. With two workers, 12 connections all landing on one worker has odds 2 / 2**12.
"""

from __future__ import annotations

import os
import re
import signal
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import grpc
import pytest
from e2e_harness import Server, tone_wav, wait_for
from grpc_health.v1 import health_pb2, health_pb2_grpc

from streamprint_client import StreamprintClient, StreamprintRpcError, StreamUpdate, validation_item

pytestmark = pytest.mark.slow

OWN_CONNECTION = [("grpc.use_local_subchannel_pool", 1)]
N_CLIENTS = 12


def client(address: str) -> StreamprintClient:
    """A client on its own connection (so it may land on either worker)."""
    return StreamprintClient(address, options=OWN_CONNECTION)


def worker_of(session_id: str) -> int:
    match = re.fullmatch(r"w(\d+)-[0-9a-f]{32}", session_id)
    assert match, session_id
    return int(match.group(1))


def stream_once(address: str, wav: Path, **kwargs: object) -> list[StreamUpdate]:
    with client(address) as c:
        return list(c.stream_file(wav, chunk_ms=200, **kwargs))  # type: ignore[arg-type]


@pytest.fixture(scope="module")
def wav(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("workers") / "tone.wav"
    path.write_bytes(tone_wav(4.0))
    return path


@pytest.fixture(scope="module")
def long_wav(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("workers") / "long.wav"
    path.write_bytes(tone_wav(60.0))
    return path


@pytest.fixture(scope="module")
def single() -> Iterator[Server]:
    server = Server()
    yield server
    server.kill()


@pytest.fixture(scope="module")
def pair() -> Iterator[Server]:
    server = Server("--workers", "2")
    yield server
    server.kill()


@pytest.fixture(scope="module")
def sessions(pair: Server, wav: Path) -> list[list[StreamUpdate]]:
    """The updates of N_CLIENTS streams of the same file on the two-worker server."""
    return [stream_once(pair.address, wav) for _ in range(N_CLIENTS)]


def test_one_line_says_where_and_which_workers(pair: Server) -> None:
    (line,) = [ln for ln in pair.log if "serving on" in ln]
    pids = {int(p) for p in re.search(r"pids ([\d,]+)", line).group(1).split(",")}  # type: ignore[union-attr]
    assert "workers 2" in line
    assert pids == set(pair.workers())
    answered: dict[str, str] = {}
    for _ in range(N_CLIENTS):
        with client(pair.address) as c:
            versions = c.server_info().component_versions
        assert versions["workers"] == "2"
        answered[versions["worker"]] = versions["pid"]
    assert set(answered) == {"0", "1"}, "both workers answer on the one port"
    assert {int(p) for p in answered.values()} == pids


def test_every_worker_freezes_its_startup_objects(pair: Server, single: Server) -> None:
    """Each serving process moves its start-up objects out of the collector's full passes
    (streamprint.gc_tuning), once it accepts calls."""
    def frozen(server: Server) -> dict[int, int]:
        found = (re.search(r"gc: (\d+) start-up objects of pid (\d+) frozen", ln) for ln in list(server.log))
        return {int(m.group(2)): int(m.group(1)) for m in found if m}

    assert wait_for(lambda: set(frozen(pair)) == set(pair.workers()), timeout=10), pair.log
    assert wait_for(lambda: set(frozen(single)) == {single.proc.pid}, timeout=10), single.log
    assert min([*frozen(pair).values(), *frozen(single).values()]) > 10_000


def test_backend_auto_is_measured_once_and_every_worker_runs_the_choice() -> None:
    """With ``--backend auto`` the supervisor times the candidates once, in a child process,
    and every worker loads that one runtime: the same bits whichever worker a connection
    lands on, and no worker holds another runtime's libraries."""
    server = Server("--workers", "2", "--backend", "auto", metrics=False)
    try:
        (measured,) = [ln for ln in server.log if "measured once for 2 workers" in ln]
        backend, precision = measured.split(": ")[-1].strip().split("/")
        spectral: dict[str, tuple[str, str, str]] = {}
        for _ in range(N_CLIENTS):
            with client(server.address) as c:
                info = c.server_info()
            (model,) = [m for m in info.models if m["name"].startswith("spectral-")]
            spectral[info.component_versions["worker"]] = (
                model["backend"], model["precision"], model["selection_reason"]
            )
        assert set(spectral) == {"0", "1"}
        assert {(b, p) for b, p, _ in spectral.values()} == {(backend, precision)}
        assert all("--backend auto" in reason for _, _, reason in spectral.values())
        others = {"onnxruntime", "openvino"} - {backend}
        for pid in server.workers():
            maps = Path(f"/proc/{pid}/maps").read_text()
            assert not [name for name in others if f"/{name}/" in maps], f"worker {pid} loaded {others}"
    finally:
        server.kill()


def test_streams_land_on_both_workers_with_the_finals_of_one_process(
    single: Server, sessions: list[list[StreamUpdate]], wav: Path
) -> None:
    reference = stream_once(single.address, wav)
    assert re.fullmatch(r"[0-9a-f]{32}", reference[-1].session_id), "one process: plain ids"
    assert {worker_of(s[-1].session_id) for s in sessions} == {0, 1}
    for updates in sessions:
        assert updates[-1].final
        assert [u.revision for u in updates] == [u.revision for u in reference]
        final, expected = updates[-1].fingerprint, reference[-1].fingerprint
        assert final.media_seconds == expected.media_seconds
        assert final.values == pytest.approx(expected.values, abs=1e-9)


def test_validation_by_session_id_works_on_whichever_worker_answers(
    single: Server, pair: Server, sessions: list[list[StreamUpdate]], wav: Path
) -> None:
    reference_id = stream_once(single.address, wav)[-1].session_id
    with StreamprintClient(single.address) as c:
        expected = c.validate_session(reference_id)
    ids = [s[-1].session_id for s in sessions]
    answered_by: set[str] = set()
    for k in range(2 * N_CLIENTS):  # each on a fresh connection, each session id in turn
        with client(pair.address) as c:
            answered_by.add(c.server_info().component_versions["worker"])
            report = c.validate_session(ids[k % len(ids)])
        assert report.passed == expected.passed
        assert report.similarity == pytest.approx(expected.similarity, abs=1e-9)
    assert answered_by == {"0", "1"}
    # one call naming sessions of both workers (and unknown ones): results in request order
    unknown = ["w1-" + "0" * 32, "w7-" + "0" * 32]
    with client(pair.address) as c:
        results = c.validate([validation_item(session_id=s) for s in [*ids, *unknown]])
    assert [r.index for r in results] == list(range(len(ids) + 2))
    assert [r.session_id for r in results] == [*ids, *unknown]
    for r in results[: len(ids)]:
        assert r.error is None and r.report is not None
        assert r.report.similarity == pytest.approx(expected.similarity, abs=1e-9)
    for r in results[len(ids) :]:
        assert r.error is not None and r.error.code is grpc.StatusCode.NOT_FOUND
    # an item's error names its place in the whole request, not in the part a worker got
    by_worker = {worker_of(s): s for s in ids}
    items = [
        validation_item(session_id=by_worker[0]),
        validation_item(session_id=by_worker[1], candidate={"no_such_dimension": 1.0}),
    ]
    with client(pair.address) as c:
        first, second = c.validate(items)
    assert first.error is None and second.error is not None
    assert second.error.code is grpc.StatusCode.INVALID_ARGUMENT
    assert [v.field for v in second.error.field_violations] == ["items[1].candidate[0].name"]


def test_cache_stats_and_clear_cover_every_worker(pair: Server, wav: Path) -> None:
    with client(pair.address) as c:
        c.clear_cache()
    seen: set[str] = set()
    for _ in range(N_CLIENTS):
        with client(pair.address) as c:
            seen.add(c.server_info().component_versions["worker"])
            c.fingerprint_file(wav)
    assert seen == {"0", "1"}
    with client(pair.address) as c:
        stats = c.cache_stats()["fingerprints"]
        assert stats.size == 2, "one entry in each worker's cache"
        assert stats.hits + stats.misses >= N_CLIENTS
        removed = c.clear_cache()
    assert removed["fingerprints_removed"] == 2
    with client(pair.address) as c:
        assert c.cache_stats()["fingerprints"].size == 0


def _hold(address: str, wav: Path, held: list[str], stop: threading.Event) -> None:
    """Stream ``wav`` in real time until ``stop`` (its session id goes into ``held``)."""
    with client(address) as c:
        call = c.stream_file(wav, chunk_ms=100, realtime=True)
        try:
            for update in call:
                if update.session_id not in held:
                    held.append(update.session_id)
                if stop.is_set():
                    call.cancel()
                    return
        except StreamprintRpcError:
            return


def test_max_streams_holds_across_workers(servers: list[Server], wav: Path, long_wav: Path) -> None:
    server = Server("--workers", "2", "--max-streams", "2")
    servers.append(server)
    held: list[str] = []
    stop = threading.Event()
    threads = [
        threading.Thread(target=_hold, args=(server.address, long_wav, held, stop), daemon=True)
        for _ in range(2)
    ]
    for t in threads:
        t.start()
    try:
        assert wait_for(lambda: len(held) == 2 and server.gauge() == 2, 15.0)
        refused_by: set[str] = set()
        for _ in range(N_CLIENTS):
            with client(server.address) as c:
                refused_by.add(c.server_info().component_versions["worker"])
                with pytest.raises(StreamprintRpcError) as info:
                    list(c.stream_file(wav, chunk_ms=200))
            assert info.value.code is grpc.StatusCode.RESOURCE_EXHAUSTED
            assert info.value.error_info_metadata["limit"] == "concurrent_streams"
        assert refused_by == {"0", "1"}, "both workers refuse: the limit is global"
    finally:
        stop.set()
        for t in threads:
            t.join(10)
    assert wait_for(lambda: server.gauge() == 0, 5.0)
    assert stream_once(server.address, wav)[-1].final, "slots are free again"


def test_sigterm_drains_every_worker(servers: list[Server], long_wav: Path) -> None:
    server = Server("--workers", "2", "--grace-s", "5")
    servers.append(server)
    watched: list[int] = []
    channels = [grpc.insecure_channel(server.address, options=OWN_CONNECTION) for _ in range(4)]
    watches = [
        health_pb2_grpc.HealthStub(ch).Watch(health_pb2.HealthCheckRequest()) for ch in channels
    ]

    def watcher(watch: object) -> None:
        try:
            for response in watch:  # type: ignore[attr-defined]
                watched.append(response.status)
        except grpc.RpcError:
            pass

    watch_threads = [threading.Thread(target=watcher, args=(w,), daemon=True) for w in watches]
    for t in watch_threads:
        t.start()
    results: dict[int, list[StreamUpdate]] = {}
    errors: list[BaseException] = []
    live_on: set[int] = set()  # workers serving a live stream

    def stream(i: int, started: threading.Event) -> None:
        updates: list[StreamUpdate] = []
        try:
            with client(server.address) as c:
                for update in c.stream_file(long_wav, chunk_ms=100, realtime=True):
                    updates.append(update)
                    if len(updates) == 1:
                        live_on.add(worker_of(update.session_id))
                        started.set()
            results[i] = updates
        except BaseException as exc:
            errors.append(exc)
            started.set()

    # At least 6 live streams, on fresh connections until both workers hold one (the kernel
    # spreads connections: 6 fixed ones all landed on one worker about 3 % of the time).
    threads: list[threading.Thread] = []

    def launch() -> threading.Event:
        started = threading.Event()
        threads.append(threading.Thread(target=stream, args=(len(threads), started), daemon=True))
        threads[-1].start()
        return started

    for started in [launch() for _ in range(6)]:
        assert started.wait(30)
    while live_on != {0, 1} and len(threads) < 24:
        assert launch().wait(30)
    assert not errors, errors
    n = len(threads)
    assert live_on == {0, 1}, "24 fresh connections all landed on one worker"
    assert server.gauge() == n
    sigterm_at = time.monotonic()
    server.proc.send_signal(signal.SIGTERM)
    code = server.proc.wait(15)
    exit_s = time.monotonic() - sigterm_at
    for t in [*threads, *watch_threads]:
        t.join(10)
    for ch in channels:
        ch.close()
    assert code == 0, "".join(server.log)
    assert exit_s < 10
    assert not errors, errors
    assert len(results) == n
    assert {worker_of(u[-1].session_id) for u in results.values()} == {0, 1}
    for updates in results.values():
        assert updates[-1].final, "each live stream got its final update"
        assert updates[-1].fingerprint.media_seconds < 30.0, "finished early, at the drain"
    assert health_pb2.HealthCheckResponse.NOT_SERVING in watched
    assert sum("draining" in line for line in server.log) == 2, "both workers drained"


def _sessions_on_both_workers(address: str, wav: Path) -> dict[int, str]:
    """A finished session id per worker (fresh connections until both served one)."""
    by_worker: dict[int, str] = {}
    for _ in range(3 * N_CLIENTS):
        sid = stream_once(address, wav)[-1].session_id
        by_worker.setdefault(worker_of(sid), sid)
        if len(by_worker) == 2:
            break
    assert set(by_worker) == {0, 1}
    return by_worker


def _validate_from_both_workers(address: str, session_id: str) -> set[grpc.StatusCode | None]:
    """Validate ``session_id`` on fresh connections until both workers answered; the outcomes."""
    outcomes: set[grpc.StatusCode | None] = set()
    answered: set[str] = set()
    for _ in range(3 * N_CLIENTS):
        with client(address) as c:
            answered.add(c.server_info().component_versions["worker"])
            (result,) = c.validate([validation_item(session_id=session_id)])
        outcomes.add(None if result.error is None else result.error.code)
    assert answered == {"0", "1"}
    return outcomes


def test_a_dead_worker_is_replaced(servers: list[Server], wav: Path) -> None:
    server = Server("--workers", "2")
    servers.append(server)
    before = _sessions_on_both_workers(server.address, wav)
    pids: dict[str, int] = {}
    for _ in range(3 * N_CLIENTS):
        with client(server.address) as c:
            versions = c.server_info().component_versions
            pids[versions["worker"]] = int(versions["pid"])
    assert set(pids) == {"0", "1"} and set(pids.values()) == set(server.workers())
    victim = pids["0"]
    os.kill(victim, signal.SIGKILL)
    assert wait_for(lambda: len(server.workers()) == 2 and victim not in server.workers(), 60.0), (
        server.log
    )
    assert wait_for(lambda: server.metric("streamprint_workers") == 2, 30.0)
    assert server.metric("streamprint_worker_restarts_total") == 1
    assert any("starting it again" in line for line in server.log)
    # the survivor's session still validates from either worker; the victim's is gone
    assert _validate_from_both_workers(server.address, before[1]) == {None}
    assert _validate_from_both_workers(server.address, before[0]) == {grpc.StatusCode.NOT_FOUND}
    # the replacement serves, and its sessions validate from either worker
    after = _sessions_on_both_workers(server.address, wav)
    assert _validate_from_both_workers(server.address, after[0]) == {None}
    assert server.proc.poll() is None


def test_token_quota_holds_across_workers_and_forwarding_keeps_the_token(
    servers: list[Server], tmp_path: Path, wav: Path, long_wav: Path
) -> None:
    tokens = tmp_path / "tokens.txt"
    tokens.write_text("user-token-1 user\nadmin-token-1 admin\n")
    server = Server("--workers", "2", "--auth-tokens", str(tokens), "--max-streams-per-token", "1")
    servers.append(server)

    def user() -> StreamprintClient:
        return StreamprintClient(server.address, token="user-token-1", options=OWN_CONNECTION)

    held: list[str] = []
    stop = threading.Event()

    def hold() -> None:
        with user() as c:
            call = c.stream_file(long_wav, chunk_ms=100, realtime=True)
            for update in call:
                held.append(update.session_id)
                if stop.is_set():
                    call.cancel()
                    return

    thread = threading.Thread(target=hold, daemon=True)
    thread.start()
    try:
        assert wait_for(lambda: bool(held), 15.0)
        refused_by: set[str] = set()
        for _ in range(N_CLIENTS):
            with user() as c:
                refused_by.add(c.server_info().component_versions["worker"])
                with pytest.raises(StreamprintRpcError) as info:
                    list(c.stream_file(wav, chunk_ms=200))
            assert info.value.error_info_metadata["limit"] == "token_streams"
        assert refused_by == {"0", "1"}, "both workers refuse: the quota is global"
        with StreamprintClient(
            server.address, token="admin-token-1", options=OWN_CONNECTION
        ) as c:  # another token is not held back
            assert list(c.stream_file(wav, chunk_ms=200))[-1].final
    finally:
        stop.set()
        thread.join(10)
    assert wait_for(lambda: server.gauge() == 0, 5.0), "the held stream has unwound"
    # fresh connections until both workers served one (the kernel spreads connections by
    # a hash: six fixed tries all landed on one worker about 3 % of the time)
    sessions = [stream_once_with(user, wav) for _ in range(2)]
    while {worker_of(s) for s in sessions} != {0, 1} and len(sessions) < 3 * N_CLIENTS:
        sessions.append(stream_once_with(user, wav))
    assert {worker_of(s) for s in sessions} == {0, 1}
    for k in range(N_CLIENTS):
        with user() as c:
            assert c.validate_session(sessions[k % len(sessions)]).similarity > 0.0
    with (
        StreamprintClient(server.address, options=OWN_CONNECTION) as c,
        pytest.raises(StreamprintRpcError) as denied,
    ):
        c.validate_session(sessions[0])
    assert denied.value.code is grpc.StatusCode.UNAUTHENTICATED


def stream_once_with(make: object, wav: Path) -> str:
    with make() as c:  # type: ignore[operator]
        return str(list(c.stream_file(wav, chunk_ms=200))[-1].session_id)


def test_workers_of_a_killed_supervisor_exit_and_remove_its_run_directory() -> None:
    """SIGKILL of the supervisor skips its cleanup: its run directory (sockets, ledger) was
    left in /tmp (six per test-suite run here). The orphaned workers, which drain and exit
    by themselves, now remove it."""
    import tempfile

    def run_dirs() -> set[Path]:
        return set(Path(tempfile.gettempdir()).glob("streamprint-workers-*"))

    before = run_dirs()
    server = Server("--workers", "2")
    try:
        mine = run_dirs() - before
        assert len(mine) == 1, mine
        workers = server.workers()
        assert len(workers) == 2
        server.kill()  # SIGKILL: the supervisor cannot clean up

        def exited() -> bool:
            return not any(Path(f"/proc/{pid}").exists() for pid in workers)

        assert wait_for(exited, 30.0)
        assert not any(d.exists() for d in mine), mine
    finally:
        server.kill()
