"""Video fingerprints (``video-13d/1``): analysis grid, descriptors, sessions, decoding.

See docs/fingerprint.md, "Video 13D", for the exact rules.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from streamprint.engine.video.decode import StreamingVideoDecoder, has_video_stream, iter_frames
    from streamprint.engine.video.grid import (
        ANALYSIS_FPS,
        ANALYSIS_WIDTH,
        PixelFormat,
        RawVideoFormat,
        analysis_size,
    )
    from streamprint.engine.video.session import (
        VideoContainerSession,
        VideoSession,
        VideoSessionConfig,
        fingerprint_frames,
        fingerprint_raw,
        fingerprint_video,
    )

#: Where each export lives. Loaded on first use (PEP 562): importing a light submodule
#: (``grid``: formats and sizes, which the data plane's request types need) must not load
#: the decoder and sessions, which load PyAV (about 16 MB resident) that an audio-only
#: server never uses.
_EXPORTS = {
    "StreamingVideoDecoder": "decode", "has_video_stream": "decode", "iter_frames": "decode",
    "ANALYSIS_FPS": "grid", "ANALYSIS_WIDTH": "grid", "PixelFormat": "grid",
    "RawVideoFormat": "grid", "analysis_size": "grid",
    "VideoContainerSession": "session", "VideoSession": "session", "VideoSessionConfig": "session",
    "fingerprint_frames": "session", "fingerprint_raw": "session", "fingerprint_video": "session",
}


def __getattr__(name: str) -> Any:
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    return getattr(importlib.import_module(f"{__name__}.{module}"), name)


__all__ = [
    "ANALYSIS_FPS",
    "ANALYSIS_WIDTH",
    "PixelFormat",
    "RawVideoFormat",
    "StreamingVideoDecoder",
    "VideoContainerSession",
    "VideoSession",
    "VideoSessionConfig",
    "analysis_size",
    "fingerprint_frames",
    "fingerprint_raw",
    "fingerprint_video",
    "has_video_stream",
    "iter_frames",
]
