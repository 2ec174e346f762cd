"""Streaming native FLAC: metadata and frame boundaries parsed here, frames decoded by FFmpeg."""

from __future__ import annotations

import struct
from dataclasses import dataclass
from typing import Final

from streamprint.engine.decode.common import (
    MAX_PENDING_BYTES,
    ByteData,
    Samples,
    _media_error,
)
from streamprint.engine.decode.demux import _AvDecoder, _Buffer, _Output
from streamprint.errors import MediaDecodeError


def _crc8_table() -> tuple[int, ...]:
    table = []
    for i in range(256):
        crc = i
        for _ in range(8):
            crc = ((crc << 1) ^ 0x07) & 0xFF if crc & 0x80 else (crc << 1) & 0xFF
        table.append(crc)
    return tuple(table)


_CRC8: Final = _crc8_table()
_FLAC_BLOCKSIZES: Final = {1: 192, 2: 576, 3: 1152, 4: 2304, 5: 4608} | {
    code: 256 << (code - 8) for code in range(8, 16)
}
_FLAC_RATES: Final = {
    1: 88200, 2: 176400, 3: 192000, 4: 8000, 5: 16000, 6: 22050,
    7: 24000, 8: 32000, 9: 44100, 10: 48000, 11: 96000,
}  # fmt: skip
_FLAC_BITS: Final = {1: 8, 2: 12, 4: 16, 5: 20, 6: 24, 7: 32}
_NEED_MORE: Final = "more"


@dataclass(frozen=True)
class _FlacInfo:
    sample_rate: int
    channels: int
    bits: int
    streaminfo: bytes


@dataclass(frozen=True)
class _FlacFrameHeader:
    length: int
    number: int
    blocksize: int
    variable: bool

    def next_number(self) -> int:
        return self.number + (self.blocksize if self.variable else 1)


def _utf8_number(buf: bytearray, pos: int) -> tuple[int, int] | str | None:
    """FLAC's UTF-8-like coded frame / sample number at ``pos``: (value, n_bytes)."""
    if pos >= len(buf):
        return _NEED_MORE
    first = buf[pos]
    if first < 0x80:
        return first, 1
    n = 0
    while n < 8 and first & (0x80 >> n):
        n += 1
    if n < 2 or n > 7:
        return None
    if pos + n > len(buf):
        return _NEED_MORE
    value = first & (0x7F >> n)
    for byte in buf[pos + 1 : pos + n]:
        if byte & 0xC0 != 0x80:
            return None
        value = (value << 6) | (byte & 0x3F)
    return value, n


def _flac_frame_header(buf: bytearray, pos: int, info: _FlacInfo) -> _FlacFrameHeader | str | None:
    """Parse and verify (CRC-8, stream parameters) a FLAC frame header at ``pos``."""
    if pos + 4 > len(buf):
        return _NEED_MORE
    b1, b2, b3 = buf[pos + 1], buf[pos + 2], buf[pos + 3]
    bs_code, sr_code, ch_code, ss_code = b2 >> 4, b2 & 15, b3 >> 4, (b3 >> 1) & 7
    if buf[pos] != 0xFF or b1 & 0xFE != 0xF8 or b3 & 1 or bs_code == 0 or sr_code == 15:
        return None
    channels = ch_code + 1 if ch_code < 8 else 2 if ch_code <= 10 else 0
    if channels != info.channels or (ss_code and _FLAC_BITS.get(ss_code) != info.bits):
        return None
    if sr_code in _FLAC_RATES and _FLAC_RATES[sr_code] != info.sample_rate:
        return None
    coded = _utf8_number(buf, pos + 4)
    if not isinstance(coded, tuple):
        return coded
    number, n = coded
    p = pos + 4 + n
    extra = (1 if bs_code == 6 else 2 if bs_code == 7 else 0) + (
        1 if sr_code == 12 else 2 if sr_code in (13, 14) else 0
    )
    if p + extra + 1 > len(buf):
        return _NEED_MORE
    if bs_code == 6:
        blocksize = buf[p] + 1
    elif bs_code == 7:
        blocksize = (buf[p] << 8 | buf[p + 1]) + 1
    else:
        blocksize = _FLAC_BLOCKSIZES[bs_code]
    crc = 0
    for byte in buf[pos : p + extra]:
        crc = _CRC8[crc ^ byte]
    if crc != buf[p + extra]:
        return None
    return _FlacFrameHeader(p + extra + 1 - pos, number, blocksize, bool(b1 & 1))


def _strip_trailer(frame: bytes) -> bytes:
    """Remove an ID3v1 / APEv2 tag glued after the last frame."""
    if len(frame) > 128 and frame[-128:-125] == b"TAG":
        frame = frame[:-128]
    ape = frame.rfind(b"APETAGEX")
    if ape >= 0 and len(frame) - ape <= 32:
        size = struct.unpack_from("<I", frame, ape + 12)[0]
        start = len(frame) - size - (32 if frame[ape + 23] & 0x80 else 0)
        frame = frame[: max(start, 0)]
    return frame


class _FlacDemuxer:
    """Native FLAC: metadata parsed here, frames split here, decoded by FFmpeg.

    A frame ends where the next valid frame header starts: sync code, CRC-8, the stream's
    parameters *and* the expected next frame / sample number must all match, which makes a
    false split inside compressed data practically impossible (FFmpeg's own FLAC parser
    does the same kind of look-ahead). Frames are handed to the decoder whole.
    """

    def __init__(self, out: _Output) -> None:
        self._out = out
        self._buf = _Buffer()
        self._state = "magic"
        self._info: _FlacInfo | None = None
        self._decoder: _AvDecoder | None = None
        self._current: _FlacFrameHeader | None = None
        self._search_from = 0

    def push(self, data: ByteData) -> None:
        self._buf.append(data)
        while self._state != "frames" and self._step_header():
            pass
        if self._state == "frames":
            self._split_frames(final=False)

    def close(self) -> None:
        if self._state != "frames":
            raise _media_error(self._out.field, "truncated FLAC header")
        self._split_frames(final=True)
        if len(self._buf):
            last = _strip_trailer(self._buf.pop(len(self._buf)))
            try:
                self._decode(last)
            except MediaDecodeError:
                raise _media_error(
                    self._out.field, "truncated or corrupt last FLAC frame"
                ) from None
        if self._decoder is not None:
            self._emit(self._decoder.decode(None))

    def _step_header(self) -> bool:
        buf = self._buf
        if self._state == "magic":
            if len(buf) < 4:
                return False
            if bytes(buf.data[:4]) != b"fLaC":
                raise _media_error(self._out.field, "not a FLAC stream")
            buf.drop(4)
            self._state = "meta"
            return True
        if len(buf) < 4:
            return False
        head = buf.data[0]
        length = int.from_bytes(buf.data[1:4], "big")
        if head & 0x7F == 0:
            if len(buf) < 4 + length:
                return False
            self._set_streaminfo(bytes(buf.data[4 : 4 + length]))
        elif head & 0x7F == 127:
            raise _media_error(self._out.field, "invalid FLAC metadata block")
        buf.drop(4 + length)
        if head & 0x80:
            if self._info is None:
                raise _media_error(self._out.field, "FLAC stream without STREAMINFO")
            self._state = "frames"
        return True

    def _set_streaminfo(self, body: bytes) -> None:
        if len(body) != 34:
            raise _media_error(self._out.field, "bad FLAC STREAMINFO block")
        packed = int.from_bytes(body[10:18], "big")
        rate, channels, bits = packed >> 44, ((packed >> 41) & 7) + 1, ((packed >> 36) & 31) + 1
        self._out.set_format(rate, channels)
        self._info = _FlacInfo(rate, channels, bits, body)
        self._decoder = _AvDecoder("flac", self._out.field, extradata=body)

    def _split_frames(self, *, final: bool) -> None:
        assert self._info is not None
        data = self._buf.data
        while True:
            if self._current is None:
                head = _flac_frame_header(data, 0, self._info)
                if head == _NEED_MORE and not final:
                    return
                if not isinstance(head, _FlacFrameHeader):
                    if final and not _strip_trailer(bytes(data)):
                        data.clear()
                        return
                    raise _media_error(self._out.field, "truncated or corrupt FLAC frame")
                self._current, self._search_from = head, head.length
            end = self._find_next_frame(final=final)
            if end is None:
                if len(data) > MAX_PENDING_BYTES:
                    raise _media_error(self._out.field, "FLAC frame too large or corrupt")
                return
            self._decode(self._buf.pop(end))
            self._current = None

    def _find_next_frame(self, *, final: bool) -> int | None:
        assert self._info is not None and self._current is not None
        data = self._buf.data
        sync = bytes((0xFF, 0xF9 if self._current.variable else 0xF8))
        expected = self._current.next_number()
        pos = self._search_from
        while (pos := data.find(sync, pos)) >= 0:
            head = _flac_frame_header(data, pos, self._info)
            if head == _NEED_MORE and not final:
                self._search_from = pos
                return None
            if isinstance(head, _FlacFrameHeader) and head.number == expected:
                return pos
            pos += 1
        self._search_from = max(len(data) - 1, self._current.length)
        return None

    def _decode(self, frame: bytes) -> None:
        assert self._decoder is not None
        if frame:
            self._emit(self._decoder.decode(frame))

    def _emit(self, blocks: list[Samples]) -> None:
        for block in blocks:
            self._out.add(block)
