"""The engine's result types: a fingerprint snapshot and decoded audio."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import TypeVar

import numpy as np
from numpy.typing import NDArray

from streamprint.engine import dims

#: Identifier of the numpy reference implementation of the per-frame work.
REFERENCE_MODEL = "numpy-reference"
REFERENCE_MODEL_VERSION = "1"
#: Model id of the numpy reference path of the video per-frame work.
VIDEO_REFERENCE_MODEL = f"{REFERENCE_MODEL}-video"


@dataclass(frozen=True)
class Fingerprint:
    """A fingerprint snapshot.

    ``values`` and ``confidence`` are keyed by dimension name (see :mod:`dims`);
    ``confidence[name]`` is the probability (0-1) that ``values[name]`` is already within
    that dimension's tolerance of the value the finished media will give.
    ``revision`` increases strictly with every snapshot a session emits; ``media_seconds``
    is the native-rate media seen so far; ``final`` is true once the media has ended.
    """

    algorithm: str
    values: dict[str, float]
    confidence: dict[str, float]
    revision: int
    media_seconds: float
    final: bool
    model: str = REFERENCE_MODEL
    model_version: str = REFERENCE_MODEL_VERSION
    extras: dict[str, str] = field(default_factory=dict)

    def to_json_dict(self) -> dict[str, object]:
        """JSON-ready dict with ``values``/``confidence`` maps in registry order."""
        return {
            "algorithm": self.algorithm,
            "values": dims.ordered(self.values),
            "confidence": dims.ordered(self.confidence),
            "revision": self.revision,
            "media_seconds": round(self.media_seconds, 6),
            "final": self.final,
            "model": self.model,
            "model_version": self.model_version,
        }


def pcm16_to_float(pcm: NDArray[np.int16]) -> NDArray[np.float32]:
    """16-bit samples ``k`` (any shape) as the float32 ``k / 32768`` they mean: a fresh array,
    exact (a power-of-two scale), libsndfile's own conversion."""
    out = pcm.astype(np.float32)
    out *= np.float32(2.0**-15)
    return out


@dataclass(frozen=True)
class AudioBuffer:
    """Decoded audio: ``samples`` is float32 ``[n_samples, n_channels]`` in [-1, 1] at ``sample_rate`` Hz."""

    samples: NDArray[np.float32]
    sample_rate: int

    @property
    def channels(self) -> int:
        """Number of channels."""
        return int(self.samples.shape[1])

    @property
    def seconds(self) -> float:
        """Duration in seconds."""
        return float(self.samples.shape[0] / self.sample_rate)


@dataclass(frozen=True)
class AudioBlocks:
    """Decoded audio delivered in consecutive blocks as ``blocks`` is consumed: each block is
    float32 ``[n, channels]`` in [-1, 1] at ``sample_rate`` Hz (a fresh array the consumer may
    keep); ``frames`` is the total count the blocks add up to."""

    sample_rate: int
    channels: int
    frames: int
    blocks: Iterator[NDArray[np.float32]]

    @classmethod
    def of(cls, buffer: AudioBuffer, block_frames: int) -> AudioBlocks:
        """``buffer`` in slices of ``block_frames`` (views, no copy)."""
        samples = buffer.samples
        step = max(1, block_frames)
        return cls(
            buffer.sample_rate, buffer.channels, int(samples.shape[0]),
            (samples[start : start + step] for start in range(0, samples.shape[0], step)),
        )

    def rechunked(self, block_frames: int) -> AudioBlocks:
        """The same samples in blocks of exactly ``block_frames`` frames (the last may be
        shorter): blocks of that size pass through as they are, longer ones are cut into
        views, shorter ones joined. Closing the new iterator closes this one."""
        return AudioBlocks(
            self.sample_rate, self.channels, self.frames, _rechunk(self.blocks, max(1, block_frames))
        )


@dataclass(frozen=True)
class Pcm16Blocks:
    """:class:`AudioBlocks` of 16-bit samples: each block is int16 ``[n, channels]``, sample
    ``k`` meaning ``k / 32768`` (raw s16le PCM, what most kept media holds).

    A session takes them as they are (:meth:`~streamprint.engine.session.AudioSession.push_int16`:
    downmixed from the integers, the same bits as the float32 samples they mean), so a pass over
    kept 16-bit media skips the float32 conversion and finiteness check of every sample.
    """

    sample_rate: int
    channels: int
    frames: int
    blocks: Iterator[NDArray[np.int16]]

    def rechunked(self, block_frames: int) -> Pcm16Blocks:
        """As :meth:`AudioBlocks.rechunked`."""
        return Pcm16Blocks(
            self.sample_rate, self.channels, self.frames, _rechunk(self.blocks, max(1, block_frames))
        )


_Block = TypeVar("_Block", NDArray[np.float32], NDArray[np.int16])


def _rechunk(blocks: Iterator[_Block], step: int) -> Iterator[_Block]:
    pending: list[_Block] = []
    held = 0
    try:
        for block in blocks:
            if not pending and block.shape[0] == step:
                yield block
                continue
            pending.append(block)
            held += block.shape[0]
            while held >= step:
                joined = pending[0] if len(pending) == 1 else np.concatenate(pending)
                yield joined[:step]
                rest = joined[step:]
                pending, held = ([rest] if rest.shape[0] else []), rest.shape[0]
        if held:
            yield pending[0] if len(pending) == 1 else np.concatenate(pending)
    finally:
        close = getattr(blocks, "close", None)
        if close is not None:
            close()
