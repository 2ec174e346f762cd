"""The bounded TTL store of finished sessions' decoded media, for ValidateFingerprints."""

from __future__ import annotations

import threading
import time
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass

from streamprint.cache.media import KeptMedia
from streamprint.cache.store import BoundedTTLCache, CacheStats, RemovalCause
from streamprint.engine.fingerprint import AudioBlocks, AudioBuffer, Fingerprint, Pcm16Blocks
from streamprint.errors import NotFoundError, SessionStateError

#: How many ids of sessions that left the store are remembered, to explain NOT_FOUND.
_TOMBSTONES = 8192
#: Bytes counted for a session on top of its samples.
_ENTRY_OVERHEAD = 4096


class SessionNotFoundError(NotFoundError):
    """A session id that is unknown, or whose kept media expired or was evicted."""

    resource_type = "streamprint.v1.Session"

    def __init__(self, message: str, *, session_id: str) -> None:
        super().__init__(message)
        self.resource_name = session_id


@dataclass(frozen=True)
class FinishedSession:
    """What the server keeps of a finished stream: its decoded media and final fingerprint.

    ``stored`` is the decoded audio at the native rate, either as is or compactly
    (:class:`~streamprint.cache.media.KeptMedia`: int16 when exact, spilled to a temporary
    file); :attr:`media` gives it back as float32. ``media_sha256`` is the
    :func:`~streamprint.cache.samples_sha256` of it, ``final`` the last streamed fingerprint.
    """

    session_id: str
    stored: AudioBuffer | KeptMedia
    media_sha256: str
    final: Fingerprint
    finished_at: float

    @property
    def media(self) -> AudioBuffer:
        """The decoded audio, float32 ``[n, channels]`` (read back when kept compactly)."""
        if isinstance(self.stored, AudioBuffer):
            return self.stored
        return self.stored.load()

    def blocks(self) -> AudioBlocks:
        """The decoded audio as :class:`AudioBlocks` (kept media is read as it is consumed)."""
        if isinstance(self.stored, AudioBuffer):
            return AudioBlocks.of(self.stored, self.stored.samples.shape[0])
        return self.stored.blocks()

    def analysis_blocks(self) -> AudioBlocks | Pcm16Blocks:
        """:meth:`blocks` in the cheapest form to analyse: 16-bit kept media as its int16
        samples (the same fingerprint bits, without converting every sample to float32)."""
        if isinstance(self.stored, KeptMedia):
            pcm = self.stored.pcm16_blocks()
            if pcm is not None:
                return pcm
        return self.blocks()

    @property
    def nbytes(self) -> int:
        """Approximate bytes held (in memory or in the temporary file)."""
        if isinstance(self.stored, AudioBuffer):
            return int(self.stored.samples.nbytes) + _ENTRY_OVERHEAD
        return self.stored.nbytes + _ENTRY_OVERHEAD


class SessionStore:
    """Finished sessions by id, bounded by entries and bytes, each kept for ``ttl_s`` seconds.

    Remembers (boundedly) why recent ids left the store, so a lookup can say "expired" or
    "evicted" or "not kept" instead of a bare "not found".
    """

    def __init__(
        self,
        *,
        max_entries: int,
        max_bytes: int,
        ttl_s: float,
        timer: Callable[[], float] = time.monotonic,
    ) -> None:
        self._ttl_s = float(ttl_s)
        self._max_bytes = max_bytes
        self._max_entries = max_entries
        self._tomb_lock = threading.Lock()
        self._tombstones: OrderedDict[str, str] = OrderedDict()
        self._store: BoundedTTLCache[str, FinishedSession] = BoundedTTLCache(
            max_size=max_entries,
            max_bytes=max_bytes,
            ttl_s=ttl_s,
            sizeof=lambda s: s.nbytes,
            timer=timer,
            on_remove=self._left,
        )

    def _bury(self, session_id: str, why: str) -> None:
        with self._tomb_lock:
            self._tombstones[session_id] = why
            self._tombstones.move_to_end(session_id)
            while len(self._tombstones) > _TOMBSTONES:
                self._tombstones.popitem(last=False)

    def _left(self, session_id: str, _session: FinishedSession, cause: RemovalCause) -> None:
        if cause == "expired":
            why = f"its media expired (finished sessions are kept {self._ttl_s:g} s)"
        else:
            why = (
                "its media was evicted to keep the session store within its bounds "
                f"({self._max_entries} sessions, {self._max_bytes} bytes)"
            )
        self._bury(session_id, why)

    def put(self, session: FinishedSession) -> bool:
        """Keep ``session``; returns ``False`` if its media alone exceeds the store's bytes."""
        stored = self._store.put(session.session_id, session)
        if not stored:
            self.mark_not_kept(
                session.session_id,
                f"its media ({session.nbytes} bytes) is larger than the whole session store "
                f"({self._max_bytes} bytes)",
            )
        return stored

    def peek(self, session_id: str) -> FinishedSession | None:
        """The finished session if the store still holds it (no recency, no statistics)."""
        return self._store.peek(session_id)

    def mark_not_kept(self, session_id: str, why: str) -> None:
        """Record that a finished session's media was not kept, and why."""
        self._bury(session_id, "not_kept:" + why)

    def get(self, session_id: str) -> FinishedSession:
        """The finished session ``session_id``.

        Raises :class:`SessionNotFoundError` (NOT_FOUND) when it is unknown, expired or evicted,
        and :class:`~streamprint.errors.SessionStateError` when it finished but its media was
        not kept (too long).
        """
        session = self._store.get(session_id)
        if session is not None:
            return session
        with self._tomb_lock:
            why = self._tombstones.get(session_id)
        if why is not None and why.startswith("not_kept:"):
            raise SessionStateError(
                f"session {session_id!r} finished but its media was not kept: "
                f"{why.removeprefix('not_kept:')}; validate with the media bytes instead"
            )
        if why is not None:
            message = f"session {session_id!r} is no longer available: {why}"
        else:
            message = (
                f"session {session_id!r} not found: no finished session has this id "
                f"(finished sessions are kept {self._ttl_s:g} s)"
            )
        raise SessionNotFoundError(message, session_id=session_id)

    def purge_expired(self) -> int:
        """Drop the expired sessions now (their media and spill files with them); how many."""
        return self._store.purge_expired()

    def clear(self) -> int:
        """Drop every session; returns how many there were."""
        ids = self._store.keys()
        removed = self._store.clear()
        for session_id in ids:
            self._bury(session_id, "the session store was cleared")
        return removed

    def stats(self) -> CacheStats:
        """Hits, misses, evictions, expirations, size and bounds."""
        return self._store.stats()

    @property
    def ttl_s(self) -> float:
        """How long a finished session is kept, in seconds."""
        return self._ttl_s
