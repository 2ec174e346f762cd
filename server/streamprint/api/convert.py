"""Protobuf ⇄ data-plane types, at the edge. Nothing below this module sees protobuf.

Request converters validate field by field and raise one
:class:`~streamprint.errors.InvalidInputError` listing *every* bad field of a message, with
proto field paths (``config.audio_format.sample_rate_hz``, ``items[2].media.data``) so
BadRequest details point at what the client actually sent.
"""

from __future__ import annotations

import math
from collections import OrderedDict
from collections.abc import Iterable, Mapping, Sequence

from streamprint.api._generated import admin_service_pb2 as admin_pb
from streamprint.api._generated import fingerprint_service_pb2 as fs_pb
from streamprint.api._generated import media_pb2 as m_pb
from streamprint.cache import CacheStats
from streamprint.dataplane import (
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
from streamprint.dataplane.types import VideoInput
from streamprint.engine import dims
from streamprint.engine.fingerprint import Fingerprint
from streamprint.engine.validation import Verdict
from streamprint.engine.video.grid import PixelFormat, RawVideoFormat
from streamprint.errors import FieldViolation, InvalidInputError

API_VERSION = "streamprint.v1"
DEFAULT_UPDATE_INTERVAL_S = 1.0
MAX_CLIENT_STREAM_ID = 128

_PCM = {
    m_pb.AUDIO_ENCODING_PCM_S16LE: Encoding.PCM_S16LE,
    m_pb.AUDIO_ENCODING_PCM_F32LE: Encoding.PCM_F32LE,
}
_ENCODING_TO_PB = {
    Encoding.CONTAINER: m_pb.AUDIO_ENCODING_CONTAINER,
    Encoding.PCM_S16LE: m_pb.AUDIO_ENCODING_PCM_S16LE,
    Encoding.PCM_F32LE: m_pb.AUDIO_ENCODING_PCM_F32LE,
}
_VERDICT_TO_PB = {
    Verdict.PASS: m_pb.VERDICT_PASS,
    Verdict.FAIL: m_pb.VERDICT_FAIL,
    Verdict.OCTAVE_ERROR: m_pb.VERDICT_OCTAVE_ERROR,
    Verdict.MISSING: m_pb.VERDICT_MISSING,
}
_MODALITY_TO_PB = {
    dims.Modality.AUDIO: m_pb.MODALITY_AUDIO,
    dims.Modality.VIDEO: m_pb.MODALITY_VIDEO,
}
_TOLERANCE_TO_PB = {
    dims.ToleranceKind.ABSOLUTE: m_pb.TOLERANCE_KIND_ABSOLUTE,
    dims.ToleranceKind.RELATIVE: m_pb.TOLERANCE_KIND_RELATIVE,
}


class _Violations:
    """Collects field violations of one message; :meth:`raise_if_any` raises them together."""

    def __init__(self) -> None:
        self.items: list[FieldViolation] = []

    def add(self, field: str, description: str, allowed: str = "") -> None:
        self.items.append(FieldViolation(field, description, allowed))

    def raise_if_any(self) -> None:
        if self.items:
            message = "; ".join(
                f"{v.field}: {v.description}" + (f" (allowed: {v.allowed})" if v.allowed else "")
                for v in self.items
            )
            raise InvalidInputError(message, list(self.items))


# ---------------------------------------------------------------------------- requests


def _modality(value: int, field: str, out: _Violations) -> dims.Modality:
    if value in (m_pb.MODALITY_UNSPECIFIED, m_pb.MODALITY_AUDIO):
        return dims.Modality.AUDIO
    if value == m_pb.MODALITY_VIDEO:
        return dims.Modality.VIDEO
    out.add(field, f"unknown modality {value}", "MODALITY_AUDIO, MODALITY_VIDEO")
    return dims.Modality.AUDIO


_PIXEL_FORMATS = {
    m_pb.PIXEL_FORMAT_RGB24: PixelFormat.RGB24,
    m_pb.PIXEL_FORMAT_GRAY8: PixelFormat.GRAY8,
    m_pb.PIXEL_FORMAT_I420: PixelFormat.I420,
}


def _video_format(
    fmt: m_pb.VideoFormat, field: str, out: _Violations, *, modality: dims.Modality, unary: bool
) -> VideoInput:
    """The typed video encoding; only video requests may set one."""
    if modality is not dims.Modality.VIDEO:
        if fmt.ByteSize():
            out.add(field, "only MODALITY_VIDEO takes a video format", "unset for audio")
        return VideoInput()
    if fmt.pixel_format == m_pb.PIXEL_FORMAT_UNSPECIFIED:
        hint = "0 (containers carry their own), or set pixel_format for raw frames"
        for name in ("width", "height", "frame_rate"):
            if getattr(fmt, name):
                out.add(f"{field}.{name}", "only raw frames take a geometry", hint)
        return VideoInput()
    pixel = _PIXEL_FORMATS.get(fmt.pixel_format)
    if pixel is None:
        out.add(f"{field}.pixel_format", f"unknown pixel format {fmt.pixel_format}",
                "PIXEL_FORMAT_RGB24, PIXEL_FORMAT_GRAY8, PIXEL_FORMAT_I420")
        return VideoInput()
    raw = RawVideoFormat(pixel, fmt.width, fmt.height)
    try:
        raw.validate(prefix=f"{field}.")
    except InvalidInputError as exc:
        out.items.extend(exc.violations)
    rate = fmt.frame_rate
    if rate != 0 and not (math.isfinite(rate) and 0.1 <= rate <= 1000.0):
        out.add(f"{field}.frame_rate", f"{rate:g} fps is out of range", "0.1..1000")
    elif unary and rate == 0:
        out.add(f"{field}.frame_rate", "raw frames in a unary call need a frame rate", "0.1..1000")
    return VideoInput(raw, rate)


def _audio_format_unset(fmt: m_pb.AudioFormat, field: str, out: _Violations) -> None:
    if fmt.ByteSize():
        out.add(field, "only MODALITY_AUDIO takes an audio format", "unset for video (use video_format)")


def _format(
    fmt: m_pb.AudioFormat,
    field: str,
    out: _Violations,
    *,
    rate_range: tuple[int, int],
    max_channels: int,
) -> MediaFormat:
    encoding = fmt.encoding
    if encoding in (m_pb.AUDIO_ENCODING_UNSPECIFIED, m_pb.AUDIO_ENCODING_CONTAINER):
        hint = "0 (containers carry their own), or set encoding to a PCM encoding"
        if fmt.sample_rate_hz:
            out.add(f"{field}.sample_rate_hz", "only raw PCM takes a sample rate", hint)
        if fmt.channels:
            out.add(f"{field}.channels", "only raw PCM takes a channel count", hint)
        return MediaFormat()
    pcm = _PCM.get(encoding)
    if pcm is None:
        out.add(
            f"{field}.encoding",
            f"unknown encoding {encoding}",
            "AUDIO_ENCODING_CONTAINER, AUDIO_ENCODING_PCM_S16LE, AUDIO_ENCODING_PCM_F32LE",
        )
        return MediaFormat()
    low, high = rate_range
    if not low <= fmt.sample_rate_hz <= high:
        out.add(
            f"{field}.sample_rate_hz",
            f"{fmt.sample_rate_hz} Hz is out of range for raw PCM",
            f"{low}..{high}",
        )
    if not 1 <= fmt.channels <= max_channels:
        out.add(
            f"{field}.channels",
            f"{fmt.channels} channels is out of range for raw PCM",
            f"1..{max_channels}",
        )
    return MediaFormat(pcm, fmt.sample_rate_hz, fmt.channels)


def _dimensions(
    names: Sequence[str], field: str, out: _Violations, *, allowed: tuple[str, ...]
) -> tuple[str, ...]:
    if not names:
        return allowed
    for i, name in enumerate(names):
        if name not in allowed:
            what = "is not a streamed dimension" if dims.known(name) else "is not a known dimension"
            out.add(f"{field}[{i}]", f"{name!r} {what}", ", ".join(allowed))
    wanted = set(names)
    return tuple(n for n in allowed if n in wanted)


class Limits:
    """The ranges request validation checks against (from the engine and the config)."""

    def __init__(
        self,
        *,
        rate_range: tuple[int, int],
        max_channels: int,
        interval_range: tuple[float, float],
    ) -> None:
        self.rate_range = rate_range
        self.max_channels = max_channels
        self.interval_range = interval_range

    @classmethod
    def from_info(cls, info: ServerInfo) -> Limits:
        """Limits as reported by GetServerInfo."""
        return cls(
            rate_range=(info.min_sample_rate, info.max_sample_rate),
            max_channels=info.max_channels,
            interval_range=(info.min_update_interval_s, info.max_update_interval_s),
        )


def stream_spec(config: fs_pb.StreamConfig, limits: Limits) -> StreamSpec:
    """The typed spec of a stream's first message (all bad fields reported at once)."""
    out = _Violations()
    modality = _modality(config.modality, "config.modality", out)
    video = _video_format(
        config.video_format, "config.video_format", out, modality=modality, unary=False
    )
    if modality is dims.Modality.VIDEO:
        _audio_format_unset(config.audio_format, "config.audio_format", out)
        fmt = MediaFormat()
    else:
        fmt = _format(
            config.audio_format,
            "config.audio_format",
            out,
            rate_range=limits.rate_range,
            max_channels=limits.max_channels,
        )
    interval = config.update_interval_seconds or DEFAULT_UPDATE_INTERVAL_S
    low, high = limits.interval_range
    if not (math.isfinite(interval) and low <= interval <= high):
        out.add(
            "config.update_interval_seconds",
            f"{interval:g} s is out of range",
            f"{low:g}..{high:g}",
        )
    streamed = dims.VIDEO_13D if modality is dims.Modality.VIDEO else dims.AUDIO_13D
    names = _dimensions(config.dimensions, "config.dimensions", out, allowed=streamed)
    if len(config.client_stream_id) > MAX_CLIENT_STREAM_ID:
        out.add(
            "config.client_stream_id",
            f"{len(config.client_stream_id)} characters",
            f"at most {MAX_CLIENT_STREAM_ID}",
        )
    out.raise_if_any()
    return StreamSpec(fmt, names, interval, config.client_stream_id, modality, video)


def _media(
    src: m_pb.MediaSource,
    field: str,
    out: _Violations,
    limits: Limits,
    *,
    modality: dims.Modality = dims.Modality.AUDIO,
    data: memoryview | None = None,
) -> MediaInput:
    """The media of a unary request; ``data``, when given, is its ``data`` (see api.wire)."""
    video = _video_format(
        src.video_format, f"{field}.video_format", out, modality=modality, unary=True
    )
    if modality is dims.Modality.VIDEO:
        _audio_format_unset(src.format, f"{field}.format", out)
        fmt = MediaFormat()
    else:
        fmt = _format(
            src.format,
            f"{field}.format",
            out,
            rate_range=limits.rate_range,
            max_channels=limits.max_channels,
        )
    if data is not None:
        return MediaInput(fmt, data=data, video=video)
    which = src.WhichOneof("source")
    if which == "server_path":
        if not src.server_path:
            out.add(f"{field}.server_path", "empty path", "a path under the server's media root")
        return MediaInput(fmt, server_path=src.server_path, video=video)
    copied = src.data  # each read of a bytes field copies it (5-20 ms for a 3-minute WAV): once
    if not copied:
        out.add(
            f"{field}.data", "no media bytes", "an encoded audio file, or raw PCM with its format"
        )
    return MediaInput(fmt, data=copied, video=video)


def fingerprint_job(
    request: fs_pb.FingerprintRequest,
    limits: Limits,
    *,
    prefix: str = "",
    data: memoryview | None = None,
) -> FingerprintJob:
    """The typed job of a FingerprintRequest; ``prefix`` goes before field paths (batch items).

    ``data``: ``media.data`` when the deserializer left it out of ``request`` (api.wire).
    """
    out = _Violations()
    modality = _modality(request.modality, f"{prefix}modality", out)
    media = _media(request.media, f"{prefix}media", out, limits, modality=modality, data=data)
    every = dims.VIDEO_13D if modality is dims.Modality.VIDEO else dims.AUDIO_25D
    names = _dimensions(request.dimensions, f"{prefix}dimensions", out, allowed=every)
    out.raise_if_any()
    return FingerprintJob(media, names, modality)


def _candidate(
    values: Iterable[m_pb.DimensionValue], field: str, out: _Violations
) -> dict[str, float]:
    candidate: dict[str, float] = {}
    for i, dv in enumerate(values):
        if not dims.known(dv.name):
            out.add(
                f"{field}[{i}].name",
                f"{dv.name!r} is not a known dimension",
                ", ".join(dims.AUDIO_25D),
            )
        elif dv.name in candidate:
            out.add(f"{field}[{i}].name", f"{dv.name!r} appears twice", "each name once")
        if not math.isfinite(dv.value):
            out.add(f"{field}[{i}].value", f"{dv.value} is not a finite number", "a finite number")
        candidate[dv.name] = dv.value
    return candidate


def validation_job(
    item: fs_pb.ValidationItem, limits: Limits, *, prefix: str = ""
) -> ValidationJob:
    """The typed job of a ValidationItem."""
    out = _Violations()
    which = item.WhichOneof("reference")
    candidate = _candidate(item.candidate, f"{prefix}candidate", out) or None
    job: ValidationJob
    if which == "session_id":
        if not item.session_id:
            out.add(
                f"{prefix}session_id", "empty session id", "a session_id from StreamFingerprint"
            )
        job = ValidationJob(session_id=item.session_id, candidate=candidate)
    elif which == "media":
        video = candidate is not None and all(n in dims.VIDEO_13D for n in candidate)
        media = _media(
            item.media,
            f"{prefix}media",
            out,
            limits,
            modality=dims.Modality.VIDEO if video else dims.Modality.AUDIO,
        )
        if candidate is None:
            out.add(
                f"{prefix}candidate",
                "a candidate fingerprint is required with media",
                "name/value pairs",
            )
        job = ValidationJob(media=media, candidate=candidate)
    else:
        out.add(f"{prefix}reference", "neither session_id nor media is set", "session_id or media")
        job = ValidationJob()
    out.raise_if_any()
    return job


def similarity_threshold(request: fs_pb.ValidateFingerprintsRequest) -> float | None:
    """The requested threshold, ``None`` for the default."""
    if not request.HasField("similarity_threshold"):
        return None
    value = request.similarity_threshold
    if not (math.isfinite(value) and -1.0 <= value <= 1.0):
        raise InvalidInputError.for_field(
            "similarity_threshold", f"{value} is out of range", "-1..1"
        )
    return value


# ---------------------------------------------------------------------------- responses


def fingerprint(fp: Fingerprint) -> m_pb.Fingerprint:
    """A fingerprint message with dimensions in registry order."""
    return m_pb.Fingerprint(
        algorithm=fp.algorithm,
        dimensions=[
            m_pb.DimensionValue(name=name, value=value, confidence=fp.confidence.get(name, 0.0))
            for name, value in dims.ordered(fp.values).items()
        ],
        revision=fp.revision,
        media_seconds=fp.media_seconds,
        final=fp.final,
        model=fp.model,
        model_version=fp.model_version,
    )


def stream_response(
    session_id: str, client_stream_id: str, fp: Fingerprint
) -> fs_pb.StreamFingerprintResponse:
    """One update of a stream."""
    return fs_pb.StreamFingerprintResponse(
        session_id=session_id, client_stream_id=client_stream_id, fingerprint=fingerprint(fp)
    )


#: Messages of recently answered whole-media fingerprints, by the identity of the (immutable,
#: cached) :class:`Fingerprint` object: a cache hit copies the message (about 17 us) instead
#: of building 25 dimension messages again (about 0.5 ms). Event loop only.
_MESSAGES: OrderedDict[int, tuple[Fingerprint, m_pb.Fingerprint]] = OrderedDict()
_MESSAGES_MAX = 1024


def _whole_media_message(fp: Fingerprint) -> m_pb.Fingerprint:
    entry = _MESSAGES.get(id(fp))
    if entry is not None and entry[0] is fp:  # the entry holds fp, so its id is not reused
        _MESSAGES.move_to_end(id(fp))
        return entry[1]
    message = fingerprint(fp)
    _MESSAGES[id(fp)] = (fp, message)
    while len(_MESSAGES) > _MESSAGES_MAX:
        _MESSAGES.popitem(last=False)
    return message


def fingerprint_response(result: FingerprintResult) -> fs_pb.FingerprintResponse:
    """The response of Fingerprint (and of each batch item)."""
    response = fs_pb.FingerprintResponse(cached=result.cached, media_sha256=result.media_sha256)
    response.fingerprint.CopyFrom(_whole_media_message(result.fingerprint))
    return response


def validation_report(outcome: ValidationOutcome) -> m_pb.ValidationReport:
    """A validation report message."""
    report = outcome.report
    verdicts = []
    for v in report.dimensions:
        msg = m_pb.DimensionVerdict(
            name=v.name,
            reference=v.reference,
            tolerance=v.tolerance,
            verdict=_VERDICT_TO_PB.get(v.verdict, m_pb.VERDICT_UNSPECIFIED),
            within_tolerance=v.within_tolerance,
            critical=dims.get(v.name).critical,
        )
        if v.candidate is not None:
            msg.candidate = v.candidate
        if v.error_tolerance_units is not None:
            msg.error_tolerance_units = v.error_tolerance_units
        if v.octave_factor is not None:
            msg.octave_factor = v.octave_factor
        verdicts.append(msg)
    return m_pb.ValidationReport(
        passed=report.passed,
        similarity=report.similarity,
        similarity_threshold=outcome.similarity_threshold,
        dimensions=verdicts,
        failed_dimensions=report.failed_dimensions,
        octave_errors=report.octave_errors,
        reference_algorithm=outcome.reference_algorithm,
    )


def _dimension_info(d: dims.Dimension) -> m_pb.DimensionInfo:
    return m_pb.DimensionInfo(
        name=d.name,
        modality=_MODALITY_TO_PB[d.modality],
        group=d.group,
        unit=d.unit,
        low=d.low,
        high=d.high,
        tolerance=d.tolerance,
        tolerance_kind=_TOLERANCE_TO_PB[d.tolerance_kind],
        tolerance_floor=d.tolerance_floor,
        streamed=d.streamed,
        critical=d.critical,
        description=d.description,
    )


def server_info(info: ServerInfo, extra_versions: Mapping[str, str]) -> fs_pb.GetServerInfoResponse:
    """GetServerInfo's response."""
    cfg = info.config
    models = [model_info(model) for model in info.models]
    return fs_pb.GetServerInfoResponse(
        server_version=info.server_version,
        api_version=API_VERSION,
        component_versions={**info.component_versions, **extra_versions},
        dimensions=[
            _dimension_info(dims.get(n))
            for n in (*dims.names(dims.Modality.AUDIO), *dims.names(dims.Modality.VIDEO))
        ],
        algorithms=[
            fs_pb.AlgorithmInfo(
                id=dims.ALGORITHM_AUDIO_13D,
                modality=m_pb.MODALITY_AUDIO,
                dimensions=dims.AUDIO_13D,
                streamed=True,
            ),
            fs_pb.AlgorithmInfo(
                id=dims.ALGORITHM_AUDIO_25D,
                modality=m_pb.MODALITY_AUDIO,
                dimensions=dims.AUDIO_25D,
                streamed=False,
            ),
            fs_pb.AlgorithmInfo(
                id=dims.ALGORITHM_VIDEO_13D,
                modality=m_pb.MODALITY_VIDEO,
                dimensions=dims.VIDEO_13D,
                streamed=True,
            ),
        ],
        models=models,
        requested_backend=cfg.backend,
        requested_precision=cfg.precision,
        modalities=[m_pb.MODALITY_AUDIO, m_pb.MODALITY_VIDEO],
        audio_encodings=list(_ENCODING_TO_PB.values()),
        container_formats=info.container_formats,
        limits=fs_pb.ServerLimits(
            max_message_bytes=cfg.max_message_bytes,
            max_chunk_bytes=cfg.max_chunk_bytes,
            max_concurrent_streams=cfg.max_streams,
            max_concurrent_requests=cfg.max_requests,
            max_buffered_bytes_per_session=cfg.max_buffered_bytes,
            idle_timeout_seconds=cfg.idle_timeout_s,
            max_session_media_seconds=cfg.max_media_s,
            max_session_duration_seconds=cfg.max_session_duration_s,
            max_batch_items=cfg.max_batch_items,
            min_update_interval_seconds=info.min_update_interval_s,
            max_update_interval_seconds=info.max_update_interval_s,
            min_sample_rate_hz=info.min_sample_rate,
            max_sample_rate_hz=info.max_sample_rate,
            max_channels=info.max_channels,
            session_retention_seconds=cfg.session_store_ttl_s,
            max_retained_bytes_per_session=cfg.session_retain_max_bytes,
            cache_ttl_seconds=cfg.cache_ttl_s,
            max_streams_per_token=cfg.max_streams_per_token,
            max_chunk_rate=cfg.max_chunk_rate,
            max_chunk_burst=cfg.max_chunk_burst,
            max_retained_bytes_total=cfg.session_store_max_bytes,
            max_video_frame_side=info.max_video_frame_side,
        ),
        server_paths_enabled=bool(cfg.media_root),
        batching=fs_pb.InferenceBatching(
            enabled=info.batching,
            max_batch_frames=cfg.batch_max_frames if info.batching else 0,
            max_wait_ms=cfg.batch_max_wait_ms if info.batching else 0.0,
        ),
    )


def model_info(model: ModelDescription) -> fs_pb.ModelInfo:
    """A model description message."""
    return fs_pb.ModelInfo(
        name=model.name,
        version=model.version,
        backend=model.backend,
        precision=model.precision,
        device=model.device,
        selection_reason=model.selection_reason,
        modality=_MODALITY_TO_PB[model.modality],
    )


def cache_stats(stats: CacheStats) -> admin_pb.CacheStats:
    """A CacheStats message."""
    return admin_pb.CacheStats(
        hits=stats.hits,
        misses=stats.misses,
        evictions=stats.evictions,
        expirations=stats.expirations,
        size=stats.size,
        size_bytes=stats.size_bytes,
        max_size=stats.max_size,
        max_bytes=stats.max_bytes,
        ttl_seconds=stats.ttl_s,
        hit_rate=stats.hit_rate,
    )
