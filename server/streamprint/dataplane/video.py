"""Video in the data plane: live video streams and whole-media video jobs.

The audio engine sits behind the :class:`~streamprint.dataplane.engine.Engine` port; video
runs the one video engine (:mod:`streamprint.engine.video`) directly, on the same worker
pools, caches, limits and validation as audio, with the per-frame analyzer of the plane's
video selection (``DataPlane.video``: ``--backend`` / ``--precision``, see
:mod:`streamprint.runtime.video_select`). Video sessions keep no media for
session-id validation (decoded frames are too large to keep); ValidateFingerprints takes
the media bytes instead.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

from streamprint.dataplane.plane import LiveStream
from streamprint.dataplane.types import MediaInput, StreamSpec, VideoInput
from streamprint.engine import dims
from streamprint.engine.fingerprint import Fingerprint
from streamprint.engine.video import (
    VideoContainerSession,
    VideoSession,
    VideoSessionConfig,
    fingerprint_raw,
    fingerprint_video,
)
from streamprint.errors import InvalidInputError, MediaDecodeError, ResourceLimitError

if TYPE_CHECKING:
    from streamprint.dataplane.plane import DataPlane
    from streamprint.runtime.video import VideoAnalyzer

#: Why a video session id cannot be validated.
NOT_KEPT = "video sessions keep no media for validation; validate with the media bytes instead"

def _timestamps(
    video: VideoInput, start_index: int, n: int, field: str, max_seconds: float | None
) -> list[float]:
    """Timestamps (s) of raw frames ``start_index .. start_index + n - 1`` timed by the frame
    rate; media past ``max_seconds`` is refused before they are made (a 60 MiB call of 2x2
    frames at 1000 fps is 15.7 million frames, over 4 h: it took 1.2 GB and minutes of CPU
    to find out frame by frame)."""
    if video.frame_rate <= 0:
        raise InvalidInputError.for_field(
            field, "raw frames need timestamps or a frame rate", "one timestamp per frame"
        )
    last_s = (start_index + n - 1) / video.frame_rate
    if max_seconds is not None and last_s > max_seconds:
        raise ResourceLimitError(
            f"{start_index + n} frames at {video.frame_rate:g} fps are {last_s:.6g} s of media; "
            f"the limit is {max_seconds:g} s",
            limit="max_media_seconds",
        )
    return [(start_index + i) / video.frame_rate for i in range(n)]


class VideoLiveStream(LiveStream):
    """A live video stream: container bytes decoded incrementally, or raw frames."""

    def __init__(self, plane: DataPlane, spec: StreamSpec) -> None:
        raw, limit = spec.video.raw, plane.config.max_chunk_bytes
        if raw is not None and raw.frame_bytes > limit:  # no chunk could ever carry one frame
            raise InvalidInputError.for_field(
                "config.video_format",
                f"one {raw.pixel_format.value} frame of {raw.width}x{raw.height} is {raw.frame_bytes} "
                f"bytes, more than a chunk may carry ({limit} bytes, --max-chunk-bytes)",
                f"raw frames of at most {limit} bytes (smaller, or i420 / gray8), or an encoded container",
            )
        super().__init__(plane, spec)
        self._drop_kept(NOT_KEPT)
        self._raw_frames = 0
        config = VideoSessionConfig(
            raw=spec.video.raw,
            dimensions=spec.dimensions,
            update_interval_s=spec.update_interval_s,
            max_media_seconds=plane.config.max_media_s,
        )
        analyzer = plane.video.analyzer
        self._container: VideoContainerSession | None = None
        self._raw: VideoSession | None = None
        if spec.video.raw is None:
            self._container = VideoContainerSession(config, analyzer=analyzer)
        else:
            self._raw = VideoSession(config, analyzer=analyzer)

    def _push_sync(self, data: bytes, timestamps: Sequence[float] = ()) -> list[Fingerprint]:
        if self._container is not None:
            if timestamps:
                raise InvalidInputError.for_field(
                    "chunk.timestamps_seconds", "containers carry their own timestamps", "none"
                )
            return self._container.push(data)
        assert self._raw is not None and self.spec.video.raw is not None
        size = self.spec.video.raw.frame_bytes
        if not timestamps:
            if len(data) % size:
                raise InvalidInputError.for_field(
                    "chunk.data", f"{len(data)} bytes are not whole frames of {size} bytes",
                    f"a multiple of {size} bytes",
                )
            timestamps = _timestamps(
                self.spec.video, self._raw_frames, len(data) // size, "chunk.timestamps_seconds",
                self._plane.config.max_media_s,
            )
        updates = self._raw.push_raw(data, timestamps)
        self._raw_frames += len(timestamps)
        return updates

    def _finish_sync(self) -> tuple[list[Fingerprint], Fingerprint, None]:
        if self._container is not None:
            updates, final = self._container.finish()
            return updates, final, None
        assert self._raw is not None
        if self._raw.frames_seen == 0:
            raise MediaDecodeError.for_field("chunk.data", "the stream ended before any frame", "at least one frame")
        return self._raw.take_updates(), self._raw.finish(), None

    def release(self) -> None:
        if self._container is not None:
            self._container.close(wait=False)
        super().release()


def compute(
    media: MediaInput,
    data: bytes | memoryview,
    dimensions: tuple[str, ...],
    max_seconds: float,
    *,
    analyzer: VideoAnalyzer | None = None,
) -> Fingerprint:
    """Whole-media video fingerprint of ``data`` encoded as ``media.video`` says.

    ``analyzer`` runs the per-frame work (``None``: the numpy reference).
    """
    raw = media.video.raw
    if raw is None:
        return fingerprint_video(data, dimensions, max_media_seconds=max_seconds, analyzer=analyzer)
    if len(data) % raw.frame_bytes:
        raise InvalidInputError.for_field(
            "media.data", f"{len(data)} bytes are not whole frames of {raw.frame_bytes} bytes",
            f"a multiple of {raw.frame_bytes} bytes",
        )
    n = len(data) // raw.frame_bytes
    timestamps = _timestamps(media.video, 0, n, "media.video_format.frame_rate", max_seconds)
    return fingerprint_raw(data, raw, timestamps, dimensions, analyzer=analyzer)


def is_video_candidate(names: Sequence[str]) -> bool:
    """Whether a candidate fingerprint's names are video dimensions."""
    return bool(names) and all(n in dims.VIDEO_13D for n in names)
