"""Whole media from memory or disk: :func:`decode_bytes` and :func:`decode_file`, and
both as blocks (:func:`decode_bytes_blocks`, :func:`decode_file_blocks`)."""

from __future__ import annotations

import io
import os
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any, Final

import numpy as np
import soundfile as sf
from numpy.typing import NDArray

from streamprint.engine.decode.common import (
    DEFAULT_MAX_SECONDS,
    PROBE_BYTES,
    SUPPORTED_MEDIA,
    ByteData,
    Samples,
    _BackendFailedError,
    _media_error,
    _UnsupportedStreamError,
)
from streamprint.engine.decode.convert import _frame_to_float
from streamprint.engine.decode.demux import _Output
from streamprint.engine.decode.probe import _detect
from streamprint.engine.decode.streaming import StreamingContainerDecoder
from streamprint.engine.fingerprint import AudioBlocks, AudioBuffer
from streamprint.errors import InvalidInputError, StreamprintError

_STREAM_CHUNK: Final = 1024 * 1024
#: 16-bit PCM files are read in int16 blocks of this many frames (1 MiB of stereo).
_PCM16_BLOCK_FRAMES: Final = 1 << 18
_PCM16_SCALE: Final = np.float32(2.0**-15)
#: Formats whose frame count libsndfile fits to the file's size (a FLAC header's count is
#: taken on trust, so a truncated FLAC would reserve, and count against the duration limit,
#: frames it does not hold): only these take the 16-bit fast path.
_SIZED_FORMATS: Final = frozenset({"WAV", "WAVEX", "AIFF", "AU", "W64", "RF64"})


def decode_bytes(data: ByteData, *, max_seconds: float = DEFAULT_MAX_SECONDS) -> AudioBuffer:
    """Decode a whole encoded audio file held in memory.

    Args:
        data: the file's bytes (WAV, FLAC, Ogg Vorbis/Opus, MP3, AIFF, AAC/M4A, ...).
        max_seconds: cap on the decoded duration.

    Returns:
        :class:`AudioBuffer` with float32 ``[n, channels]`` samples in [-1, 1] at the
        native rate (Opus: 48 kHz).

    Raises:
        InvalidInputError: empty input (field ``media``).
        MediaDecodeError: unrecognised, corrupt or truncated media, unsupported sample
            rate or channel count (field ``media``, as for the other media errors),
            NaN / inf samples, no audio samples.
        ResourceLimitError: more than ``max_seconds`` of audio (``max_media_seconds``).
    """
    if len(data) == 0:
        raise InvalidInputError.for_field("media", "empty media", SUPPORTED_MEDIA)
    view = memoryview(data)
    kind = _detect_at(lambda offset, size: bytes(view[offset : offset + size]))
    if kind in ("ogg", "mp3"):
        try:
            return _decode_pipeline(_chunks_of(view), max_seconds)
        except _UnsupportedStreamError:
            pass
    return _decode_fallbacks(lambda: io.BytesIO(view), max_seconds)


def decode_file(
    path: str | os.PathLike[str], *, max_seconds: float = DEFAULT_MAX_SECONDS
) -> AudioBuffer:
    """Decode a whole audio file from disk; same formats, result and errors as
    :func:`decode_bytes`, plus :class:`InvalidInputError` on field ``path`` when the file
    does not exist or cannot be read. Ogg / MP3 are streamed from disk in 1 MiB chunks.
    """
    p = Path(path)
    try:
        if not p.is_file():
            raise InvalidInputError.for_field("path", "no such file", "an existing regular file")
        if p.stat().st_size == 0:
            raise InvalidInputError.for_field("media", "empty media", SUPPORTED_MEDIA)
        with p.open("rb") as fh:
            kind = _detect_at(lambda offset, size: _read_at(fh, offset, size))
        if kind in ("ogg", "mp3"):
            try:
                return _decode_pipeline(_file_chunks(p), max_seconds)
            except _UnsupportedStreamError:
                pass
    except OSError as exc:
        raise InvalidInputError.for_field("path", f"cannot read file: {exc.strerror}") from None
    return _decode_fallbacks(lambda: str(p), max_seconds)


def decode_file_blocks(
    path: str | os.PathLike[str], *, block_seconds: float, max_seconds: float = DEFAULT_MAX_SECONDS
) -> AudioBlocks:
    """A whole audio file as :class:`AudioBlocks` of ``block_seconds`` each: the same samples,
    checks and errors as :func:`decode_file` (raised here, before any block is read).

    16-bit PCM in formats whose frame count libsndfile fits to the file size (WAV, AIFF, ...)
    is read block by block as the blocks are consumed: the caller's work on one block
    overlaps nothing but its own, yet the whole file is never held (10 minutes of stereo
    would be 212 MB of float32, whose first touch alone costs a fresh process about 0.35 s
    here). The file stays open until the blocks are exhausted or the iterator is closed.
    Other media are decoded whole and sliced.
    """
    # Only a regular file is opened here (a FIFO would block); everything else, and every
    # file that is not 16-bit PCM in a sized format (Ogg and MP3 included: libsndfile reports
    # their own subtypes), goes through decode_file with its checks and errors.
    if Path(path).is_file():
        blocks = _sized_pcm16_blocks(str(path), block_seconds, max_seconds)
        if blocks is not None:
            return blocks
    buffer = decode_file(path, max_seconds=max_seconds)
    return AudioBlocks.of(buffer, round(block_seconds * buffer.sample_rate))


def decode_bytes_blocks(
    data: ByteData, *, block_seconds: float, max_seconds: float = DEFAULT_MAX_SECONDS
) -> AudioBlocks:
    """:func:`decode_bytes` as :class:`AudioBlocks` of ``block_seconds`` each: the same
    samples, checks and errors (raised here, before any block is converted).

    16-bit PCM in a sized format (WAV, AIFF, ...) is converted block by block as the blocks
    are consumed, so the whole float32 copy (twice the file's size) is never held and its
    first touch, about 25-90 ms for 3 minutes of stereo, overlaps the consumer's work
    (read in place: ``io.BytesIO`` shares ``bytes``, and other buffers, such as a view of a
    received request, are read through :class:`_ViewFile`). Other media are decoded whole and
    sliced.
    """
    if len(data) > 0:
        source = io.BytesIO(data) if type(data) is bytes else _ViewFile(data)
        blocks = _sized_pcm16_blocks(source, block_seconds, max_seconds)
        if blocks is not None:
            return blocks
    buffer = decode_bytes(data, max_seconds=max_seconds)
    return AudioBlocks.of(buffer, round(block_seconds * buffer.sample_rate))


class _ViewFile(io.RawIOBase):
    """A read-only, seekable file over a buffer, read in place (``io.BytesIO`` copies any
    buffer that is not ``bytes``: 32 MB for a 3-minute stereo WAV)."""

    def __init__(self, data: ByteData) -> None:
        super().__init__()
        self._view = memoryview(data).cast("B")
        self._pos = 0

    def readable(self) -> bool:
        return True

    def seekable(self) -> bool:
        return True

    def tell(self) -> int:
        return self._pos

    def seek(self, offset: int, whence: int = io.SEEK_SET) -> int:
        base = {io.SEEK_SET: 0, io.SEEK_CUR: self._pos, io.SEEK_END: len(self._view)}[whence]
        if base + offset < 0:
            raise ValueError(f"negative seek position {base + offset}")
        self._pos = base + offset
        return self._pos

    def readinto(self, buffer: Any) -> int:
        out = memoryview(buffer).cast("B")
        n = max(0, min(len(out), len(self._view) - self._pos))
        out[:n] = self._view[self._pos : self._pos + n]
        self._pos += n
        return n


def _sized_pcm16_blocks(
    source: str | io.BytesIO | _ViewFile, block_seconds: float, max_seconds: float
) -> AudioBlocks | None:
    """:class:`AudioBlocks` reading 16-bit sized-format media (a path or bytes) lazily, else
    None."""
    try:
        f = sf.SoundFile(source)
    except Exception:  # not for libsndfile: decode_file's fallbacks decide
        return None
    try:
        if not _is_sized_pcm16(f):
            f.close()
            return None
        out = _Output("media", max_seconds)
        out.set_format(int(f.samplerate), int(f.channels))
        out.count(f.frames)
    except BaseException:
        f.close()
        raise
    block_frames = max(1, round(block_seconds * f.samplerate))
    total = int(f.frames)

    def blocks() -> Iterator[Samples]:
        delivered = 0
        with f:
            try:
                for ints in _pcm16_reads(f, block_frames):
                    samples: Samples = np.empty(ints.shape, np.float32)
                    np.multiply(ints, _PCM16_SCALE, out=samples, dtype=np.float32)
                    delivered += samples.shape[0]
                    yield samples
            except sf.LibsndfileError as exc:
                raise _media_error("media", f"cannot read the audio: {exc}") from None
        if delivered < total:  # the file shrank while it was read
            raise _media_error("media", f"the audio ends after {delivered} of {total} frames")

    return AudioBlocks(int(f.samplerate), int(f.channels), total, blocks())


def _read_at(fh: io.BufferedReader, offset: int, size: int) -> bytes:
    fh.seek(offset)
    return fh.read(size)


def _detect_at(read_at: Callable[[int, int], bytes]) -> str:
    """Run :func:`_detect` over random-access data, skipping ID3v2 tags."""
    offset = 0
    while True:
        head = read_at(offset, PROBE_BYTES)
        kind, n = _detect(head, 0, final=True)
        if kind != "id3":
            return kind
        offset += n


def _chunks_of(view: memoryview) -> Iterator[memoryview]:
    for start in range(0, len(view), _STREAM_CHUNK):
        yield view[start : start + _STREAM_CHUNK]


def _file_chunks(path: Path) -> Iterator[bytes]:
    with path.open("rb") as fh:
        while chunk := fh.read(_STREAM_CHUNK):
            yield chunk


def _decode_pipeline(chunks: Iterator[ByteData], max_seconds: float) -> AudioBuffer:
    """Run the streaming pipeline over all chunks, taking the output once at the end
    (the samples equal those of any feed()/finish() sequence: same blocks, same checks)."""
    decoder = StreamingContainerDecoder(max_seconds=max_seconds, field="media")
    for chunk in chunks:
        decoder._push(chunk)
    decoder._close()
    samples = decoder._out.take()
    assert decoder.sample_rate is not None
    return AudioBuffer(samples=samples, sample_rate=decoder.sample_rate)


_Source = Callable[[], "io.BytesIO | str"]


def _decode_fallbacks(source: _Source, max_seconds: float) -> AudioBuffer:
    """soundfile first, then PyAV; our own validation errors propagate unchanged."""
    for backend in (_decode_soundfile, _decode_pyav):
        try:
            return backend(source(), max_seconds)
        except _BackendFailedError:
            continue
    raise _media_error("media", "unrecognised, corrupt or truncated media")


def _finish_buffer(out: _Output) -> AudioBuffer:
    samples = out.take()
    if samples.shape[0] == 0 or out.sample_rate is None:
        raise _media_error("media", "media contains no audio samples")
    return AudioBuffer(samples=samples, sample_rate=out.sample_rate)


def _decode_soundfile(source: io.BytesIO | str, max_seconds: float) -> AudioBuffer:
    out = _Output("media", max_seconds)
    try:
        with sf.SoundFile(source) as f:
            out.set_format(int(f.samplerate), int(f.channels))
            if _is_sized_pcm16(f):
                samples = _read_pcm16(f, out)
                if samples.shape[0] == 0:
                    raise _media_error("media", "media contains no audio samples")
                return AudioBuffer(samples=samples, sample_rate=int(f.samplerate))
            while True:
                block = f.read(1 << 20, dtype="float32", always_2d=True)
                if block.shape[0] == 0:
                    break
                out.add(np.ascontiguousarray(block))
    except StreamprintError:
        raise
    except Exception as exc:  # libsndfile reports every failure differently
        raise _BackendFailedError(f"soundfile: {exc}") from None
    return _finish_buffer(out)


def _is_sized_pcm16(f: sf.SoundFile) -> bool:
    """Whether ``f`` takes the 16-bit fast path: non-empty PCM_16 in a :data:`_SIZED_FORMATS` format."""
    return bool(f.subtype == "PCM_16" and f.format in _SIZED_FORMATS and f.frames > 0)


def _read_pcm16(f: sf.SoundFile, out: _Output) -> Samples:
    """A 16-bit PCM file as float32 ``[n, channels]``: read as int16 and scaled by 2**-15 in
    numpy. That is libsndfile's own float conversion (``k / 32768``, the same bits) at a
    fraction of its cost (10 minutes of stereo: about 0.15 s instead of 0.7 s), straight
    into one array (no blocks to join), and every value is finite and in [-1, 1) by
    construction, so there is nothing to check or clip.
    """
    out.count(f.frames)
    samples = np.empty((f.frames, f.channels), np.float32)
    pos = 0
    for ints in _pcm16_reads(f, _PCM16_BLOCK_FRAMES):
        np.multiply(ints, _PCM16_SCALE, out=samples[pos : pos + ints.shape[0]], dtype=np.float32)
        pos += ints.shape[0]
    return samples[:pos]


def _pcm16_reads(f: sf.SoundFile, block_frames: int) -> Iterator[NDArray[np.int16]]:
    """The rest of ``f`` as int16 ``[n, channels]`` blocks of up to ``block_frames``; each is a
    view of one reused buffer, valid until the next block is read."""
    buffer = np.empty((min(f.frames, block_frames), f.channels), np.int16)
    left = f.frames - f.tell()
    while left > 0:
        got = f.read(dtype="int16", always_2d=True, out=buffer[: min(buffer.shape[0], left)])
        if got.shape[0] == 0:
            return
        left -= got.shape[0]
        yield got


def _decode_pyav(source: io.BytesIO | str, max_seconds: float) -> AudioBuffer:
    import av  # only for what libsndfile and our demuxers do not read

    out = _Output("media", max_seconds)
    try:
        with av.open(source, "r") as container:
            if not container.streams.audio:
                raise _BackendFailedError("PyAV: no audio stream")
            stream = container.streams.audio[0]
            for frame in container.decode(stream):
                out.set_format(int(frame.sample_rate), len(frame.layout.channels))
                out.add(_frame_to_float(frame))
    except StreamprintError:
        raise
    except Exception as exc:  # FFmpeg / PyAV: any failure means "cannot read this"
        raise _BackendFailedError(f"PyAV: {exc}") from None
    return _finish_buffer(out)
