"""Open-stream counts for ``--max-streams`` and ``--max-streams-per-token``.

:class:`LocalLedger` counts one process's streams. :class:`SharedLedger` is the same for
several worker processes on one port: a small file of int64 counters, one row per worker
(column 0: that worker's open streams; column 1+k: its streams of auth token ``owners[k]``),
mapped into every worker and guarded by an exclusive ``flock``. Admission sums the rows under
the lock, so the limits hold exactly across workers. ``flock`` is released by the kernel when
a process dies, so a killed worker never leaves the lock held; the supervisor then zeroes its
row (:meth:`SharedLedger.reset_row`) before starting a replacement.
"""

from __future__ import annotations

import fcntl
import mmap
import os
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Literal, Protocol

#: Why a stream was refused: the server-wide limit or the per-token quota.
Refusal = Literal["concurrent_streams", "token_streams"]


class StreamLedger(Protocol):
    """Admission of streams against the global and per-token limits."""

    def admit(self, owner: str, *, max_streams: int, per_owner: int) -> Refusal | None:
        """Count a new stream of ``owner`` ("" : no token) unless a limit is reached.

        ``per_owner`` 0 means no per-token quota. Returns ``None`` when admitted (call
        :meth:`release` when the stream ends), else which limit refused it.
        """

    def release(self, owner: str) -> None:
        """A stream admitted for ``owner`` ended."""

    def total(self) -> int:
        """Streams open now, over every process sharing the ledger."""

    def of(self, owner: str) -> int:
        """Streams ``owner`` holds open now, over every process sharing the ledger."""


class LocalLedger:
    """The ledger of a single server process (plain counters, event-loop thread only)."""

    def __init__(self) -> None:
        self._total = 0
        self._owned: dict[str, int] = {}

    def admit(self, owner: str, *, max_streams: int, per_owner: int) -> Refusal | None:
        if self._total >= max_streams:
            return "concurrent_streams"
        if owner and per_owner and self._owned.get(owner, 0) >= per_owner:
            return "token_streams"
        self._total += 1
        if owner:
            self._owned[owner] = self._owned.get(owner, 0) + 1
        return None

    def release(self, owner: str) -> None:
        self._total -= 1
        if owner:
            left = self._owned[owner] - 1
            if left:
                self._owned[owner] = left
            else:
                del self._owned[owner]

    def total(self) -> int:
        return self._total

    def of(self, owner: str) -> int:
        return self._owned.get(owner, 0)


class SharedLedger:
    """The ledger of ``workers`` processes, in the file ``path`` (see the module docstring).

    Shape of the counters: ``(workers, 1 + len(owners))`` int64. ``row`` is this process's
    worker index (``None`` for the supervisor, which only reads and resets rows).
    """

    def __init__(
        self, path: str | os.PathLike[str], *, workers: int, owners: Sequence[str], row: int | None
    ) -> None:
        self._path = Path(path)
        self._owners = {owner: 1 + k for k, owner in enumerate(owners)}
        self._row = row
        shape = (workers, 1 + len(owners))
        nbytes = shape[0] * shape[1] * 8
        self._fd = os.open(self._path, os.O_RDWR | os.O_CREAT, 0o600)
        if os.fstat(self._fd).st_size < nbytes:
            os.ftruncate(self._fd, nbytes)
        self._map = mmap.mmap(self._fd, nbytes)
        # int64 cells, row-major (a memoryview, not numpy: the supervisor needs no numpy)
        self._cells = memoryview(self._map).cast("q")
        self._workers, self._width = shape

    @classmethod
    def create(
        cls, path: str | os.PathLike[str], *, workers: int, owners: Sequence[str]
    ) -> SharedLedger:
        """A fresh, zeroed ledger file (the supervisor's handle)."""
        Path(path).unlink(missing_ok=True)
        return cls(path, workers=workers, owners=owners, row=None)

    @contextmanager
    def _locked(self) -> Iterator[memoryview]:
        fcntl.flock(self._fd, fcntl.LOCK_EX)
        try:
            yield self._cells
        finally:
            fcntl.flock(self._fd, fcntl.LOCK_UN)

    def _column(self, owner: str) -> int | None:
        return self._owners.get(owner) if owner else None

    def _column_sum(self, cells: memoryview, column: int) -> int:
        return sum(int(cells[row * self._width + column]) for row in range(self._workers))

    def admit(self, owner: str, *, max_streams: int, per_owner: int) -> Refusal | None:
        if self._row is None:
            raise RuntimeError("the supervisor's ledger handle admits no streams")
        column = self._column(owner)
        base = self._row * self._width
        with self._locked() as cells:
            if self._column_sum(cells, 0) >= max_streams:
                return "concurrent_streams"
            if column is not None and per_owner and self._column_sum(cells, column) >= per_owner:
                return "token_streams"
            cells[base] += 1
            if column is not None:
                cells[base + column] += 1
        return None

    def release(self, owner: str) -> None:
        if self._row is None:
            raise RuntimeError("the supervisor's ledger handle holds no streams")
        column = self._column(owner)
        base = self._row * self._width
        with self._locked() as cells:
            cells[base] -= 1
            if column is not None:
                cells[base + column] -= 1

    def total(self) -> int:
        with self._locked() as cells:
            return self._column_sum(cells, 0)

    def of(self, owner: str) -> int:
        column = self._column(owner)
        if column is None:
            return 0
        with self._locked() as cells:
            return self._column_sum(cells, column)

    def row_total(self, row: int) -> int:
        """Streams worker ``row`` holds open now."""
        with self._locked() as cells:
            return int(cells[row * self._width])

    def reset_row(self, row: int) -> int:
        """Zero the row of a worker that died (its streams died with it); returns what it held."""
        base = row * self._width
        with self._locked() as cells:
            held = int(cells[base])
            for column in range(self._width):
                cells[base + column] = 0
        return held

    def close(self) -> None:
        """Unmap and close (the file stays)."""
        self._cells.release()
        self._map.close()
        os.close(self._fd)
