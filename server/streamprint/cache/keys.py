"""Cache keys: content hashes plus everything that changes the result, never a path."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping

import numpy as np
from numpy.typing import NDArray

from streamprint.engine.fingerprint import AudioBuffer


def media_sha256(data: bytes | bytearray | memoryview) -> str:
    """Lower-case hex sha256 of media bytes as received."""
    return hashlib.sha256(data).hexdigest()


class SamplesDigest:
    """Incremental :func:`samples_sha256`: feed float32 blocks ``[n, channels]`` in order.

    The sample rate and shape go *after* the samples (a trailer), so a live stream's media is
    hashed as it arrives and its hash is ready the moment it ends, without reading the media
    back. ``sha256(samples || "pcm:f32:<rate>:<frames>x<channels>;")`` is unambiguous: the
    trailer is the last occurrence of ``pcm:f32:`` and fixes the samples' length.
    """

    def __init__(self, sample_rate: int, channels: int) -> None:
        self.sample_rate = sample_rate
        self.channels = channels
        self.frames = 0
        self._digest = hashlib.sha256()

    def update(self, samples: NDArray[np.float32]) -> None:
        """Hash the next float32 ``samples`` ``[n, channels]``."""
        block = np.ascontiguousarray(samples, dtype=np.float32)
        self._digest.update(block.data)
        self.frames += int(block.shape[0])

    def hexdigest(self) -> str:
        """Lower-case hex sha256 of everything fed so far plus the trailer."""
        digest = self._digest.copy()
        digest.update(f"pcm:f32:{self.sample_rate}:{self.frames}x{self.channels};".encode())
        return digest.hexdigest()


def samples_sha256(buffer: AudioBuffer) -> str:
    """Lower-case hex sha256 of decoded audio: the float32 samples, sample rate and shape."""
    digest = SamplesDigest(buffer.sample_rate, int(buffer.samples.shape[1]))
    digest.update(buffer.samples)
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
