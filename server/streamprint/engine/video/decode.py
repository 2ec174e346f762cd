"""Video container decoding with PyAV: whole media, and incremental from chunk bytes.

* :func:`iter_frames` decodes whole media (bytes or a path) from a seekable source, so plain
  MP4 with the ``moov`` index at the end works.
* :class:`StreamingVideoDecoder` decodes chunk bytes as they arrive: PyAV reads the
  container through a blocking file-like pipe on a worker thread; :meth:`feed` hands one
  chunk over and returns once the demuxer has consumed it and waits for more, so at most
  one chunk plus libav's probe / IO buffers (:data:`PROBE_BYTES`) are held. Decoded frames
  go to a callback (on the worker thread, while the caller waits), so nothing but the
  session's state grows. Works for MPEG-TS, fragmented MP4, WebM / MKV and MP4 whose
  ``moov`` comes first; plain MP4 with ``moov`` at the end cannot stream (the index is
  needed before the first frame, and only the first :data:`PROBE_BYTES` can be sought back
  to) and fails with :class:`MediaDecodeError` saying so.

Streams and whole media use the same demuxer options and the first video stream, so they
decode the same frames. Only video is decoded; audio tracks are skipped.
"""

from __future__ import annotations

import io
import threading
from collections.abc import Callable, Iterator
from pathlib import Path

import av
import av.error

from streamprint.engine.video.grid import MAX_SIDE
from streamprint.errors import InvalidInputError, MediaDecodeError, StreamprintError

#: Demuxer probe limits: bytes and microseconds of media read before the first frame.
PROBE_BYTES = 1 << 20
ANALYZE_US = 1_000_000
_OPTIONS = {"probesize": str(PROBE_BYTES), "analyzeduration": str(ANALYZE_US)}
#: The decoders refuse pictures of more pixels than the largest frame the session takes
#: (``grid.MAX_SIDE`` squared) before allocating them: a 769 KB H.264 stream of 16000x16000
#: frames otherwise took 1.1 GB to decode (libav also decodes while probing a container, so
#: the option goes to the probe of each of the first :data:`_PROBED_STREAMS` streams too).
MAX_PIXELS = MAX_SIDE * MAX_SIDE
_CODEC_OPTIONS = {"max_pixels": str(MAX_PIXELS)}
_PROBED_STREAMS = 64
#: Undecodable packets skipped before the first frame (a live stream joined mid-GOP) ...
MAX_LEADING_BAD_PACKETS = 600
#: ... and in a row after it (a damaged stretch); more is a corrupt stream.
MAX_CONSECUTIVE_BAD_PACKETS = 60
#: AV_DISPOSITION_ATTACHED_PIC: a "video" stream that is only cover art (MP3, FLAC, M4A).
_ATTACHED_PIC = 0x0400

FrameSink = Callable[[av.VideoFrame, float], None]


def _media_error(field: str, description: str) -> MediaDecodeError:
    err = MediaDecodeError.for_field(field, description, "a video container PyAV/FFmpeg decodes")
    assert isinstance(err, MediaDecodeError)
    return err


def _timestamp(frame: av.VideoFrame, stream: av.video.stream.VideoStream, index: int) -> float:
    """Presentation time in seconds (falls back to the stream's average rate)."""
    if frame.pts is not None and frame.time_base is not None:
        return float(frame.pts * frame.time_base)
    rate = stream.average_rate or stream.guessed_rate
    return index / float(rate) if rate else index / 30.0


def _frames(
    container: av.container.InputContainer, field: str
) -> Iterator[tuple[av.VideoFrame, float]]:
    """Decode the first video stream of ``container``: ``(frame, timestamp_s)`` in order.

    One decoder thread (per-core cost, deterministic). Raises :class:`MediaDecodeError` for
    no video stream, corrupt data, no frame at all, or (containers that index their frames,
    such as MP4) fewer frames than indexed.
    """
    if not container.streams.video:
        raise _media_error(field, "the media has no video stream")
    stream = container.streams.video[0]
    check_frame_size(stream.codec_context.width, stream.codec_context.height, field, known_only=True)
    stream.thread_type = "SLICE"
    stream.codec_context.thread_count = 1
    stream.codec_context.options = dict(_CODEC_OPTIONS)
    count = 0
    failures = 0  # consecutive packets the decoder rejected
    try:
        for packet in container.demux(stream):
            try:
                frames = packet.decode()
            except av.error.FFmpegError as exc:
                # A live stream joined mid-GOP starts with packets that reference frames never
                # seen; a damaged packet may follow. Skip them, but not without end.
                failures += 1
                limit = MAX_LEADING_BAD_PACKETS if count == 0 else MAX_CONSECUTIVE_BAD_PACKETS
                if failures > limit:
                    raise _media_error(
                        field, f"the video stream is corrupt ({failures} undecodable packets in a row: "
                        f"{exc.strerror})"
                    ) from exc
                continue
            failures = 0
            for frame in frames:
                check_frame_size(frame.width, frame.height, field)
                yield frame, _timestamp(frame, stream, count)
                count += 1
    except av.error.FFmpegError as exc:
        raise _media_error(field, f"the video stream is corrupt or truncated ({exc.strerror})") from exc
    if count == 0:
        raise _media_error(field, "no video frame could be decoded")
    if stream.frames and count < stream.frames:
        raise _media_error(field, f"truncated: {count} of {stream.frames} indexed frames decoded")


def check_frame_size(width: int, height: int, field: str, *, known_only: bool = False) -> None:
    """Refuse a frame (or, from a container's header, a stream) whose sides are outside
    ``2..MAX_SIDE`` pixels; ``known_only``: a 0 side means not known yet and passes."""
    if known_only and (width == 0 or height == 0):
        return
    if not (2 <= width <= MAX_SIDE and 2 <= height <= MAX_SIDE):
        raise InvalidInputError.for_field(
            field, f"frame size {width}x{height} is out of range", f"2..{MAX_SIDE} px a side"
        )


def _open(source: object, field: str) -> av.container.InputContainer:
    try:
        container = av.open(  # type: ignore[call-overload]  # PyAV's stub says list[str]; it takes one dict per stream
            source, mode="r", options=_OPTIONS, stream_options=[_CODEC_OPTIONS] * _PROBED_STREAMS
        )
    except (av.error.FFmpegError, ValueError, OSError) as exc:
        msg = exc.strerror if isinstance(exc, av.error.FFmpegError) else str(exc)
        raise _media_error(field, f"not a decodable video container ({msg})") from exc
    if not isinstance(container, av.container.InputContainer):  # pragma: no cover
        raise _media_error(field, "not an input container")
    return container


def iter_frames(
    source: bytes | memoryview | str | Path, *, field: str = "media.data"
) -> Iterator[tuple[av.VideoFrame, float]]:
    """Decode whole media from a seekable source; ``(frame, timestamp_s)`` in presentation order.

    Frames are produced one packet at a time (memory stays bounded). Errors as :func:`_frames`.
    """
    src: object = str(source) if isinstance(source, Path | str) else io.BytesIO(bytes(source))
    with _open(src, field) as container:
        yield from _frames(container, field)


def has_video_stream(source: bytes | str | Path) -> bool:
    """Whether PyAV opens ``source`` and finds a video stream (cover art excluded)."""
    src: object = str(source) if isinstance(source, Path | str) else io.BytesIO(source)
    try:
        with av.open(src, mode="r", options=_OPTIONS) as container:
            return any(not int(s.disposition) & _ATTACHED_PIC for s in container.streams.video)
    except (av.error.FFmpegError, ValueError, OSError):
        return False


class _Aborted(Exception):
    """Raised inside the reader to unwind libav when the decoder is closed."""


class _Pipe(io.RawIOBase):
    """Blocking read side of the chunk hand-off (runs on the decoder thread)."""

    def __init__(self, owner: StreamingVideoDecoder) -> None:
        super().__init__()
        self._owner = owner

    def readable(self) -> bool:
        return True

    def read(self, size: int = -1) -> bytes:
        return self._owner._read(size)

    def readinto(self, buffer: memoryview) -> int:  # type: ignore[override]
        data = self._owner._read(len(buffer))
        buffer[: len(data)] = data
        return len(data)


#: Bytes of a stream's start kept to tell why an MP4 could not be streamed.
_HEAD_BYTES = 64 * 1024


def _mp4_index_not_first(head: bytes) -> bool:
    """Whether ``head`` (a stream's first bytes) starts an MP4 whose boxes before the media
    data do not include its index (``moov``): such a file cannot be streamed. An MP4 with
    ``moov`` first (faststart, or fragmented) that failed had another problem (truncated,
    damaged), which its own error says."""
    if head[4:8] != b"ftyp":
        return False
    pos = 0
    while pos + 8 <= len(head):
        size, kind = int.from_bytes(head[pos : pos + 4], "big"), head[pos + 4 : pos + 8]
        if kind == b"moov":
            return False
        if kind == b"mdat" or size < 8:  # media data first, or a box this scan does not size
            return True
        pos += size
    return True  # no index within the first _HEAD_BYTES


class StreamingVideoDecoder:
    """Incremental decoder of one video container stream (see module docstring).

    ``sink(frame, timestamp_s)`` receives every decoded frame in presentation order, on the
    decoder thread while :meth:`feed` or :meth:`finish` waits. An exception raised by the
    sink stops decoding and is re-raised by the waiting call.
    """

    def __init__(self, sink: FrameSink, *, field: str = "chunk.data") -> None:
        self._sink = sink
        self._field = field
        self._cond = threading.Condition()
        self._buf = bytearray()
        self._eof = False
        self._aborted = False
        self._waiting = False
        self._done = False
        self._error: BaseException | None = None
        self.frames_decoded = 0
        self.bytes_fed = 0
        self._head = b""
        self._thread = threading.Thread(target=self._run, name="video-decoder", daemon=True)
        self._thread.start()

    # -- caller side ------------------------------------------------------------------

    def feed(self, data: bytes | memoryview) -> None:
        """Hand one chunk to the decoder; returns when it is consumed (or decoding failed)."""
        if self._eof:
            raise MediaDecodeError.for_field(self._field, "data after the end of the stream")
        if not data:
            return
        if len(self._head) < _HEAD_BYTES:
            self._head += bytes(data[: _HEAD_BYTES - len(self._head)])
        with self._cond:
            self._buf += data
            self.bytes_fed += len(data)
            self._waiting = False
            self._cond.notify_all()
            while not (self._done or (self._waiting and not self._buf)):
                self._cond.wait()
        self._raise_error()

    def finish(self) -> None:
        """End of stream: decode what is left and flush; raises decode errors."""
        with self._cond:
            self._eof = True
            self._cond.notify_all()
        self._thread.join()
        self._raise_error()

    def close(self, *, wait: bool = True) -> None:
        """Abandon decoding (idempotent); the worker thread exits (``wait``: join it)."""
        with self._cond:
            self._aborted = True
            self._eof = True
            self._cond.notify_all()
        if wait:
            self._thread.join()

    # -- decoder thread ---------------------------------------------------------------

    def _raise_error(self) -> None:
        err = self._error
        if err is None:
            return
        self.close()
        if isinstance(err, MediaDecodeError) and self.frames_decoded == 0 and _mp4_index_not_first(self._head):
            raise _media_error(
                self._field,
                "an MP4 whose index (moov) is not at the start cannot be streamed; send fragmented "
                "MP4, MP4 with faststart, MPEG-TS, WebM or MKV, or use the unary Fingerprint call",
            ) from err
        raise err

    def _read(self, size: int) -> bytes:
        with self._cond:
            while not self._buf and not self._eof and not self._aborted:
                self._waiting = True
                self._cond.notify_all()
                self._cond.wait()
            self._waiting = False
            if self._aborted:
                raise _Aborted
            n = len(self._buf) if size is None or size < 0 else min(size, len(self._buf))
            out = bytes(self._buf[:n])
            del self._buf[:n]
            return out

    def _sink_counted(self, frame: av.VideoFrame, timestamp_s: float) -> None:
        self._sink(frame, timestamp_s)
        self.frames_decoded += 1

    def _run(self) -> None:
        try:
            with _open(_Pipe(self), self._field) as container:
                for frame, timestamp_s in _frames(container, self._field):
                    self._sink_counted(frame, timestamp_s)
        except _Aborted:
            pass
        except StreamprintError as exc:
            self._error = exc
        except av.error.FFmpegError as exc:
            if not self._aborted:
                self._error = _media_error(self._field, f"not a decodable video stream ({exc.strerror})")
        except Exception as exc:  # re-raised on the caller's thread
            if not self._aborted:
                self._error = exc
        finally:
            with self._cond:
                self._done = True
                self._buf.clear()
                self._cond.notify_all()
