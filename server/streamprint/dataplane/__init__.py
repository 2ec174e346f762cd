"""The data plane: sessions, whole-media jobs, validation, caching and limits, without gRPC.

``streamprint.api`` converts protobuf to the typed requests here and the results back; the
engine is reached through the :class:`~streamprint.dataplane.engine.Engine` port so tests can
swap it.
"""

from streamprint.dataplane.engine import Engine, NumpyEngine
from streamprint.dataplane.plane import DataPlane, LiveStream
from streamprint.dataplane.types import (
    Encoding,
    FingerprintJob,
    FingerprintResult,
    MediaFormat,
    MediaInput,
    ModelDescription,
    ServerInfo,
    StreamSpec,
    ValidationJob,
    ValidationOutcome,
)

__all__ = [
    "DataPlane",
    "Encoding",
    "Engine",
    "FingerprintJob",
    "FingerprintResult",
    "LiveStream",
    "MediaFormat",
    "MediaInput",
    "ModelDescription",
    "NumpyEngine",
    "ServerInfo",
    "StreamSpec",
    "ValidationJob",
    "ValidationOutcome",
]
