"""The video analysis grid: fixed analysis size and rate, and raw frame formats.

Every frame that is analysed is first scaled (libswscale, area averaging) to
:data:`ANALYSIS_WIDTH` pixels wide and an even height that keeps the stored aspect ratio
(sample aspect ratio ignored), converted to full-range RGB24. Frames are sampled at
:data:`ANALYSIS_FPS` by timestamp: with ``t`` the frame's timestamp minus the first frame's,
the first frame at or after each tick ``k / ANALYSIS_FPS`` is analysed and each source frame
at most once (a 5 fps source gives 5 analysed frames per second, a 60 fps one 10). So the
per-second cost does not depend on the source resolution or frame rate (decoding aside).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from enum import StrEnum
from typing import TYPE_CHECKING

import numpy as np
from numpy.typing import NDArray

from streamprint.errors import InvalidInputError

if TYPE_CHECKING:  # PyAV is loaded by the two functions that need it (see video/__init__.py)
    import av

#: Width in pixels of every analysed frame.
ANALYSIS_WIDTH = 256
#: Analysed frames per second (by timestamp).
ANALYSIS_FPS = 10
#: Analysed frames per statistics block (batch means for standard errors): one second.
FRAMES_PER_BLOCK = ANALYSIS_FPS
#: Timestamps within this many seconds of a tick count as reaching it (float rounding).
TICK_EPSILON_S = 1e-6
#: Largest source frame side accepted (raw frames and decoded streams).
MAX_SIDE = 8192
#: Largest analysis height (very tall portrait sources are squeezed to this).
MAX_ANALYSIS_HEIGHT = 1024
#: Smallest analysis height: the 3x3 operators (Laplacian, Sobel) need an interior row, so
#: very wide sources (over about 64:1) are stretched to this.
MIN_ANALYSIS_HEIGHT = 4

RgbFrame = NDArray[np.uint8]


def analysis_size(width: int, height: int) -> tuple[int, int]:
    """``(width, height)`` of the analysed frame for a ``width`` x ``height`` source.

    Width :data:`ANALYSIS_WIDTH`; height ``256 * height / width`` rounded to the nearest even
    number, at least :data:`MIN_ANALYSIS_HEIGHT` and at most :data:`MAX_ANALYSIS_HEIGHT`
    (1280x720 gives 256x144).
    """
    h = 2 * round(ANALYSIS_WIDTH * height / (2 * width))
    return ANALYSIS_WIDTH, int(min(MAX_ANALYSIS_HEIGHT, max(MIN_ANALYSIS_HEIGHT, h)))


def to_analysis_rgb(frame: av.VideoFrame) -> RgbFrame:
    """Scale and convert ``frame`` to the analysis grid: uint8 RGB ``[h, 256, 3]``."""
    width, height = analysis_size(frame.width, frame.height)
    scaled = frame.reformat(width=width, height=height, format="rgb24", interpolation="AREA")
    return np.ascontiguousarray(scaled.to_ndarray())


class FrameSampler:
    """Decides which frames of a timestamped sequence are analysed (see module docstring).

    Timestamps must be non-decreasing; a frame whose timestamp is not after the previous
    one's is dropped (``accept`` returns false) so decoders that repeat a timestamp do not
    double-count.
    """

    def __init__(self) -> None:
        self.first: float | None = None
        self.last: float | None = None
        self.step = 1.0 / ANALYSIS_FPS
        self._next_tick = 0

    def relative(self, timestamp_s: float) -> float:
        """``timestamp_s`` relative to the first accepted frame (seconds)."""
        return 0.0 if self.first is None else timestamp_s - self.first

    def accept(self, timestamp_s: float) -> tuple[bool, bool]:
        """Register a frame: ``(kept, analysed)``; a frame not kept is ignored entirely."""
        if self.first is None:
            self.first = timestamp_s
        elif self.last is not None and timestamp_s <= self.last:
            return False, False
        if self.last is not None:
            self.step = min(timestamp_s - self.last, 1.0)
        self.last = timestamp_s
        t = timestamp_s - self.first
        if t * ANALYSIS_FPS + TICK_EPSILON_S * ANALYSIS_FPS < self._next_tick:
            return True, False
        self._next_tick = math.floor(t * ANALYSIS_FPS + TICK_EPSILON_S * ANALYSIS_FPS) + 1
        return True, True

    @property
    def media_seconds(self) -> float:
        """Media covered so far: last timestamp - first + the last frame gap (max 1 s)."""
        if self.first is None or self.last is None:
            return 0.0
        return self.last - self.first + self.step


class PixelFormat(StrEnum):
    """Raw frame layouts: packed RGB, 8-bit grey, planar YUV 4:2:0 (BT.601, limited range)."""

    RGB24 = "rgb24"
    GRAY8 = "gray8"
    I420 = "i420"


_AV_FORMAT = {PixelFormat.RGB24: "rgb24", PixelFormat.GRAY8: "gray", PixelFormat.I420: "yuv420p"}


@dataclass(frozen=True)
class RawVideoFormat:
    """Geometry of raw frames: ``pixel_format``, ``width`` and ``height`` in pixels."""

    pixel_format: PixelFormat
    width: int
    height: int

    def validate(self, prefix: str = "") -> None:
        """Raise :class:`InvalidInputError` naming the first bad field."""
        for name, value in (("width", self.width), ("height", self.height)):
            if not 2 <= value <= MAX_SIDE:
                raise InvalidInputError.for_field(
                    f"{prefix}{name}", f"{value} px is out of range", f"2..{MAX_SIDE}"
                )
            if self.pixel_format is PixelFormat.I420 and value % 2:
                raise InvalidInputError.for_field(
                    f"{prefix}{name}", f"{value} px is odd; i420 needs even sizes", "an even number"
                )

    @property
    def frame_bytes(self) -> int:
        """Bytes of one frame (rgb24: 3 w h; gray8: w h; i420: 1.5 w h)."""
        pixels = self.width * self.height
        if self.pixel_format is PixelFormat.RGB24:
            return 3 * pixels
        if self.pixel_format is PixelFormat.GRAY8:
            return pixels
        return pixels * 3 // 2

    def to_frame(self, data: bytes | memoryview | NDArray[np.uint8]) -> av.VideoFrame:
        """One raw frame (exactly :attr:`frame_bytes` bytes) as a PyAV frame."""
        flat = np.frombuffer(data, dtype=np.uint8) if not isinstance(data, np.ndarray) else data.reshape(-1)
        arr: NDArray[np.uint8]
        if self.pixel_format is PixelFormat.RGB24:
            arr = flat.reshape(self.height, self.width, 3)
        elif self.pixel_format is PixelFormat.GRAY8:
            arr = flat.reshape(self.height, self.width)
        else:
            arr = flat.reshape(self.height * 3 // 2, self.width)
        import av

        return av.VideoFrame.from_ndarray(arr, format=_AV_FORMAT[self.pixel_format])
