"""Prometheus metrics (prometheus-client) and per-session statistics; no gRPC here.

Every :class:`~streamprint.dataplane.DataPlane` owns one :class:`ServerMetrics` with its own
:class:`~prometheus_client.CollectorRegistry` (so several servers in one process, as in the
tests, never mix their numbers). ``--metrics-port`` serves it over plain HTTP
(:class:`MetricsServer`, ``GET /metrics``).

Two kinds of series:

* read from the data plane at scrape time (:class:`_PlaneCollector`): gauges such as
  ``streamprint_active_streams`` are exact (the number of open streams, disconnects
  included, as soon as a stream's handler has unwound), and the cache counters come
  straight from the caches' own statistics;
* recorded as things happen: update latency and time-to-first-fingerprint histograms,
  inference batch sizes and seconds per backend (:class:`InstrumentedAnalyzer`, wrapped
  around the engine's frame analyzer), RPCs and errors by status code (fed by the api
  layer's interceptor), and stream totals.

The full list with meanings is in docs/observability.md.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Awaitable, Callable, Iterable, Iterator
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from prometheus_client import CollectorRegistry, Counter, Histogram, generate_latest
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

if TYPE_CHECKING:  # (numpy for annotations only: the supervisor imports this module)
    import numpy as np
    from numpy.typing import NDArray

    from streamprint.dataplane import DataPlane
    from streamprint.engine.analysis import FrameAnalyzer, FrameDescriptors
    from streamprint.engine.fingerprint import Fingerprint

log = logging.getLogger("streamprint.metrics")

CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"

#: Gauge: when a data plane's counters started (see :class:`_PlaneCollector`).
START_TIME_METRIC = "streamprint_start_time_seconds"
#: Update latency: from the arrival of the message that completed an update to its send.
LATENCY_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0)
#: Wall-clock seconds from a stream's start to its first update.
FIRST_UPDATE_BUCKETS = (0.05, 0.1, 0.25, 0.5, 1.0, 1.5, 2.0, 3.0, 5.0, 10.0, 30.0, 60.0)
#: Media seconds a stream had sent when its first update left (target: <= 1.5 s).
FIRST_UPDATE_MEDIA_BUCKETS = (0.1, 0.25, 0.5, 0.75, 1.0, 1.25, 1.5, 2.0, 3.0, 5.0, 10.0)
#: Seconds per RPC (streams last as long as their media).
RPC_BUCKETS = (
    0.001, 0.005, 0.01, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 300.0, 3600.0,
)  # fmt: skip
#: Frames per analyzer call.
BATCH_BUCKETS = (1, 2, 4, 8, 16, 32, 64, 128, 256, 512, 1024, 4096, 16384)
#: Requests (session steps) per dynamic batch.
BATCH_REQUEST_BUCKETS = (1, 2, 3, 4, 6, 8, 12, 16, 24, 32, 64)
#: Seconds a request waited in the dynamic batcher before its batch ran.
BATCH_WAIT_BUCKETS = (0.0001, 0.00025, 0.0005, 0.001, 0.002, 0.005, 0.01, 0.025, 0.05, 0.1)
#: Seconds per analyzer call.
INFERENCE_BUCKETS = (
    0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 1.0,
)  # fmt: skip


@dataclass
class SessionStats:
    """What one live stream has done so far (mutated on the event loop only).

    ``started`` and the other instants are :func:`time.monotonic` seconds.
    """

    started: float = field(default_factory=time.monotonic)
    chunks: int = 0
    bytes_received: int = 0
    updates_sent: int = 0
    media_seconds: float = 0.0
    last_revision: int = 0
    first_update_s: float | None = None
    last_input_at: float | None = None

    def chunk_received(self, nbytes: int) -> None:
        """A chunk of ``nbytes`` arrived (call when it is read)."""
        self.chunks += 1
        self.bytes_received += nbytes
        self.last_input_at = time.monotonic()

    def input_ended(self) -> None:
        """The client half-closed (or the server began draining)."""
        self.last_input_at = time.monotonic()

    def duration_s(self) -> float:
        """Wall-clock seconds since the stream started."""
        return time.monotonic() - self.started

    def to_log_dict(self) -> dict[str, object]:
        """The totals, JSON-ready (the ``session end`` log line carries them)."""
        return {
            "chunks": self.chunks,
            "bytes": self.bytes_received,
            "updates": self.updates_sent,
            "media_seconds": round(self.media_seconds, 6),
            "duration_s": round(self.duration_s(), 6),
            "first_update_s": None
            if self.first_update_s is None
            else round(self.first_update_s, 6),
            "last_revision": self.last_revision,
        }


class ServerMetrics:
    """The metrics of one data plane (see the module docstring)."""

    def __init__(self, plane: DataPlane | None = None) -> None:
        self.registry = CollectorRegistry(auto_describe=False)
        #: Unix time (s) these metrics started counting: one value per process life, so a
        #: change tells the supervisor's merge that a worker was restarted.
        self.started_at = time.time()
        r = self.registry
        self.update_latency = Histogram(
            "streamprint_update_latency_seconds",
            "From the arrival of the chunk (or half-close) that completed an update to the "
            "update being sent.",
            buckets=LATENCY_BUCKETS,
            registry=r,
        )
        self.first_update = Histogram(
            "streamprint_time_to_first_fingerprint_seconds",
            "Wall-clock seconds from a stream's start to its first update.",
            buckets=FIRST_UPDATE_BUCKETS,
            registry=r,
        )
        self.first_update_media = Histogram(
            "streamprint_first_fingerprint_media_seconds",
            "Media seconds seen when a stream's first update was sent.",
            buckets=FIRST_UPDATE_MEDIA_BUCKETS,
            registry=r,
        )
        self.inference_batch = Histogram(
            "streamprint_inference_batch_frames",
            "Frames per call of the runtime backend's frame analyzer.",
            ["backend"],
            buckets=BATCH_BUCKETS,
            registry=r,
        )
        self.inference_seconds = Histogram(
            "streamprint_inference_seconds",
            "Seconds per call of the runtime backend's frame analyzer.",
            ["backend"],
            buckets=INFERENCE_BUCKETS,
            registry=r,
        )
        self.batch_requests = Histogram(
            "streamprint_batch_requests",
            "Requests (one session's frames each) per shared analyzer call of the dynamic "
            "batcher; its frames are in streamprint_inference_batch_frames.",
            buckets=BATCH_REQUEST_BUCKETS,
            registry=r,
        )
        self.batch_wait = Histogram(
            "streamprint_batch_wait_seconds",
            "Seconds a request waited in the dynamic batcher before its batch ran.",
            buckets=BATCH_WAIT_BUCKETS,
            registry=r,
        )
        self.rpcs = Counter(
            "streamprint_rpcs",
            "Finished RPCs by method and gRPC status code.",
            ["method", "code"],
            registry=r,
        )
        self.errors = Counter(
            "streamprint_errors",
            "RPCs that ended with a status other than OK, by method and status code.",
            ["method", "code"],
            registry=r,
        )
        self.rpc_seconds = Histogram(
            "streamprint_rpc_duration_seconds",
            "Wall-clock duration of RPCs by method.",
            ["method"],
            buckets=RPC_BUCKETS,
            registry=r,
        )
        self.stream_chunks = Counter(
            "streamprint_stream_chunks", "Chunks received by streams.", registry=r
        )
        self.stream_bytes = Counter(
            "streamprint_stream_received_bytes", "Chunk bytes received by streams.", registry=r
        )
        self.stream_media_seconds = Counter(
            "streamprint_stream_media_seconds",
            "Media seconds of finished streams (as far as their last update).",
            registry=r,
        )
        self.sessions_ended = Counter(
            "streamprint_sessions_ended",
            "Finished streams by final gRPC status code.",
            ["code"],
            registry=r,
        )
        if plane is not None:
            r.register(_PlaneCollector(plane, self.started_at))

    # ------------------------------------------------------------------ events

    def chunk_received(self, stats: SessionStats, nbytes: int) -> None:
        """A stream read a chunk of ``nbytes``."""
        stats.chunk_received(nbytes)
        self.stream_chunks.inc()
        self.stream_bytes.inc(nbytes)

    def update_sent(self, stats: SessionStats, update: Fingerprint) -> None:
        """A stream's update was handed to the transport."""
        now = time.monotonic()
        stats.updates_sent += 1
        stats.media_seconds = float(update.media_seconds)
        stats.last_revision = int(update.revision)
        if stats.last_input_at is not None:
            self.update_latency.observe(max(0.0, now - stats.last_input_at))
        if stats.first_update_s is None:
            stats.first_update_s = now - stats.started
            self.first_update.observe(stats.first_update_s)
            self.first_update_media.observe(stats.media_seconds)

    def session_ended(self, stats: SessionStats, code: str) -> None:
        """A stream ended with the gRPC status ``code`` (e.g. ``"OK"``, ``"CANCELLED"``)."""
        self.stream_media_seconds.inc(stats.media_seconds)
        self.sessions_ended.labels(code=code).inc()

    def rpc_finished(self, method: str, code: str, seconds: float) -> None:
        """An RPC ended with status ``code`` after ``seconds``."""
        self.rpcs.labels(method=method, code=code).inc()
        self.rpc_seconds.labels(method=method).observe(seconds)
        if code != "OK":
            self.errors.labels(method=method, code=code).inc()

    def observe_inference(self, backend: str, frames: int, seconds: float) -> None:
        """One analyzer call of ``frames`` frames took ``seconds`` (thread-safe)."""
        self.inference_batch.labels(backend=backend).observe(frames)
        self.inference_seconds.labels(backend=backend).observe(seconds)

    def observe_batch(self, frames: int, requests: int, waits_s: list[float]) -> None:
        """The dynamic batcher ran a batch of ``frames`` frames for ``requests`` requests,
        which had waited ``waits_s`` seconds each (thread-safe)."""
        del frames  # the inner analyzer's InstrumentedAnalyzer records the frames per call
        self.batch_requests.observe(requests)
        for wait in waits_s:
            self.batch_wait.observe(wait)

    def instrument(self, engine: object) -> None:
        """Wrap ``engine.analyzer`` (when the engine has one) in an :class:`InstrumentedAnalyzer`.

        Engines without a settable ``analyzer`` attribute (test fakes) are left alone.
        """
        if not hasattr(engine, "analyzer"):
            return
        analyzer: FrameAnalyzer | None = engine.analyzer
        if isinstance(analyzer, InstrumentedAnalyzer):
            return
        if analyzer is None:
            from streamprint.engine.session import default_analyzer

            analyzer = default_analyzer()
        engine.analyzer = InstrumentedAnalyzer(analyzer, self)

    def render(self) -> bytes:
        """The Prometheus text exposition of every series."""
        return generate_latest(self.registry)


class InstrumentedAnalyzer:
    """A frame analyzer that reports each call's frame count and seconds to :class:`ServerMetrics`.

    It forwards everything else (``name`` goes into fingerprints, so it must be unchanged).
    """

    def __init__(self, inner: FrameAnalyzer, metrics: ServerMetrics) -> None:
        self.inner = inner
        self.name = inner.name
        self.backend = str(getattr(inner, "backend", None) or inner.name or "unknown")
        self._metrics = metrics

    def analyze(self, frames: NDArray[np.float32]) -> FrameDescriptors:
        """Run the wrapped analyzer and record the call."""
        start = time.perf_counter()
        result = self.inner.analyze(frames)
        self._metrics.observe_inference(
            self.backend, int(frames.shape[0]), time.perf_counter() - start
        )
        return result

    def __getattr__(self, name: str) -> Any:
        return getattr(self.inner, name)


class _PlaneCollector(Collector):
    """Series read from the data plane's own state at scrape time."""

    def __init__(self, plane: DataPlane, started_at: float) -> None:
        self._plane = plane
        self._started_at = started_at

    def collect(self) -> Iterable[Metric]:
        return list(self._families())

    def _families(self) -> Iterator[Metric]:
        plane = self._plane
        c = plane.counters
        yield GaugeMetricFamily(
            START_TIME_METRIC,
            "Unix time (s) this server's counters started from 0 (the earliest worker's when merged).",
            value=self._started_at,
        )
        yield GaugeMetricFamily(
            "streamprint_active_streams", "Streams open now.", value=plane.active_streams
        )
        yield GaugeMetricFamily(
            "streamprint_active_requests",
            "Unary and batch calls being worked on now.",
            value=plane.active_requests,
        )
        streams = CounterMetricFamily(
            "streamprint_streams", "Streams by outcome.", labels=["outcome"]
        )
        for outcome, value in (
            ("started", c.streams_started),
            ("completed", c.streams_completed),
            ("failed", c.streams_failed),
            ("rejected", c.streams_rejected),
        ):
            streams.add_metric([outcome], value)
        yield streams
        yield CounterMetricFamily(
            "streamprint_updates_sent", "Stream updates sent.", value=c.updates_sent
        )
        requests = CounterMetricFamily(
            "streamprint_requests", "Unary and batch calls by outcome.", labels=["outcome"]
        )
        requests.add_metric(["started"], c.requests_started)
        requests.add_metric(["rejected"], c.requests_rejected)
        yield requests
        stores = (("fingerprints", plane.cache.stats()), ("sessions", plane.sessions.stats()))
        for name, help_text, attr in (
            ("streamprint_cache_hits", "Cache lookups that hit.", "hits"),
            ("streamprint_cache_misses", "Cache lookups that missed.", "misses"),
            ("streamprint_cache_evictions", "Entries evicted by size bounds.", "evictions"),
            ("streamprint_cache_expirations", "Entries expired by TTL.", "expirations"),
        ):
            family = CounterMetricFamily(name, help_text, labels=["cache"])
            for store, stats in stores:
                family.add_metric([store], getattr(stats, attr))
            yield family
        for name, help_text, attr in (
            ("streamprint_cache_entries", "Live cache entries.", "size"),
            ("streamprint_cache_bytes", "Approximate bytes held by a cache.", "size_bytes"),
        ):
            gauge = GaugeMetricFamily(name, help_text, labels=["cache"])
            for store, stats in stores:
                gauge.add_metric([store], getattr(stats, attr))
            yield gauge
        yield GaugeMetricFamily(
            "streamprint_live_media_bytes",
            "Decoded media live streams keep for validation.",
            value=plane.live_media_bytes,
        )
        yield GaugeMetricFamily(
            "streamprint_draining", "1 while shutting down.", value=int(plane.draining)
        )


def render(plane: DataPlane) -> str:
    """The Prometheus text exposition of a data plane's metrics."""
    return plane.metrics.render().decode()


class MetricsServer:
    """A tiny HTTP server answering ``GET /metrics`` on the server's event loop.

    It serves ``plane``'s metrics, or what ``render`` returns (the supervisor of several
    worker processes merges theirs); on ``host:port``, or on the unix socket ``unix_path``
    (a worker's, read by its supervisor).
    """

    def __init__(
        self,
        plane: DataPlane | None = None,
        *,
        host: str = "127.0.0.1",
        port: int = 0,
        unix_path: str | None = None,
        render: Callable[[], Awaitable[bytes]] | None = None,
    ) -> None:
        if render is None:
            if plane is None:
                raise ValueError("MetricsServer needs a data plane or a render function")
            metrics = plane.metrics

            async def render_plane() -> bytes:
                return metrics.render()

            render = render_plane
        self._render = render
        self._host = host
        self._requested_port = port
        self._unix_path = unix_path
        self._server: asyncio.Server | None = None
        self.port = 0

    async def start(self) -> None:
        """Listen (port 0: any free port; see :attr:`port`)."""
        if self._unix_path is not None:
            self._server = await asyncio.start_unix_server(self._handle, self._unix_path)
            return
        self._server = await asyncio.start_server(self._handle, self._host, self._requested_port)
        self.port = int(self._server.sockets[0].getsockname()[1])

    async def stop(self) -> None:
        """Stop listening."""
        if self._server is not None:
            self._server.close()
            with contextlib.suppress(Exception):
                await asyncio.wait_for(self._server.wait_closed(), timeout=1.0)
            self._server = None

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            request_line = await asyncio.wait_for(reader.readline(), timeout=5.0)
            while (await asyncio.wait_for(reader.readline(), timeout=5.0)) not in (
                b"\r\n",
                b"\n",
                b"",
            ):
                pass
            parts = request_line.decode("latin-1").split()
            if len(parts) >= 2 and parts[0] == "GET" and parts[1].split("?")[0] == "/metrics":
                body = await self._render()
                head = f"HTTP/1.1 200 OK\r\nContent-Type: {CONTENT_TYPE}\r\n"
            else:
                body = b"not found; try /metrics\n"
                head = "HTTP/1.1 404 Not Found\r\nContent-Type: text/plain\r\n"
            writer.write(
                f"{head}Content-Length: {len(body)}\r\nConnection: close\r\n\r\n".encode() + body
            )
            await writer.drain()
        except (TimeoutError, ConnectionError, UnicodeDecodeError):
            pass
        except Exception:  # pragma: no cover - never let a scrape kill the server
            log.exception("metrics request failed")
        finally:
            writer.close()
            with contextlib.suppress(Exception):
                await writer.wait_closed()
