"""Logging setup (``--log-format text|json``) and the per-session start / end log lines.

With ``json`` every record is one JSON object per line on stderr::

    {"ts": "2026-11-23T05:50:01.123456Z", "level": "INFO", "logger": "streamprint.session",
     "message": "session 3f2a... ended OK: ...", "event": "session_end",
     "session_id": "3f2a...", "status": "OK", "chunks": 40, "bytes": 176444, ...}

Fields passed as ``extra={"fields": {...}}`` to a logging call are merged into the object;
text format renders the same records as ``time LEVEL logger: message``. Every stream logs
exactly one ``session_start`` line (session id, peer, format, dimensions, client stream id)
and one ``session_end`` line with its totals: media seconds, chunks, bytes, updates,
duration, time to first update, last revision and final gRPC status.
"""

from __future__ import annotations

import datetime as _dt
import json
import logging
import sys
from typing import TYPE_CHECKING, Any, TextIO

if TYPE_CHECKING:
    from streamprint.dataplane import LiveStream

LOG_FORMATS = ("text", "json")
TEXT_FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"
WORKER_TEXT_FORMAT = "%(asctime)s %(levelname)s %(name)s[w%(worker)s]: %(message)s"

log = logging.getLogger("streamprint.session")

#: LogRecord attributes that are not user fields.
_RESERVED = frozenset(vars(logging.LogRecord("", 0, "", 0, "", None, None))) | {
    "message",
    "asctime",
    "fields",
}


class JsonFormatter(logging.Formatter):
    """One JSON object per record: ts, level, logger, message, then structured fields."""

    def format(self, record: logging.LogRecord) -> str:
        out: dict[str, Any] = {
            "ts": _dt.datetime.fromtimestamp(record.created, _dt.UTC)
            .isoformat(timespec="microseconds")
            .replace("+00:00", "Z"),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
        }
        fields = getattr(record, "fields", None)
        if isinstance(fields, dict):
            out.update(fields)
        for key, value in vars(record).items():  # plain ``extra={...}`` keys too
            if key not in _RESERVED and not key.startswith("_") and key not in out:
                out[key] = value
        if record.exc_info:
            out["exc_info"] = self.formatException(record.exc_info)
        if record.stack_info:
            out["stack_info"] = self.formatStack(record.stack_info)
        return json.dumps(out, default=str, separators=(",", ":"))


class _WorkerTag(logging.Filter):
    """Adds ``worker`` (the index of a ``serve --workers N`` worker process) to every record."""

    def __init__(self, worker: int) -> None:
        super().__init__()
        self.worker = worker

    def filter(self, record: logging.LogRecord) -> bool:
        record.worker = self.worker
        return True


def configure_logging(
    level: str, fmt: str = "text", stream: TextIO | None = None, *, worker: int | None = None
) -> None:
    """Send every record to ``stream`` (default stderr), one line each, as ``fmt``.

    ``worker``: this is worker process ``worker`` of ``serve --workers N``; text lines then
    name it after the logger (``streamprint.session[w1]:``), JSON objects carry ``"worker"``.
    """
    if fmt not in LOG_FORMATS:
        raise ValueError(f"log format must be one of {', '.join(LOG_FORMATS)}, not {fmt!r}")
    handler = logging.StreamHandler(stream if stream is not None else sys.stderr)
    text_format = TEXT_FORMAT if worker is None else WORKER_TEXT_FORMAT
    handler.setFormatter(JsonFormatter() if fmt == "json" else logging.Formatter(text_format))
    if worker is not None:
        handler.addFilter(_WorkerTag(worker))
    logging.basicConfig(
        level=getattr(logging, level.upper(), logging.INFO), handlers=[handler], force=True
    )


def session_started(stream: LiveStream, peer: str) -> None:
    """Log the ``session_start`` line of a stream that was just admitted."""
    spec = stream.spec
    fmt = spec.format
    fields: dict[str, object] = {
        "event": "session_start",
        "session_id": stream.session_id,
        "client_stream_id": spec.client_stream_id,
        "peer": peer,
        "encoding": fmt.encoding.value,
        "dimensions": len(spec.dimensions),
        "update_interval_s": spec.update_interval_s,
    }
    if fmt.is_pcm:
        fields["sample_rate"] = fmt.sample_rate
        fields["channels"] = fmt.channels
    log.info(
        "session %s started (peer %s, %s, client stream id %r)",
        stream.session_id,
        peer,
        fmt.encoding.value,
        spec.client_stream_id,
        extra={"fields": fields},
    )


def session_ended(stream: LiveStream, code: str) -> None:
    """Log the ``session_end`` line of a stream with its totals and final status ``code``."""
    totals = stream.stats.to_log_dict()
    fields: dict[str, object] = {
        "event": "session_end",
        "session_id": stream.session_id,
        "client_stream_id": stream.spec.client_stream_id,
        "status": code,
        **totals,
    }
    log.info(
        "session %s ended %s: %.3f s of media in %d chunks (%d bytes), %d updates, %.3f s",
        stream.session_id,
        code,
        stream.stats.media_seconds,
        stream.stats.chunks,
        stream.stats.bytes_received,
        stream.stats.updates_sent,
        totals["duration_s"],
        extra={"fields": fields},
    )
