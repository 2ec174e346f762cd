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

Modules
-------
``common`` limits, shared types and error helpers; ``convert`` PCM bytes / PyAV frames
to float32; ``pcm`` raw PCM; ``demux`` plumbing shared by the streaming demuxers;
``wav``, ``flac``, ``ogg``, ``mp3`` one streaming demuxer each; ``probe`` format
detection; ``streaming`` :class:`StreamingContainerDecoder`; ``files`` whole media.
This package re-exports the public API; import from ``streamprint.engine.decode``.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

from streamprint.engine.decode.common import (
    DEFAULT_MAX_SECONDS,
    MAX_CHANNELS,
    MAX_SAMPLE_RATE,
    MIN_SAMPLE_RATE,
    PCM_ENCODINGS,
    PROBE_BYTES,
    PcmEncoding,
)
from streamprint.engine.decode.common import MAX_PENDING_BYTES as MAX_PENDING_BYTES
from streamprint.engine.decode.common import STREAMABLE_MEDIA as STREAMABLE_MEDIA
from streamprint.engine.decode.common import SUPPORTED_MEDIA as SUPPORTED_MEDIA
from streamprint.engine.decode.common import ByteData as ByteData
from streamprint.engine.decode.common import Samples as Samples
from streamprint.engine.decode.pcm import PcmDecoder, PcmFormat
from streamprint.engine.decode.probe import is_audio_only

if TYPE_CHECKING:
    from streamprint.engine.decode.files import (
        decode_bytes,
        decode_bytes_blocks,
        decode_file,
        decode_file_blocks,
    )
    from streamprint.engine.decode.streaming import StreamingContainerDecoder

#: Names loaded on first use: they import PyAV and soundfile, which a server streaming raw
#: PCM never needs (about 15 MB of resident memory).
_LAZY = {
    "decode_bytes": "files",
    "decode_bytes_blocks": "files",
    "decode_file": "files",
    "decode_file_blocks": "files",
    "StreamingContainerDecoder": "streaming",
}


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(importlib.import_module(f"{__name__}.{module}"), name)
    globals()[name] = value
    return value

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
    "decode_bytes_blocks",
    "decode_file",
    "decode_file_blocks",
    "is_audio_only",
]
