from google.protobuf import any_pb2 as _any_pb2
from google.protobuf.internal import containers as _containers
from google.protobuf.internal import enum_type_wrapper as _enum_type_wrapper
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class Modality(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    MODALITY_UNSPECIFIED: _ClassVar[Modality]
    MODALITY_AUDIO: _ClassVar[Modality]
    MODALITY_VIDEO: _ClassVar[Modality]

class AudioEncoding(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    AUDIO_ENCODING_UNSPECIFIED: _ClassVar[AudioEncoding]
    AUDIO_ENCODING_CONTAINER: _ClassVar[AudioEncoding]
    AUDIO_ENCODING_PCM_S16LE: _ClassVar[AudioEncoding]
    AUDIO_ENCODING_PCM_F32LE: _ClassVar[AudioEncoding]

class PixelFormat(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    PIXEL_FORMAT_UNSPECIFIED: _ClassVar[PixelFormat]
    PIXEL_FORMAT_RGB24: _ClassVar[PixelFormat]
    PIXEL_FORMAT_GRAY8: _ClassVar[PixelFormat]
    PIXEL_FORMAT_I420: _ClassVar[PixelFormat]

class ToleranceKind(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    TOLERANCE_KIND_UNSPECIFIED: _ClassVar[ToleranceKind]
    TOLERANCE_KIND_ABSOLUTE: _ClassVar[ToleranceKind]
    TOLERANCE_KIND_RELATIVE: _ClassVar[ToleranceKind]

class Verdict(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    VERDICT_UNSPECIFIED: _ClassVar[Verdict]
    VERDICT_PASS: _ClassVar[Verdict]
    VERDICT_FAIL: _ClassVar[Verdict]
    VERDICT_OCTAVE_ERROR: _ClassVar[Verdict]
    VERDICT_MISSING: _ClassVar[Verdict]
MODALITY_UNSPECIFIED: Modality
MODALITY_AUDIO: Modality
MODALITY_VIDEO: Modality
AUDIO_ENCODING_UNSPECIFIED: AudioEncoding
AUDIO_ENCODING_CONTAINER: AudioEncoding
AUDIO_ENCODING_PCM_S16LE: AudioEncoding
AUDIO_ENCODING_PCM_F32LE: AudioEncoding
PIXEL_FORMAT_UNSPECIFIED: PixelFormat
PIXEL_FORMAT_RGB24: PixelFormat
PIXEL_FORMAT_GRAY8: PixelFormat
PIXEL_FORMAT_I420: PixelFormat
TOLERANCE_KIND_UNSPECIFIED: ToleranceKind
TOLERANCE_KIND_ABSOLUTE: ToleranceKind
TOLERANCE_KIND_RELATIVE: ToleranceKind
VERDICT_UNSPECIFIED: Verdict
VERDICT_PASS: Verdict
VERDICT_FAIL: Verdict
VERDICT_OCTAVE_ERROR: Verdict
VERDICT_MISSING: Verdict

class VideoFormat(_message.Message):
    __slots__ = ("pixel_format", "width", "height", "frame_rate")
    PIXEL_FORMAT_FIELD_NUMBER: _ClassVar[int]
    WIDTH_FIELD_NUMBER: _ClassVar[int]
    HEIGHT_FIELD_NUMBER: _ClassVar[int]
    FRAME_RATE_FIELD_NUMBER: _ClassVar[int]
    pixel_format: PixelFormat
    width: int
    height: int
    frame_rate: float
    def __init__(self, pixel_format: _Optional[_Union[PixelFormat, str]] = ..., width: _Optional[int] = ..., height: _Optional[int] = ..., frame_rate: _Optional[float] = ...) -> None: ...

class AudioFormat(_message.Message):
    __slots__ = ("encoding", "sample_rate_hz", "channels")
    ENCODING_FIELD_NUMBER: _ClassVar[int]
    SAMPLE_RATE_HZ_FIELD_NUMBER: _ClassVar[int]
    CHANNELS_FIELD_NUMBER: _ClassVar[int]
    encoding: AudioEncoding
    sample_rate_hz: int
    channels: int
    def __init__(self, encoding: _Optional[_Union[AudioEncoding, str]] = ..., sample_rate_hz: _Optional[int] = ..., channels: _Optional[int] = ...) -> None: ...

class MediaSource(_message.Message):
    __slots__ = ("data", "server_path", "format", "video_format")
    DATA_FIELD_NUMBER: _ClassVar[int]
    SERVER_PATH_FIELD_NUMBER: _ClassVar[int]
    FORMAT_FIELD_NUMBER: _ClassVar[int]
    VIDEO_FORMAT_FIELD_NUMBER: _ClassVar[int]
    data: bytes
    server_path: str
    format: AudioFormat
    video_format: VideoFormat
    def __init__(self, data: _Optional[bytes] = ..., server_path: _Optional[str] = ..., format: _Optional[_Union[AudioFormat, _Mapping]] = ..., video_format: _Optional[_Union[VideoFormat, _Mapping]] = ...) -> None: ...

class DimensionValue(_message.Message):
    __slots__ = ("name", "value", "confidence")
    NAME_FIELD_NUMBER: _ClassVar[int]
    VALUE_FIELD_NUMBER: _ClassVar[int]
    CONFIDENCE_FIELD_NUMBER: _ClassVar[int]
    name: str
    value: float
    confidence: float
    def __init__(self, name: _Optional[str] = ..., value: _Optional[float] = ..., confidence: _Optional[float] = ...) -> None: ...

class Fingerprint(_message.Message):
    __slots__ = ("algorithm", "dimensions", "revision", "media_seconds", "final", "model", "model_version")
    ALGORITHM_FIELD_NUMBER: _ClassVar[int]
    DIMENSIONS_FIELD_NUMBER: _ClassVar[int]
    REVISION_FIELD_NUMBER: _ClassVar[int]
    MEDIA_SECONDS_FIELD_NUMBER: _ClassVar[int]
    FINAL_FIELD_NUMBER: _ClassVar[int]
    MODEL_FIELD_NUMBER: _ClassVar[int]
    MODEL_VERSION_FIELD_NUMBER: _ClassVar[int]
    algorithm: str
    dimensions: _containers.RepeatedCompositeFieldContainer[DimensionValue]
    revision: int
    media_seconds: float
    final: bool
    model: str
    model_version: str
    def __init__(self, algorithm: _Optional[str] = ..., dimensions: _Optional[_Iterable[_Union[DimensionValue, _Mapping]]] = ..., revision: _Optional[int] = ..., media_seconds: _Optional[float] = ..., final: _Optional[bool] = ..., model: _Optional[str] = ..., model_version: _Optional[str] = ...) -> None: ...

class ItemStatus(_message.Message):
    __slots__ = ("code", "message", "details")
    CODE_FIELD_NUMBER: _ClassVar[int]
    MESSAGE_FIELD_NUMBER: _ClassVar[int]
    DETAILS_FIELD_NUMBER: _ClassVar[int]
    code: int
    message: str
    details: _containers.RepeatedCompositeFieldContainer[_any_pb2.Any]
    def __init__(self, code: _Optional[int] = ..., message: _Optional[str] = ..., details: _Optional[_Iterable[_Union[_any_pb2.Any, _Mapping]]] = ...) -> None: ...

class DimensionInfo(_message.Message):
    __slots__ = ("name", "modality", "group", "unit", "low", "high", "tolerance", "tolerance_kind", "tolerance_floor", "streamed", "critical", "description")
    NAME_FIELD_NUMBER: _ClassVar[int]
    MODALITY_FIELD_NUMBER: _ClassVar[int]
    GROUP_FIELD_NUMBER: _ClassVar[int]
    UNIT_FIELD_NUMBER: _ClassVar[int]
    LOW_FIELD_NUMBER: _ClassVar[int]
    HIGH_FIELD_NUMBER: _ClassVar[int]
    TOLERANCE_FIELD_NUMBER: _ClassVar[int]
    TOLERANCE_KIND_FIELD_NUMBER: _ClassVar[int]
    TOLERANCE_FLOOR_FIELD_NUMBER: _ClassVar[int]
    STREAMED_FIELD_NUMBER: _ClassVar[int]
    CRITICAL_FIELD_NUMBER: _ClassVar[int]
    DESCRIPTION_FIELD_NUMBER: _ClassVar[int]
    name: str
    modality: Modality
    group: str
    unit: str
    low: float
    high: float
    tolerance: float
    tolerance_kind: ToleranceKind
    tolerance_floor: float
    streamed: bool
    critical: bool
    description: str
    def __init__(self, name: _Optional[str] = ..., modality: _Optional[_Union[Modality, str]] = ..., group: _Optional[str] = ..., unit: _Optional[str] = ..., low: _Optional[float] = ..., high: _Optional[float] = ..., tolerance: _Optional[float] = ..., tolerance_kind: _Optional[_Union[ToleranceKind, str]] = ..., tolerance_floor: _Optional[float] = ..., streamed: _Optional[bool] = ..., critical: _Optional[bool] = ..., description: _Optional[str] = ...) -> None: ...

class DimensionVerdict(_message.Message):
    __slots__ = ("name", "reference", "candidate", "error_tolerance_units", "tolerance", "verdict", "within_tolerance", "critical", "octave_factor")
    NAME_FIELD_NUMBER: _ClassVar[int]
    REFERENCE_FIELD_NUMBER: _ClassVar[int]
    CANDIDATE_FIELD_NUMBER: _ClassVar[int]
    ERROR_TOLERANCE_UNITS_FIELD_NUMBER: _ClassVar[int]
    TOLERANCE_FIELD_NUMBER: _ClassVar[int]
    VERDICT_FIELD_NUMBER: _ClassVar[int]
    WITHIN_TOLERANCE_FIELD_NUMBER: _ClassVar[int]
    CRITICAL_FIELD_NUMBER: _ClassVar[int]
    OCTAVE_FACTOR_FIELD_NUMBER: _ClassVar[int]
    name: str
    reference: float
    candidate: float
    error_tolerance_units: float
    tolerance: float
    verdict: Verdict
    within_tolerance: bool
    critical: bool
    octave_factor: float
    def __init__(self, name: _Optional[str] = ..., reference: _Optional[float] = ..., candidate: _Optional[float] = ..., error_tolerance_units: _Optional[float] = ..., tolerance: _Optional[float] = ..., verdict: _Optional[_Union[Verdict, str]] = ..., within_tolerance: _Optional[bool] = ..., critical: _Optional[bool] = ..., octave_factor: _Optional[float] = ...) -> None: ...

class ValidationReport(_message.Message):
    __slots__ = ("passed", "similarity", "similarity_threshold", "dimensions", "failed_dimensions", "octave_errors", "reference_algorithm")
    PASSED_FIELD_NUMBER: _ClassVar[int]
    SIMILARITY_FIELD_NUMBER: _ClassVar[int]
    SIMILARITY_THRESHOLD_FIELD_NUMBER: _ClassVar[int]
    DIMENSIONS_FIELD_NUMBER: _ClassVar[int]
    FAILED_DIMENSIONS_FIELD_NUMBER: _ClassVar[int]
    OCTAVE_ERRORS_FIELD_NUMBER: _ClassVar[int]
    REFERENCE_ALGORITHM_FIELD_NUMBER: _ClassVar[int]
    passed: bool
    similarity: float
    similarity_threshold: float
    dimensions: _containers.RepeatedCompositeFieldContainer[DimensionVerdict]
    failed_dimensions: _containers.RepeatedScalarFieldContainer[str]
    octave_errors: _containers.RepeatedScalarFieldContainer[str]
    reference_algorithm: str
    def __init__(self, passed: _Optional[bool] = ..., similarity: _Optional[float] = ..., similarity_threshold: _Optional[float] = ..., dimensions: _Optional[_Iterable[_Union[DimensionVerdict, _Mapping]]] = ..., failed_dimensions: _Optional[_Iterable[str]] = ..., octave_errors: _Optional[_Iterable[str]] = ..., reference_algorithm: _Optional[str] = ...) -> None: ...
