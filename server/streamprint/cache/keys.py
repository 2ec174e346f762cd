"""Cache keys: content hashes plus everything that changes the result, never a path."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping

import numpy as np

from streamprint.engine.fingerprint import AudioBuffer


def media_sha256(data: bytes | bytearray | memoryview) -> str:
    """Lower-case hex sha256 of media bytes as received."""
    return hashlib.sha256(data).hexdigest()


def samples_sha256(buffer: AudioBuffer) -> str:
    """Lower-case hex sha256 of decoded audio: sample rate, shape, dtype and the samples."""
    samples = np.ascontiguousarray(buffer.samples, dtype=np.float32)
    digest = hashlib.sha256()
    digest.update(f"pcm:f32:{buffer.sample_rate}:{samples.shape[0]}x{samples.shape[1]};".encode())
    digest.update(samples.data)
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
