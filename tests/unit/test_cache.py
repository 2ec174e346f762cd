"""The bounded LRU + TTL stores: bounds, expiry, statistics, keys and session tombstones."""

from __future__ import annotations

import numpy as np
import pytest

from streamprint.cache import (
    BoundedTTLCache,
    FingerprintCache,
    FinishedSession,
    SessionNotFoundError,
    SessionStore,
    approx_fingerprint_bytes,
    fingerprint_key,
    media_sha256,
    samples_sha256,
)
from streamprint.engine.fingerprint import AudioBuffer, Fingerprint
from streamprint.errors import SessionStateError


class FakeClock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def _cache(
    clock: FakeClock, *, max_size: int = 3, max_bytes: int = 1000, ttl: float = 10.0
) -> BoundedTTLCache[str, bytes]:
    return BoundedTTLCache(
        max_size=max_size, max_bytes=max_bytes, ttl_s=ttl, sizeof=len, timer=clock
    )


def test_lru_eviction_by_entries_counts_evictions() -> None:
    clock = FakeClock()
    cache = _cache(clock)
    for key in "abc":
        cache.put(key, b"x")
    assert cache.get("a") == b"x"  # a is now most recently used
    cache.put("d", b"x")
    assert sorted(cache.keys()) == ["a", "c", "d"]  # b was least recently used
    stats = cache.stats()
    assert (stats.evictions, stats.size, stats.hits, stats.misses) == (1, 3, 1, 0)


def test_eviction_by_bytes() -> None:
    clock = FakeClock()
    cache = _cache(clock, max_size=100, max_bytes=10)
    cache.put("a", b"12345")
    cache.put("b", b"12345")
    cache.put("c", b"123")
    assert "a" not in cache and "b" in cache and "c" in cache
    assert cache.stats().size_bytes == 8
    assert cache.stats().evictions == 1


def test_value_larger_than_bound_is_not_stored() -> None:
    cache = _cache(FakeClock(), max_bytes=4)
    assert cache.put("big", b"12345") is False
    assert len(cache) == 0


def test_ttl_expiry_counts_expirations_and_misses() -> None:
    clock = FakeClock()
    cache = _cache(clock, ttl=10.0)
    cache.put("a", b"1")
    clock.now += 9.9
    assert cache.get("a") == b"1"
    clock.now += 0.2
    assert cache.get("a") is None
    stats = cache.stats()
    assert (stats.hits, stats.misses, stats.expirations, stats.evictions, stats.size) == (
        1,
        1,
        1,
        0,
        0,
    )
    assert stats.hit_rate == pytest.approx(0.5)


def test_clear_keeps_counters() -> None:
    cache = _cache(FakeClock())
    cache.put("a", b"1")
    cache.get("a")
    assert cache.clear() == 1
    stats = cache.stats()
    assert stats.size == 0 and stats.hits == 1
    assert stats.to_json_dict()["hit_rate"] == 1.0


def test_hit_rate_zero_before_lookups() -> None:
    assert _cache(FakeClock()).stats().hit_rate == 0.0


def _fp(n: int = 25) -> Fingerprint:
    names = [f"d{i}" for i in range(n)]
    return Fingerprint(
        "audio-25d/1", dict.fromkeys(names, 1.0), dict.fromkeys(names, 1.0), 1, 1.0, True
    )


def test_fingerprint_cache_bounded_by_bytes() -> None:
    size = approx_fingerprint_bytes(_fp())
    cache = FingerprintCache(max_entries=100, max_bytes=size * 2, ttl_s=60)
    for key in "abc":
        cache.put(key, _fp())
    stats = cache.stats()
    assert stats.size == 2 and stats.evictions == 1 and stats.size_bytes == size * 2


def test_fingerprint_key_is_content_and_parameters_only() -> None:
    base = dict(modality="audio", algorithm="audio-25d/1", model="numpy", model_version="1")
    digest = media_sha256(b"media")
    k1 = fingerprint_key(digest, params={"a": 1, "b": [1, 2]}, **base)
    k2 = fingerprint_key(digest, params={"b": [1, 2], "a": 1}, **base)
    assert k1 == k2 and len(k1) == 64
    assert k1 != fingerprint_key(media_sha256(b"other"), params={"a": 1, "b": [1, 2]}, **base)
    assert k1 != fingerprint_key(
        digest, params={"a": 1, "b": [1, 2]}, **{**base, "model_version": "2"}
    )
    assert k1 != fingerprint_key(
        digest, params={"a": 1, "b": [1, 2]}, **{**base, "algorithm": "audio-13d/1"}
    )
    assert k1 != fingerprint_key(digest, params={"a": 2, "b": [1, 2]}, **base)


def test_samples_sha256_depends_on_rate_and_samples() -> None:
    samples = np.zeros((100, 2), np.float32)
    a = samples_sha256(AudioBuffer(samples, 44100))
    assert a == samples_sha256(AudioBuffer(samples.copy(), 44100))
    assert a != samples_sha256(AudioBuffer(samples, 48000))
    changed = samples.copy()
    changed[5, 1] = 0.5
    assert a != samples_sha256(AudioBuffer(changed, 44100))


def _session(session_id: str, n: int = 1000) -> FinishedSession:
    buffer = AudioBuffer(np.zeros((n, 1), np.float32), 8000)
    return FinishedSession(session_id, buffer, samples_sha256(buffer), _fp(13), 0.0)


def test_session_store_roundtrip_and_unknown_id() -> None:
    store = SessionStore(max_entries=4, max_bytes=10**7, ttl_s=60)
    store.put(_session("s1"))
    assert store.get("s1").session_id == "s1"
    with pytest.raises(SessionNotFoundError) as info:
        store.get("nope")
    assert "no finished session" in info.value.message
    assert info.value.resource_name == "nope"


def test_session_store_expired_session_says_expired() -> None:
    clock = FakeClock()
    store = SessionStore(max_entries=4, max_bytes=10**7, ttl_s=30, timer=clock)
    store.put(_session("s1"))
    clock.now += 31
    with pytest.raises(SessionNotFoundError, match="expired"):
        store.get("s1")
    assert store.stats().expirations == 1


def test_session_store_evicted_session_says_evicted() -> None:
    store = SessionStore(max_entries=1, max_bytes=10**7, ttl_s=60)
    store.put(_session("s1"))
    store.put(_session("s2"))
    with pytest.raises(SessionNotFoundError, match="evicted"):
        store.get("s1")
    assert store.get("s2").session_id == "s2"


def test_session_store_not_kept_is_failed_precondition() -> None:
    store = SessionStore(max_entries=4, max_bytes=5000, ttl_s=60)
    assert store.put(_session("huge", n=10_000)) is False
    with pytest.raises(SessionStateError, match="not kept"):
        store.get("huge")
    store.mark_not_kept("long", "too long")
    with pytest.raises(SessionStateError, match="too long"):
        store.get("long")


def test_session_store_clear() -> None:
    store = SessionStore(max_entries=4, max_bytes=10**7, ttl_s=60)
    store.put(_session("s1"))
    assert store.clear() == 1
    with pytest.raises(SessionNotFoundError, match="cleared"):
        store.get("s1")


def test_peek_does_not_change_what_is_evicted_next() -> None:
    from streamprint.cache.store import BoundedTTLCache

    cache: BoundedTTLCache[str, int] = BoundedTTLCache(max_size=2, max_bytes=100, ttl_s=100, sizeof=lambda v: 1)
    cache.put("old", 1)
    cache.put("new", 2)
    assert cache.peek("old") == 1  # a get would make "old" the most recent
    cache.put("third", 3)
    assert sorted(cache.keys()) == ["new", "third"]
    assert cache.stats().hits == 0 and cache.stats().misses == 0


def test_an_eviction_names_both_bounds_of_the_session_store() -> None:
    """It blamed the byte bound even when the entry bound evicted the session."""
    store = SessionStore(max_entries=1, max_bytes=10**9, ttl_s=100)
    sessions = [_session(f"s{i}") for i in range(2)]
    for session in sessions:
        store.put(session)
    with pytest.raises(Exception, match=r"within its bounds \(1 sessions, 1000000000 bytes\)"):
        store.get("s0")
