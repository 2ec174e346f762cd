"""A thread-safe LRU + TTL store bounded by entry count and by bytes, with statistics."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Hashable
from dataclasses import dataclass
from typing import Any, Generic, Literal, TypeVar

from cachetools import Cache, TTLCache

K = TypeVar("K", bound=Hashable)
V = TypeVar("V")

#: Why an entry left the store on its own: ``expired`` (TTL) or ``evicted`` (size bounds).
RemovalCause = Literal["expired", "evicted"]


@dataclass(frozen=True)
class CacheStats:
    """A snapshot of a store's counters and occupancy.

    ``size`` is the number of live entries, ``size_bytes`` their approximate bytes;
    ``evictions`` counts entries dropped to respect ``max_size``/``max_bytes``,
    ``expirations`` entries dropped because their TTL ran out.
    """

    hits: int
    misses: int
    evictions: int
    expirations: int
    size: int
    size_bytes: int
    max_size: int
    max_bytes: int
    ttl_s: float

    @property
    def hit_rate(self) -> float:
        """``hits / (hits + misses)``, 0.0 before the first lookup."""
        lookups = self.hits + self.misses
        return self.hits / lookups if lookups else 0.0

    def to_json_dict(self) -> dict[str, object]:
        """JSON-ready dict (snake_case keys, ``hit_rate`` included)."""
        return {
            "hits": self.hits,
            "misses": self.misses,
            "evictions": self.evictions,
            "expirations": self.expirations,
            "size": self.size,
            "size_bytes": self.size_bytes,
            "max_size": self.max_size,
            "max_bytes": self.max_bytes,
            "ttl_s": self.ttl_s,
            "hit_rate": round(self.hit_rate, 6),
        }


class _Backend(TTLCache[Any, Any]):
    """TTLCache that reports what leaves it and why."""

    def __init__(
        self,
        maxsize: int,
        ttl: float,
        timer: Callable[[], float],
        getsizeof: Callable[[Any], int],
        on_remove: Callable[[Any, Any, RemovalCause], None],
    ) -> None:
        super().__init__(maxsize=maxsize, ttl=ttl, timer=timer, getsizeof=getsizeof)
        self._on_remove = on_remove

    def expire(self, time: float | None = None) -> list[tuple[Any, Any]]:
        expired: list[tuple[Any, Any]] = super().expire(time)
        for key, value in expired:
            self._on_remove(key, value, "expired")
        return expired

    def popitem(self) -> tuple[Any, Any]:
        # cachetools calls popitem() to make room; it expires first, then drops the LRU entry.
        key, value = super().popitem()
        self._on_remove(key, value, "evicted")
        return key, value


class BoundedTTLCache(Generic[K, V]):
    """LRU + TTL mapping bounded by ``max_size`` entries and ``max_bytes`` bytes.

    ``sizeof(value)`` gives an entry's (approximate) bytes. Every method is thread-safe.
    ``on_remove(key, value, cause)`` is called (under the lock, so keep it cheap) for each
    entry that expires or is evicted; not for explicit :meth:`pop`/:meth:`clear`.
    """

    def __init__(
        self,
        *,
        max_size: int,
        max_bytes: int,
        ttl_s: float,
        sizeof: Callable[[V], int],
        timer: Callable[[], float] = time.monotonic,
        on_remove: Callable[[K, V, RemovalCause], None] | None = None,
    ) -> None:
        if max_size < 1 or max_bytes < 1 or ttl_s <= 0:
            raise ValueError("max_size, max_bytes and ttl_s must be positive")
        self._lock = threading.RLock()
        self._max_size = max_size
        self._max_bytes = max_bytes
        self._ttl_s = float(ttl_s)
        self._sizeof = sizeof
        self._user_on_remove = on_remove
        self._hits = 0
        self._misses = 0
        self._evictions = 0
        self._expirations = 0
        self._cache = _Backend(max_bytes, ttl_s, timer, sizeof, self._removed)

    def _removed(self, key: Any, value: Any, cause: RemovalCause) -> None:
        if cause == "expired":
            self._expirations += 1
        else:
            self._evictions += 1
        if self._user_on_remove is not None:
            self._user_on_remove(key, value, cause)

    def get(self, key: K) -> V | None:
        """The live value for ``key`` (marking it recently used), or ``None``; counts a hit or miss."""
        with self._lock:
            self._cache.expire()
            value: V | None = self._cache.get(key)
            if value is None:
                self._misses += 1
            else:
                self._hits += 1
            return value

    def peek(self, key: K) -> V | None:
        """Like :meth:`get` without touching recency or statistics."""
        with self._lock:
            if key not in self._cache:  # (a TTL cache's membership test skips expired entries)
                return None
            # the base class's lookup: the LRU / TTL subclasses' would mark the key as used
            value: V | None = Cache.__getitem__(self._cache, key)
            return value

    def put(self, key: K, value: V) -> bool:
        """Store ``value``; returns ``False`` (storing nothing) when it alone exceeds ``max_bytes``."""
        size = self._sizeof(value)
        if size > self._max_bytes:
            return False
        with self._lock:
            self._cache.expire()
            if key not in self._cache:
                while len(self._cache) >= self._max_size:
                    self._cache.popitem()
            self._cache[key] = value
            return True

    def purge_expired(self) -> int:
        """Drop the expired entries now (they otherwise go at the next access); how many."""
        with self._lock:
            return len(self._cache.expire())

    def pop(self, key: K) -> V | None:
        """Remove and return the value for ``key`` (``None`` when absent)."""
        with self._lock:
            value: V | None = self._cache.pop(key, None)
            return value

    def clear(self) -> int:
        """Remove every entry; returns how many live entries there were. Counters are kept."""
        with self._lock:
            self._cache.expire()
            removed = len(self._cache)
            self._cache.clear()
            return removed

    def keys(self) -> list[K]:
        """The live keys (in no particular order)."""
        with self._lock:
            self._cache.expire()
            return list(self._cache.keys())

    def __len__(self) -> int:
        with self._lock:
            self._cache.expire()
            return len(self._cache)

    def __contains__(self, key: object) -> bool:
        with self._lock:
            return key in self._cache

    def stats(self) -> CacheStats:
        """Counters and occupancy now (expired entries are purged first)."""
        with self._lock:
            self._cache.expire()
            return CacheStats(
                hits=self._hits,
                misses=self._misses,
                evictions=self._evictions,
                expirations=self._expirations,
                size=len(self._cache),
                size_bytes=int(self._cache.currsize),
                max_size=self._max_size,
                max_bytes=self._max_bytes,
                ttl_s=self._ttl_s,
            )
