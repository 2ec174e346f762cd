"""Typed requests and results of the data plane (the api layer converts protobuf to these)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from enum import StrEnum

from streamprint.config import ServerConfig
from streamprint.engine.dims import Modality
from streamprint.engine.fingerprint import Fingerprint
from streamprint.engine.validation import ValidationReport
from streamprint.engine.video.grid import RawVideoFormat


class Encoding(StrEnum):
    """How media bytes are encoded."""

    CONTAINER = "container"
    PCM_S16LE = "s16le"
    PCM_F32LE = "f32le"


@dataclass(frozen=True)
class MediaFormat:
    """Encoding of media bytes; ``sample_rate`` (Hz) and ``channels`` only for raw PCM."""

    encoding: Encoding = Encoding.CONTAINER
    sample_rate: int = 0
    channels: int = 0

    @property
    def is_pcm(self) -> bool:
        """Whether the bytes are raw PCM."""
        return self.encoding is not Encoding.CONTAINER

    def cache_params(self) -> dict[str, object]:
        """What of the format changes a result (for cache keys)."""
        if not self.is_pcm:
            return {"encoding": self.encoding.value}
        return {
            "encoding": self.encoding.value,
            "sample_rate": self.sample_rate,
            "channels": self.channels,
        }


@dataclass(frozen=True)
class VideoInput:
    """Encoding of video bytes: ``raw`` frame geometry (``None``: an encoded container).

    ``frame_rate`` (frames per second) times raw frames that carry no timestamps.
    """

    raw: RawVideoFormat | None = None
    frame_rate: float = 0.0

    def cache_params(self) -> dict[str, object]:
        """What of the format changes a result (for cache keys)."""
        if self.raw is None:
            return {"video": "container"}
        return {
            "video": self.raw.pixel_format.value,
            "width": self.raw.width,
            "height": self.raw.height,
            "frame_rate": self.frame_rate,
        }


@dataclass(frozen=True)
class StreamSpec:
    """A validated stream config: media format, dimensions, update interval (media seconds).

    ``modality`` says which engine runs; ``video`` is the video encoding (video streams only).
    """

    format: MediaFormat
    dimensions: tuple[str, ...]
    update_interval_s: float
    client_stream_id: str = ""
    modality: Modality = Modality.AUDIO
    video: VideoInput = field(default_factory=VideoInput)


@dataclass(frozen=True)
class MediaInput:
    """Whole media: ``data`` bytes or a ``server_path`` under the server's media root.

    ``data`` may be a read-only ``memoryview`` of the received request (api.wire), so it is
    hashed and decoded in place; nothing keeps it past the call.

    ``video`` is the video encoding (read for video jobs only).
    """

    format: MediaFormat = field(default_factory=MediaFormat)
    data: bytes | memoryview | None = None
    server_path: str | None = None
    video: VideoInput = field(default_factory=VideoInput)


@dataclass(frozen=True)
class FingerprintJob:
    """Fingerprint whole media; ``dimensions`` in registry order, of ``modality``."""

    media: MediaInput
    dimensions: tuple[str, ...]
    modality: Modality = Modality.AUDIO


@dataclass(frozen=True)
class FingerprintResult:
    """A whole-media fingerprint; ``cached`` when it came from the cache."""

    fingerprint: Fingerprint
    cached: bool
    media_sha256: str


@dataclass(frozen=True)
class ValidationJob:
    """Validate ``candidate`` (``None``: the session's final) against ``session_id`` or ``media``."""

    session_id: str | None = None
    media: MediaInput | None = None
    candidate: Mapping[str, float] | None = None


@dataclass(frozen=True)
class ValidationOutcome:
    """A validation report and what it was computed from."""

    report: ValidationReport
    similarity_threshold: float
    reference_algorithm: str
    media_sha256: str
    session_id: str = ""


@dataclass(frozen=True)
class ModelDescription:
    """A model doing per-frame work: id, version, backend, precision, and the modality it serves."""

    name: str
    version: str
    backend: str
    precision: str
    device: str = ""
    selection_reason: str = ""
    modality: Modality = Modality.AUDIO


@dataclass(frozen=True)
class ServerInfo:
    """What GetServerInfo reports (besides the static dimension registry)."""

    server_version: str
    component_versions: Mapping[str, str]
    models: tuple[ModelDescription, ...]
    container_formats: tuple[str, ...]
    config: ServerConfig
    min_update_interval_s: float
    max_update_interval_s: float
    min_sample_rate: int
    max_sample_rate: int
    max_channels: int
    max_video_frame_side: int = 0
    #: Whether live streams' frames go through the dynamic batcher (config and engine allow it).
    batching: bool = False
