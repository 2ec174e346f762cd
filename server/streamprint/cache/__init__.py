"""Bounded LRU + TTL stores: whole-media fingerprints and finished sessions' media.

Keys are content hashes (sha256 of media bytes or decoded samples) combined with the
modality, parameters, algorithm id and model id/version; never a file path.
"""

from streamprint.cache.file_digests import FileDigests
from streamprint.cache.fingerprints import FingerprintCache, approx_fingerprint_bytes
from streamprint.cache.keys import fingerprint_key, media_sha256, samples_sha256
from streamprint.cache.media import KeptMedia
from streamprint.cache.sessions import (
    FinishedSession,
    SessionNotFoundError,
    SessionStore,
)
from streamprint.cache.store import BoundedTTLCache, CacheStats

__all__ = [
    "BoundedTTLCache",
    "CacheStats",
    "FileDigests",
    "FingerprintCache",
    "FinishedSession",
    "KeptMedia",
    "SessionNotFoundError",
    "SessionStore",
    "approx_fingerprint_bytes",
    "fingerprint_key",
    "media_sha256",
    "samples_sha256",
]
