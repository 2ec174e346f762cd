"""Cutting an encoded file into chunks of about N ms of media, without decoding it.

The client sends a file's *encoded* bytes and lets the server decode them. To cut chunks
of ``--chunk-ms`` of media (and to pace them at media time with ``--realtime``) it only
needs the file's average byte rate, which the headers give: WAV's byte rate; FLAC's
STREAMINFO (total samples / rate); Ogg's last granule position (Opus, Vorbis); MP3's
Xing/Info frame count or its constant bitrate. Anything else falls back to 128 kbit/s.
"""

from __future__ import annotations

import struct
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass

#: Byte rate assumed when the headers say nothing useful (128 kbit/s).
FALLBACK_BYTE_RATE = 16_000.0


@dataclass(frozen=True)
class MediaProbe:
    """What the headers say: ``format``, ``duration_s`` (if known), average ``byte_rate``."""

    format: str
    duration_s: float | None
    byte_rate: float


def probe(data: bytes) -> MediaProbe:
    """Probe an encoded file's format, duration and average byte rate (never raises)."""
    try:
        result = _probe(data)
    except (struct.error, ValueError, IndexError, ZeroDivisionError):
        result = None
    if result is None:
        return MediaProbe("unknown", None, FALLBACK_BYTE_RATE)
    fmt, duration, byte_rate = result
    if byte_rate is None or byte_rate <= 0:
        byte_rate = len(data) / duration if duration else FALLBACK_BYTE_RATE
    return MediaProbe(fmt, duration, float(byte_rate))


def _probe(data: bytes) -> tuple[str, float | None, float | None] | None:
    if data[:4] in (b"RIFF", b"RF64") and data[8:12] == b"WAVE":
        return _wav(data)
    if data[:4] == b"fLaC":
        return _flac(data)
    if data[:4] == b"OggS":
        return _ogg(data)
    return _mp3(data)


def _wav(data: bytes) -> tuple[str, float | None, float | None] | None:
    pos, byte_rate, data_size = 12, None, None
    while pos + 8 <= len(data):
        cid, size = data[pos : pos + 4], struct.unpack_from("<I", data, pos + 4)[0]
        if cid == b"fmt ":
            byte_rate = struct.unpack_from("<I", data, pos + 16)[0]
        elif cid == b"data":
            data_size = min(size, len(data) - pos - 8)
            break
        pos += 8 + size + (size & 1)
    if not byte_rate:
        return None
    duration = data_size / byte_rate if data_size is not None else None
    return "wav", duration, float(byte_rate)


def _flac(data: bytes) -> tuple[str, float | None, float | None] | None:
    if (data[4] & 0x7F) != 0:  # first block must be STREAMINFO
        return None
    info = data[8 : 8 + 34]
    packed = int.from_bytes(info[10:18], "big")
    rate = packed >> 44
    total = packed & ((1 << 36) - 1)
    if not rate or not total:
        return "flac", None, None
    return "flac", total / rate, None


def _ogg(data: bytes) -> tuple[str, float | None, float | None] | None:
    nsegs = data[26]
    first = data[27 + nsegs : 27 + nsegs + 64]
    if first.startswith(b"OpusHead"):
        rate, pre_skip = 48_000, struct.unpack_from("<H", first, 10)[0]
    elif first.startswith(b"\x01vorbis"):
        rate, pre_skip = struct.unpack_from("<I", first, 12)[0], 0
    else:
        return "ogg", None, None
    last = data.rfind(b"OggS", max(0, len(data) - 65_536 * 2))
    if last < 0 or not rate:
        return "ogg", None, None
    granule = struct.unpack_from("<q", data, last + 6)[0]
    if granule <= 0:
        return "ogg", None, None
    return "ogg", max(0, granule - pre_skip) / rate, None


_MP3_BITRATES = {
    (1, 1): (0, 32, 64, 96, 128, 160, 192, 224, 256, 288, 320, 352, 384, 416, 448),
    (1, 2): (0, 32, 48, 56, 64, 80, 96, 112, 128, 160, 192, 224, 256, 320, 384),
    (1, 3): (0, 32, 40, 48, 56, 64, 80, 96, 112, 128, 160, 192, 224, 256, 320),
    (2, 1): (0, 32, 48, 56, 64, 80, 96, 112, 128, 144, 160, 176, 192, 224, 256),
    (2, 2): (0, 8, 16, 24, 32, 40, 48, 56, 64, 80, 96, 112, 128, 144, 160),
    (2, 3): (0, 8, 16, 24, 32, 40, 48, 56, 64, 80, 96, 112, 128, 144, 160),
}
_MP3_RATES = {1: (44_100, 48_000, 32_000), 2: (22_050, 24_000, 16_000), 25: (11_025, 12_000, 8_000)}


def _mp3(data: bytes) -> tuple[str, float | None, float | None] | None:
    pos = 0
    if data[:3] == b"ID3":
        size = data[6] << 21 | data[7] << 14 | data[8] << 7 | data[9]
        pos = 10 + size
    limit = min(len(data) - 4, pos + 65_536)
    while pos < limit:
        if data[pos] == 0xFF and data[pos + 1] & 0xE0 == 0xE0:
            head = int.from_bytes(data[pos : pos + 4], "big")
            version_bits, layer_bits = (head >> 19) & 3, (head >> 17) & 3
            bitrate_idx, rate_idx = (head >> 12) & 15, (head >> 10) & 3
            if (
                version_bits != 1
                and layer_bits != 0
                and bitrate_idx not in (0, 15)
                and rate_idx != 3
            ):
                version = {3: 1, 2: 2, 0: 25}[version_bits]
                layer = 4 - layer_bits
                rate = _MP3_RATES[version][rate_idx]
                kbps = _MP3_BITRATES[(1 if version == 1 else 2, layer)][bitrate_idx]
                spf = 384 if layer == 1 else (1152 if layer == 2 or version == 1 else 576)
                frames = _xing_frames(data, pos, version, (head >> 6) & 3)
                if frames:
                    return "mp3", frames * spf / rate, None
                return "mp3", None, kbps * 1000 / 8
        pos += 1
    return None


def _xing_frames(data: bytes, pos: int, version: int, mode: int) -> int | None:
    side = (32 if mode != 3 else 17) if version == 1 else (17 if mode != 3 else 9)
    tag = pos + 4 + side
    if data[tag : tag + 4] in (b"Xing", b"Info"):
        flags = struct.unpack_from(">I", data, tag + 4)[0]
        if flags & 1:
            frames: int = struct.unpack_from(">I", data, tag + 8)[0]
            return frames
    return None


def chunk_size(media: MediaProbe, chunk_ms: int) -> int:
    """Bytes of about ``chunk_ms`` of media (at least 1)."""
    return max(1, round(media.byte_rate * chunk_ms / 1000.0))


def iter_chunks(
    data: bytes,
    chunk_bytes: int,
    *,
    realtime_s_per_chunk: float | None = None,
    on_chunk: Callable[[int], None] | None = None,
    clock: Callable[[], float] = time.monotonic,
    sleep: Callable[[float], None] = time.sleep,
) -> Iterator[bytes]:
    """Yield ``data`` in chunks; with ``realtime_s_per_chunk`` paced at media time.

    ``on_chunk(bytes_sent_so_far)`` is called after each chunk is handed over.
    """
    start = clock()
    sent = 0
    for k, offset in enumerate(range(0, len(data), chunk_bytes)):
        if realtime_s_per_chunk is not None:
            delay = start + k * realtime_s_per_chunk - clock()
            if delay > 0:
                sleep(delay)
        chunk = data[offset : offset + chunk_bytes]
        yield chunk
        sent += len(chunk)
        if on_chunk is not None:
            on_chunk(sent)
