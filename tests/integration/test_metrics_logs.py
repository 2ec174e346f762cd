"""Prometheus metrics scraped from a real server, and the structured session logs."""

from __future__ import annotations

import json
import logging
import os
import re
import signal
import subprocess
import sys
import time
import urllib.request
from collections.abc import Callable
from pathlib import Path

import grpc
import pytest
from grpc_harness import ServerThread, encode, music
from prometheus_client.parser import text_string_to_metric_families

from streamprint.session_log import JsonFormatter
from streamprint_client import StreamprintClient, StreamprintRpcError

ROOT = Path(__file__).resolve().parents[2]
Samples = dict[tuple[str, tuple[tuple[str, str], ...]], float]


def scrape(srv: ServerThread) -> Samples:
    """Every sample of ``GET /metrics``, keyed by (name, sorted labels)."""
    url = f"http://127.0.0.1:{srv.server.metrics.port}/metrics"
    text = urllib.request.urlopen(url, timeout=5).read().decode()
    out: Samples = {}
    for family in text_string_to_metric_families(text):
        for s in family.samples:
            out[(s.name, tuple(sorted(s.labels.items())))] = s.value
    return out


def value(samples: Samples, name: str, **labels: str) -> float:
    return samples.get((name, tuple(sorted(labels.items()))), 0.0)


def wait_for(predicate: Callable[[], bool], timeout: float = 5.0) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(0.02)
    return predicate()


FS = "streamprint.v1.FingerprintService"


def test_metrics_after_real_traffic(
    make_server: Callable[..., ServerThread], media_dir: Path
) -> None:
    srv = make_server(metrics_port=0, cache_max_entries=1)
    before = scrape(srv)
    assert value(before, "streamprint_active_streams") == 0
    assert value(before, "streamprint_updates_sent_total") == 0

    with StreamprintClient(srv.address) as client:
        updates = list(client.stream_file(media_dir / "clip.wav", chunk_ms=250))
        assert updates[-1].final
        client.fingerprint_file(media_dir / "short.wav")  # miss
        client.fingerprint_file(media_dir / "short.wav")  # hit
        client.fingerprint_file(media_dir / "clip.flac")  # miss, evicts short.wav (1 entry)
        with pytest.raises(StreamprintRpcError) as info:
            client.fingerprint_file(media_dir / "garbage.bin")
        assert info.value.code is grpc.StatusCode.INVALID_ARGUMENT

    s = scrape(srv)
    n = len(updates)
    assert value(s, "streamprint_active_streams") == 0
    assert value(s, "streamprint_updates_sent_total") == n
    # one latency observation per update, one first-fingerprint observation per stream
    assert value(s, "streamprint_update_latency_seconds_count") == n
    assert value(s, "streamprint_update_latency_seconds_bucket", le="+Inf") == n
    assert value(s, "streamprint_time_to_first_fingerprint_seconds_count") == 1
    assert value(s, "streamprint_first_fingerprint_media_seconds_count") == 1
    assert 0 < value(s, "streamprint_first_fingerprint_media_seconds_sum") <= 1.5
    # the frame analyzer ran (streams and unary calls), labelled by backend
    backend = srv.plane.engine.models()[0].backend  # what --backend auto chose here
    calls = value(s, "streamprint_inference_batch_frames_count", backend=backend)
    assert calls > 0
    assert value(s, "streamprint_inference_seconds_count", backend=backend) == calls
    assert value(s, "streamprint_inference_batch_frames_sum", backend=backend) >= calls
    assert value(s, "streamprint_inference_seconds_sum", backend=backend) > 0
    # cache
    assert value(s, "streamprint_cache_hits_total", cache="fingerprints") == 1
    assert value(s, "streamprint_cache_misses_total", cache="fingerprints") >= 3
    assert value(s, "streamprint_cache_evictions_total", cache="fingerprints") >= 1
    assert value(s, "streamprint_cache_entries", cache="fingerprints") == 1
    # RPCs and errors by status code
    assert value(s, "streamprint_rpcs_total", method=f"{FS}/Fingerprint", code="OK") == 3
    assert (
        value(s, "streamprint_errors_total", method=f"{FS}/Fingerprint", code="INVALID_ARGUMENT")
        == 1
    )
    assert value(s, "streamprint_rpcs_total", method=f"{FS}/StreamFingerprint", code="OK") == 1
    assert not any(
        name == "streamprint_errors_total" and dict(labels)["code"] == "OK" for name, labels in s
    )
    # stream totals
    assert value(s, "streamprint_sessions_ended_total", code="OK") == 1
    assert (
        value(s, "streamprint_stream_received_bytes_total")
        == (media_dir / "clip.wav").stat().st_size
    )
    assert value(s, "streamprint_stream_chunks_total") >= 4
    assert value(s, "streamprint_stream_media_seconds_total") == pytest.approx(4.0, abs=0.01)
    assert value(s, "streamprint_streams_total", outcome="completed") == 1


def test_bad_stream_counts_its_status(
    make_server: Callable[..., ServerThread], media_dir: Path
) -> None:
    srv = make_server(metrics_port=0)
    with StreamprintClient(srv.address) as client:
        with pytest.raises(StreamprintRpcError) as info:
            list(client.stream([(media_dir / "garbage.bin").read_bytes()]))
        assert info.value.code is grpc.StatusCode.INVALID_ARGUMENT
    s = scrape(srv)
    method = f"{FS}/StreamFingerprint"
    assert value(s, "streamprint_errors_total", method=method, code="INVALID_ARGUMENT") == 1
    assert value(s, "streamprint_sessions_ended_total", code="INVALID_ARGUMENT") == 1


def test_active_streams_follows_a_vanished_client(
    make_server: Callable[..., ServerThread], media_dir: Path
) -> None:
    """A client process killed mid-stream leaves the gauge within 1 s (and counts CANCELLED)."""
    srv = make_server(metrics_port=0)
    env = {**os.environ, "PYTHONPATH": str(ROOT / "clients" / "python")}
    env["STREAMPRINT_SERVER"] = srv.address
    clip = media_dir / "clip.wav"
    proc = subprocess.Popen(
        [sys.executable, "-m", "streamprint_client", "stream", "--realtime", "--json", str(clip)],
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        env=env,
    )
    try:
        assert proc.stdout is not None
        assert json.loads(proc.stdout.readline())["revision"] >= 1  # streaming now
        assert value(scrape(srv), "streamprint_active_streams") == 1
        proc.kill()
        proc.wait(timeout=10)
        killed = time.monotonic()
        assert wait_for(lambda: value(scrape(srv), "streamprint_active_streams") == 0, 1.0)
        assert time.monotonic() - killed <= 1.0
    finally:
        if proc.poll() is None:
            proc.kill()
    s = scrape(srv)
    method = f"{FS}/StreamFingerprint"
    assert wait_for(
        lambda: value(scrape(srv), "streamprint_errors_total", method=method, code="CANCELLED") == 1
    )
    assert value(s, "streamprint_streams_total", outcome="failed") == 1


def test_metrics_port_404_elsewhere(make_server: Callable[..., ServerThread]) -> None:
    srv = make_server(metrics_port=0)
    with pytest.raises(urllib.error.HTTPError) as info:
        urllib.request.urlopen(f"http://127.0.0.1:{srv.server.metrics.port}/", timeout=5)
    assert info.value.code == 404


# ---------------------------------------------------------------------------- logs


def test_session_log_lines_carry_totals(
    server: ServerThread, media_dir: Path, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="streamprint.session")
    with StreamprintClient(server.address) as client:
        updates = list(client.stream_file(media_dir / "clip.wav", client_stream_id="cam-7"))
    session_id = updates[-1].session_id
    assert wait_for(
        lambda: any(getattr(r, "fields", {}).get("event") == "session_end" for r in caplog.records)
    )
    records = [
        r for r in caplog.records if getattr(r, "fields", {}).get("session_id") == session_id
    ]
    assert [r.fields["event"] for r in records] == ["session_start", "session_end"]  # type: ignore[attr-defined]
    start = json.loads(JsonFormatter().format(records[0]))
    end = json.loads(JsonFormatter().format(records[1]))
    assert start["session_id"] == end["session_id"] == session_id
    assert start["client_stream_id"] == end["client_stream_id"] == "cam-7"
    assert start["level"] == "INFO" and start["logger"] == "streamprint.session"
    assert end["status"] == "OK"
    assert end["updates"] == len(updates)
    assert end["media_seconds"] == pytest.approx(updates[-1].fingerprint.media_seconds)
    assert end["bytes"] == (media_dir / "clip.wav").stat().st_size
    assert end["chunks"] >= 1 and end["duration_s"] > 0
    assert end["last_revision"] == updates[-1].revision
    assert session_id in end["message"] and "OK" in end["message"]


def test_json_formatter_keeps_exceptions_and_extras() -> None:
    try:
        raise ValueError("boom")
    except ValueError:
        record = logging.LogRecord(
            "x", logging.ERROR, __file__, 1, "failed %s", ("it",), sys.exc_info()
        )
    record.request_id = "r1"
    line = json.loads(JsonFormatter().format(record))
    assert line["message"] == "failed it" and line["request_id"] == "r1"
    assert "ValueError: boom" in line["exc_info"]


def test_serve_json_logs_from_env(tmp_path: Path) -> None:
    """`streamprint serve` with STREAMPRINT_LOG_FORMAT=json: every stderr line is JSON."""
    clip = tmp_path / "clip.wav"
    clip.write_bytes(encode(music(2.0), 22050))
    env = {**os.environ, "STREAMPRINT_LOG_FORMAT": "json", "STREAMPRINT_ENGINE_THREADS": "1"}
    log_path = tmp_path / "server.log"
    with log_path.open("w") as log_file:
        proc = subprocess.Popen(
            [sys.executable, "-m", "streamprint", "serve", "--port", "0", "--metrics-port", "0"],
            stderr=log_file,
            stdout=subprocess.DEVNULL,
            env=env,
        )
        try:
            assert wait_for(lambda: "serving on" in log_path.read_text(), 60.0)
            records = [json.loads(line) for line in log_path.read_text().splitlines()]
            serving = next(r for r in records if "serving on" in r["message"])
            address = re.search(r"serving on (\S+)", serving["message"]).group(1)  # type: ignore[union-attr]
            with StreamprintClient(address) as client:
                updates = list(client.stream_file(clip))
            assert wait_for(lambda: "session_end" in log_path.read_text())
        finally:
            proc.send_signal(signal.SIGTERM)
            assert proc.wait(timeout=30) == 0
    lines = [json.loads(line) for line in log_path.read_text().splitlines()]
    assert all({"ts", "level", "logger", "message"} <= set(line) for line in lines)
    (end,) = [line for line in lines if line.get("event") == "session_end"]
    (start,) = [line for line in lines if line.get("event") == "session_start"]
    assert start["session_id"] == end["session_id"] == updates[-1].session_id
    assert end["status"] == "OK" and end["updates"] == len(updates)
    assert end["media_seconds"] == pytest.approx(2.0, abs=0.01)
