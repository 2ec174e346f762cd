"""Content hashes of server-side media files, remembered while the file stays unchanged.

A ``server_path`` request is keyed by the sha256 of the file's bytes, never by its path. Reading
and hashing a 3-minute WAV (32 MB) costs tens of milliseconds on every call, even when the
fingerprint is cached. This memo lets a repeated request skip both: it remembers the digest
under the file's identity (device, inode, size, modification and change times in ns) and
gives it back only while a fresh ``stat`` still shows exactly that identity; any write,
truncation, rename over or replacement of the file changes it, and the file is read and
hashed again. As in git's index ("racy git"), a digest is not remembered for a file modified
less than ``settle_s`` before it was read: a write in the same timestamp tick as the read
could otherwise leave the identity unchanged.
"""

from __future__ import annotations

import os
import threading
import time
from collections import OrderedDict
from collections.abc import Callable
from pathlib import Path

#: What must stay equal for a remembered digest to hold: dev, inode, size, mtime_ns, ctime_ns.
Identity = tuple[int, int, int, int, int]


def identity(st: os.stat_result) -> Identity:
    """The parts of a ``stat`` result that change whenever the file's content may have."""
    return (st.st_dev, st.st_ino, st.st_size, st.st_mtime_ns, st.st_ctime_ns)


class FileDigests:
    """Bounded LRU map of resolved path → (identity, content sha256). Thread-safe."""

    def __init__(
        self,
        *,
        max_entries: int = 4096,
        settle_s: float = 2.0,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._max = max(1, max_entries)
        self._settle_ns = int(settle_s * 1e9)
        self._clock = clock
        self._lock = threading.Lock()
        self._entries: OrderedDict[str, tuple[Identity, str]] = OrderedDict()

    def lookup(self, path: Path) -> str | None:
        """The remembered sha256 of ``path`` if the file is unchanged since, else ``None``."""
        key = str(path)
        with self._lock:
            entry = self._entries.get(key)
        if entry is None:
            return None
        try:
            now = identity(os.stat(path))
        except OSError:
            now = None
        with self._lock:
            if now != entry[0]:
                self._entries.pop(key, None)
                return None
            self._entries.move_to_end(key)
        return entry[1]

    def remember(self, path: Path, before: os.stat_result, digest: str) -> bool:
        """Remember ``digest`` of ``path``'s bytes read after ``before = stat(path)``.

        Kept only if a ``stat`` now shows the same identity (the file did not change while it
        was read) and the file was last modified at least ``settle_s`` ago. Returns whether it
        was kept.
        """
        try:
            after = os.stat(path)
        except OSError:
            return False
        if identity(after) != identity(before):
            return False
        newest = max(after.st_mtime_ns, after.st_ctime_ns)
        if int(self._clock() * 1e9) - newest < self._settle_ns:
            return False
        with self._lock:
            self._entries[str(path)] = (identity(after), digest)
            self._entries.move_to_end(str(path))
            while len(self._entries) > self._max:
                self._entries.popitem(last=False)
        return True

    def clear(self) -> int:
        """Forget everything; returns how many digests were remembered."""
        with self._lock:
            n = len(self._entries)
            self._entries.clear()
            return n

    def __len__(self) -> int:
        with self._lock:
            return len(self._entries)
