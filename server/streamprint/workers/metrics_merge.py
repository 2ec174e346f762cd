"""One ``/metrics`` for several worker processes: fetch each worker's text and merge it.

Each worker serves its own exposition (:class:`~streamprint.metrics.MetricsServer` on a unix
socket in the supervisor's run directory); the supervisor's ``--metrics-port`` fetches them
all at scrape time and adds them up sample by sample (same name, same labels). Gauges such
as ``streamprint_active_streams`` are read from each worker's live state, so their sum is
exact at scrape time. Exceptions: ``streamprint_draining`` is the largest of the workers'
values (1 while shutting down); ``*_created`` timestamps and ``streamprint_start_time_seconds``
are the earliest.

Counters (and histogram / summary counts and sums) must never go down in the merged view:
Prometheus reads any decrease of a sum as a reset to 0 and shows the whole remaining sum as
a spike. :class:`CounterCarry` keeps each worker's last counter values: a worker that misses
a scrape contributes them and its start time (its other gauges are left out), and when a
worker was restarted (its ``streamprint_start_time_seconds`` changed) the totals of its
earlier life are carried on under its slot, series it has not recreated yet included, and
the slot keeps its first life's start time: the merged start time is when the merged
counters started from 0, and never moves.
"""

from __future__ import annotations

import asyncio
import contextlib
import math
from collections.abc import Iterable, Sequence
from pathlib import Path

from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.core import Metric
from prometheus_client.parser import text_string_to_metric_families
from prometheus_client.registry import Collector
from prometheus_client.samples import Sample

from streamprint.metrics import START_TIME_METRIC

#: Gauges merged by taking the largest worker value instead of the sum.
MAX_MERGED = frozenset({"streamprint_draining"})
#: Gauges merged by taking the smallest worker value: the earliest start.
MIN_MERGED = frozenset({START_TIME_METRIC})

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


#: Metric types whose samples (except ``*_created``) only grow.
_MONOTONIC_TYPES = frozenset({"counter", "histogram", "summary"})


def _sample_key(sample: Sample) -> tuple[str, LabelKey]:
    """A sample's identity across expositions: its name and its sorted labels."""
    return sample.name, tuple(sorted(sample.labels.items()))


def _monotonic(family: Metric, sample_name: str) -> bool:
    return family.type in _MONOTONIC_TYPES and not sample_name.endswith("_created")


class CounterCarry:
    """Per worker slot: the last counter samples seen and the totals of its earlier lives,
    so that merged counters never decrease (see the module docstring)."""

    def __init__(self) -> None:
        self._last: dict[int, str] = {}  # slot -> its last exposition, counters only
        self._offsets: dict[int, dict[tuple[str, LabelKey], float]] = {}
        self._started: dict[int, float] = {}  # slot -> its START_TIME_METRIC
        self._first_started: dict[int, float] = {}  # slot -> its first life's START_TIME_METRIC

    def texts(self, fetched: Sequence[str | None]) -> list[str]:
        """One exposition per slot for :func:`merge`: the fetched one with earlier lives'
        counter totals added, or, for a slot that did not answer, its last counters."""
        out: list[str] = []
        for slot, text in enumerate(fetched):
            if text is None:
                last = self._last.get(slot)
                if last is not None:
                    out.append(last)
                continue
            previous = _counter_samples(self._last[slot]) if slot in self._last else {}
            offsets = self._offsets.setdefault(slot, {})
            started = _start_time(text)
            if self._new_life(slot, text, started, previous, offsets):
                # the earlier lives' totals (offsets included) carry on under this slot
                offsets.clear()
                offsets.update(previous)
            if started is not None:  # the slot's counters started with its first life
                self._first_started.setdefault(slot, started)
            first = self._first_started.get(slot, math.inf)
            restated = started is not None and first < started
            carried = _with_offsets(text, offsets, self._last.get(slot), first) if offsets or restated else text
            self._last[slot] = _only_counters(carried)
            out.append(carried)
        return out

    def _new_life(
        self,
        slot: int,
        text: str,
        started: float | None,
        previous: dict[tuple[str, LabelKey], float],
        offsets: dict[tuple[str, LabelKey], float],
    ) -> bool:
        """Whether ``text`` (start time ``started``) is from a restarted worker: its start time
        changed or, for an exposition without one, a counter went back."""
        if started is not None:
            known = self._started.get(slot)
            self._started[slot] = started
            return known is not None and known != started
        return any(
            value < previous.get(key, 0.0) - offsets.get(key, 0.0)
            for key, value in _counter_samples(text).items()
        )


def _start_time(text: str) -> float | None:
    for family in text_string_to_metric_families(text):
        if family.name == START_TIME_METRIC and family.samples:
            return float(family.samples[0].value)
    return None


def _counter_samples(text: str) -> dict[tuple[str, LabelKey], float]:
    return {
        _sample_key(s): s.value
        for family in text_string_to_metric_families(text)
        for s in family.samples
        if _monotonic(family, s.name)
    }


def _with_offsets(
    text: str, offsets: dict[tuple[str, LabelKey], float], last: str | None, first_start: float
) -> str:
    """``text`` with ``offsets`` added to its counter samples and its start time the earlier
    ``first_start`` of its slot's first life (re-rendered). An earlier life's series that the
    new life has not recreated yet (a label value not seen since the restart) is kept at its
    carried total, its family as in ``last``."""
    families: dict[str, Metric] = {}
    present: set[tuple[str, LabelKey]] = set()
    for family in text_string_to_metric_families(text):
        fixed = families.setdefault(family.name, Metric(family.name, family.documentation, family.type, family.unit))
        for s in family.samples:
            key = _sample_key(s)
            value = s.value
            if _monotonic(family, s.name):
                present.add(key)
                value += offsets.get(key, 0.0)
            elif family.name == START_TIME_METRIC:
                value = min(value, first_start)
            fixed.add_sample(s.name, s.labels, value)
    if last is not None and offsets.keys() - present:
        for family in text_string_to_metric_families(last):
            for s in family.samples:
                key = _sample_key(s)
                if key in offsets and key not in present:
                    kept = families.setdefault(
                        family.name, Metric(family.name, family.documentation, family.type, family.unit)
                    )
                    kept.add_sample(s.name, s.labels, offsets[key])
    return render(list(families.values())).decode()


def _only_counters(text: str) -> str:
    """The counters of ``text``, and its start time (what a slot that misses a scrape shows)."""
    families = []
    for family in text_string_to_metric_families(text):
        if family.type not in _MONOTONIC_TYPES and family.name != START_TIME_METRIC:
            continue
        kept = Metric(family.name, family.documentation, family.type, family.unit)
        for s in family.samples:
            kept.add_sample(s.name, s.labels, s.value)
        families.append(kept)
    return render(families).decode()


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
                key = _sample_key(sample)
                old = acc.get(key)
                if old is None:
                    acc[key] = sample.value
                elif sample.name.endswith("_created") or family.name in MIN_MERGED:
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
