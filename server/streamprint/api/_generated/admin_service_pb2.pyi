from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class CacheStats(_message.Message):
    __slots__ = ("hits", "misses", "evictions", "expirations", "size", "size_bytes", "max_size", "max_bytes", "ttl_seconds", "hit_rate")
    HITS_FIELD_NUMBER: _ClassVar[int]
    MISSES_FIELD_NUMBER: _ClassVar[int]
    EVICTIONS_FIELD_NUMBER: _ClassVar[int]
    EXPIRATIONS_FIELD_NUMBER: _ClassVar[int]
    SIZE_FIELD_NUMBER: _ClassVar[int]
    SIZE_BYTES_FIELD_NUMBER: _ClassVar[int]
    MAX_SIZE_FIELD_NUMBER: _ClassVar[int]
    MAX_BYTES_FIELD_NUMBER: _ClassVar[int]
    TTL_SECONDS_FIELD_NUMBER: _ClassVar[int]
    HIT_RATE_FIELD_NUMBER: _ClassVar[int]
    hits: int
    misses: int
    evictions: int
    expirations: int
    size: int
    size_bytes: int
    max_size: int
    max_bytes: int
    ttl_seconds: float
    hit_rate: float
    def __init__(self, hits: _Optional[int] = ..., misses: _Optional[int] = ..., evictions: _Optional[int] = ..., expirations: _Optional[int] = ..., size: _Optional[int] = ..., size_bytes: _Optional[int] = ..., max_size: _Optional[int] = ..., max_bytes: _Optional[int] = ..., ttl_seconds: _Optional[float] = ..., hit_rate: _Optional[float] = ...) -> None: ...

class GetCacheStatsRequest(_message.Message):
    __slots__ = ()
    def __init__(self) -> None: ...

class GetCacheStatsResponse(_message.Message):
    __slots__ = ("fingerprints", "sessions")
    FINGERPRINTS_FIELD_NUMBER: _ClassVar[int]
    SESSIONS_FIELD_NUMBER: _ClassVar[int]
    fingerprints: CacheStats
    sessions: CacheStats
    def __init__(self, fingerprints: _Optional[_Union[CacheStats, _Mapping]] = ..., sessions: _Optional[_Union[CacheStats, _Mapping]] = ...) -> None: ...

class ClearCacheRequest(_message.Message):
    __slots__ = ("include_sessions",)
    INCLUDE_SESSIONS_FIELD_NUMBER: _ClassVar[int]
    include_sessions: bool
    def __init__(self, include_sessions: _Optional[bool] = ...) -> None: ...

class ClearCacheResponse(_message.Message):
    __slots__ = ("fingerprints_removed", "sessions_removed")
    FINGERPRINTS_REMOVED_FIELD_NUMBER: _ClassVar[int]
    SESSIONS_REMOVED_FIELD_NUMBER: _ClassVar[int]
    fingerprints_removed: int
    sessions_removed: int
    def __init__(self, fingerprints_removed: _Optional[int] = ..., sessions_removed: _Optional[int] = ...) -> None: ...
