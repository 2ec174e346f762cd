"""Cache keys: content hashes plus everything that changes the result, never a path."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping

import numpy as np
from numpy.typing import NDArray

from streamprint.engine.fingerprint import AudioBuffer, pcm16_to_float


def media_sha256(data: bytes | bytearray | memoryview) -> str:
    """Lower-case hex sha256 of media bytes as received."""
    return hashlib.sha256(data).hexdigest()


#: ``samples * _SCALE`` puts 16-bit PCM's samples on the integers (exact: a power of two).
_SCALE = np.float32(32768.0)


def as_int16(samples: NDArray[np.float32]) -> NDArray[np.int16] | None:
    """``samples * 32768`` as int16 when converting back gives the same float32 bits for
    every sample (so not for -0.0, NaN or values off the 2**-15 grid), else ``None``."""
    samples = np.ascontiguousarray(samples, dtype=np.float32)
    if samples.size == 0:
        return samples.astype(np.int16)
    scaled = samples * _SCALE  # exact: a power-of-two scale of float32
    if not (float(scaled.min()) >= -32768.0 and float(scaled.max()) <= 32767.0):
        return None  # also NaN
    quantized = scaled.astype(np.int16)
    if not np.array_equal(pcm16_to_float(quantized).view(np.uint32), samples.view(np.uint32)):
        return None
    return quantized


class SamplesDigest:
    """Incremental :func:`samples_sha256`: feed blocks ``[n, channels]`` in order, all int16
    (``kind="s16"``: 16-bit samples scaled by 2**15) or all float32 (``kind="f32"``).

    The sample format, rate and shape go *after* the samples (a trailer), so a live stream's
    media is hashed as it arrives and its hash is ready the moment it ends, without reading
    the media back. ``sha256(samples || "pcm:<kind>:<rate>:<frames>x<channels>;")`` is
    unambiguous: the trailer is the last occurrence of ``pcm:`` and fixes the samples' length.
    """

    def __init__(self, sample_rate: int, channels: int, kind: str = "f32") -> None:
        if kind not in _DIGEST_DTYPES:
            raise ValueError(f"kind must be one of {sorted(_DIGEST_DTYPES)}, got {kind!r}")
        self.sample_rate = sample_rate
        self.channels = channels
        self.kind = kind
        self.frames = 0
        self._dtype = _DIGEST_DTYPES[kind]
        self._digest = hashlib.sha256()

    def update(self, samples: NDArray[np.int16] | NDArray[np.float32]) -> None:
        """Hash the next ``samples`` ``[n, channels]`` (int16 for ``s16``, float32 for ``f32``)."""
        if samples.dtype != self._dtype:
            raise TypeError(f"a {self.kind} digest takes {self._dtype.name} samples, got {samples.dtype}")
        block = np.ascontiguousarray(samples, dtype=self._dtype)
        self._digest.update(block.data)
        self.frames += int(block.shape[0])

    def hexdigest(self) -> str:
        """Lower-case hex sha256 of everything fed so far plus the trailer."""
        digest = self._digest.copy()
        digest.update(f"pcm:{self.kind}:{self.sample_rate}:{self.frames}x{self.channels};".encode())
        return digest.hexdigest()


_DIGEST_DTYPES: dict[str, np.dtype[np.int16] | np.dtype[np.float32]] = {
    "s16": np.dtype("<i2"), "f32": np.dtype("<f4"),
}


def samples_sha256(buffer: AudioBuffer) -> str:
    """Lower-case hex sha256 of decoded audio ``[frames, channels]``, its sample rate and shape.

    Media whose every sample is 16-bit (:func:`as_int16`: raw ``s16le``, 16-bit files) is
    hashed as its little-endian int16 samples (for a raw ``s16le`` stream: the PCM bytes as
    sent) with the trailer ``pcm:s16:<rate>:<frames>x<channels>;``; any other media as
    float32 little-endian with ``pcm:f32:...``. The choice depends only on the samples, so the
    same media always gets the same hash (:class:`~streamprint.cache.media.KeptMedia` hashes
    a live stream's media the same way, block by block).
    """
    channels = int(buffer.samples.shape[1])
    quantized = as_int16(buffer.samples)
    if quantized is not None:
        digest = SamplesDigest(buffer.sample_rate, channels, "s16")
        digest.update(quantized)
    else:
        digest = SamplesDigest(buffer.sample_rate, channels, "f32")
        digest.update(np.ascontiguousarray(buffer.samples, dtype=np.float32))
    return digest.hexdigest()


def fingerprint_key(
    content_sha256: str,
    *,
    modality: str,
    params: Mapping[str, object],
    algorithm: str,
    model: str,
    model_version: str,
) -> str:
    """Key of a finished fingerprint: a sha256 over the content hash and every parameter.

    ``params`` holds whatever else changes the result (encoding, sample rate and channels of raw
    PCM, the dimensions requested, ...); it must be JSON-serialisable and is hashed with sorted
    keys, so its order does not matter.
    """
    material = json.dumps(
        {
            "content": content_sha256,
            "modality": modality,
            "params": dict(params),
            "algorithm": algorithm,
            "model": model,
            "model_version": model_version,
        },
        sort_keys=True,
        separators=(",", ":"),
    )
    return hashlib.sha256(material.encode()).hexdigest()
