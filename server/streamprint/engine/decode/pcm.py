"""Raw interleaved little-endian PCM: :class:`PcmFormat` and :class:`PcmDecoder`."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import TypeVar

import numpy as np
from numpy.typing import NDArray

from streamprint.engine.decode.common import (
    _CHANNELS_ALLOWED,
    _RATE_ALLOWED,
    MAX_CHANNELS,
    MAX_SAMPLE_RATE,
    MIN_SAMPLE_RATE,
    PCM_ENCODINGS,
    ByteData,
    Samples,
)
from streamprint.engine.decode.convert import _PCM_WIDTH, _finite_clipped, _pcm_to_float
from streamprint.errors import InvalidInputError

_Out = TypeVar("_Out")


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
        return self._whole_frames(chunk, self._convert)

    def decode_int16(self, chunk: ByteData) -> NDArray[np.int16]:
        """Decode one ``s16le`` chunk as its int16 samples ``[n, channels]``: sample ``k`` is the
        float ``k / 32768`` that :meth:`decode` gives, without converting.

        A ``bytes`` chunk of whole frames is read in place (``bytes`` cannot change, so the
        read-only array may share them); anything else gives a fresh array.

        Raises :class:`ValueError` for another encoding (a caller's mistake, not bad input).
        """
        if self.format.encoding != "s16le":
            raise ValueError(f"decode_int16 needs s16le PCM, not {self.format.encoding}")
        channels = self.format.channels

        def samples(raw: ByteData) -> NDArray[np.int16]:
            pcm: NDArray[np.int16] = np.frombuffer(raw, "<i2").reshape(-1, channels)
            return pcm if type(raw) is bytes else pcm.copy()

        return self._whole_frames(chunk, samples)

    def _whole_frames(self, chunk: ByteData, convert: Callable[[ByteData], _Out]) -> _Out:
        """``convert`` of the whole sample frames available with ``chunk`` (the rest waits)."""
        if len(chunk) == 0:
            raise InvalidInputError.for_field(self._field, "empty chunk", "at least 1 byte")
        fb = self.format.frame_bytes
        if not self._pending and len(chunk) % fb == 0:
            return convert(chunk)
        self._pending += chunk
        whole = len(self._pending) - len(self._pending) % fb
        with memoryview(self._pending) as view:
            out = convert(view[:whole])
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
