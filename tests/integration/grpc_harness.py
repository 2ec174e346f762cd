"""Test harness: a real grpc.aio server on 127.0.0.1:0 in a background thread, test signals."""

from __future__ import annotations

import asyncio
import io
import threading
from collections.abc import Coroutine
from typing import Any, TypeVar

import numpy as np
import soundfile as sf

from streamprint.api.server import StreamprintServer
from streamprint.config import ServerConfig

T = TypeVar("T")

BASE_CONFIG = ServerConfig(
    host="127.0.0.1",
    port=0,
    engine_threads=2,
    idle_timeout_s=10.0,
    grace_s=2.0,
    keepalive_s=30.0,
)


class ServerThread:
    """A StreamprintServer running on its own event loop in a daemon thread."""

    def __init__(self, config: ServerConfig) -> None:
        self.config = config
        self.loop = asyncio.new_event_loop()
        self._thread = threading.Thread(
            target=self.loop.run_forever, name="test-server", daemon=True
        )
        self.server = StreamprintServer(config)

    def run(self, coro: Coroutine[Any, Any, T], timeout: float = 30.0) -> T:
        return asyncio.run_coroutine_threadsafe(coro, self.loop).result(timeout)

    def start(self) -> ServerThread:
        self._thread.start()
        self.run(self.server.start())
        return self

    @property
    def address(self) -> str:
        return f"127.0.0.1:{self.server.port}"

    @property
    def plane(self) -> Any:
        return self.server.plane

    def stop(self, grace: float = 0.5) -> None:
        if self.server.plane is not None:
            self.run(self.server.stop(grace))
        self.loop.call_soon_threadsafe(self.loop.stop)
        self._thread.join(timeout=10)
        self.loop.close()


def music(
    seconds: float, *, rate: int = 22050, channels: int = 2, bpm: float = 120.0, seed: int = 1
) -> np.ndarray:
    """A music-like test signal: a chord, clicks on every beat, a little noise."""
    rng = np.random.default_rng(seed)
    t = np.arange(int(seconds * rate)) / rate
    tone = sum(0.15 * np.sin(2 * np.pi * f * t) for f in (220.0, 277.2, 329.6))
    beat = np.zeros_like(t)
    for start in np.arange(0.0, seconds, 60.0 / bpm):
        i = int(start * rate)
        n = min(len(t) - i, int(0.05 * rate))
        beat[i : i + n] += 0.6 * np.exp(-np.arange(n) / (0.01 * rate)) * rng.standard_normal(n)
    mono = tone + beat + 0.01 * rng.standard_normal(len(t))
    left, right = mono, 0.8 * mono + 0.05 * rng.standard_normal(len(t))
    stereo = np.stack([left, right], axis=1) if channels == 2 else mono[:, None]
    return np.clip(stereo, -1, 1).astype(np.float32)


def encode(samples: np.ndarray, rate: int, fmt: str = "WAV", subtype: str = "PCM_16") -> bytes:
    buf = io.BytesIO()
    sf.write(buf, samples, rate, format=fmt, subtype=subtype)
    return buf.getvalue()
