"""One ``/metrics`` for several worker processes: fetch each worker's text and merge it.

Each worker serves its own exposition (:class:`~streamprint.metrics.MetricsServer` on a unix
socket in the supervisor's run directory); the supervisor's ``--metrics-port`` fetches them
all at scrape time and adds them up sample by sample (same name, same labels). Gauges such
as ``streamprint_active_streams`` are read from each worker's live state, so their sum is
exact at scrape time. Exceptions: ``streamprint_draining`` is the largest of the workers'
values (1 while shutting down), ``*_created`` timestamps the earliest. Counters of a worker
that died are gone with it (its replacement starts from 0), which Prometheus' ``rate()``
reads as a counter reset.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Iterable, Sequence
from pathlib import Path

from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.core import Metric
from prometheus_client.parser import text_string_to_metric_families
from prometheus_client.registry import Collector

#: Gauges merged by taking the largest worker value instead of the sum.
MAX_MERGED = frozenset({"streamprint_draining"})

LabelKey = tuple[tuple[str, str], ...]


async def fetch(path: str | Path, timeout_s: float = 2.0) -> str | None:
    """``GET /metrics`` over the unix socket ``path``; ``None`` if the worker does not answer."""
    writer: asyncio.StreamWriter | None = None
    try:
        reader, opened = await asyncio.wait_for(asyncio.open_unix_connection(str(path)), timeout_s)
        writer = opened
        opened.write(b"GET /metrics HTTP/1.1\r\nHost: worker\r\nConnection: close\r\n\r\n")
        await opened.drain()
        raw = await asyncio.wait_for(reader.read(), timeout_s)
    except (OSError, TimeoutError):
        return None
    finally:
        if writer is not None:
            writer.close()
            with contextlib.suppress(Exception):
                await writer.wait_closed()
    head, _, body = raw.partition(b"\r\n\r\n")
    if not head.startswith(b"HTTP/1.1 200"):
        return None
    return body.decode()


def merge(texts: Iterable[str]) -> list[Metric]:
    """The metric families of several expositions, added up (see the module docstring)."""
    families: dict[str, Metric] = {}
    values: dict[str, dict[tuple[str, LabelKey], float]] = {}
    for text in texts:
        for family in text_string_to_metric_families(text):
            merged = families.get(family.name)
            if merged is None:
                merged = Metric(family.name, family.documentation, family.type, family.unit)
                families[family.name] = merged
                values[family.name] = {}
            acc = values[family.name]
            for sample in family.samples:
                key = (sample.name, tuple(sorted(sample.labels.items())))
                old = acc.get(key)
                if old is None:
                    acc[key] = sample.value
                elif sample.name.endswith("_created"):
                    acc[key] = min(old, sample.value)
                elif family.name in MAX_MERGED:
                    acc[key] = max(old, sample.value)
                else:
                    acc[key] = old + sample.value
    for name, family in families.items():
        for (sample_name, labels), value in values[name].items():
            family.add_sample(sample_name, dict(labels), value)
    return list(families.values())


class _Fixed(Collector):
    def __init__(self, families: Sequence[Metric]) -> None:
        self._families = families

    def collect(self) -> Iterable[Metric]:
        return list(self._families)


def render(families: Sequence[Metric]) -> bytes:
    """The Prometheus text exposition of ``families``."""
    registry = CollectorRegistry(auto_describe=False)
    registry.register(_Fixed(families))
    return generate_latest(registry)
