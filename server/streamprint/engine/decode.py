"""Audio decoding: whole media, raw PCM chunks, and encoded container streams.

Every decoder here returns float32 samples shaped ``[n_samples, n_channels]`` in
[-1, 1] (float input is clipped; NaN / inf is rejected) at the media's native sample
rate. Errors are always :mod:`streamprint.errors` exceptions, never library tracebacks.

Entry points
------------
:func:`decode_bytes` / :func:`decode_file`
    Whole media. WAV, FLAC and other libsndfile formats go through soundfile (fast,
    bit-exact); Ogg Vorbis, Ogg Opus and MP3 go through the *same packet pipeline* as
    :class:`StreamingContainerDecoder` (so batch equals streaming sample for sample);
    anything else falls back to PyAV's demuxers (AAC/M4A, WebM, ...).
:class:`PcmDecoder`
    Raw interleaved little-endian PCM (``s16le`` / ``f32le``) in arbitrary chunks.
:class:`StreamingContainerDecoder`
    WAV, FLAC, Ogg Vorbis, Ogg Opus and MP3 fed chunk by chunk, with bounded memory.

Limits shared by all paths: sample rate :data:`MIN_SAMPLE_RATE`..:data:`MAX_SAMPLE_RATE`
Hz, 1..:data:`MAX_CHANNELS` channels, at most ``max_seconds`` of decoded audio
(:class:`~streamprint.errors.ResourceLimitError` with ``limit="max_media_seconds"``), so a
small compressed "bomb" cannot use unbounded memory.
"""

from __future__ import annotations

import io
import os
import struct
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Final, Literal, Protocol

import av
import numpy as np
import soundfile as sf
from av.audio.codeccontext import AudioCodecContext
from numpy.typing import NDArray

from streamprint.engine.fingerprint import AudioBuffer
from streamprint.errors import (
    InvalidInputError,
    MediaDecodeError,
    ResourceLimitError,
    SessionStateError,
    StreamprintError,
)

Samples = NDArray[np.float32]
ByteData = bytes | bytearray | memoryview

#: Accepted sample rates, Hz (raw PCM configs and decoded containers alike).
MIN_SAMPLE_RATE: Final = 8000
MAX_SAMPLE_RATE: Final = 384000
#: Accepted channel counts are 1..MAX_CHANNELS.
MAX_CHANNELS: Final = 8
#: Default cap on decoded media duration, seconds.
DEFAULT_MAX_SECONDS: Final = 4 * 3600.0
#: Bytes a streaming decoder may look at before it must recognise the format.
PROBE_BYTES: Final = 64 * 1024
#: Largest single frame / page / packet a streaming decoder will hold while waiting
#: for the rest of it (FLAC frames are at most ~2 MiB, MP3 frames 2.9 KB, Ogg pages 64 KiB).
MAX_PENDING_BYTES: Final = 4 * 1024 * 1024

PCM_ENCODINGS: Final = ("s16le", "f32le")
PcmEncoding = Literal["s16le", "f32le"]

SUPPORTED_MEDIA: Final = (
    "WAV, FLAC, Ogg Vorbis, Ogg Opus, MP3 (whole files also AIFF, AAC/M4A, ...)"
)
STREAMABLE_MEDIA: Final = "WAV, FLAC, Ogg Vorbis, Ogg Opus, MP3"

_RATE_ALLOWED: Final = f"{MIN_SAMPLE_RATE}..{MAX_SAMPLE_RATE} Hz"
_CHANNELS_ALLOWED: Final = f"1..{MAX_CHANNELS}"
_STREAM_CHUNK: Final = 1024 * 1024


# --------------------------------------------------------------------------- errors


class _UnsupportedStreamError(MediaDecodeError):
    """The packet pipeline does not handle this format (decode_bytes then falls back)."""


class _BackendFailedError(Exception):
    """A whole-media backend (soundfile, PyAV) could not read the media."""


def _media_error(field: str, description: str) -> InvalidInputError:
    return MediaDecodeError.for_field(field, description, SUPPORTED_MEDIA)


def _unsupported(field: str, description: str) -> _UnsupportedStreamError:
    err = _UnsupportedStreamError.for_field(field, description, STREAMABLE_MEDIA)
    assert isinstance(err, _UnsupportedStreamError)
    return err


def _check_rate_channels(sample_rate: int, channels: int, prefix: str) -> None:
    """Raise MediaDecodeError (field ``{prefix}sample_rate`` / ``{prefix}channels``)."""
    if not MIN_SAMPLE_RATE <= sample_rate <= MAX_SAMPLE_RATE:
        raise MediaDecodeError.for_field(
            f"{prefix}sample_rate", f"{sample_rate} Hz is not supported", _RATE_ALLOWED
        )
    if not 1 <= channels <= MAX_CHANNELS:
        raise MediaDecodeError.for_field(
            f"{prefix}channels", f"{channels} channels is not supported", _CHANNELS_ALLOWED
        )


# --------------------------------------------------------------------------- sample conversion

_PCM_WIDTH: Final = {"u8": 1, "s16le": 2, "s24le": 3, "s32le": 4, "f32le": 4, "f64le": 8}


def _pcm_to_float(raw: ByteData, kind: str, channels: int) -> Samples:
    """Convert whole interleaved PCM frames to a fresh float32 ``[n, channels]`` array.

    Integer scaling matches libsndfile exactly (value / 2**(bits-1)); float input is
    copied unchanged (checking and clipping happen in the caller).
    """
    out: Samples
    if kind == "s16le":
        out = np.frombuffer(raw, "<i2").astype(np.float32)
        out *= np.float32(2.0**-15)
    elif kind == "f32le":
        out = np.frombuffer(raw, "<f4").astype(np.float32)
    elif kind == "s32le":
        out = np.frombuffer(raw, "<i4").astype(np.float32)
        out *= np.float32(2.0**-31)
    elif kind == "s24le":
        tri = np.frombuffer(raw, np.uint8).reshape(-1, 3)
        quad = np.zeros((tri.shape[0], 4), np.uint8)
        quad[:, 1:] = tri
        out = quad.view("<i4").reshape(-1).astype(np.float32)
        out *= np.float32(2.0**-31)
    elif kind == "u8":
        out = np.frombuffer(raw, np.uint8).astype(np.float32)
        out -= np.float32(128.0)
        out *= np.float32(2.0**-7)
    elif kind == "f64le":
        out = np.frombuffer(raw, "<f8").astype(np.float32)
    else:  # pragma: no cover - callers only pass known kinds
        raise ValueError(f"unknown PCM kind {kind}")
    return out.reshape(-1, channels)


def _finite_clipped(block: Samples, field: str, error: type[InvalidInputError]) -> Samples:
    """Reject NaN / inf, clip to [-1, 1] in place and return ``block``."""
    if block.size and not np.isfinite(block).all():
        raise error.for_field(field, "NaN or infinite sample", "finite samples")
    np.clip(block, -1.0, 1.0, out=block)
    return block


def _frame_to_float(frame: av.AudioFrame) -> Samples:
    """Convert a PyAV audio frame (any sample format) to float32 ``[n, channels]``.

    The result may be a read-only or non-contiguous view of the frame's memory; callers
    copy it (``_Output.take`` concatenates) before changing it.
    """
    channels = len(frame.layout.channels)
    if frame.format.name == "flt":  # packed float: no conversion at all
        plane = memoryview(frame.planes[0])
        flat = np.frombuffer(plane, np.float32, count=frame.samples * channels)
        return flat.reshape(-1, channels)
    arr: NDArray[np.generic] = frame.to_ndarray()
    arr = arr.T if frame.format.is_planar else arr.reshape(-1, channels)
    if arr.dtype == np.float32:
        return arr.astype(np.float32, copy=False)
    out = arr.astype(np.float32)
    if arr.dtype == np.int16:
        out *= np.float32(2.0**-15)
    elif arr.dtype == np.int32:
        out *= np.float32(2.0**-31)
    elif arr.dtype == np.uint8:
        out -= np.float32(128.0)
        out *= np.float32(2.0**-7)
    return out


# --------------------------------------------------------------------------- raw PCM


@dataclass(frozen=True)
class PcmFormat:
    """Raw interleaved little-endian PCM.

    ``encoding`` is ``"s16le"`` (int16) or ``"f32le"`` (float32); ``sample_rate`` in Hz,
    :data:`MIN_SAMPLE_RATE`..:data:`MAX_SAMPLE_RATE`; ``channels`` 1..:data:`MAX_CHANNELS`.
    Construction raises :class:`InvalidInputError` naming the bad field
    (``encoding``, ``sample_rate`` or ``channels``).
    """

    encoding: str
    sample_rate: int
    channels: int

    def __post_init__(self) -> None:
        if self.encoding not in PCM_ENCODINGS:
            raise InvalidInputError.for_field(
                "encoding", f"unknown PCM encoding {self.encoding!r}", ", ".join(PCM_ENCODINGS)
            )
        if not _is_int(self.sample_rate) or not (
            MIN_SAMPLE_RATE <= self.sample_rate <= MAX_SAMPLE_RATE
        ):
            raise InvalidInputError.for_field(
                "sample_rate", f"{self.sample_rate!r} Hz is not supported", _RATE_ALLOWED
            )
        if not _is_int(self.channels) or not 1 <= self.channels <= MAX_CHANNELS:
            raise InvalidInputError.for_field(
                "channels", f"{self.channels!r} channels is not supported", _CHANNELS_ALLOWED
            )

    @property
    def bytes_per_sample(self) -> int:
        """Bytes of one sample of one channel (2 or 4)."""
        return _PCM_WIDTH[self.encoding]

    @property
    def frame_bytes(self) -> int:
        """Bytes of one sample frame (all channels)."""
        return self.bytes_per_sample * self.channels


def _is_int(value: object) -> bool:
    return isinstance(value, int | np.integer) and not isinstance(value, bool)


class PcmDecoder:
    """Decode raw PCM chunks of any length into float32 ``[n, channels]`` samples.

    A chunk may end in the middle of a sample frame: the partial frame is kept
    (:attr:`pending_bytes`, always < ``fmt.frame_bytes``) and completed by the next chunk,
    so every chunking of the same bytes yields the same samples. ``f32le`` samples are
    clipped to [-1, 1]; NaN / inf raise :class:`InvalidInputError` on ``field``.
    """

    def __init__(self, fmt: PcmFormat, *, field: str = "chunk.data") -> None:
        """Create a decoder for ``fmt``; ``field`` names the chunk bytes in errors."""
        self.format = fmt
        self._field = field
        self._pending = bytearray()

    @property
    def pending_bytes(self) -> int:
        """Bytes of an incomplete sample frame carried to the next chunk."""
        return len(self._pending)

    def decode(self, chunk: ByteData) -> Samples:
        """Decode one chunk.

        Args:
            chunk: raw PCM bytes, at least one byte.

        Returns:
            float32 ``[n, channels]`` for the whole frames now available (``n`` may be 0).
        """
        if len(chunk) == 0:
            raise InvalidInputError.for_field(self._field, "empty chunk", "at least 1 byte")
        fb = self.format.frame_bytes
        if not self._pending and len(chunk) % fb == 0:
            return self._convert(chunk)
        self._pending += chunk
        whole = len(self._pending) - len(self._pending) % fb
        with memoryview(self._pending) as view:
            out = self._convert(view[:whole])
        del self._pending[:whole]
        return out

    def finish(self) -> None:
        """End the stream; raise :class:`InvalidInputError` if a partial frame remains."""
        if self._pending:
            raise InvalidInputError.for_field(
                self._field,
                f"stream ended inside a sample frame ({len(self._pending)} stray bytes)",
                f"a multiple of {self.format.frame_bytes} bytes in total",
            )

    def _convert(self, raw: ByteData) -> Samples:
        out = _pcm_to_float(raw, self.format.encoding, self.format.channels)
        if self.format.encoding == "f32le":
            _finite_clipped(out, self._field, InvalidInputError)
        return out


# --------------------------------------------------------------------------- shared plumbing


class _Output:
    """Collects decoded blocks; checks format, finiteness and the duration budget."""

    def __init__(self, field: str, max_seconds: float) -> None:
        self.field = field
        self.max_seconds = max_seconds
        self.sample_rate: int | None = None
        self.channels: int | None = None
        self.total = 0
        self._max_frames = 0
        self._blocks: list[Samples] = []

    def set_format(self, sample_rate: int, channels: int) -> None:
        """Declare the format (validated); a later different format is an error."""
        if self.sample_rate is None:
            _check_rate_channels(sample_rate, channels, "media.")
            self.sample_rate, self.channels = sample_rate, channels
            self._max_frames = int(self.max_seconds * sample_rate)
        elif (sample_rate, channels) != (self.sample_rate, self.channels):
            raise _media_error(
                self.field,
                f"format changes mid-stream ({self.sample_rate} Hz x {self.channels} ->"
                f" {sample_rate} Hz x {channels})",
            )

    def add(self, block: Samples) -> None:
        """Append float32 ``[n, channels]`` samples (clipped in place)."""
        if block.shape[1] != self.channels:
            raise _media_error(self.field, "channel count changes mid-stream")
        self.total += block.shape[0]
        if self.total > self._max_frames:
            raise ResourceLimitError(
                f"media is longer than the {self.max_seconds:g} s limit",
                limit="max_media_seconds",
            )
        if block.shape[0]:
            self._blocks.append(block)

    def take(self) -> Samples:
        """Return and forget the samples collected so far: a fresh ``[n, channels]`` array,
        NaN / inf rejected, clipped to [-1, 1].

        Before the format is known this is an empty ``[0, 0]`` array.
        """
        blocks, self._blocks = self._blocks, []
        if not blocks:
            return np.zeros((0, self.channels or 0), np.float32)
        joined = np.empty((sum(b.shape[0] for b in blocks), self.channels or 0), np.float32)
        np.concatenate(blocks, out=joined)  # C order even when blocks are transposed views
        return _finite_clipped(joined, self.field, MediaDecodeError)


class _Buffer:
    """Byte queue that can also skip bytes that have not arrived yet."""

    def __init__(self) -> None:
        self.data = bytearray()
        self._skip = 0

    def __len__(self) -> int:
        return len(self.data)

    def append(self, chunk: ByteData) -> None:
        if self._skip:
            n = min(self._skip, len(chunk))
            chunk = memoryview(chunk)[n:]
            self._skip -= n
        self.data += chunk

    def drop(self, n: int) -> None:
        """Drop ``n`` bytes; bytes beyond the buffer are skipped as they arrive."""
        if n <= len(self.data):
            del self.data[:n]
        else:
            self._skip += n - len(self.data)
            self.data.clear()

    def pop(self, n: int) -> bytes:
        out = bytes(self.data[:n])
        del self.data[:n]
        return out


class _AvDecoder:
    """One FFmpeg audio decoder (PyAV codec context) fed with whole packets."""

    def __init__(
        self,
        codec: str,
        field: str,
        extradata: bytes | None = None,
        options: dict[str, str] | None = None,
    ) -> None:
        self._field = field
        try:
            ctx = av.CodecContext.create(codec, "r")
            assert isinstance(ctx, AudioCodecContext)
            if extradata is not None:
                ctx.extradata = extradata
            if options:
                ctx.options = options
            ctx.open()
        except (av.FFmpegError, ValueError) as exc:
            raise _media_error(field, f"cannot initialise the {codec} decoder: {exc}") from None
        self._ctx = ctx

    def decode(self, payload: bytes | None) -> list[Samples]:
        """Decode one packet (``None`` flushes) into float32 ``[n, ch]`` blocks."""
        try:
            frames = self._ctx.decode(None if payload is None else av.Packet(payload))
        except (av.FFmpegError, ValueError) as exc:
            raise _media_error(self._field, f"corrupt audio packet: {exc}") from None
        return [_frame_to_float(frame) for frame in frames]


class _Demuxer(Protocol):
    """Per-format incremental demuxer + decoder writing into an :class:`_Output`."""

    def push(self, data: ByteData) -> None:
        """Take more bytes, decode what became complete."""

    def close(self) -> None:
        """End of stream: decode the rest or raise if the media is truncated."""


# --------------------------------------------------------------------------- WAV


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
    _check_rate_channels(rate, channels, "media.")
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


# --------------------------------------------------------------------------- FLAC


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


# --------------------------------------------------------------------------- Ogg


def _xiph_lace(size: int) -> bytes:
    return b"\xff" * (size // 255) + bytes((size % 255,))


#: Vorbis comment header with no vendor string and no comments (FFmpeg ignores it anyway).
_EMPTY_VORBIS_COMMENT: Final = b"\x03vorbis" + b"\x00" * 8 + b"\x01"


class _OggLink:
    """One logical Vorbis or Opus bitstream (one link of a possibly chained Ogg file)."""

    def __init__(self, serial: int, codec: str, out: _Output) -> None:
        self.serial = serial
        self.codec = codec
        self.ended = False
        self._out = out
        self._packets = 0
        self._partial: bytearray | None = None
        self._headers: list[bytes] = []
        self._decoder: _AvDecoder | None = None
        self._preskip = 0
        self._emitted = 0

    def page(self, flags: int, granule: int, lacing: bytes, body: bytes) -> None:
        """Process one page: assemble packets, decode, trim at end-of-stream."""
        skipping = bool(flags & 1) and self._partial is None  # tail of a lost packet
        if not flags & 1:
            self._partial = None  # a packet cut short by a lost page is dropped
        blocks: list[Samples] = []
        offset = 0
        for lace in lacing:
            segment = body[offset : offset + lace]
            offset += lace
            if skipping:
                skipping = lace == 255
                continue
            blocks += self._segment(segment, complete=lace < 255)
        if flags & 4:
            blocks = self._end(blocks, granule)
        for block in blocks:
            self._emitted += block.shape[0]
            self._out.add(block)

    def _segment(self, segment: bytes, *, complete: bool) -> list[Samples]:
        if self._partial is None:
            self._partial = bytearray()
        if self._packets != 1:  # the comment header is not kept (it may hold cover art)
            self._partial += segment
            if len(self._partial) > MAX_PENDING_BYTES:
                raise _media_error(self._out.field, "Ogg packet too large")
        if not complete:
            return []
        packet, self._partial = bytes(self._partial), None
        return self._packet(packet)

    def _packet(self, packet: bytes) -> list[Samples]:
        index = self._packets
        self._packets += 1
        if self._decoder is not None:
            return self._decoder.decode(packet) if packet else []
        if index == 0:
            self._id_header(packet)
        if self.codec == "opus" and index == 1:
            self._decoder = _AvDecoder("opus", self._out.field, extradata=self._headers[0])
        elif self.codec == "vorbis" and index == 2:
            head = self._headers[0]
            extradata = b"\x02" + _xiph_lace(len(head)) + _xiph_lace(len(_EMPTY_VORBIS_COMMENT))
            extradata += head + _EMPTY_VORBIS_COMMENT + packet
            self._decoder = _AvDecoder("vorbis", self._out.field, extradata=extradata)
        return []

    def _id_header(self, packet: bytes) -> None:
        self._headers.append(packet)
        if self.codec == "opus":
            if len(packet) < 19:
                raise _media_error(self._out.field, "bad OpusHead")
            channels, self._preskip = packet[9], struct.unpack_from("<H", packet, 10)[0]
            self._out.set_format(48000, channels)
        else:
            if len(packet) < 30:
                raise _media_error(self._out.field, "bad Vorbis identification header")
            channels, rate = packet[11], struct.unpack_from("<I", packet, 12)[0]
            self._out.set_format(rate, channels)

    def _end(self, blocks: list[Samples], granule: int) -> list[Samples]:
        """End of stream: flush, then cut to the sample count the last granule gives."""
        self.ended = True
        if self._decoder is not None:
            blocks = blocks + self._decoder.decode(None)
        if granule < 0:
            return blocks
        allowed = max(granule - self._preskip - self._emitted, 0)
        kept: list[Samples] = []
        for block in blocks:
            kept.append(block[:allowed])
            allowed -= kept[-1].shape[0]
        return kept


def _ogg_codec(first_packet: bytes) -> str | None:
    head = first_packet[:8]
    if head.startswith(b"\x01vorbis"):
        return "vorbis"
    return "opus" if head == b"OpusHead" else None


class _OggDemuxer:
    """Ogg pages parsed here (RFC 3533); Vorbis / Opus packets decoded by FFmpeg.

    Decodes the first Vorbis or Opus logical stream; other multiplexed streams (video,
    skeleton) are ignored. Chained streams (one link after another, as internet radio
    sends) continue with the next link, provided its rate and channels are the same.
    Granule positions trim the decoder's output at end-of-stream exactly as libogg-based
    players do. Page CRCs are not checked (corrupt data fails in the decoder).
    """

    def __init__(self, out: _Output) -> None:
        self._out = out
        self._buf = _Buffer()
        self._link: _OggLink | None = None
        self._junk = 0
        self._pages = 0

    def push(self, data: ByteData) -> None:
        self._buf.append(data)
        while self._next_page():
            pass

    def close(self) -> None:
        if not self._pages:
            raise _media_error(self._out.field, "truncated Ogg stream (no complete page)")
        if self._link is None:
            raise _unsupported(self._out.field, "Ogg stream without Vorbis or Opus audio")

    def _next_page(self) -> bool:
        data = self._buf.data
        if len(data) < 27:
            return False
        if data[:4] != b"OggS" or data[4] != 0:
            return self._resync()
        nseg = data[26]
        if len(data) < 27 + nseg:
            return False
        lacing = bytes(data[27 : 27 + nseg])
        size = 27 + nseg + sum(lacing)
        if len(data) < size:
            return False
        flags, granule, serial = struct.unpack_from("<BqI", data, 5)
        body = bytes(data[27 + nseg : size])
        self._buf.drop(size)
        self._pages += 1
        self._page(flags, granule, serial, lacing, body)
        self._junk = 0
        return True

    def _resync(self) -> bool:
        data = self._buf.data
        found = data.find(b"OggS", 1)
        skipped = found if found >= 0 else len(data) - 3
        self._junk += skipped
        if self._junk > PROBE_BYTES:
            raise _media_error(self._out.field, "lost Ogg page sync")
        self._buf.drop(skipped)
        return found >= 0

    def _page(self, flags: int, granule: int, serial: int, lacing: bytes, body: bytes) -> None:
        link = self._link
        if flags & 2:  # beginning of a logical stream
            codec = _ogg_codec(body)
            if codec and (link is None or link.ended):
                self._link = _OggLink(serial, codec, self._out)
                self._link.page(flags, granule, lacing, body)
            return
        if link is None:
            raise _unsupported(self._out.field, "Ogg stream without Vorbis or Opus audio")
        if serial == link.serial and not link.ended:
            link.page(flags, granule, lacing, body)


# --------------------------------------------------------------------------- MP3

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


# --------------------------------------------------------------------------- format probe

_OTHER_MAGIC: Final = (b"FORM", b".snd", b"caff", b"wvpk", b"MAC ", b"#!AMR", b"\x1aE\xdf\xa3")


def _detect(data: bytearray | bytes, start: int, final: bool) -> tuple[str, int]:
    """Identify the media format at the start of ``data``.

    Returns (kind, n): ``("id3", size)`` skip an ID3v2 tag of ``size`` bytes and look
    again; ``("wav"|"flac"|"ogg", 0)``; ``("mp3", offset)`` with the first confirmed frame
    at ``offset``; ``("unknown", 0)``; ``("more", scan_pos)`` when more bytes are needed
    (an MP3 sync scan resumes at ``scan_pos``).
    """
    if len(data) < 12 and not final:
        return "more", start
    head = bytes(data[:12])
    if head.startswith(b"ID3") and len(head) >= 10:
        size = 0
        for byte in head[6:10]:
            size = (size << 7) | (byte & 0x7F)
        return "id3", 10 + size + (10 if head[5] & 0x10 else 0)
    if head[:4] in (b"RIFF", b"RF64"):
        return ("wav", 0) if head[8:12] == b"WAVE" else ("unknown", 0)
    if head.startswith(b"fLaC"):
        return "flac", 0
    if head.startswith(b"OggS"):
        return "ogg", 0
    if head[:4] in _OTHER_MAGIC or head[:5] in _OTHER_MAGIC or head[4:8] == b"ftyp":
        return "unknown", 0
    window = data if len(data) <= PROBE_BYTES else data[:PROBE_BYTES]
    status, pos = _mp3_find_sync(window, start, final)
    if status == "found":
        return "mp3", pos
    if not final and len(data) < PROBE_BYTES:
        return "more", pos
    return "unknown", 0


_DEMUXERS: Final[dict[str, Callable[[_Output], _Demuxer]]] = {
    "wav": _WavDemuxer,
    "flac": _FlacDemuxer,
    "ogg": _OggDemuxer,
    "mp3": _Mp3Demuxer,
}


class StreamingContainerDecoder:
    """Incremental decoder for an encoded audio stream fed in arbitrary chunks.

    Supports WAV (PCM 8/16/24/32-bit, float 32/64, RIFF and RF64, also with an unknown
    "streaming" data size), FLAC, Ogg Vorbis, Ogg Opus (decoded at 48 kHz) and MP3.
    :meth:`feed` returns the float32 ``[n, channels]`` samples that became decodable
    (``[0, 0]`` before the header is parsed, ``[0, channels]`` when nothing new);
    :meth:`finish` returns the rest. The concatenation of all outputs is identical for
    every chunking and equals :func:`decode_bytes` of the whole stream (bit-exact for WAV
    and FLAC via soundfile; for Ogg / MP3 ``decode_bytes`` runs this very pipeline).

    Design (thread-free, no FFmpeg demuxer): the first bytes are buffered until the
    format is recognised (ID3v2 tags are skipped without being stored). Each format's
    framing is then parsed here: WAV chunks (then plain PCM, like :class:`PcmDecoder`),
    FLAC metadata and frame boundaries, Ogg pages and packets, MP3 frame headers. Every
    *complete* frame / packet is handed to a persistent FFmpeg decoder (PyAV
    ``CodecContext``) and only the unconsumed tail of the stream is kept. FFmpeg's own
    parsers are not used because their output timing depends on how input is chunked.

    Limits: memory is bounded by :data:`PROBE_BYTES` before the format is known and by
    one frame / packet (:data:`MAX_PENDING_BYTES`) afterwards, plus the output of the
    current chunk. Garbage raises :class:`MediaDecodeError` as soon as the first bytes
    show it (at most :data:`PROBE_BYTES`, or at :meth:`finish`). Formats needing random
    access (MP4/M4A with the index at the end) or other codecs are not streamable and
    raise :class:`MediaDecodeError` (use :func:`decode_bytes` for those). Ogg page CRCs
    are not verified. After an error the decoder is finished.
    """

    def __init__(
        self, *, max_seconds: float = DEFAULT_MAX_SECONDS, field: str = "chunk.data"
    ) -> None:
        """Create a decoder; ``field`` names the input bytes in error reports."""
        self._out = _Output(field, max_seconds)
        self._probe = _Buffer()
        self._scan_from = 0
        self._demuxer: _Demuxer | None = None
        self._finished = False
        self.format: str | None = None
        """Detected format: "wav", "flac", "ogg" or "mp3" (None until recognised)."""

    @property
    def sample_rate(self) -> int | None:
        """Sample rate of the decoded audio in Hz, None until the header is parsed."""
        return self._out.sample_rate

    @property
    def channels(self) -> int | None:
        """Channel count of the decoded audio, None until the header is parsed."""
        return self._out.channels

    @property
    def samples_decoded(self) -> int:
        """Sample frames returned so far (per channel)."""
        return self._out.total

    def feed(self, data: ByteData) -> Samples:
        """Take the next chunk of the stream (at least 1 byte, any boundary).

        Returns:
            float32 ``[n, channels]`` samples at :attr:`sample_rate` Hz that became
            decodable with this chunk (``n`` may be 0).

        Raises:
            InvalidInputError: empty chunk. MediaDecodeError: unsupported, garbage or
            corrupt media. ResourceLimitError: more than ``max_seconds`` decoded.
            SessionStateError: called after :meth:`finish` or after an error.
        """
        if self._finished:
            raise SessionStateError("StreamingContainerDecoder.feed() after finish() or an error")
        if len(data) == 0:
            raise InvalidInputError.for_field(self._out.field, "empty chunk", "at least 1 byte")
        try:
            self._push(data)
            return self._out.take()
        except BaseException:
            self._finished = True
            raise

    def finish(self) -> Samples:
        """End of stream: return the remaining samples ``[n, channels]``.

        Raises :class:`MediaDecodeError` if the stream is truncated inside a header or
        inside a FLAC frame, is not a supported format, or held no audio at all (a WAV,
        Ogg or MP3 stream cut mid-frame just loses the incomplete frame, as libsndfile,
        libvorbisfile and mpg123 do).
        """
        if self._finished:
            raise SessionStateError("StreamingContainerDecoder.finish() called twice")
        self._finished = True
        self._close()
        return self._out.take()

    def _push(self, data: ByteData) -> None:
        """Decode ``data`` into the output buffer (without taking it)."""
        if self._demuxer is None:
            self._probe_feed(data, final=False)
        else:
            self._demuxer.push(data)

    def _close(self) -> None:
        """Decode the rest into the output buffer; raise if there was no audio at all."""
        if self._demuxer is None:
            self._probe_feed(b"", final=True)
        assert self._demuxer is not None
        self._demuxer.close()
        if self._out.total == 0:
            raise _media_error(self._out.field, "media contains no audio samples")

    def _probe_feed(self, data: ByteData, *, final: bool) -> None:
        probe = self._probe
        probe.append(data)
        while True:
            kind, n = _detect(probe.data, self._scan_from, final)
            if kind == "id3":
                probe.drop(n)
                self._scan_from = 0
                continue
            if kind == "more":
                self._scan_from = n
                return
            if kind == "unknown":
                if not probe.data and final:
                    raise _media_error(self._out.field, "no media bytes")
                raise _unsupported(self._out.field, "unrecognised or unsupported media format")
            self.format = kind
            self._demuxer = _DEMUXERS[kind](self._out)
            self._demuxer.push(bytes(probe.data[n:]))
            self._probe = _Buffer()
            return


# --------------------------------------------------------------------------- whole media


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
            rate (field ``media.sample_rate``) or channel count (``media.channels``),
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


def _decode_pyav(source: io.BytesIO | str, max_seconds: float) -> AudioBuffer:
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


__all__ = [
    "DEFAULT_MAX_SECONDS",
    "MAX_CHANNELS",
    "MAX_SAMPLE_RATE",
    "MIN_SAMPLE_RATE",
    "PCM_ENCODINGS",
    "PROBE_BYTES",
    "PcmDecoder",
    "PcmEncoding",
    "PcmFormat",
    "StreamingContainerDecoder",
    "decode_bytes",
    "decode_file",
]
