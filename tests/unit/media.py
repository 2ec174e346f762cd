"""Test media generated in memory: analytic signals and their encoded files.

Import from tests as ``from media import sine, encode, ...`` (pytest puts ``tests/unit`` on
``sys.path``). Everything is deterministic and needs only soundfile / soxr.

Shapes: mono signals are float32 ``[n]``; multichannel signals float32 ``[n, channels]``.
"""

from __future__ import annotations

import io
import itertools
from collections.abc import Sequence
from typing import TypeVar

import av
import numpy as np
import soundfile as sf
import soxr
from numpy.typing import NDArray

#: Format name -> (libsndfile major format, subtype).
FORMATS: dict[str, tuple[str, str]] = {
    "wav": ("WAV", "PCM_16"),
    "wav_u8": ("WAV", "PCM_U8"),
    "wav24": ("WAV", "PCM_24"),
    "wav32": ("WAV", "PCM_32"),
    "wav_float": ("WAV", "FLOAT"),
    "wav_double": ("WAV", "DOUBLE"),
    "rf64": ("RF64", "PCM_16"),
    "flac": ("FLAC", "PCM_16"),
    "flac24": ("FLAC", "PCM_24"),
    "vorbis": ("OGG", "VORBIS"),
    "opus": ("OGG", "OPUS"),
    "mp3": ("MP3", "MPEG_LAYER_III"),
    "aiff": ("AIFF", "PCM_16"),
}
#: Sample rates libopus accepts; other rates are resampled to 48 kHz by :func:`encode`.
OPUS_RATES = (8000, 12000, 16000, 24000, 48000)


def sine(
    freq: float, seconds: float, rate: int, amplitude: float = 0.5, *, phase: float = 0.0
) -> NDArray[np.float32]:
    """A sine of ``freq`` Hz, ``seconds`` long at ``rate`` Hz: float32 ``[round(seconds*rate)]``."""
    t = np.arange(round(seconds * rate)) / rate
    return (amplitude * np.sin(2 * np.pi * freq * t + phase)).astype(np.float32)


def tones(
    freqs: Sequence[float], seconds: float, rate: int, amplitude: float = 0.5
) -> NDArray[np.float32]:
    """One sine per channel (channel ``i`` at ``freqs[i]`` Hz): float32 ``[n, len(freqs)]``."""
    return np.stack([sine(f, seconds, rate, amplitude) for f in freqs], axis=1)


def stereo(left: NDArray[np.float32], right: NDArray[np.float32]) -> NDArray[np.float32]:
    """Interleave two mono ``[n]`` signals into float32 ``[n, 2]``."""
    return np.stack([left, right], axis=1).astype(np.float32)


def noise(
    seconds: float, rate: int, channels: int = 1, *, seed: int = 0, amplitude: float = 0.3
) -> NDArray[np.float32]:
    """Uniform white noise in [-amplitude, amplitude]: float32 ``[n, channels]``."""
    rng = np.random.default_rng(seed)
    n = round(seconds * rate)
    return rng.uniform(-amplitude, amplitude, (n, channels)).astype(np.float32)


def encode(samples: NDArray[np.floating], rate: int, fmt: str) -> bytes:
    """Encode ``[n]`` or ``[n, channels]`` float samples at ``rate`` Hz into file bytes.

    ``fmt`` is a key of :data:`FORMATS`. Opus at a rate libopus does not take is resampled
    to 48 kHz first (the decoded rate is then 48 kHz, as it always is for Opus).
    """
    major, subtype = FORMATS[fmt]
    data = np.asarray(samples, dtype=np.float32)
    if fmt == "opus" and rate not in OPUS_RATES:
        data = soxr.resample(data, rate, 48000)
        rate = 48000
    buf = io.BytesIO()
    sf.write(buf, data, rate, format=major, subtype=subtype)
    return buf.getvalue()


def encode_aac(samples: NDArray[np.floating], rate: int, container: str = "mp4") -> bytes:
    """Encode ``[n, channels]`` float samples as AAC with PyAV (``container``: "mp4" or "adts")."""
    data = np.asarray(samples, dtype=np.float32)
    data = data[:, None] if data.ndim == 1 else data
    layout = "mono" if data.shape[1] == 1 else "stereo"
    buf = io.BytesIO()
    with av.open(buf, "w", format=container) as out:
        stream = out.add_stream("aac", rate=rate, layout=layout)
        frame = av.AudioFrame.from_ndarray(
            np.ascontiguousarray(data.T), format="fltp", layout=layout
        )
        frame.sample_rate = rate
        for packet in stream.encode(frame):
            out.mux(packet)
        for packet in stream.encode(None):
            out.mux(packet)
    return buf.getvalue()


def pcm_bytes(samples: NDArray[np.floating], encoding: str) -> bytes:
    """Raw interleaved little-endian PCM of ``[n]`` / ``[n, ch]`` samples (``s16le`` / ``f32le``)."""
    data = np.asarray(samples, dtype=np.float64)
    if encoding == "s16le":
        return np.clip(np.round(data * 32768), -32768, 32767).astype("<i2").tobytes()
    if encoding == "f32le":
        return data.astype("<f4").tobytes()
    raise ValueError(encoding)


def peak_frequency(mono: NDArray[np.floating], rate: int) -> float:
    """Frequency (Hz) of the strongest spectral peak, Hann window, parabolic interpolation."""
    x = np.asarray(mono, dtype=np.float64)
    spectrum = np.abs(np.fft.rfft(x * np.hanning(len(x))))
    k = int(np.argmax(spectrum[1:-1])) + 1
    a, b, c = np.log(spectrum[k - 1 : k + 2] + 1e-30)
    offset = 0.5 * (a - c) / (a - 2 * b + c)
    return float((k + offset) * rate / len(x))


_Splittable = TypeVar("_Splittable", bytes, NDArray[np.float32])


def split_at(data: _Splittable, cuts: Sequence[int]) -> list[_Splittable]:
    """Split bytes or a 1-D array at the given offsets (any order; repeats give empty pieces)."""
    bounds = [0, *sorted(min(max(c, 0), len(data)) for c in cuts), len(data)]
    return [data[a:b] for a, b in itertools.pairwise(bounds)]


def random_split(data: bytes, n_cuts: int, seed: int) -> list[bytes]:
    """Split ``data`` at ``n_cuts`` random offsets, dropping empty pieces."""
    rng = np.random.default_rng(seed)
    return [p for p in split_at(data, rng.integers(0, len(data), n_cuts).tolist()) if p]
