"""Plain result types of the client, with the JSON shapes the CLI prints.

JSON contract (one object per line): dimension values live in a ``values`` map and
confidences in a ``confidence`` map, both keyed by snake_case dimension names; stream
updates carry ``session_id``, ``revision`` and ``final``; unary results carry ``cached``;
validation results carry ``passed`` on every item and per-dimension ``within_tolerance``.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any

from streamprint_client._generated import admin_service_pb2 as admin_pb
from streamprint_client._generated import fingerprint_service_pb2 as fs_pb
from streamprint_client._generated import media_pb2 as m_pb
from streamprint_client.errors import StreamprintRpcError


class Encoding(StrEnum):
    """How the bytes sent are encoded."""

    CONTAINER = "container"
    PCM_S16LE = "s16le"
    PCM_F32LE = "f32le"


@dataclass(frozen=True)
class AudioFormat:
    """Encoding of media bytes; ``sample_rate`` and ``channels`` only for raw PCM."""

    encoding: Encoding = Encoding.CONTAINER
    sample_rate: int = 0
    channels: int = 0

    def to_proto(self) -> m_pb.AudioFormat:
        """The protobuf message."""
        encoding = {
            Encoding.CONTAINER: m_pb.AUDIO_ENCODING_CONTAINER,
            Encoding.PCM_S16LE: m_pb.AUDIO_ENCODING_PCM_S16LE,
            Encoding.PCM_F32LE: m_pb.AUDIO_ENCODING_PCM_F32LE,
        }[self.encoding]
        return m_pb.AudioFormat(
            encoding=encoding, sample_rate_hz=self.sample_rate, channels=self.channels
        )


@dataclass(frozen=True)
class Fingerprint:
    """Named dimension values with confidences (maps in the server's registry order)."""

    algorithm: str
    values: dict[str, float]
    confidence: dict[str, float]
    revision: int
    media_seconds: float
    final: bool
    model: str
    model_version: str

    @classmethod
    def from_proto(cls, msg: m_pb.Fingerprint) -> Fingerprint:
        """From ``streamprint.v1.Fingerprint``."""
        return cls(
            algorithm=msg.algorithm,
            values={d.name: d.value for d in msg.dimensions},
            confidence={d.name: d.confidence for d in msg.dimensions},
            revision=msg.revision,
            media_seconds=msg.media_seconds,
            final=msg.final,
            model=msg.model,
            model_version=msg.model_version,
        )

    def to_json_dict(self) -> dict[str, object]:
        """JSON-ready dict (``values`` and ``confidence`` maps keyed by snake_case names)."""
        return {
            "algorithm": self.algorithm,
            "values": dict(self.values),
            "confidence": dict(self.confidence),
            "revision": self.revision,
            "media_seconds": round(self.media_seconds, 6),
            "final": self.final,
            "model": self.model,
            "model_version": self.model_version,
        }


@dataclass(frozen=True)
class StreamUpdate:
    """One update of a stream."""

    session_id: str
    client_stream_id: str
    fingerprint: Fingerprint

    @property
    def revision(self) -> int:
        """Strictly increasing within the stream."""
        return self.fingerprint.revision

    @property
    def final(self) -> bool:
        """True for the last update."""
        return self.fingerprint.final

    @classmethod
    def from_proto(cls, msg: fs_pb.StreamFingerprintResponse) -> StreamUpdate:
        """From ``streamprint.v1.StreamFingerprintResponse``."""
        return cls(msg.session_id, msg.client_stream_id, Fingerprint.from_proto(msg.fingerprint))

    def to_json_dict(self) -> dict[str, object]:
        """``session_id``, ``revision``, ``final``, ``values``, ``confidence``, ..."""
        out: dict[str, object] = {"session_id": self.session_id}
        if self.client_stream_id:
            out["client_stream_id"] = self.client_stream_id
        return {**out, **self.fingerprint.to_json_dict()}


@dataclass(frozen=True)
class FingerprintResult:
    """A whole-media fingerprint and whether it came from the server's cache."""

    fingerprint: Fingerprint
    cached: bool
    media_sha256: str

    @classmethod
    def from_proto(cls, msg: fs_pb.FingerprintResponse) -> FingerprintResult:
        """From ``streamprint.v1.FingerprintResponse``."""
        return cls(Fingerprint.from_proto(msg.fingerprint), msg.cached, msg.media_sha256)

    def to_json_dict(self) -> dict[str, object]:
        """The fingerprint plus ``cached`` (always) and ``media_sha256``."""
        return {
            **self.fingerprint.to_json_dict(),
            "cached": self.cached,
            "media_sha256": self.media_sha256,
        }


@dataclass(frozen=True)
class BatchItem:
    """One item's outcome in a batch: a result or an error."""

    index: int
    result: FingerprintResult | None = None
    error: StreamprintRpcError | None = None

    def to_json_dict(self) -> dict[str, object]:
        """The result's JSON (with ``cached``) or ``{"error": ...}``, plus ``index``."""
        if self.result is not None:
            return {"index": self.index, **self.result.to_json_dict()}
        assert self.error is not None
        return {"index": self.index, "error": self.error.to_json_dict()}


_VERDICT_NAMES = {
    m_pb.VERDICT_PASS: "PASS",
    m_pb.VERDICT_FAIL: "FAIL",
    m_pb.VERDICT_OCTAVE_ERROR: "OCTAVE_ERROR",
    m_pb.VERDICT_MISSING: "MISSING",
}


def _finite(value: float | None) -> float | None:
    return value if value is not None and math.isfinite(value) else None


@dataclass(frozen=True)
class DimensionVerdict:
    """How one dimension of the candidate compares with the recomputed reference."""

    name: str
    reference: float
    candidate: float | None
    error_tolerance_units: float | None
    tolerance: float
    verdict: str
    within_tolerance: bool
    critical: bool
    octave_factor: float | None

    def to_json_dict(self) -> dict[str, object]:
        """JSON-ready dict (infinite errors become ``null``)."""
        return {
            "name": self.name,
            "reference": self.reference,
            "candidate": self.candidate,
            "error_tolerance_units": _finite(self.error_tolerance_units),
            "tolerance": self.tolerance,
            "verdict": self.verdict,
            "within_tolerance": self.within_tolerance,
            "critical": self.critical,
            "octave_factor": self.octave_factor,
        }


@dataclass(frozen=True)
class ValidationReport:
    """A candidate checked dimension by dimension against the whole media."""

    passed: bool
    similarity: float
    similarity_threshold: float
    dimensions: list[DimensionVerdict]
    failed_dimensions: list[str]
    octave_errors: list[str]
    reference_algorithm: str

    @classmethod
    def from_proto(cls, msg: m_pb.ValidationReport) -> ValidationReport:
        """From ``streamprint.v1.ValidationReport``."""
        return cls(
            passed=msg.passed,
            similarity=msg.similarity,
            similarity_threshold=msg.similarity_threshold,
            dimensions=[
                DimensionVerdict(
                    name=d.name,
                    reference=d.reference,
                    candidate=d.candidate if d.HasField("candidate") else None,
                    error_tolerance_units=(
                        d.error_tolerance_units if d.HasField("error_tolerance_units") else None
                    ),
                    tolerance=d.tolerance,
                    verdict=_VERDICT_NAMES.get(d.verdict, "UNSPECIFIED"),
                    within_tolerance=d.within_tolerance,
                    critical=d.critical,
                    octave_factor=d.octave_factor if d.HasField("octave_factor") else None,
                )
                for d in msg.dimensions
            ],
            failed_dimensions=list(msg.failed_dimensions),
            octave_errors=list(msg.octave_errors),
            reference_algorithm=msg.reference_algorithm,
        )

    def to_json_dict(self) -> dict[str, object]:
        """``passed`` (always), ``similarity``, ``failed_dimensions``, per-dimension verdicts."""
        return {
            "passed": self.passed,
            "similarity": self.similarity,
            "similarity_threshold": self.similarity_threshold,
            "failed_dimensions": list(self.failed_dimensions),
            "octave_errors": list(self.octave_errors),
            "reference_algorithm": self.reference_algorithm,
            "dimensions": [d.to_json_dict() for d in self.dimensions],
        }


@dataclass(frozen=True)
class ValidationResult:
    """One validation item's outcome: a report or an error."""

    index: int
    session_id: str
    media_sha256: str
    report: ValidationReport | None = None
    error: StreamprintRpcError | None = None

    @property
    def passed(self) -> bool:
        """True when a report was made and passed."""
        return self.report is not None and self.report.passed

    def to_json_dict(self) -> dict[str, object]:
        """Always carries ``passed`` (false on error), then the report or ``error``."""
        out: dict[str, object] = {"index": self.index, "passed": self.passed}
        if self.session_id:
            out["session_id"] = self.session_id
        if self.media_sha256:
            out["media_sha256"] = self.media_sha256
        if self.report is not None:
            out.update(self.report.to_json_dict())
        if self.error is not None:
            out["error"] = self.error.to_json_dict()
        return out


@dataclass(frozen=True)
class CacheStats:
    """Statistics of one server-side store."""

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

    @classmethod
    def from_proto(cls, msg: admin_pb.CacheStats) -> CacheStats:
        """From ``streamprint.v1.CacheStats``."""
        return cls(
            hits=msg.hits,
            misses=msg.misses,
            evictions=msg.evictions,
            expirations=msg.expirations,
            size=msg.size,
            size_bytes=msg.size_bytes,
            max_size=msg.max_size,
            max_bytes=msg.max_bytes,
            ttl_seconds=msg.ttl_seconds,
            hit_rate=msg.hit_rate,
        )

    def to_json_dict(self) -> dict[str, object]:
        """JSON-ready dict."""
        return {
            "hits": self.hits,
            "misses": self.misses,
            "evictions": self.evictions,
            "expirations": self.expirations,
            "size": self.size,
            "size_bytes": self.size_bytes,
            "max_size": self.max_size,
            "max_bytes": self.max_bytes,
            "ttl_seconds": self.ttl_seconds,
            "hit_rate": self.hit_rate,
        }


@dataclass(frozen=True)
class DimensionInfo:
    """A registry entry as the server describes it."""

    name: str
    group: str
    unit: str
    low: float
    high: float
    tolerance: float
    tolerance_kind: str
    streamed: bool
    critical: bool
    description: str


@dataclass(frozen=True)
class ServerInfo:
    """What GetServerInfo says; ``raw`` is the full response as a JSON-ready dict."""

    server_version: str
    api_version: str
    component_versions: dict[str, str]
    dimensions: list[DimensionInfo]
    models: list[dict[str, str]]
    limits: dict[str, Any]
    container_formats: list[str]
    raw: dict[str, Any] = field(repr=False, default_factory=dict)

    @classmethod
    def from_proto(cls, msg: fs_pb.GetServerInfoResponse) -> ServerInfo:
        """From ``streamprint.v1.GetServerInfoResponse``."""
        from google.protobuf import json_format

        raw: dict[str, Any] = json_format.MessageToDict(
            msg, preserving_proto_field_name=True, always_print_fields_with_no_presence=True
        )
        return cls(
            server_version=msg.server_version,
            api_version=msg.api_version,
            component_versions=dict(msg.component_versions),
            dimensions=[
                DimensionInfo(
                    name=d.name,
                    group=d.group,
                    unit=d.unit,
                    low=d.low,
                    high=d.high,
                    tolerance=d.tolerance,
                    tolerance_kind=m_pb.ToleranceKind.Name(d.tolerance_kind)
                    .removeprefix("TOLERANCE_KIND_")
                    .lower(),
                    streamed=d.streamed,
                    critical=d.critical,
                    description=d.description,
                )
                for d in msg.dimensions
            ],
            models=[
                {
                    "name": m.name,
                    "version": m.version,
                    "backend": m.backend,
                    "precision": m.precision,
                    "selection_reason": m.selection_reason,
                }
                for m in msg.models
            ],
            limits=dict(raw.get("limits", {})),
            container_formats=list(msg.container_formats),
            raw=raw,
        )

    def to_json_dict(self) -> dict[str, Any]:
        """The full response, snake_case keys."""
        return dict(self.raw)
