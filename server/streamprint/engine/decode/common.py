"""Shared types, limits and error helpers of the audio decoders."""

from __future__ import annotations

from typing import Final, Literal

import numpy as np
from numpy.typing import NDArray

from streamprint.errors import InvalidInputError, MediaDecodeError

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


def _check_rate_channels(sample_rate: int, channels: int, field: str) -> None:
    """Raise MediaDecodeError on ``field`` (the media bytes' field, e.g. ``chunk.data``) when
    the format the media's header declares is not supported."""
    if not MIN_SAMPLE_RATE <= sample_rate <= MAX_SAMPLE_RATE:
        raise MediaDecodeError.for_field(
            field, f"the sample rate the media declares, {sample_rate} Hz, is not supported", _RATE_ALLOWED
        )
    if not 1 <= channels <= MAX_CHANNELS:
        raise MediaDecodeError.for_field(
            field, f"the channel count the media declares, {channels}, is not supported", _CHANNELS_ALLOWED
        )
