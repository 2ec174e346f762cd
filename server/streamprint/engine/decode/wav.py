"""Streaming WAV / RF64: RIFF chunks parsed here; the data chunk is plain PCM."""

from __future__ import annotations

import struct
from dataclasses import dataclass

from streamprint.engine.decode.common import (
    PROBE_BYTES,
    ByteData,
    _check_rate_channels,
    _media_error,
    _unsupported,
)
from streamprint.engine.decode.convert import _PCM_WIDTH, _pcm_to_float
from streamprint.engine.decode.demux import _Buffer, _Output


@dataclass(frozen=True)
class _WavFormat:
    kind: str
    sample_rate: int
    channels: int

    @property
    def frame_bytes(self) -> int:
        return _PCM_WIDTH[self.kind] * self.channels


_WAV_PCM, _WAV_FLOAT, _WAV_EXTENSIBLE = 1, 3, 0xFFFE


def _parse_wav_fmt(body: bytes, field: str) -> _WavFormat:
    tag, channels, rate, _, block_align, bits = struct.unpack_from("<HHIIHH", body)
    _check_rate_channels(rate, channels, field)
    if tag == _WAV_EXTENSIBLE and len(body) >= 26:
        tag = struct.unpack_from("<H", body, 24)[0]
    kinds = {
        (_WAV_PCM, 1): "u8",
        (_WAV_PCM, 2): "s16le",
        (_WAV_PCM, 3): "s24le",
        (_WAV_PCM, 4): "s32le",
        (_WAV_FLOAT, 4): "f32le",
        (_WAV_FLOAT, 8): "f64le",
    }
    width = block_align // channels if channels else 0
    kind = kinds.get((tag, width))
    if kind is None or width * channels != block_align or bits > 8 * width:
        raise _unsupported(field, f"WAV encoding tag {tag:#x} with {bits} bits is not streamable")
    return _WavFormat(kind, rate, channels)


class _WavDemuxer:
    """RIFF/RF64 WAVE parser; after the header the data chunk is plain PCM."""

    def __init__(self, out: _Output) -> None:
        self._out = out
        self._buf = _Buffer()
        self._state = "riff"
        self._fmt: _WavFormat | None = None
        self._ds64_data: int | None = None
        self._remaining: int | None = None  # data bytes still to read; None = to the end

    def push(self, data: ByteData) -> None:
        if self._state == "done":
            return
        self._buf.append(data)
        while self._state != "data" and self._step_header():
            pass
        if self._state == "data":
            self._read_data()

    def close(self) -> None:
        if self._state not in ("data", "done"):
            raise _media_error(self._out.field, "truncated WAV header (no data chunk)")

    def _step_header(self) -> bool:
        buf = self._buf
        if self._state == "riff":
            if len(buf) < 12:
                return False
            if bytes(buf.data[8:12]) != b"WAVE":
                raise _media_error(self._out.field, "RIFF file is not WAVE")
            buf.drop(12)
            self._state = "chunks"
            return True
        if len(buf) < 8:
            return False
        cid = bytes(buf.data[:4])
        size = struct.unpack_from("<I", buf.data, 4)[0]
        if cid == b"data":
            return self._start_data(size)
        if cid in (b"fmt ", b"ds64"):
            if size > PROBE_BYTES:
                raise _media_error(self._out.field, f"WAV {cid!r} chunk is too large")
            if len(buf) < 8 + size:
                return False
            body = bytes(buf.data[8 : 8 + size])
            self._header_chunk(cid, body)
        buf.drop(8 + size + (size & 1))
        return True

    def _header_chunk(self, cid: bytes, body: bytes) -> None:
        if cid == b"ds64":
            if len(body) >= 24:
                self._ds64_data = struct.unpack_from("<Q", body, 8)[0]
            return
        if len(body) < 16:
            raise _media_error(self._out.field, "WAV fmt chunk is too short")
        self._fmt = _parse_wav_fmt(body, self._out.field)
        self._out.set_format(self._fmt.sample_rate, self._fmt.channels)

    def _start_data(self, size: int) -> bool:
        if self._fmt is None:
            raise _media_error(self._out.field, "WAV data chunk before the fmt chunk")
        self._buf.drop(8)
        if size == 0xFFFFFFFF:
            size = -1 if self._ds64_data is None else self._ds64_data
        fb = self._fmt.frame_bytes
        self._remaining = None if size < 0 else size - size % fb
        self._state = "data"
        return False

    def _read_data(self) -> None:
        assert self._fmt is not None
        fb = self._fmt.frame_bytes
        n = len(self._buf) - len(self._buf) % fb
        if self._remaining is not None:
            n = min(n, self._remaining)
            self._remaining -= n
        if n:
            with memoryview(self._buf.data) as view:
                block = _pcm_to_float(view[:n], self._fmt.kind, self._fmt.channels)
            self._buf.drop(n)
            self._out.add(block)
        if self._remaining == 0:
            self._state = "done"
            self._buf.data.clear()
