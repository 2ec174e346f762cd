"""The video session: one engine for streaming and batch.

A session is fed timestamped frames in any chunking: PyAV frames (from a decoder), raw
frame bytes of a :class:`RawVideoFormat`, or RGB arrays. A :class:`FrameSampler` picks the
frames on the 10 fps analysis grid; only those are scaled to the analysis size and
described, and the descriptor rows feed :class:`VideoFeatures`. Every
``update_interval_s`` of media (by timestamp) it emits a snapshot; :meth:`VideoSession.finish`
returns the final fingerprint. Batch (:func:`fingerprint_video`, :func:`fingerprint_frames`)
is one session fed everything, so streaming and batch agree by construction.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import av
import numpy as np
from numpy.typing import NDArray

from streamprint.engine import dims
from streamprint.engine.fingerprint import (
    REFERENCE_MODEL_VERSION,
    VIDEO_REFERENCE_MODEL,
    Fingerprint,
)
from streamprint.engine.requests import check_dimensions, check_update_interval
from streamprint.engine.video.decode import StreamingVideoDecoder, check_frame_size, iter_frames
from streamprint.engine.video.features import VideoFeatures, describe
from streamprint.engine.video.grid import (
    FrameSampler,
    RawVideoFormat,
    to_analysis_rgb,
)
from streamprint.errors import InvalidInputError, ResourceLimitError, SessionStateError

if TYPE_CHECKING:
    from streamprint.runtime.video import VideoAnalyzer

#: Descriptor rows are fed to the accumulators in batches of this many (one second).
_ROW_BATCH = 10


@dataclass(frozen=True)
class VideoSessionConfig:
    """What a video session analyses.

    ``raw`` describes raw frame bytes for :meth:`VideoSession.push_raw` (``None``: frames come
    decoded); ``dimensions`` are registry names of the video modality;
    ``update_interval_s`` is the media time between snapshots (``None``: none, as in batch);
    ``max_media_seconds`` bounds the media (by timestamp) one session accepts.
    """

    raw: RawVideoFormat | None = None
    dimensions: tuple[str, ...] = dims.VIDEO_13D
    update_interval_s: float | None = 1.0
    max_media_seconds: float | None = None

    def validate(self) -> None:
        """Raise :class:`InvalidInputError` naming the first bad field."""
        if self.raw is not None:
            self.raw.validate()
        check_dimensions(self.dimensions, dims.VIDEO_13D, "video")
        check_update_interval(self.update_interval_s)


def _raw_maker(raw: RawVideoFormat, chunk: memoryview) -> Callable[[], av.VideoFrame]:
    return lambda: raw.to_frame(chunk)


def _rgb_maker(frame: NDArray[np.uint8]) -> Callable[[], av.VideoFrame]:
    return lambda: av.VideoFrame.from_ndarray(np.ascontiguousarray(frame), format="rgb24")


class VideoSession:
    """Streaming fingerprint of one video stream (see module docstring).

    ``analyzer`` runs the per-frame work (a :class:`~streamprint.runtime.video.VideoAnalyzer`,
    e.g. from :func:`~streamprint.runtime.video.load_video_analyzer`); ``None`` is the numpy
    reference :func:`~streamprint.engine.video.features.describe`.
    """

    def __init__(self, config: VideoSessionConfig, *, analyzer: VideoAnalyzer | None = None) -> None:
        config.validate()
        self.config = config
        self._analyzer = analyzer
        self._describe = describe if analyzer is None or analyzer.backend == "numpy" else analyzer.describe
        self._sampler = FrameSampler()
        self._features = VideoFeatures()
        self._rows: list[NDArray[np.float64]] = []
        self._prev: tuple[NDArray[np.float32], NDArray[np.float64]] | None = None
        self._revision = 0
        self._finished = False
        self._frames_seen = 0
        self._next_update = config.update_interval_s
        self._pending_updates: list[Fingerprint] = []

    @property
    def media_seconds(self) -> float:
        """Media covered so far by timestamps, in seconds."""
        return self._sampler.media_seconds

    @property
    def revision(self) -> int:
        """Revision of the last snapshot (0 before the first)."""
        return self._revision

    @property
    def finished(self) -> bool:
        """Whether :meth:`finish` has run."""
        return self._finished

    @property
    def frames_seen(self) -> int:
        """Source frames accepted (analysed or not)."""
        return self._frames_seen

    @property
    def frames_analysed(self) -> int:
        """Frames analysed on the 10 fps grid."""
        return self._features.frames + len(self._rows)

    # -- feeding --------------------------------------------------------------------------

    def push_frame(self, frame: av.VideoFrame, timestamp_s: float) -> list[Fingerprint]:
        """Feed one decoded frame at ``timestamp_s`` (seconds); the snapshots that fell due."""
        self._push(frame, timestamp_s)
        return self.take_updates()

    def push_frames(self, frames: Iterable[tuple[av.VideoFrame, float]]) -> list[Fingerprint]:
        """Feed ``(frame, timestamp_s)`` pairs; the snapshots that fell due."""
        for frame, t in frames:
            self._push(frame, t)
        return self.take_updates()

    def push_raw(self, data: bytes | memoryview, timestamps_s: Sequence[float]) -> list[Fingerprint]:
        """Feed ``len(timestamps_s)`` raw frames of the configured format, concatenated in ``data``.

        ``data`` must hold exactly ``len(timestamps_s) * frame_bytes`` bytes; timestamps are
        seconds, finite and strictly increasing (also across calls).
        """
        raw = self.config.raw
        if raw is None:
            raise InvalidInputError.for_field("config.raw", "this session takes decoded frames", "raw frame geometry")
        self._check_open()
        n = len(timestamps_s)
        if n == 0:
            raise InvalidInputError.for_field("chunk.timestamps_seconds", "no timestamps", "one per frame")
        if len(data) != n * raw.frame_bytes:
            raise InvalidInputError.for_field(
                "chunk.data",
                f"{len(data)} bytes do not hold {n} {raw.pixel_format.value} frames of "
                f"{raw.width}x{raw.height} ({raw.frame_bytes} bytes each)",
                f"{n * raw.frame_bytes} bytes",
            )
        self._check_timestamps(timestamps_s)
        view = memoryview(data)
        for i, t in enumerate(timestamps_s):
            chunk = view[i * raw.frame_bytes : (i + 1) * raw.frame_bytes]
            self._push_lazy(_raw_maker(raw, chunk), float(t))
        return self.take_updates()

    def push_rgb(self, frames: NDArray[np.uint8], timestamps_s: Sequence[float]) -> list[Fingerprint]:
        """Feed uint8 RGB frames ``[n, h, w, 3]`` (any size) at ``timestamps_s`` (seconds)."""
        self._check_open()
        if frames.ndim != 4 or frames.shape[3] != 3 or frames.dtype != np.uint8:
            raise InvalidInputError.for_field("frames", f"expected uint8 [n, h, w, 3], got {frames.dtype} {frames.shape}")
        if frames.shape[0] != len(timestamps_s):
            raise InvalidInputError.for_field("timestamps", "need one timestamp per frame")
        check_frame_size(frames.shape[2], frames.shape[1], "frames")
        self._check_timestamps(timestamps_s)
        for frame, t in zip(frames, timestamps_s, strict=True):
            self._push_lazy(_rgb_maker(frame), float(t))
        return self.take_updates()

    def take_updates(self) -> list[Fingerprint]:
        """The snapshots that fell due since the last call (decoder sinks collect them here)."""
        out, self._pending_updates = self._pending_updates, []
        return out

    def snapshot(self) -> Fingerprint:
        """A snapshot of everything seen so far (counts as a revision)."""
        return self._snapshot(final=self._finished)

    def finish(self) -> Fingerprint:
        """End the media; the final fingerprint."""
        if self._finished:
            raise SessionStateError("the session has already finished")
        self._finished = True
        return self._snapshot(final=True)

    # -- internals --------------------------------------------------------------------------

    def _check_open(self) -> None:
        if self._finished:
            raise SessionStateError("the session has finished; no more media is accepted")

    def _check_timestamps(self, timestamps_s: Sequence[float]) -> None:
        ts = np.asarray(timestamps_s, dtype=np.float64)
        if not np.isfinite(ts).all():
            raise InvalidInputError.for_field("chunk.timestamps_seconds", "timestamps must be finite", "seconds")
        last = self._sampler.last
        if (ts.size > 1 and np.any(np.diff(ts) <= 0)) or (last is not None and ts[0] <= last):
            raise InvalidInputError.for_field(
                "chunk.timestamps_seconds", "timestamps must increase strictly", "increasing seconds"
            )

    def _push(self, frame: av.VideoFrame, timestamp_s: float) -> None:
        self._push_lazy(lambda: frame, timestamp_s)

    def _push_lazy(self, make: Callable[[], av.VideoFrame], timestamp_s: float) -> None:
        self._check_open()
        if not math.isfinite(timestamp_s):
            return
        limit = self.config.max_media_seconds
        if limit is not None and self._sampler.relative(timestamp_s) > limit:
            raise ResourceLimitError(
                f"the session exceeds its media limit of {limit} s", limit="max_media_seconds"
            )
        kept, analysed = self._sampler.accept(timestamp_s)
        if not kept:
            return
        self._frames_seen += 1
        if analysed:
            frame = make()  # its size is checked: raw geometry by the config, decoded frames by the decoder, arrays by push_rgb
            row, luma, hist = self._describe(to_analysis_rgb(frame), self._prev)
            self._prev = (luma, hist)
            self._rows.append(row)
            if len(self._rows) >= _ROW_BATCH:
                self._drain()
        interval = self.config.update_interval_s
        if self._next_update is not None and interval is not None and self.media_seconds >= self._next_update - 1e-9:
            self._pending_updates.append(self._snapshot(final=False))
            while self._next_update <= self.media_seconds + 1e-9:
                self._next_update += interval

    def _drain(self) -> None:
        if self._rows:
            self._features.add(np.stack(self._rows))
            self._rows.clear()

    def _snapshot(self, *, final: bool) -> Fingerprint:
        self._drain()
        self._revision += 1
        seconds = self.media_seconds
        values = self._features.values(seconds)
        confidence = self._features.confidences(seconds)
        wanted = self.config.dimensions
        return Fingerprint(
            algorithm=dims.ALGORITHM_VIDEO_13D,
            values={n: float(values[n]) for n in wanted},
            confidence={n: float(np.clip(confidence[n], 0.0, 1.0)) for n in wanted},
            revision=self._revision,
            media_seconds=seconds,
            final=final,
            model=self.model,
            model_version=self.model_version,
        )

    @property
    def model(self) -> str:
        """Model id fingerprints carry: the reference's, or ``video-<backend>-<precision>``."""
        a = self._analyzer
        return VIDEO_REFERENCE_MODEL if a is None or a.backend == "numpy" else a.name

    @property
    def model_version(self) -> str:
        """Version of :attr:`model`."""
        a = self._analyzer
        return REFERENCE_MODEL_VERSION if a is None or a.backend == "numpy" else a.version


class VideoContainerSession:
    """A :class:`VideoSession` fed encoded container bytes in chunks (see :mod:`.decode`).

    ``push(chunk)`` returns the snapshots that fell due while decoding the chunk;
    :meth:`finish` flushes the decoder and returns the final fingerprint. :meth:`close`
    abandons the stream (always call it or :meth:`finish`).
    """

    def __init__(
        self, config: VideoSessionConfig, *, field: str = "chunk.data", analyzer: VideoAnalyzer | None = None
    ) -> None:
        self.session = VideoSession(config, analyzer=analyzer)
        self._decoder = StreamingVideoDecoder(self.session._push, field=field)

    @property
    def media_seconds(self) -> float:
        """Media covered so far by timestamps, in seconds."""
        return self.session.media_seconds

    def push(self, chunk: bytes | memoryview) -> list[Fingerprint]:
        """Decode one chunk of container bytes; the snapshots that fell due."""
        self._decoder.feed(chunk)
        return self.session.take_updates()

    def finish(self) -> tuple[list[Fingerprint], Fingerprint]:
        """End of stream: ``(snapshots that fell due while flushing, final fingerprint)``."""
        self._decoder.finish()
        updates = self.session.take_updates()
        return updates, self.session.finish()

    def close(self, *, wait: bool = True) -> None:
        """Stop the decoder thread (idempotent; ``wait``: join it)."""
        self._decoder.close(wait=wait)


def fingerprint_frames(
    frames: Iterable[tuple[av.VideoFrame, float]],
    dimensions: Sequence[str] = dims.VIDEO_13D,
    *,
    analyzer: VideoAnalyzer | None = None,
) -> Fingerprint:
    """Batch fingerprint of timestamped frames: one session fed everything, then finished."""
    session = VideoSession(VideoSessionConfig(dimensions=tuple(dimensions), update_interval_s=None), analyzer=analyzer)
    session.push_frames(frames)
    return session.finish()


def fingerprint_video(
    source: bytes | memoryview | str | Path,
    dimensions: Sequence[str] = dims.VIDEO_13D,
    *,
    max_media_seconds: float | None = None,
    field: str = "media.data",
    analyzer: VideoAnalyzer | None = None,
) -> Fingerprint:
    """Batch fingerprint of a whole video file (bytes or path; seekable, so any MP4 works)."""
    session = VideoSession(
        VideoSessionConfig(dimensions=tuple(dimensions), update_interval_s=None, max_media_seconds=max_media_seconds),
        analyzer=analyzer,
    )
    session.push_frames(iter_frames(source, field=field))
    return session.finish()


def fingerprint_raw(
    data: bytes | memoryview,
    raw: RawVideoFormat,
    timestamps_s: Sequence[float],
    dimensions: Sequence[str] = dims.VIDEO_13D,
    *,
    analyzer: VideoAnalyzer | None = None,
) -> Fingerprint:
    """Batch fingerprint of concatenated raw frames at ``timestamps_s`` (seconds)."""
    session = VideoSession(
        VideoSessionConfig(raw=raw, dimensions=tuple(dimensions), update_interval_s=None), analyzer=analyzer
    )
    session.push_raw(data, timestamps_s)
    return session.finish()
