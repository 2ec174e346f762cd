"""Streaming MPEG layer III: frame sync and headers, LAME gapless trim, decoded by FFmpeg."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Final

import numpy as np

from streamprint.engine.decode.common import PROBE_BYTES, ByteData, Samples, _media_error
from streamprint.engine.decode.demux import _AvDecoder, _Buffer, _Output

_MP3_KBPS: Final = {
    3: (0, 32, 40, 48, 56, 64, 80, 96, 112, 128, 160, 192, 224, 256, 320),
    2: (0, 8, 16, 24, 32, 40, 48, 56, 64, 80, 96, 112, 128, 144, 160),
}
_MP3_RATES: Final = {3: (44100, 48000, 32000), 2: (22050, 24000, 16000), 0: (11025, 12000, 8000)}
#: Decoder delay of an MPEG layer III decoder, samples (LAME gapless convention).
_MP3_DECODER_DELAY: Final = 529


@dataclass(frozen=True)
class _Mp3Header:
    version: int
    sample_rate: int
    channels: int
    length: int
    samples: int

    @property
    def key(self) -> tuple[int, int, int]:
        return self.version, self.sample_rate, self.channels


def _mp3_header(data: bytearray | bytes, pos: int) -> _Mp3Header | None:
    """Parse an MPEG-1/2/2.5 layer III frame header at ``pos`` (4 bytes must be there)."""
    b0, b1, b2, b3 = data[pos : pos + 4]
    version, layer = (b1 >> 3) & 3, (b1 >> 1) & 3
    br_index, sr_index = b2 >> 4, (b2 >> 2) & 3
    if b0 != 0xFF or b1 & 0xE0 != 0xE0 or version == 1 or layer != 1:
        return None
    if br_index in (0, 15) or sr_index == 3 or b3 & 3 == 2:
        return None
    rate = _MP3_RATES[version][sr_index]
    kbps = _MP3_KBPS[3 if version == 3 else 2][br_index]
    samples = 1152 if version == 3 else 576
    length = samples // 8 * 1000 * kbps // rate + ((b2 >> 1) & 1)
    return _Mp3Header(version, rate, 1 if b3 >> 6 == 3 else 2, length, samples)


def _mp3_confirm(data: bytearray | bytes, pos: int, final: bool) -> bool | None:
    """True if three consistent frames start at ``pos`` (or frames reach the end).

    None: not decidable yet (needs more bytes and ``final`` is false).
    """
    first = _mp3_header(data, pos)
    if first is None:
        return False
    end, frames = pos, 0
    while frames < 3:
        if end + 4 > len(data):
            if not final:
                return None
            return end == len(data) and frames >= 1
        head = _mp3_header(data, end)
        if head is None or head.key != first.key:
            return False
        end, frames = end + head.length, frames + 1
    return True


def _mp3_find_sync(data: bytearray | bytes, start: int, final: bool) -> tuple[str, int]:
    """Look for a confirmed MP3 frame sync from ``start``.

    Returns ("found", pos), ("more", pos) when the candidate at ``pos`` needs more bytes
    (bytes before ``pos`` are junk), or ("none", pos) when no candidate is in the data
    (bytes before ``pos`` are junk).
    """
    pos = start
    while (pos := data.find(b"\xff", pos)) >= 0:
        if pos + 4 > len(data):
            return ("none", pos) if final else ("more", pos)
        verdict = _mp3_confirm(data, pos, final)
        if verdict is None:
            return "more", pos
        if verdict:
            return "found", pos
        pos += 1
    return "none", len(data)


@dataclass
class _Mp3Trim:
    """Gapless trimming from a LAME / Lavc info tag, in decoded-sample indices."""

    start: int = 0
    discard_from: int | None = None
    discard_to: int = 0

    def cut(self, block: Samples, first_index: int) -> Samples:
        """Keep the samples whose index is in [start, discard_from) or >= discard_to."""
        n = block.shape[0]
        lo = min(max(self.start - first_index, 0), n)
        if self.discard_from is None:
            return block[lo:]
        a = min(max(self.discard_from - first_index, lo), n)
        b = min(max(self.discard_to - first_index, a), n)
        return block[lo:] if a == b else np.concatenate([block[lo:a], block[b:]])


def _mp3_info_tag(frame: bytes, head: _Mp3Header) -> _Mp3Trim | None:
    """Parse a Xing/Info (with LAME extension) or VBRI tag frame; None if not a tag."""
    stereo = head.channels == 2
    off = 4 + ((32 if stereo else 17) if head.version == 3 else (17 if stereo else 9))
    if frame[36:40] == b"VBRI":
        return _Mp3Trim()
    if frame[off : off + 4] not in (b"Xing", b"Info"):
        return None
    flags = int.from_bytes(frame[off + 4 : off + 8], "big")
    pos, frames = off + 8, 0
    if flags & 1:
        frames = int.from_bytes(frame[pos : pos + 4], "big")
        pos += 4
    pos += (4 if flags & 2 else 0) + (100 if flags & 4 else 0) + (4 if flags & 8 else 0)
    if frame[pos : pos + 4] not in (b"LAME", b"Lavf", b"Lavc") or len(frame) < pos + 24:
        return _Mp3Trim()
    delays = int.from_bytes(frame[pos + 21 : pos + 24], "big")
    start_pad, end_pad = delays >> 12, delays & 0xFFF
    trim = _Mp3Trim(start=start_pad + _MP3_DECODER_DELAY)
    if frames:
        trim.discard_from = frames * head.samples - end_pad + _MP3_DECODER_DELAY
        trim.discard_to = frames * head.samples
    return trim


class _Mp3Demuxer:
    """MPEG layer III elementary stream: frames split here, decoded by FFmpeg (mp3float).

    A leading Xing/Info/VBRI tag frame is not decoded; its LAME gapless info trims the
    output exactly as FFmpeg's MP3 demuxer does. Lost sync (junk, ID3v1 / APE tags,
    damage) is skipped by searching for three consistent frames again; a truncated last
    frame is dropped.
    """

    def __init__(self, out: _Output) -> None:
        self._out = out
        self._buf = _Buffer()
        self._key: tuple[int, int, int] | None = None
        self._synced = True  # the probe hands over data starting at a confirmed frame
        self._scan_from = 0
        self._junk = 0
        # packed float output: no per-frame interleaving work
        self._decoder = _AvDecoder("mp3float", out.field, options={"request_sample_fmt": "flt"})
        self._trim: _Mp3Trim | None = None
        self._frames = 0
        self._decoded = 0

    def push(self, data: ByteData) -> None:
        self._buf.append(data)
        self._run(final=False)

    def close(self) -> None:
        self._run(final=True)
        self._emit(self._decoder.decode(None))

    def _run(self, *, final: bool) -> None:
        data = self._buf.data
        while self._synced or self._resync(final):
            if len(data) < 4:
                return
            head = _mp3_header(data, 0)
            if head is None or (self._key is not None and head.key != self._key):
                self._synced, self._scan_from = False, 1
                continue
            if len(data) < head.length:
                if final:
                    data.clear()
                return
            self._frame(self._buf.pop(head.length), head)

    def _resync(self, final: bool) -> bool:
        status, pos = _mp3_find_sync(self._buf.data, self._scan_from, final)
        self._junk += pos
        if self._junk > PROBE_BYTES:
            raise _media_error(self._out.field, "lost MP3 frame sync")
        self._buf.drop(pos)
        self._scan_from = 0
        if status == "found":
            self._synced, self._junk = True, 0
            return True
        if final:
            self._buf.data.clear()
        return False

    def _frame(self, frame: bytes, head: _Mp3Header) -> None:
        self._frames += 1
        if self._key is None:
            self._key = head.key
            self._out.set_format(head.sample_rate, head.channels)
            self._trim = _mp3_info_tag(frame, head)
            if self._trim is not None:
                return
        self._emit(self._decoder.decode(frame))

    def _emit(self, blocks: list[Samples]) -> None:
        for block in blocks:
            first = self._decoded
            self._decoded += block.shape[0]
            self._out.add(block if self._trim is None else self._trim.cut(block, first))
