"""Metrics and log building blocks without a server (the scrape tests are in integration)."""

from __future__ import annotations

import io
import json
import logging

import grpc
import numpy as np
import pytest
from prometheus_client.parser import text_string_to_metric_families

from streamprint.api.interceptor import code_name
from streamprint.dataplane.engine import NumpyEngine
from streamprint.engine.fingerprint import Fingerprint
from streamprint.metrics import InstrumentedAnalyzer, ServerMetrics, SessionStats
from streamprint.session_log import configure_logging


def _samples(metrics: ServerMetrics) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    out = {}
    for family in text_string_to_metric_families(metrics.render().decode()):
        for s in family.samples:
            out[(s.name, tuple(sorted(s.labels.items())))] = s.value
    return out


def test_code_names() -> None:
    assert code_name(None) == "OK"
    assert code_name(grpc.StatusCode.NOT_FOUND) == "NOT_FOUND"
    assert code_name(3) == "INVALID_ARGUMENT"
    assert code_name(999) == "UNKNOWN"
    assert code_name("weird") == "UNKNOWN"


def test_instrumented_analyzer_keeps_name_and_records_calls() -> None:
    metrics = ServerMetrics()
    engine = NumpyEngine()
    metrics.instrument(engine)
    metrics.instrument(engine)  # idempotent: no double wrapping
    analyzer = engine.analyzer
    assert isinstance(analyzer, InstrumentedAnalyzer)
    assert not isinstance(analyzer.inner, InstrumentedAnalyzer)
    assert analyzer.name == "numpy" and analyzer.backend == "numpy"
    analyzer.analyze(np.zeros((7, 2048), np.float32))
    s = _samples(metrics)
    assert s[("streamprint_inference_batch_frames_count", (("backend", "numpy"),))] == 1
    assert s[("streamprint_inference_batch_frames_sum", (("backend", "numpy"),))] == 7
    assert s[("streamprint_inference_seconds_count", (("backend", "numpy"),))] == 1


def test_engines_without_an_analyzer_are_left_alone() -> None:
    class Fake:
        pass

    fake = Fake()
    ServerMetrics().instrument(fake)
    assert not hasattr(fake, "analyzer")


def test_update_and_session_events() -> None:
    metrics = ServerMetrics()
    stats = SessionStats()
    metrics.chunk_received(stats, 100)
    metrics.chunk_received(stats, 50)
    update = Fingerprint(
        algorithm="audio-13d/1",
        values={"tempo_bpm": 120.0},
        confidence={"tempo_bpm": 0.5},
        revision=1,
        media_seconds=1.25,
        final=False,
        model="numpy",
    )
    metrics.update_sent(stats, update)
    metrics.session_ended(stats, "OK")
    metrics.rpc_finished("svc/M", "OK", 0.1)
    metrics.rpc_finished("svc/M", "CANCELLED", 0.1)
    s = _samples(metrics)
    assert s[("streamprint_stream_chunks_total", ())] == 2
    assert s[("streamprint_stream_received_bytes_total", ())] == 150
    assert s[("streamprint_update_latency_seconds_count", ())] == 1
    assert s[("streamprint_first_fingerprint_media_seconds_sum", ())] == 1.25
    assert s[("streamprint_sessions_ended_total", (("code", "OK"),))] == 1
    assert s[("streamprint_rpcs_total", (("code", "OK"), ("method", "svc/M")))] == 1
    assert s[("streamprint_errors_total", (("code", "CANCELLED"), ("method", "svc/M")))] == 1
    assert ("streamprint_errors_total", (("code", "OK"), ("method", "svc/M"))) not in s
    totals = stats.to_log_dict()
    assert totals["chunks"] == 2 and totals["bytes"] == 150 and totals["updates"] == 1
    assert totals["media_seconds"] == 1.25 and totals["last_revision"] == 1


def test_configure_logging_json_and_text() -> None:
    root_handlers = logging.getLogger().handlers[:]
    level = logging.getLogger().level
    try:
        out = io.StringIO()
        configure_logging("info", "json", stream=out)
        logging.getLogger("streamprint.test").info(
            "hello %s", "you", extra={"fields": {"session_id": "s1", "event": "x"}}
        )
        line = json.loads(out.getvalue().splitlines()[-1])
        assert line["message"] == "hello you" and line["session_id"] == "s1"
        assert line["level"] == "INFO" and line["ts"].endswith("Z")
        out = io.StringIO()
        configure_logging("info", "text", stream=out)
        logging.getLogger("streamprint.test").info("plain")
        assert out.getvalue().rstrip().endswith("INFO streamprint.test: plain")
        with pytest.raises(ValueError):
            configure_logging("info", "yaml")
    finally:
        root = logging.getLogger()
        root.handlers[:] = root_handlers
        root.setLevel(level)
