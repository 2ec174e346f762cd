"""The whole-media fingerprint cache."""

from __future__ import annotations

import time
from collections.abc import Callable

from streamprint.cache.store import BoundedTTLCache, CacheStats
from streamprint.engine.fingerprint import Fingerprint

#: Fixed overhead of one cached fingerprint (object, dicts, strings), in bytes.
_ENTRY_OVERHEAD = 1024
#: Per dimension: a name in two dicts and two floats, in bytes.
_PER_DIMENSION = 200


def approx_fingerprint_bytes(fingerprint: Fingerprint) -> int:
    """Approximate memory held by a cached fingerprint (stable, not measured)."""
    return _ENTRY_OVERHEAD + _PER_DIMENSION * max(
        len(fingerprint.values), len(fingerprint.confidence)
    )


class FingerprintCache:
    """LRU + TTL cache of finished fingerprints keyed by :func:`~streamprint.cache.fingerprint_key`."""

    def __init__(
        self,
        *,
        max_entries: int,
        max_bytes: int,
        ttl_s: float,
        timer: Callable[[], float] = time.monotonic,
    ) -> None:
        self._store: BoundedTTLCache[str, Fingerprint] = BoundedTTLCache(
            max_size=max_entries,
            max_bytes=max_bytes,
            ttl_s=ttl_s,
            sizeof=approx_fingerprint_bytes,
            timer=timer,
        )

    def get(self, key: str) -> Fingerprint | None:
        """The cached fingerprint for ``key``, or ``None`` (counts a hit or a miss)."""
        return self._store.get(key)

    def peek(self, key: str) -> Fingerprint | None:
        """Like :meth:`get` without touching recency or the hit/miss counters."""
        return self._store.peek(key)

    def put(self, key: str, fingerprint: Fingerprint) -> None:
        """Cache ``fingerprint`` under ``key``."""
        self._store.put(key, fingerprint)

    def clear(self) -> int:
        """Drop every entry; returns how many there were."""
        return self._store.clear()

    def purge_expired(self) -> int:
        """Drop the expired entries now; how many."""
        return self._store.purge_expired()

    def stats(self) -> CacheStats:
        """Hits, misses, evictions, expirations, size and bounds."""
        return self._store.stats()

    @property
    def ttl_s(self) -> float:
        """Time to live of an entry, in seconds."""
        return self._store.stats().ttl_s
