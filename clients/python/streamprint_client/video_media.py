"""Video containers on the client: detection and a media timeline, without decoding.

The client sends a video file's encoded bytes and the server decodes them. To cut chunks of
``--chunk-ms`` of media and pace them by media time (``--realtime``), the client reads
timestamps from the container itself:

* MPEG-TS: the PTS of every PES packet start (90 kHz), so pacing follows the real timestamps;
* Matroska / WebM: the timecode of every Cluster (``TimecodeScale`` from the segment info);
* MP4 (plain or fragmented): the movie duration (``mvhd``, or the sum of ``mehd``/fragment
  durations when present) spread evenly over the bytes.

Everything here is a cheap scan of headers (pure Python, no PyAV), never raises on odd
input, and falls back to an average byte rate.
"""

from __future__ import annotations

import struct
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass

#: Byte rate assumed for video when the container says nothing useful (2 Mbit/s).
FALLBACK_VIDEO_BYTE_RATE = 250_000.0
_TS = 188


def detect_video(data: bytes) -> str | None:
    """``"mpegts"``, ``"mp4"`` or ``"matroska"`` when ``data`` starts like one, else ``None``.

    MP4 files with an audio-only brand (``M4A``, ``M4B``) are not reported as video.
    """
    if len(data) >= 3 * _TS and all(data[i * _TS] == 0x47 for i in range(3)):
        return "mpegts"
    if data[4:8] == b"ftyp" and data[8:11] not in (b"M4A", b"M4B"):
        return "mp4"
    if data[:4] == b"\x1a\x45\xdf\xa3":
        return "matroska"
    return None


@dataclass(frozen=True)
class Timeline:
    """Byte offsets and their media times (seconds from the start), both increasing."""

    offsets: tuple[int, ...]
    seconds: tuple[float, ...]

    def time_at(self, offset: int) -> float:
        """Media time reached once ``offset`` bytes are sent (piecewise linear)."""
        if not self.offsets:
            return 0.0
        import bisect

        i = bisect.bisect_right(self.offsets, offset) - 1
        if i < 0:
            return 0.0
        if i >= len(self.offsets) - 1:
            return self.seconds[-1]
        o0, o1 = self.offsets[i], self.offsets[i + 1]
        t0, t1 = self.seconds[i], self.seconds[i + 1]
        return t0 + (t1 - t0) * (offset - o0) / max(1, o1 - o0)

    @property
    def duration(self) -> float:
        """Media time of the last point."""
        return self.seconds[-1] if self.seconds else 0.0


def _linear(size: int, duration: float | None) -> Timeline:
    d = duration if duration and duration > 0 else size / FALLBACK_VIDEO_BYTE_RATE
    return Timeline((0, size), (0.0, d))


def timeline(data: bytes, kind: str | None = None) -> Timeline:
    """The media timeline of a video container (see module docstring)."""
    kind = kind or detect_video(data)
    try:
        if kind == "mpegts":
            return _ts_timeline(data)
        if kind == "matroska":
            return _mkv_timeline(data)
        if kind == "mp4":
            return _mp4_timeline(data)
    except (struct.error, IndexError, ValueError):
        pass
    return _linear(len(data), None)


def _ts_timeline(data: bytes) -> Timeline:
    offsets: list[int] = []
    seconds: list[float] = []
    first: int | None = None
    last = -1.0
    for pos in range(0, len(data) - _TS + 1, _TS):
        if data[pos] != 0x47 or not data[pos + 1] & 0x40:  # sync, payload_unit_start
            continue
        afc = (data[pos + 3] >> 4) & 3
        p = pos + 4
        if afc & 2:
            p += 1 + data[p]
        if not afc & 1 or p + 14 > pos + _TS:
            continue
        if data[p : p + 3] != b"\0\0\1" or not 0xE0 <= data[p + 3] <= 0xEF:  # video PES only
            continue
        if not data[p + 7] & 0x80:
            continue
        b = data[p + 9 : p + 14]
        pts = ((b[0] >> 1) & 7) << 30 | b[1] << 22 | (b[2] >> 1) << 15 | b[3] << 7 | b[4] >> 1
        if first is None:
            first = pts
        t = ((pts - first) % (1 << 33)) / 90_000.0
        if t > last:
            offsets.append(pos)
            seconds.append(t)
            last = t
    if len(offsets) < 2:
        return _linear(len(data), None)
    step = seconds[-1] / max(1, len(seconds) - 1)
    offsets.append(len(data))
    seconds.append(seconds[-1] + step)
    return Timeline(tuple(offsets), tuple(seconds))


def _vint(data: bytes, pos: int, *, keep_marker: bool) -> tuple[int, int]:
    first = data[pos]
    length = 1
    while length <= 8 and not first & (0x80 >> (length - 1)):
        length += 1
    if length > 8:
        raise ValueError("bad EBML vint")
    value = first if keep_marker else first & (0xFF >> length)
    for k in range(1, length):
        value = (value << 8) | data[pos + k]
    return value, pos + length


def _ebml(data: bytes, pos: int) -> tuple[int, int, int]:
    """``(element id, body start, body size)`` of the element at ``pos``."""
    eid, p = _vint(data, pos, keep_marker=True)
    size, p = _vint(data, p, keep_marker=False)
    return eid, p, size


def _mkv_timeline(data: bytes) -> Timeline:
    scale_ns = 1_000_000
    duration: float | None = None
    i = data.find(b"\x15\x49\xa9\x66")  # Info
    if i >= 0:
        _, p, size = _ebml(data, i)
        end = min(len(data), p + size)
        while p < end:
            eid, q, esize = _ebml(data, p)
            payload = data[q : q + esize]
            if eid == 0x2AD7B1:
                scale_ns = int.from_bytes(payload, "big") or scale_ns
            elif eid == 0x4489 and esize in (4, 8):
                duration = struct.unpack(">f" if esize == 4 else ">d", payload)[0]
            p = q + esize
    offsets: list[int] = []
    seconds: list[float] = []
    pos = data.find(b"\x1f\x43\xb6\x75")  # first Cluster; then walk clusters' children
    cluster_t = 0.0
    unknown = (1 << 56) - 1
    while 0 <= pos < len(data) - 4:
        try:
            eid, body, size = _ebml(data, pos)
        except (IndexError, ValueError):
            break
        if eid == 0x1F43B675:  # Cluster: descend (its size may be "unknown")
            pos = body
            continue
        if eid == 0xE7:  # cluster Timecode
            cluster_t = int.from_bytes(data[body : body + size], "big") * scale_ns / 1e9
        elif eid in (0xA3, 0xA0):  # SimpleBlock, BlockGroup (its Block comes first)
            block = body
            if eid == 0xA0:
                _, block, _ = _ebml(data, body)
            _, q = _vint(data, block, keep_marker=False)  # track number
            rel = struct.unpack_from(">h", data, q)[0]
            t = cluster_t + rel * scale_ns / 1e9
            if not seconds or t > seconds[-1]:
                offsets.append(pos)
                seconds.append(t)
        if size == unknown:
            break
        pos = body + size
    total = duration * scale_ns / 1e9 if duration else None
    if len(offsets) < 2:
        return _linear(len(data), total)
    first = seconds[0]
    seconds = [t - first for t in seconds]
    step = seconds[-1] / max(1, len(seconds) - 1)
    offsets[0] = 0
    offsets.append(len(data))
    seconds.append(seconds[-1] + step)
    return Timeline(tuple(offsets), tuple(seconds))


def _boxes(data: bytes, start: int, end: int) -> Iterator[tuple[bytes, int, int, int]]:
    """``(type, box start, body start, box end)`` of the MP4 boxes in ``[start, end)``."""
    pos = start
    while pos + 8 <= end:
        size, kind = struct.unpack_from(">I4s", data, pos)
        header = 8
        if size == 1:
            size = struct.unpack_from(">Q", data, pos + 8)[0]
            header = 16
        elif size == 0:
            size = end - pos
        if size < header:
            return
        yield kind, pos, pos + header, min(end, pos + size)
        pos += size


def _mp4_timeline(data: bytes) -> Timeline:
    movie_duration: float | None = None
    track_scale = 0
    default_duration = 0
    last_length = 0.0
    offsets: list[int] = []
    seconds: list[float] = []
    for kind, start, body, end in _boxes(data, 0, len(data)):
        if kind == b"moov":
            for ikind, _, ibody, iend in _boxes(data, body, end):
                if ikind == b"mvhd":
                    version = data[ibody]
                    if version == 1:
                        scale, duration = struct.unpack_from(">IQ", data, ibody + 20)
                    else:
                        scale, duration = struct.unpack_from(">II", data, ibody + 12)
                    if scale and duration and duration not in (0xFFFFFFFF, (1 << 64) - 1):
                        movie_duration = duration / scale
                elif ikind == b"trak" and not track_scale:
                    m = data.find(b"mdhd", ibody, iend)
                    if m > 0:
                        version = data[m + 4]
                        track_scale = struct.unpack_from(">I", data, m + 8 + (16 if version == 1 else 8))[0]
                elif ikind == b"mvex":
                    m = data.find(b"trex", ibody, iend)
                    if m > 0:
                        default_duration = struct.unpack_from(">I", data, m + 16)[0]
        elif kind == b"moof" and track_scale:
            m = data.find(b"tfdt", body, end)
            if m > 0:
                version = data[m + 4]
                base = struct.unpack_from(">Q" if version == 1 else ">I", data, m + 8)[0]
                t = base / track_scale
                if not seconds or t > seconds[-1]:
                    offsets.append(start)
                    seconds.append(t)
                    last_length = _fragment_ticks(data, body, end, default_duration) / track_scale
    if len(offsets) < 2 and not last_length:
        return _linear(len(data), movie_duration)
    first = seconds[0]
    seconds = [t - first for t in seconds]
    step = last_length or seconds[-1] / max(1, len(seconds) - 1)
    offsets[0] = 0
    offsets.append(len(data))
    seconds.append(seconds[-1] + step)
    return Timeline(tuple(offsets), tuple(seconds))


def _fragment_ticks(data: bytes, body: int, end: int, default_duration: int) -> int:
    """Duration of one ``moof`` in track ticks (``tfhd`` / ``trun`` / ``trex`` defaults)."""
    m = data.find(b"tfhd", body, end)
    if m > 0:
        flags = int.from_bytes(data[m + 5 : m + 8], "big")
        q = m + 12 + (8 if flags & 1 else 0) + (4 if flags & 2 else 0)
        if flags & 8:
            default_duration = struct.unpack_from(">I", data, q)[0]
    m = data.find(b"trun", body, end)
    if m < 0:
        return 0
    flags = int.from_bytes(data[m + 5 : m + 8], "big")
    count = struct.unpack_from(">I", data, m + 8)[0]
    if not flags & 0x100:
        return int(count * default_duration)
    q = m + 12 + (4 if flags & 1 else 0) + (4 if flags & 4 else 0)
    per = 4 * sum(1 for bit in (0x100, 0x200, 0x400, 0x800) if flags & bit)
    return sum(struct.unpack_from(">I", data, q + i * per)[0] for i in range(count))


def timed_chunks(
    data: bytes,
    line: Timeline,
    chunk_ms: int,
    *,
    realtime: bool = False,
    on_chunk: Callable[[int], None] | None = None,
    clock: Callable[[], float] = time.monotonic,
    sleep: Callable[[float], None] = time.sleep,
) -> Iterator[bytes]:
    """Cut ``data`` into chunks of about ``chunk_ms`` of media by ``line``.

    With ``realtime`` a chunk is handed over once the wall clock since the first chunk has
    reached the media time where the chunk starts (pacing by the container's timestamps).
    ``on_chunk(bytes_sent_so_far)`` is called after each chunk.
    """
    step = chunk_ms / 1000.0
    start = clock()
    offset = 0
    k = 0
    total = len(data)
    # bytes per step by the timeline: binary search on the offset where time crosses (k+1) step
    while offset < total:
        target = (k + 1) * step
        lo, hi = offset + 1, total
        while lo < hi:
            mid = (lo + hi) // 2
            if line.time_at(mid) < target:
                lo = mid + 1
            else:
                hi = mid
        end = max(offset + 1, lo)
        if realtime:
            delay = start + line.time_at(offset) - clock()
            if delay > 0:
                sleep(delay)
        chunk = data[offset:end]
        yield chunk
        offset = end
        k = max(k + 1, int(line.time_at(offset) / step))
        if on_chunk is not None:
            on_chunk(offset)
