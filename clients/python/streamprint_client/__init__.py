"""streamprint-client: a light client (grpcio + protobuf) for the streamprint gRPC server.

* :class:`StreamprintClient` (blocking) and :class:`AsyncStreamprintClient` (asyncio)
* results: :class:`Fingerprint`, :class:`StreamUpdate`, :class:`FingerprintResult`,
  :class:`ValidationReport`, ... with ``to_json_dict()`` in the CLI's JSON shapes
* errors: :class:`StreamprintRpcError` (status code name, message, decoded rich details)
"""

from streamprint_client._common import DEFAULT_SERVER, SERVER_ENV, validation_item
from streamprint_client.aio import AsyncStreamprintClient, AsyncUpdateStream
from streamprint_client.client import StreamprintClient, UpdateStream
from streamprint_client.errors import FieldViolation, StatusDetail, StreamprintRpcError
from streamprint_client.types import (
    AudioFormat,
    BatchItem,
    CacheStats,
    DimensionVerdict,
    Encoding,
    Fingerprint,
    FingerprintResult,
    ServerInfo,
    StreamUpdate,
    ValidationReport,
    ValidationResult,
)

__version__ = "0.1.0"

__all__ = [
    "DEFAULT_SERVER",
    "SERVER_ENV",
    "AsyncStreamprintClient",
    "AsyncUpdateStream",
    "AudioFormat",
    "BatchItem",
    "CacheStats",
    "DimensionVerdict",
    "Encoding",
    "FieldViolation",
    "Fingerprint",
    "FingerprintResult",
    "ServerInfo",
    "StatusDetail",
    "StreamUpdate",
    "StreamprintClient",
    "StreamprintRpcError",
    "UpdateStream",
    "ValidationReport",
    "ValidationResult",
    "__version__",
    "validation_item",
]
