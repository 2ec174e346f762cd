from . import media_pb2 as _media_pb2
from google.protobuf.internal import containers as _containers
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class StreamConfig(_message.Message):
    __slots__ = ("modality", "audio_format", "update_interval_seconds", "dimensions", "client_stream_id", "video_format")
    MODALITY_FIELD_NUMBER: _ClassVar[int]
    AUDIO_FORMAT_FIELD_NUMBER: _ClassVar[int]
    UPDATE_INTERVAL_SECONDS_FIELD_NUMBER: _ClassVar[int]
    DIMENSIONS_FIELD_NUMBER: _ClassVar[int]
    CLIENT_STREAM_ID_FIELD_NUMBER: _ClassVar[int]
    VIDEO_FORMAT_FIELD_NUMBER: _ClassVar[int]
    modality: _media_pb2.Modality
    audio_format: _media_pb2.AudioFormat
    update_interval_seconds: float
    dimensions: _containers.RepeatedScalarFieldContainer[str]
    client_stream_id: str
    video_format: _media_pb2.VideoFormat
    def __init__(self, modality: _Optional[_Union[_media_pb2.Modality, str]] = ..., audio_format: _Optional[_Union[_media_pb2.AudioFormat, _Mapping]] = ..., update_interval_seconds: _Optional[float] = ..., dimensions: _Optional[_Iterable[str]] = ..., client_stream_id: _Optional[str] = ..., video_format: _Optional[_Union[_media_pb2.VideoFormat, _Mapping]] = ...) -> None: ...

class MediaChunk(_message.Message):
    __slots__ = ("data", "seq", "timestamps_seconds")
    DATA_FIELD_NUMBER: _ClassVar[int]
    SEQ_FIELD_NUMBER: _ClassVar[int]
    TIMESTAMPS_SECONDS_FIELD_NUMBER: _ClassVar[int]
    data: bytes
    seq: int
    timestamps_seconds: _containers.RepeatedScalarFieldContainer[float]
    def __init__(self, data: _Optional[bytes] = ..., seq: _Optional[int] = ..., timestamps_seconds: _Optional[_Iterable[float]] = ...) -> None: ...

class StreamFingerprintRequest(_message.Message):
    __slots__ = ("config", "chunk")
    CONFIG_FIELD_NUMBER: _ClassVar[int]
    CHUNK_FIELD_NUMBER: _ClassVar[int]
    config: StreamConfig
    chunk: MediaChunk
    def __init__(self, config: _Optional[_Union[StreamConfig, _Mapping]] = ..., chunk: _Optional[_Union[MediaChunk, _Mapping]] = ...) -> None: ...

class StreamFingerprintResponse(_message.Message):
    __slots__ = ("session_id", "client_stream_id", "fingerprint")
    SESSION_ID_FIELD_NUMBER: _ClassVar[int]
    CLIENT_STREAM_ID_FIELD_NUMBER: _ClassVar[int]
    FINGERPRINT_FIELD_NUMBER: _ClassVar[int]
    session_id: str
    client_stream_id: str
    fingerprint: _media_pb2.Fingerprint
    def __init__(self, session_id: _Optional[str] = ..., client_stream_id: _Optional[str] = ..., fingerprint: _Optional[_Union[_media_pb2.Fingerprint, _Mapping]] = ...) -> None: ...

class FingerprintRequest(_message.Message):
    __slots__ = ("media", "modality", "dimensions")
    MEDIA_FIELD_NUMBER: _ClassVar[int]
    MODALITY_FIELD_NUMBER: _ClassVar[int]
    DIMENSIONS_FIELD_NUMBER: _ClassVar[int]
    media: _media_pb2.MediaSource
    modality: _media_pb2.Modality
    dimensions: _containers.RepeatedScalarFieldContainer[str]
    def __init__(self, media: _Optional[_Union[_media_pb2.MediaSource, _Mapping]] = ..., modality: _Optional[_Union[_media_pb2.Modality, str]] = ..., dimensions: _Optional[_Iterable[str]] = ...) -> None: ...

class FingerprintResponse(_message.Message):
    __slots__ = ("fingerprint", "cached", "media_sha256")
    FINGERPRINT_FIELD_NUMBER: _ClassVar[int]
    CACHED_FIELD_NUMBER: _ClassVar[int]
    MEDIA_SHA256_FIELD_NUMBER: _ClassVar[int]
    fingerprint: _media_pb2.Fingerprint
    cached: bool
    media_sha256: str
    def __init__(self, fingerprint: _Optional[_Union[_media_pb2.Fingerprint, _Mapping]] = ..., cached: _Optional[bool] = ..., media_sha256: _Optional[str] = ...) -> None: ...

class BatchFingerprintRequest(_message.Message):
    __slots__ = ("items",)
    ITEMS_FIELD_NUMBER: _ClassVar[int]
    items: _containers.RepeatedCompositeFieldContainer[FingerprintRequest]
    def __init__(self, items: _Optional[_Iterable[_Union[FingerprintRequest, _Mapping]]] = ...) -> None: ...

class BatchFingerprintResult(_message.Message):
    __slots__ = ("index", "status", "result")
    INDEX_FIELD_NUMBER: _ClassVar[int]
    STATUS_FIELD_NUMBER: _ClassVar[int]
    RESULT_FIELD_NUMBER: _ClassVar[int]
    index: int
    status: _media_pb2.ItemStatus
    result: FingerprintResponse
    def __init__(self, index: _Optional[int] = ..., status: _Optional[_Union[_media_pb2.ItemStatus, _Mapping]] = ..., result: _Optional[_Union[FingerprintResponse, _Mapping]] = ...) -> None: ...

class BatchFingerprintResponse(_message.Message):
    __slots__ = ("results",)
    RESULTS_FIELD_NUMBER: _ClassVar[int]
    results: _containers.RepeatedCompositeFieldContainer[BatchFingerprintResult]
    def __init__(self, results: _Optional[_Iterable[_Union[BatchFingerprintResult, _Mapping]]] = ...) -> None: ...

class ValidationItem(_message.Message):
    __slots__ = ("session_id", "media", "candidate")
    SESSION_ID_FIELD_NUMBER: _ClassVar[int]
    MEDIA_FIELD_NUMBER: _ClassVar[int]
    CANDIDATE_FIELD_NUMBER: _ClassVar[int]
    session_id: str
    media: _media_pb2.MediaSource
    candidate: _containers.RepeatedCompositeFieldContainer[_media_pb2.DimensionValue]
    def __init__(self, session_id: _Optional[str] = ..., media: _Optional[_Union[_media_pb2.MediaSource, _Mapping]] = ..., candidate: _Optional[_Iterable[_Union[_media_pb2.DimensionValue, _Mapping]]] = ...) -> None: ...

class ValidateFingerprintsRequest(_message.Message):
    __slots__ = ("items", "similarity_threshold")
    ITEMS_FIELD_NUMBER: _ClassVar[int]
    SIMILARITY_THRESHOLD_FIELD_NUMBER: _ClassVar[int]
    items: _containers.RepeatedCompositeFieldContainer[ValidationItem]
    similarity_threshold: float
    def __init__(self, items: _Optional[_Iterable[_Union[ValidationItem, _Mapping]]] = ..., similarity_threshold: _Optional[float] = ...) -> None: ...

class ValidationResult(_message.Message):
    __slots__ = ("index", "status", "report", "session_id", "media_sha256")
    INDEX_FIELD_NUMBER: _ClassVar[int]
    STATUS_FIELD_NUMBER: _ClassVar[int]
    REPORT_FIELD_NUMBER: _ClassVar[int]
    SESSION_ID_FIELD_NUMBER: _ClassVar[int]
    MEDIA_SHA256_FIELD_NUMBER: _ClassVar[int]
    index: int
    status: _media_pb2.ItemStatus
    report: _media_pb2.ValidationReport
    session_id: str
    media_sha256: str
    def __init__(self, index: _Optional[int] = ..., status: _Optional[_Union[_media_pb2.ItemStatus, _Mapping]] = ..., report: _Optional[_Union[_media_pb2.ValidationReport, _Mapping]] = ..., session_id: _Optional[str] = ..., media_sha256: _Optional[str] = ...) -> None: ...

class ValidateFingerprintsResponse(_message.Message):
    __slots__ = ("results",)
    RESULTS_FIELD_NUMBER: _ClassVar[int]
    results: _containers.RepeatedCompositeFieldContainer[ValidationResult]
    def __init__(self, results: _Optional[_Iterable[_Union[ValidationResult, _Mapping]]] = ...) -> None: ...

class GetServerInfoRequest(_message.Message):
    __slots__ = ()
    def __init__(self) -> None: ...

class AlgorithmInfo(_message.Message):
    __slots__ = ("id", "modality", "dimensions", "streamed")
    ID_FIELD_NUMBER: _ClassVar[int]
    MODALITY_FIELD_NUMBER: _ClassVar[int]
    DIMENSIONS_FIELD_NUMBER: _ClassVar[int]
    STREAMED_FIELD_NUMBER: _ClassVar[int]
    id: str
    modality: _media_pb2.Modality
    dimensions: _containers.RepeatedScalarFieldContainer[str]
    streamed: bool
    def __init__(self, id: _Optional[str] = ..., modality: _Optional[_Union[_media_pb2.Modality, str]] = ..., dimensions: _Optional[_Iterable[str]] = ..., streamed: _Optional[bool] = ...) -> None: ...

class ModelInfo(_message.Message):
    __slots__ = ("name", "version", "backend", "precision", "device", "selection_reason", "modality")
    NAME_FIELD_NUMBER: _ClassVar[int]
    VERSION_FIELD_NUMBER: _ClassVar[int]
    BACKEND_FIELD_NUMBER: _ClassVar[int]
    PRECISION_FIELD_NUMBER: _ClassVar[int]
    DEVICE_FIELD_NUMBER: _ClassVar[int]
    SELECTION_REASON_FIELD_NUMBER: _ClassVar[int]
    MODALITY_FIELD_NUMBER: _ClassVar[int]
    name: str
    version: str
    backend: str
    precision: str
    device: str
    selection_reason: str
    modality: _media_pb2.Modality
    def __init__(self, name: _Optional[str] = ..., version: _Optional[str] = ..., backend: _Optional[str] = ..., precision: _Optional[str] = ..., device: _Optional[str] = ..., selection_reason: _Optional[str] = ..., modality: _Optional[_Union[_media_pb2.Modality, str]] = ...) -> None: ...

class ServerLimits(_message.Message):
    __slots__ = ("max_message_bytes", "max_chunk_bytes", "max_concurrent_streams", "max_concurrent_requests", "max_buffered_bytes_per_session", "idle_timeout_seconds", "max_session_media_seconds", "max_session_duration_seconds", "max_batch_items", "min_update_interval_seconds", "max_update_interval_seconds", "min_sample_rate_hz", "max_sample_rate_hz", "max_channels", "session_retention_seconds", "max_retained_bytes_per_session", "cache_ttl_seconds", "max_streams_per_token", "max_chunk_rate", "max_chunk_burst", "max_retained_bytes_total", "max_video_frame_side")
    MAX_MESSAGE_BYTES_FIELD_NUMBER: _ClassVar[int]
    MAX_CHUNK_BYTES_FIELD_NUMBER: _ClassVar[int]
    MAX_CONCURRENT_STREAMS_FIELD_NUMBER: _ClassVar[int]
    MAX_CONCURRENT_REQUESTS_FIELD_NUMBER: _ClassVar[int]
    MAX_BUFFERED_BYTES_PER_SESSION_FIELD_NUMBER: _ClassVar[int]
    IDLE_TIMEOUT_SECONDS_FIELD_NUMBER: _ClassVar[int]
    MAX_SESSION_MEDIA_SECONDS_FIELD_NUMBER: _ClassVar[int]
    MAX_SESSION_DURATION_SECONDS_FIELD_NUMBER: _ClassVar[int]
    MAX_BATCH_ITEMS_FIELD_NUMBER: _ClassVar[int]
    MIN_UPDATE_INTERVAL_SECONDS_FIELD_NUMBER: _ClassVar[int]
    MAX_UPDATE_INTERVAL_SECONDS_FIELD_NUMBER: _ClassVar[int]
    MIN_SAMPLE_RATE_HZ_FIELD_NUMBER: _ClassVar[int]
    MAX_SAMPLE_RATE_HZ_FIELD_NUMBER: _ClassVar[int]
    MAX_CHANNELS_FIELD_NUMBER: _ClassVar[int]
    SESSION_RETENTION_SECONDS_FIELD_NUMBER: _ClassVar[int]
    MAX_RETAINED_BYTES_PER_SESSION_FIELD_NUMBER: _ClassVar[int]
    CACHE_TTL_SECONDS_FIELD_NUMBER: _ClassVar[int]
    MAX_STREAMS_PER_TOKEN_FIELD_NUMBER: _ClassVar[int]
    MAX_CHUNK_RATE_FIELD_NUMBER: _ClassVar[int]
    MAX_CHUNK_BURST_FIELD_NUMBER: _ClassVar[int]
    MAX_RETAINED_BYTES_TOTAL_FIELD_NUMBER: _ClassVar[int]
    MAX_VIDEO_FRAME_SIDE_FIELD_NUMBER: _ClassVar[int]
    max_message_bytes: int
    max_chunk_bytes: int
    max_concurrent_streams: int
    max_concurrent_requests: int
    max_buffered_bytes_per_session: int
    idle_timeout_seconds: float
    max_session_media_seconds: float
    max_session_duration_seconds: float
    max_batch_items: int
    min_update_interval_seconds: float
    max_update_interval_seconds: float
    min_sample_rate_hz: int
    max_sample_rate_hz: int
    max_channels: int
    session_retention_seconds: float
    max_retained_bytes_per_session: int
    cache_ttl_seconds: float
    max_streams_per_token: int
    max_chunk_rate: float
    max_chunk_burst: float
    max_retained_bytes_total: int
    max_video_frame_side: int
    def __init__(self, max_message_bytes: _Optional[int] = ..., max_chunk_bytes: _Optional[int] = ..., max_concurrent_streams: _Optional[int] = ..., max_concurrent_requests: _Optional[int] = ..., max_buffered_bytes_per_session: _Optional[int] = ..., idle_timeout_seconds: _Optional[float] = ..., max_session_media_seconds: _Optional[float] = ..., max_session_duration_seconds: _Optional[float] = ..., max_batch_items: _Optional[int] = ..., min_update_interval_seconds: _Optional[float] = ..., max_update_interval_seconds: _Optional[float] = ..., min_sample_rate_hz: _Optional[int] = ..., max_sample_rate_hz: _Optional[int] = ..., max_channels: _Optional[int] = ..., session_retention_seconds: _Optional[float] = ..., max_retained_bytes_per_session: _Optional[int] = ..., cache_ttl_seconds: _Optional[float] = ..., max_streams_per_token: _Optional[int] = ..., max_chunk_rate: _Optional[float] = ..., max_chunk_burst: _Optional[float] = ..., max_retained_bytes_total: _Optional[int] = ..., max_video_frame_side: _Optional[int] = ...) -> None: ...

class GetServerInfoResponse(_message.Message):
    __slots__ = ("server_version", "api_version", "component_versions", "dimensions", "algorithms", "models", "requested_backend", "requested_precision", "modalities", "audio_encodings", "container_formats", "limits", "server_paths_enabled", "batching")
    class ComponentVersionsEntry(_message.Message):
        __slots__ = ("key", "value")
        KEY_FIELD_NUMBER: _ClassVar[int]
        VALUE_FIELD_NUMBER: _ClassVar[int]
        key: str
        value: str
        def __init__(self, key: _Optional[str] = ..., value: _Optional[str] = ...) -> None: ...
    SERVER_VERSION_FIELD_NUMBER: _ClassVar[int]
    API_VERSION_FIELD_NUMBER: _ClassVar[int]
    COMPONENT_VERSIONS_FIELD_NUMBER: _ClassVar[int]
    DIMENSIONS_FIELD_NUMBER: _ClassVar[int]
    ALGORITHMS_FIELD_NUMBER: _ClassVar[int]
    MODELS_FIELD_NUMBER: _ClassVar[int]
    REQUESTED_BACKEND_FIELD_NUMBER: _ClassVar[int]
    REQUESTED_PRECISION_FIELD_NUMBER: _ClassVar[int]
    MODALITIES_FIELD_NUMBER: _ClassVar[int]
    AUDIO_ENCODINGS_FIELD_NUMBER: _ClassVar[int]
    CONTAINER_FORMATS_FIELD_NUMBER: _ClassVar[int]
    LIMITS_FIELD_NUMBER: _ClassVar[int]
    SERVER_PATHS_ENABLED_FIELD_NUMBER: _ClassVar[int]
    BATCHING_FIELD_NUMBER: _ClassVar[int]
    server_version: str
    api_version: str
    component_versions: _containers.ScalarMap[str, str]
    dimensions: _containers.RepeatedCompositeFieldContainer[_media_pb2.DimensionInfo]
    algorithms: _containers.RepeatedCompositeFieldContainer[AlgorithmInfo]
    models: _containers.RepeatedCompositeFieldContainer[ModelInfo]
    requested_backend: str
    requested_precision: str
    modalities: _containers.RepeatedScalarFieldContainer[_media_pb2.Modality]
    audio_encodings: _containers.RepeatedScalarFieldContainer[_media_pb2.AudioEncoding]
    container_formats: _containers.RepeatedScalarFieldContainer[str]
    limits: ServerLimits
    server_paths_enabled: bool
    batching: InferenceBatching
    def __init__(self, server_version: _Optional[str] = ..., api_version: _Optional[str] = ..., component_versions: _Optional[_Mapping[str, str]] = ..., dimensions: _Optional[_Iterable[_Union[_media_pb2.DimensionInfo, _Mapping]]] = ..., algorithms: _Optional[_Iterable[_Union[AlgorithmInfo, _Mapping]]] = ..., models: _Optional[_Iterable[_Union[ModelInfo, _Mapping]]] = ..., requested_backend: _Optional[str] = ..., requested_precision: _Optional[str] = ..., modalities: _Optional[_Iterable[_Union[_media_pb2.Modality, str]]] = ..., audio_encodings: _Optional[_Iterable[_Union[_media_pb2.AudioEncoding, str]]] = ..., container_formats: _Optional[_Iterable[str]] = ..., limits: _Optional[_Union[ServerLimits, _Mapping]] = ..., server_paths_enabled: _Optional[bool] = ..., batching: _Optional[_Union[InferenceBatching, _Mapping]] = ...) -> None: ...

class InferenceBatching(_message.Message):
    __slots__ = ("enabled", "max_batch_frames", "max_wait_ms")
    ENABLED_FIELD_NUMBER: _ClassVar[int]
    MAX_BATCH_FRAMES_FIELD_NUMBER: _ClassVar[int]
    MAX_WAIT_MS_FIELD_NUMBER: _ClassVar[int]
    enabled: bool
    max_batch_frames: int
    max_wait_ms: float
    def __init__(self, enabled: _Optional[bool] = ..., max_batch_frames: _Optional[int] = ..., max_wait_ms: _Optional[float] = ...) -> None: ...
