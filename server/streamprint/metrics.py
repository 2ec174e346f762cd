"""Prometheus metrics over plain HTTP (``--metrics-port``), without extra dependencies.

Values are read from the data plane at scrape time, so gauges such as
``streamprint_active_streams`` follow stream opens and closes (disconnects included) as
soon as the stream's handler has unwound.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from streamprint.cache import CacheStats
    from streamprint.dataplane import DataPlane

log = logging.getLogger("streamprint.metrics")

CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"


def render(plane: DataPlane) -> str:
    """The Prometheus text exposition of the data plane's state."""
    lines: list[str] = []

    def metric(name: str, kind: str, help_text: str, samples: list[tuple[str, float]]) -> None:
        lines.append(f"# HELP {name} {help_text}")
        lines.append(f"# TYPE {name} {kind}")
        for labels, value in samples:
            lines.append(f"{name}{labels} {value:g}")

    c = plane.counters
    metric("streamprint_active_streams", "gauge", "Streams open now.", [("", plane.active_streams)])
    metric(
        "streamprint_active_requests",
        "gauge",
        "Unary and batch calls being worked on now.",
        [("", plane.active_requests)],
    )
    metric(
        "streamprint_streams_total",
        "counter",
        "Streams by outcome.",
        [
            ('{outcome="started"}', c.streams_started),
            ('{outcome="completed"}', c.streams_completed),
            ('{outcome="failed"}', c.streams_failed),
            ('{outcome="rejected"}', c.streams_rejected),
        ],
    )
    metric(
        "streamprint_updates_sent_total", "counter", "Stream updates sent.", [("", c.updates_sent)]
    )
    metric(
        "streamprint_requests_total",
        "counter",
        "Unary and batch calls by outcome.",
        [
            ('{outcome="started"}', c.requests_started),
            ('{outcome="rejected"}', c.requests_rejected),
        ],
    )
    stores: list[tuple[str, CacheStats]] = [
        ("fingerprints", plane.cache.stats()),
        ("sessions", plane.sessions.stats()),
    ]
    for name, help_text, attr in (
        ("streamprint_cache_hits_total", "Cache lookups that hit.", "hits"),
        ("streamprint_cache_misses_total", "Cache lookups that missed.", "misses"),
        ("streamprint_cache_evictions_total", "Entries evicted by size bounds.", "evictions"),
        ("streamprint_cache_expirations_total", "Entries expired by TTL.", "expirations"),
    ):
        metric(
            name, "counter", help_text, [(f'{{cache="{n}"}}', getattr(s, attr)) for n, s in stores]
        )
    metric(
        "streamprint_cache_entries",
        "gauge",
        "Live cache entries.",
        [(f'{{cache="{n}"}}', s.size) for n, s in stores],
    )
    metric(
        "streamprint_cache_bytes",
        "gauge",
        "Approximate bytes held by a cache.",
        [(f'{{cache="{n}"}}', s.size_bytes) for n, s in stores],
    )
    metric(
        "streamprint_live_media_bytes",
        "gauge",
        "Decoded media live streams keep for validation.",
        [("", plane.live_media_bytes)],
    )
    metric("streamprint_draining", "gauge", "1 while shutting down.", [("", int(plane.draining))])
    return "\n".join(lines) + "\n"


class MetricsServer:
    """A tiny HTTP server answering ``GET /metrics``."""

    def __init__(self, plane: DataPlane, *, host: str, port: int) -> None:
        self._plane = plane
        self._host = host
        self._requested_port = port
        self._server: asyncio.Server | None = None
        self.port = 0

    async def start(self) -> None:
        """Listen (port 0: any free port; see :attr:`port`)."""
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
                body = render(self._plane).encode()
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
