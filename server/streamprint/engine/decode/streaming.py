"""Incremental decoder for encoded audio streams: :class:`StreamingContainerDecoder`."""

from __future__ import annotations

from collections.abc import Callable
from typing import Final

from streamprint.engine.decode.common import (
    DEFAULT_MAX_SECONDS,
    ByteData,
    Samples,
    _media_error,
    _unsupported,
)
from streamprint.engine.decode.demux import _Buffer, _Demuxer, _Output
from streamprint.engine.decode.flac import _FlacDemuxer
from streamprint.engine.decode.mp3 import _Mp3Demuxer
from streamprint.engine.decode.ogg import _OggDemuxer
from streamprint.engine.decode.probe import _detect
from streamprint.engine.decode.wav import _WavDemuxer
from streamprint.errors import InvalidInputError, SessionStateError

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
