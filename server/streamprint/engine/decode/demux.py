"""Plumbing shared by the streaming demuxers: output collector, byte queue, FFmpeg decoder."""

from __future__ import annotations

from typing import TYPE_CHECKING, Protocol

import numpy as np

from streamprint.engine.decode.common import (
    ByteData,
    Samples,
    _check_rate_channels,
    _media_error,
)
from streamprint.engine.decode.convert import _finite_clipped, _frame_to_float
from streamprint.errors import MediaDecodeError, ResourceLimitError

if TYPE_CHECKING:
    from av.audio.codeccontext import AudioCodecContext


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
            _check_rate_channels(sample_rate, channels, self.field)
            self.sample_rate, self.channels = sample_rate, channels
            self._max_frames = int(self.max_seconds * sample_rate)
        elif (sample_rate, channels) != (self.sample_rate, self.channels):
            raise _media_error(
                self.field,
                f"format changes mid-stream ({self.sample_rate} Hz x {self.channels} ->"
                f" {sample_rate} Hz x {channels})",
            )

    def count(self, frames: int) -> None:
        """Count ``frames`` more decoded frames against the duration budget."""
        self.total += frames
        if self.total > self._max_frames:
            raise ResourceLimitError(
                f"media is longer than the {self.max_seconds:g} s limit",
                limit="max_media_seconds",
            )

    def add(self, block: Samples) -> None:
        """Append float32 ``[n, channels]`` samples (clipped in place)."""
        if block.shape[1] != self.channels:
            raise _media_error(self.field, "channel count changes mid-stream")
        self.count(block.shape[0])
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
    """One FFmpeg audio decoder (PyAV codec context) fed with whole packets.

    PyAV is imported here, when a compressed stream first needs it: decoding WAV (and the
    ``streamprint fingerprint`` of one) never loads it (about 80 ms and 15 MB).
    """

    def __init__(
        self,
        codec: str,
        field: str,
        extradata: bytes | None = None,
        options: dict[str, str] | None = None,
    ) -> None:
        import av
        from av.audio.codeccontext import AudioCodecContext

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
        self._ctx: AudioCodecContext = ctx

    def decode(self, payload: bytes | None) -> list[Samples]:
        """Decode one packet (``None`` flushes) into float32 ``[n, ch]`` blocks."""
        import av

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
