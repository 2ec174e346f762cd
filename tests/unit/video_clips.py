"""Tiny generated video clips for the video tests (PyAV encoding, no ffmpeg binary needed)."""

from __future__ import annotations

import io
import tempfile
from collections.abc import Callable
from pathlib import Path

import av
import numpy as np
from numpy.typing import NDArray

FrameFn = Callable[[int, float], NDArray[np.uint8]]

#: container -> (PyAV format name, codec, muxer options)
CONTAINERS: dict[str, tuple[str, str, dict[str, str]]] = {
    "mp4": ("mp4", "libx264", {}),
    "mp4-moov-end": ("mp4", "libx264", {}),
    "fmp4": ("mp4", "libx264", {"movflags": "frag_keyframe+empty_moov+default_base_moof"}),
    "ts": ("mpegts", "libx264", {}),
    "mkv": ("matroska", "libx264", {}),
    "webm": ("webm", "libvpx", {}),
}


def encode(
    frame_fn: FrameFn,
    *,
    seconds: float,
    fps: int = 15,
    width: int = 160,
    height: int = 96,
    container: str = "mp4",
    gop: int = 30,
) -> bytes:
    """Encode ``frame_fn(index, t) -> uint8 RGB [height, width, 3]`` into ``container`` bytes."""
    fmt, codec, mux_opts = CONTAINERS[container]
    if container == "mp4":  # moov first (needs a real file for the second pass)
        with tempfile.TemporaryDirectory() as tmp:
            path = Path(tmp) / "clip.mp4"
            _encode_to(str(path), frame_fn, fmt, codec, {"movflags": "faststart"}, seconds, fps, width, height, gop)
            return path.read_bytes()
    buf = io.BytesIO()
    _encode_to(buf, frame_fn, fmt, codec, mux_opts, seconds, fps, width, height, gop)
    return buf.getvalue()


def _encode_to(
    target: str | io.BytesIO,
    frame_fn: FrameFn,
    fmt: str,
    codec: str,
    mux_opts: dict[str, str],
    seconds: float,
    fps: int,
    width: int,
    height: int,
    gop: int,
) -> None:
    with av.open(target, mode="w", format=fmt, options=mux_opts) as out:
        stream = out.add_stream(codec, rate=fps)
        assert isinstance(stream, av.VideoStream)
        stream.width, stream.height = width, height
        stream.pix_fmt = "yuv420p"
        stream.codec_context.gop_size = gop
        if codec == "libx264":
            stream.codec_context.options = {"preset": "ultrafast", "crf": "18", "bframes": "0"}
        else:
            stream.codec_context.options = {"deadline": "realtime", "cpu-used": "8", "crf": "10", "b": "2M"}
        for i in range(round(seconds * fps)):
            frame = av.VideoFrame.from_ndarray(frame_fn(i, i / fps), format="rgb24")
            frame.pts = i
            for packet in stream.encode(frame):
                out.mux(packet)
        for packet in stream.encode(None):
            out.mux(packet)


def flat(value: tuple[int, int, int], width: int = 160, height: int = 96) -> FrameFn:
    """Every frame one colour."""
    img = np.empty((height, width, 3), np.uint8)
    img[:] = value
    return lambda i, t: img


def bars(width: int = 160, height: int = 96) -> FrameFn:
    """Static colour bars."""
    colours = np.array(
        [[192, 192, 192], [192, 192, 0], [0, 192, 192], [0, 192, 0], [192, 0, 192], [192, 0, 0], [0, 0, 192]],
        np.uint8,
    )
    idx = (np.arange(width) * len(colours)) // width
    img = np.ascontiguousarray(np.broadcast_to(colours[idx][None], (height, width, 3)))
    return lambda i, t: img


def moving_with_cut(cut_at_s: float, width: int = 160, height: int = 96, speed_px_s: float = 40.0) -> FrameFn:
    """A dark sliding stripe pattern, then from ``cut_at_s`` a bright one moving the other way."""
    x = np.arange(width)[None, :]
    y = np.arange(height)[:, None]

    def fn(i: int, t: float) -> NDArray[np.uint8]:
        if t < cut_at_s:
            v = 40 + 40 * (((x + speed_px_s * t) // 16) % 2) + 0 * y
            rgb = np.stack([v, v // 2 + 10, v], axis=-1)
        else:
            v = 170 + 60 * (((y + x // 3 - speed_px_s * t) // 12) % 2)
            rgb = np.stack([v, v, v // 2], axis=-1)
        return np.ascontiguousarray(rgb.astype(np.uint8))

    return fn


def noise(seed: int = 0, width: int = 160, height: int = 96) -> FrameFn:
    """Fresh uniform noise every frame."""
    rng = np.random.default_rng(seed)
    return lambda i, t: rng.integers(0, 256, (height, width, 3), dtype=np.uint8)
