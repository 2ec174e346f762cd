"""Video fingerprints (``video-13d/1``): analysis grid, descriptors, sessions, decoding.

See docs/fingerprint.md, "Video 13D", for the exact rules.
"""

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
