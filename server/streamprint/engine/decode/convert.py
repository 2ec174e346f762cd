"""Sample conversion: interleaved PCM bytes and PyAV frames to float32 ``[n, channels]``."""

from __future__ import annotations

from typing import TYPE_CHECKING, Final

import numpy as np
from numpy.typing import NDArray

from streamprint.engine.decode.common import ByteData, Samples
from streamprint.engine.fingerprint import pcm16_to_float
from streamprint.errors import InvalidInputError

if TYPE_CHECKING:  # PyAV is only needed once container media is decoded
    import av

_PCM_WIDTH: Final = {"u8": 1, "s16le": 2, "s24le": 3, "s32le": 4, "f32le": 4, "f64le": 8}


def _pcm_to_float(raw: ByteData, kind: str, channels: int) -> Samples:
    """Convert whole interleaved PCM frames to a fresh float32 ``[n, channels]`` array.

    Integer scaling matches libsndfile exactly (value / 2**(bits-1)); float input is
    copied unchanged (checking and clipping happen in the caller).
    """
    out: Samples
    if kind == "s16le":
        out = pcm16_to_float(np.frombuffer(raw, "<i2"))
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
