"""The supervisor of ``streamprint serve --workers N`` (N > 1): N server processes, one port.

Why processes: Python's GIL lets one server process use about one core for the per-chunk
work; N worker processes use N. Why one port with ``SO_REUSEPORT``: clients keep one address,
and the kernel spreads new connections over the workers' listening sockets (each HTTP/2
connection, and every stream on it, stays in one worker, so a stream's state never moves).

The supervisor (this module, the process ``streamprint serve`` started):

1. checks the port is free (binding it without ``SO_REUSEPORT``, which fails if anything
   listens there, another server's workers included); with port 0 that picks the port; then
   holds it with a bound, non-listening ``SO_REUSEPORT`` socket until the workers listen;
2. creates a private run directory (0700) with the shared stream ledger
   (:class:`~streamprint.workers.ledger.SharedLedger`: ``--max-streams`` and
   ``--max-streams-per-token`` hold across workers) and the workers' unix sockets;
3. starts the workers (``python -m streamprint.workers.process``, see
   :mod:`streamprint.workers.process`; each runs :func:`streamprint.api.server.serve` with
   its :class:`~streamprint.workers.WorkerRole`)
   and waits until every one accepts calls, then logs the same ``streamprint serving on
   HOST:PORT (...)`` line as a single process (scripts and tests read it);
4. serves ``--metrics-port`` itself: every worker's metrics, fetched and added up at scrape
   time (:mod:`streamprint.workers.metrics_merge`), plus ``streamprint_workers`` and
   ``streamprint_worker_restarts``;
5. on SIGTERM/SIGINT sends SIGTERM to every worker (each drains: health NOT_SERVING, live
   streams get their final update within ``--grace-s``) and exits 0 once all exited 0;
6. when a worker dies unexpectedly: zeroes its ledger row (its streams died with it) and
   starts a replacement with the same index (that worker's finished sessions are lost:
   validating them answers NOT_FOUND). More than ``MAX_RESTARTS`` deaths within
   ``RESTART_WINDOW_S`` seconds mean something is wrong: everything is stopped, exit 1.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import logging
import os
import pickle
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections import deque
from multiprocessing.connection import Connection, wait
from typing import TYPE_CHECKING, Any

from streamprint.auto_backend import select_in_child
from streamprint.config import ServerConfig
from streamprint.errors import StreamprintError
from streamprint.subprocesses import python_child_env
from streamprint.workers.ledger import SharedLedger
from streamprint.workers.role import WorkerRole

if TYPE_CHECKING:
    from streamprint.metrics import MetricsServer
    from streamprint.workers.metrics_merge import CounterCarry

log = logging.getLogger("streamprint.supervisor")

#: Seconds a worker may take to start (imports, models, binding).
START_TIMEOUT_S = 120.0
#: Deaths within :data:`RESTART_WINDOW_S` after which the supervisor gives up (exit 1).
MAX_RESTARTS = 5
RESTART_WINDOW_S = 60.0
#: Seconds a worker's exit waits for a stop signal before it counts as a death.
STOP_SETTLE_S = 0.5
#: Seconds on top of ``--grace-s`` the workers get to exit before they are killed.
EXIT_MARGIN_S = 5.0


class WorkerStartError(StreamprintError):
    """A worker process could not start (its own error message is passed on)."""

    reason = "WORKER_START_FAILED"


def reserve_port(host: str, port: int) -> tuple[int, socket.socket]:
    """Check ``host:port`` is free (port 0: pick one) and hold it for the workers.

    Returns the port and a bound, non-listening ``SO_REUSEPORT`` socket to close once the
    workers listen. Raises :class:`OSError` when the port is in use.
    """
    family, kind, proto, _, address = socket.getaddrinfo(
        host.strip("[]"), port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE
    )[0]
    with socket.socket(family, kind, proto) as probe:  # no SO_REUSEPORT: fails if in use
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        probe.bind(address)
        chosen = int(probe.getsockname()[1])
    holder = socket.socket(family, kind, proto)
    try:
        holder.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        holder.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
        holder.bind((address[0], chosen, *address[2:]))
    except OSError:
        holder.close()
        raise
    return chosen, holder


@dataclasses.dataclass
class _Worker:
    index: int
    process: subprocess.Popen[bytes]
    #: The read end of the worker's ready pipe (end of file: the worker is gone).
    conn: Connection
    pid: int = 0

    def alive(self) -> bool:
        return self.process.poll() is None

    def join(self, timeout_s: float | None = None) -> None:
        """Wait up to ``timeout_s`` (``None``: for ever) for the process to exit."""
        with contextlib.suppress(subprocess.TimeoutExpired):
            self.process.wait(timeout_s)


class Supervisor:
    """Runs ``config.effective_workers`` worker processes on ``config.address``."""

    def __init__(self, config: ServerConfig, *, owners: tuple[str, ...] = ()) -> None:
        self.config = config
        self.count = config.effective_workers
        self.owners = owners
        self.port = 0
        self.restarts = 0
        #: The ``--backend auto`` measurement every worker loads (``None``: not measured).
        self.audio_choice: dict[str, Any] | None = None
        self._workers: dict[int, _Worker] = {}
        self._run_dir = ""
        self._ledger: SharedLedger | None = None
        self._metrics: MetricsServer | None = None
        self._counter_carry: CounterCarry | None = None  # made with the first scrape
        self._deaths: deque[float] = deque()
        self._stopping = False

    # ------------------------------------------------------------------ workers

    def _role(self, index: int) -> WorkerRole:
        return WorkerRole(
            index=index,
            count=self.count,
            run_dir=self._run_dir,
            parent_pid=os.getpid(),
            owners=self.owners,
            audio_choice=self.audio_choice,
        )

    def _spawn(self, index: int) -> _Worker:
        receive, send = os.pipe()  # pass_fds makes the write end the worker's
        config = dataclasses.replace(self.config, port=self.port)
        try:
            process = subprocess.Popen(
                [sys.executable, "-m", "streamprint.workers.process", str(send)],
                stdin=subprocess.PIPE, pass_fds=(send,), env=python_child_env(),
            )
        except BaseException:
            os.close(receive)
            raise
        finally:
            os.close(send)
        assert process.stdin is not None
        # a worker that died at once breaks this pipe: its ready pipe's end of file says so
        with contextlib.suppress(BrokenPipeError), process.stdin as job:
            job.write(pickle.dumps((config, self._role(index))))
        worker = _Worker(index, process, Connection(receive, writable=False))
        self._workers[index] = worker
        return worker

    @staticmethod
    def _wait_ready(worker: _Worker, timeout_s: float) -> None:
        """Block until ``worker`` says it accepts calls (raises :class:`WorkerStartError`)."""
        ready = wait([worker.conn], timeout_s)
        message: object = None
        if worker.conn in ready:
            with contextlib.suppress(EOFError, OSError):
                message = worker.conn.recv()
        if isinstance(message, tuple) and message[0] == "ready":
            worker.pid = int(message[2])
            return
        if isinstance(message, tuple) and message[0] == "error":
            raise WorkerStartError(f"worker {worker.index}: {message[1]}")
        if not ready:
            raise WorkerStartError(f"worker {worker.index} did not start within {timeout_s:g} s")
        worker.join(5)
        raise WorkerStartError(
            f"worker {worker.index} exited while starting (exit code {worker.process.returncode})"
        )

    async def _start(self, index: int) -> _Worker:
        worker = self._spawn(index)
        loop = asyncio.get_running_loop()
        await loop.run_in_executor(None, self._wait_ready, worker, START_TIMEOUT_S)
        return worker

    async def _exited(self, worker: _Worker) -> _Worker:
        """Return once ``worker``'s process has exited."""
        loop = asyncio.get_running_loop()
        await loop.run_in_executor(None, worker.join)
        return worker

    def _signal_all(self, sig: int) -> None:
        for worker in self._workers.values():
            if worker.alive():
                with contextlib.suppress(ProcessLookupError):
                    worker.process.send_signal(sig)

    async def _stop_all(self) -> bool:
        """SIGTERM every worker, wait for the drain (kill after the grace); all exited 0?"""
        self._signal_all(signal.SIGTERM)
        loop = asyncio.get_running_loop()
        deadline = time.monotonic() + self.config.grace_s + EXIT_MARGIN_S
        clean = True
        for worker in list(self._workers.values()):
            left = max(0.1, deadline - time.monotonic())
            await loop.run_in_executor(None, worker.join, left)
            if worker.alive():
                log.warning("worker %d did not exit within the grace; killing it", worker.index)
                worker.process.kill()
                await loop.run_in_executor(None, worker.join, 5.0)
                clean = False
            elif worker.process.returncode != 0:
                log.warning("worker %d exited with code %s", worker.index, worker.process.returncode)
                clean = False
            worker.conn.close()
        return clean

    # ------------------------------------------------------------------ metrics

    async def _render_metrics(self) -> bytes:
        paths = [self._role(0).metrics_socket(i) for i in range(self.count)]
        # imported here: without --metrics-port the supervisor never loads prometheus_client
        from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily

        from streamprint.workers import metrics_merge

        texts = await asyncio.gather(*(metrics_merge.fetch(p) for p in paths))
        if self._counter_carry is None:
            self._counter_carry = metrics_merge.CounterCarry()
        families = metrics_merge.merge(self._counter_carry.texts(texts))
        families.append(
            GaugeMetricFamily(
                "streamprint_workers",
                "Worker processes answering metrics now (of --workers).",
                value=sum(t is not None for t in texts),
            )
        )
        families.append(
            CounterMetricFamily(
                "streamprint_worker_restarts",
                "Worker processes that died and were started again.",
                value=self.restarts,
            )
        )
        return metrics_merge.render(families)

    # ------------------------------------------------------------------ run

    async def run(self) -> int:
        """Start, serve until SIGTERM/SIGINT, drain; the exit code."""
        config = self.config
        self.port, holder = reserve_port(config.host, config.port)
        self._run_dir = tempfile.mkdtemp(prefix="streamprint-workers-")
        try:
            self._ledger = SharedLedger.create(
                self._role(0).ledger_path, workers=self.count, owners=self.owners
            )
            try:
                await self._measure_backend()
                await asyncio.gather(*(self._start(i) for i in range(self.count)))
            except WorkerStartError:
                await self._stop_all()
                raise
            finally:
                holder.close()
            return await self._serve()
        finally:
            if self._metrics is not None:
                await self._metrics.stop()
            if self._ledger is not None:
                self._ledger.close()
            shutil.rmtree(self._run_dir, ignore_errors=True)

    async def _measure_backend(self) -> None:
        """With ``--backend auto``: time the candidates once, in a child process, for every
        worker (each would otherwise measure its own, while the others start, and could pick
        another runtime: different bits, and different memory, per worker)."""
        config = self.config
        if config.backend != "auto":
            return
        loop = asyncio.get_running_loop()
        self.audio_choice = await loop.run_in_executor(
            None, select_in_child, config.backend, config.precision
        )
        if self.audio_choice is None:
            log.warning("runtime: measuring --backend auto failed; each worker selects for itself")
        else:
            log.info(
                "runtime: --backend auto measured once for %d workers: %s/%s",
                self.count, self.audio_choice["backend"], self.audio_choice["precision"],
            )

    async def _serve(self) -> int:
        config = self.config
        if config.metrics_port is not None:
            from streamprint.metrics import MetricsServer

            self._metrics = MetricsServer(
                host=config.host, port=config.metrics_port, render=self._render_metrics
            )
            await self._metrics.start()
        host = (
            f"[{config.host}]"
            if ":" in config.host and not config.host.startswith("[")
            else config.host
        )
        log.info(
            "streamprint serving on %s:%d (workers %d: pids %s; %s, %s, streams %d, engine "
            "threads %d per worker%s)",
            host,
            self.port,
            self.count,
            ",".join(str(w.pid) for w in sorted(self._workers.values(), key=lambda w: w.index)),
            ("mutual TLS" if config.tls_client_ca else "TLS") if config.tls else "plaintext",
            f"{len(self.owners)} auth tokens" if config.auth_tokens else "no auth",
            config.max_streams,
            config.effective_engine_threads,
            f", metrics on :{self._metrics.port}" if self._metrics else "",
        )
        loop = asyncio.get_running_loop()
        stop = asyncio.Event()
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, stop.set)
        failed = False
        try:
            failed = await self._watch(stop)
        finally:
            for sig in (signal.SIGTERM, signal.SIGINT):
                loop.remove_signal_handler(sig)
                signal.signal(sig, signal.SIG_IGN)  # the drain is under way: see it through
        log.info("stopping %d workers (grace %.1f s)", self.count, config.grace_s)
        clean = await self._stop_all()
        log.info("stopped")
        return 1 if failed or not clean else 0

    async def _watch(self, stop: asyncio.Event) -> bool:
        """Restart workers that die until ``stop`` is set; ``True`` if it gave up instead."""
        stopping: asyncio.Future[object] = asyncio.ensure_future(stop.wait())
        exits: dict[asyncio.Future[object], int] = {
            asyncio.ensure_future(self._exited(w)): w.index for w in self._workers.values()
        }
        try:
            while True:
                done, _ = await asyncio.wait(
                    {stopping, *exits}, return_when=asyncio.FIRST_COMPLETED
                )
                if stopping in done:
                    return False
                if any(t in done for t in exits):
                    # A Ctrl-C reaches the workers too: give the supervisor's own signal
                    # a moment to arrive before taking the exit for a death.
                    await asyncio.wait({stopping}, timeout=STOP_SETTLE_S)
                    if stopping.done():
                        return False
                for task in done:
                    index = exits.pop(task)
                    worker = self._workers[index]
                    if not self._may_restart(worker):
                        return True
                    try:
                        worker = await self._start(index)
                    except WorkerStartError as exc:
                        log.error("%s", exc.message)
                        return True
                    exits[asyncio.ensure_future(self._exited(worker))] = index
        finally:
            stopping.cancel()
            for task in exits:
                task.cancel()

    def _may_restart(self, worker: _Worker) -> bool:
        assert self._ledger is not None
        lost = self._ledger.reset_row(worker.index)
        worker.conn.close()
        now = time.monotonic()
        self._deaths.append(now)
        while self._deaths and now - self._deaths[0] > RESTART_WINDOW_S:
            self._deaths.popleft()
        if len(self._deaths) > MAX_RESTARTS:
            log.error(
                "worker %d (pid %s) exited with code %s; %d workers died within %g s: giving up",
                worker.index,
                worker.pid,
                worker.process.returncode,
                len(self._deaths),
                RESTART_WINDOW_S,
            )
            return False
        self.restarts += 1
        log.warning(
            "worker %d (pid %s) exited with code %s (%d live streams lost); starting it again",
            worker.index,
            worker.pid,
            worker.process.returncode,
            lost,
        )
        return True


def run_supervisor(config: ServerConfig) -> int:
    """``streamprint serve --workers N`` with N > 1: the exit code."""
    owners: tuple[str, ...] = ()
    if config.auth_tokens:
        from streamprint.api.server import load_tokens

        tokens = load_tokens(config)
        owners = tokens.ids if tokens is not None else ()
    if config.tls:  # unreadable TLS files: refuse here, once, rather than in every worker
        from streamprint.api.server import server_credentials

        server_credentials(config)
    return asyncio.run(Supervisor(config, owners=owners).run())
