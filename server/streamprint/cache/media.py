"""Decoded media kept for validation, stored compactly and mostly off the heap.

A live stream keeps every decoded sample (float32 ``[n, channels]`` at the native rate) so
that ``ValidateFingerprints`` can recompute the fingerprint from the whole media after the
stream ends. :class:`KeptMedia` stores it

* as **int16** while every sample is an exact multiple of 2**-15 in [-1, 1) (what raw
  ``s16le`` PCM and 16-bit files decode to): half the bytes of float32, and converting back
  gives the very same float32 values; otherwise as float32 (a stream that turns out not to
  be 16-bit converts what it kept once);
* in memory up to ``ram_bytes``, then in an anonymous temporary file (deleted by the OS
  when the object is dropped), so a server with hundreds of live streams holds their media
  in the page cache, not in its own heap.

Hashing and spilling cost more than keeping a block (about 45 of 60 us per 100 ms of
stereo here), so :meth:`KeptMedia.append` can defer them (``settle=False``) to the next
:meth:`KeptMedia.settle`: a live stream appends its small chunks on the event loop and
settles on the worker thread that runs its analysis, where hashlib and the file write run
without the GIL. The blocks waiting there are in memory: the caller keeps them within
``ram_bytes`` (:attr:`KeptMedia.memory_bytes`; the live stream sends a chunk that would
pass it to the worker thread, which settles). Once the temporary file exists, every settle
moves the blocks in memory to it.

:meth:`KeptMedia.load` returns the float32 :class:`~streamprint.engine.fingerprint.AudioBuffer`
exactly as it was appended; :meth:`KeptMedia.sha256` equals
:func:`~streamprint.cache.keys.samples_sha256` of it, hashed block by block as the media is
appended (a stream's end then costs no read-back: an hour of stereo 44.1 kHz would be about
1.3 GB of float32 to convert and hash on the spot). Blocks are hashed as they are stored:
16-bit media as its int16 samples (half the bytes of float32 and no conversion; for a raw
``s16le`` stream, the PCM bytes as sent), which is ``samples_sha256``'s ``pcm:s16`` form; a
stream that turns out not to be 16-bit hashes what it kept again as float32 when it converts.
"""

from __future__ import annotations

import itertools
import os
import tempfile
import threading
from collections import deque
from collections.abc import Iterator
from contextlib import AbstractContextManager, nullcontext
from typing import IO, NamedTuple, cast

import numpy as np
from numpy.typing import NDArray

from streamprint.cache.keys import SamplesDigest, as_int16
from streamprint.engine.fingerprint import AudioBlocks, AudioBuffer, Pcm16Blocks, pcm16_to_float

#: Default bytes of a session's kept media held in memory before it spills to a file: one
#: second of 48 kHz stereo 16-bit PCM fits, so a live stream's chunks between two updates
#: wait in memory until the worker thread settles them.
DEFAULT_RAM_BYTES = 192 * 1024
_SCALE = np.float32(32768.0)
_READ_FRAMES = 1 << 16
#: Buffers one ``pwritev`` takes at most (the system's limit, 1024 on Linux).
_IOV_MAX = os.sysconf("SC_IOV_MAX") if "SC_IOV_MAX" in os.sysconf_names else 16


class _Extent(NamedTuple):
    """What a kept media holds at one moment (see :meth:`KeptMedia._extent`)."""

    #: Bytes in the temporary file (0 without one).
    length: int
    #: The blocks in memory after them, in order.
    in_memory: list[NDArray[np.int16] | NDArray[np.float32]]
    #: The storage dtype.
    dtype: type[np.int16] | type[np.float32]


class KeptMedia:
    """Append-only store of one stream's decoded samples (see module docstring).

    Not thread-safe for concurrent appends (one stream appends from one task at a time);
    :meth:`load` / :meth:`sha256` may run on another thread after the last append.
    """

    def __init__(
        self, sample_rate: int, channels: int, *, ram_bytes: int = DEFAULT_RAM_BYTES,
        spool_dir: str | None = None,
    ) -> None:
        self.sample_rate = sample_rate
        self.channels = channels
        self._ram_bytes = ram_bytes
        self._spool_dir = spool_dir or None
        self._dtype: type[np.int16] | type[np.float32] = np.int16
        self._blocks: list[NDArray[np.int16] | NDArray[np.float32]] = []
        self._block_bytes = 0
        self._file: IO[bytes] | None = None
        self._file_bytes = 0  # bytes written to the temporary file
        self._lock = threading.Lock()
        self._digest = SamplesDigest(sample_rate, channels, "s16")
        self._hashed_blocks = 0  # leading entries of _blocks already in the digest
        self.frames = 0

    @property
    def nbytes(self) -> int:
        """Bytes the kept samples take (in memory or on disk)."""
        return self.frames * self.channels * np.dtype(self._dtype).itemsize

    @property
    def memory_bytes(self) -> int:
        """Bytes of kept blocks held in memory (settled or not)."""
        return self._block_bytes

    @property
    def ram_bytes(self) -> int:
        """Bytes held in memory past which settling spills to the temporary file."""
        return self._ram_bytes

    @property
    def spooled(self) -> bool:
        """Whether part of the media lives in a temporary file."""
        return self._file is not None

    @property
    def dtype(self) -> str:
        """How samples are stored: ``"int16"`` (scaled by 2**15) or ``"float32"``."""
        return np.dtype(self._dtype).name

    def compact(
        self, samples: NDArray[np.float32] | NDArray[np.int16], *, exact_int16: bool = False
    ) -> NDArray[np.int16] | NDArray[np.float32]:
        """The block :meth:`append` would store for ``samples`` ``[n, channels]``: float32, or
        int16 meaning ``k / 32768`` (raw s16le PCM, kept as it is while storage is int16).

        ``exact_int16``: the caller knows every float sample is ``k / 32768`` for an int16 ``k``
        (decoded s16le PCM), so the samples are scaled without :func:`as_int16`'s check
        (two passes instead of six; 16-bit PCM is what most live streams send).
        """
        if samples.dtype == np.int16:
            return samples if self._dtype is np.int16 else _to_float(samples)
        samples = cast("NDArray[np.float32]", samples)
        if self._dtype is np.int16:
            if exact_int16:
                return np.multiply(samples, _SCALE, dtype=np.float32).astype(np.int16)
            quantized = as_int16(samples)
            if quantized is not None:
                return quantized
        return np.ascontiguousarray(samples, dtype=np.float32)

    def added_bytes(self, block: NDArray[np.int16] | NDArray[np.float32]) -> int:
        """How many bytes appending ``block`` (from :meth:`compact`) adds, conversion included."""
        if block.dtype == self._dtype:
            return int(block.nbytes)
        return int(block.nbytes) + self.nbytes  # int16 kept so far doubles as float32

    def append(self, block: NDArray[np.int16] | NDArray[np.float32], *, settle: bool = True) -> None:
        """Keep ``block`` (from :meth:`compact`, ``[n, channels]``).

        ``settle=False`` leaves its hashing (and a spill past ``ram_bytes``) to the next
        :meth:`settle` (see the module docstring).
        """
        if block.dtype != self._dtype:
            self._to_float32()
        with self._lock:
            self._blocks.append(block)
            self._block_bytes += int(block.nbytes)
            self.frames += int(block.shape[0])
            if settle:
                self._settle()

    def settle(self) -> None:
        """Hash the blocks appended with ``settle=False``; spill the blocks in memory to the
        temporary file past ``ram_bytes``, and on every settle once that file exists (so a
        long stream's memory is empty after each settle)."""
        with self._lock:
            self._settle()

    def _settle(self) -> None:
        for block in self._blocks[self._hashed_blocks :]:
            self._digest.update(block)  # as stored: int16 blocks hash half the bytes, unconverted
        self._hashed_blocks = len(self._blocks)
        if self._block_bytes > self._ram_bytes or (self._file is not None and self._blocks):
            self._spill()

    def _spill(self) -> None:
        """Write the in-memory blocks (all hashed) to the temporary file (opened on first use).

        One ``pwritev`` for all of them at the file's end (unbuffered, no seek): a live stream
        spills its second of 100 ms chunks in one system call, one release of the GIL,
        instead of one buffered write each (measured: 53 against 160 us per stream-second
        of 16-bit stereo 44.1 kHz).
        """
        if self._file is None:
            # lives as long as this object (closed by close() or when dropped)
            self._file = tempfile.TemporaryFile(  # noqa: SIM115
                prefix="streamprint-media-", dir=self._spool_dir, buffering=0
            )
            self._file_bytes = 0
        pending = deque(np.ascontiguousarray(block).data.cast("B") for block in self._blocks)
        while pending:  # a regular file takes it all at once; a short write continues
            batch = list(itertools.islice(pending, _IOV_MAX))
            written = os.pwritev(self._file.fileno(), batch, self._file_bytes)
            if written <= 0:  # pragma: no cover - a full disk raises OSError instead
                raise OSError(f"could not write the kept media to {self._file.name!r}")
            self._file_bytes += written
            while pending and written >= pending[0].nbytes:
                written -= pending.popleft().nbytes
            if written:
                pending[0] = pending[0][written:]
        self._blocks = []
        self._block_bytes = 0
        self._hashed_blocks = 0

    def _extent(self) -> _Extent:
        """What is kept now (the caller holds the lock)."""
        length = 0
        if self._file is not None:
            length = self._file_bytes
        return _Extent(length, list(self._blocks), self._dtype)

    def _chunks(self) -> list[NDArray[np.float32]]:
        """All kept samples as float32 ``[m, channels]`` pieces, in order (the caller holds
        the lock)."""
        return list(self._read(self._extent(), lock=nullcontext()))

    def _to_float32(self) -> None:
        """Switch storage to float32, converting what is kept (once per stream at most)."""
        with self._lock:
            self._settle()
            pieces = self._chunks()
            self._dtype = np.float32
            self._blocks = list(pieces)
            # the media is not all 16-bit after all: its hash is the float32 form's, from the start
            self._digest = SamplesDigest(self.sample_rate, self.channels, "f32")
            for piece in pieces:
                self._digest.update(piece)
            self._hashed_blocks = len(pieces)
            self._block_bytes = sum(int(p.nbytes) for p in pieces)
            if self._file is not None:
                self._file.close()
                self._file = None
                self._spill()

    def load(self) -> AudioBuffer:
        """The kept media as float32 ``[frames, channels]`` (exactly the appended values)."""
        with self._lock:
            pieces = self._chunks()
        if not pieces:
            samples = np.zeros((0, self.channels), np.float32)
        elif len(pieces) == 1:
            samples = pieces[0]
        else:
            samples = np.concatenate(pieces)
        return AudioBuffer(samples, self.sample_rate)

    def blocks(self) -> AudioBlocks:
        """The kept media as :class:`AudioBlocks` of float32 pieces (the values :meth:`load`
        gives), read from the temporary file as they are consumed: a validation pass never
        holds the whole media as float32 (twice the int16 file). For finished media (no
        appends after this call); reading after :meth:`close` raises ``RuntimeError``."""
        with self._lock:
            extent = self._extent()
            frames = self.frames
        return AudioBlocks(
            self.sample_rate, self.channels, frames, self._read(extent, lock=self._lock)
        )

    def pcm16_blocks(self) -> Pcm16Blocks | None:
        """:meth:`blocks` as the int16 samples they are kept as (``None`` when the storage is
        float32): a validation pass over 16-bit media downmixes them from the integers."""
        with self._lock:
            extent = self._extent()
            frames = self.frames
        if extent.dtype is not np.int16:
            return None
        pieces = cast("Iterator[NDArray[np.int16]]", self._read_stored(extent, lock=self._lock))
        return Pcm16Blocks(self.sample_rate, self.channels, frames, pieces)

    def _read(self, extent: _Extent, *, lock: AbstractContextManager[object]) -> Iterator[NDArray[np.float32]]:
        """The first ``extent.length`` bytes of the file, then ``extent.in_memory``, as float32
        pieces; each read of the file under ``lock`` (a null context when the caller holds it)."""
        for stored in self._read_stored(extent, lock=lock):
            yield _to_float(stored)

    def _read_stored(
        self, extent: _Extent, *, lock: AbstractContextManager[object]
    ) -> Iterator[NDArray[np.int16] | NDArray[np.float32]]:
        """:meth:`_read`'s pieces ``[m, channels]`` as stored (``extent.dtype``), not converted."""
        length, in_memory, dtype = extent
        step = _READ_FRAMES * self.channels * np.dtype(dtype).itemsize
        for offset in range(0, length, step):
            size = min(step, length - offset)
            with lock:  # pread: no shared file position, so readers may overlap
                if self._file is None:
                    raise RuntimeError("the kept media was closed while it was read")
                raw = os.pread(self._file.fileno(), size, offset)
            if len(raw) != size:  # pragma: no cover - our own temporary file
                raise RuntimeError(f"short read of the kept media: {len(raw)} of {size} bytes")
            stored = cast("NDArray[np.int16] | NDArray[np.float32]", np.frombuffer(raw, dtype))
            yield stored.reshape(-1, self.channels)
        yield from in_memory

    def sha256(self) -> str:
        """:func:`~streamprint.cache.keys.samples_sha256` of :meth:`load` (kept up to date by
        :meth:`append`)."""
        with self._lock:
            self._settle()
            return self._digest.hexdigest()

    def close(self) -> None:
        """Drop everything kept (the temporary file is deleted)."""
        with self._lock:
            if self._file is not None:
                self._file.close()
                self._file = None
            self._blocks = []
            self._block_bytes = 0
            self._hashed_blocks = 0


def _to_float(block: NDArray[np.int16] | NDArray[np.float32]) -> NDArray[np.float32]:
    if block.dtype == np.int16:
        return pcm16_to_float(cast("NDArray[np.int16]", block))
    return np.asarray(block, dtype=np.float32)
