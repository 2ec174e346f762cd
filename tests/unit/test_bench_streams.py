"""The load generator's own logic (scripts/bench_streams.py): latency accounting on synthetic
timestamps, and tiny real runs through the CLI. No timing is asserted."""

from __future__ import annotations

import itertools
import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import numpy as np
import pytest

REPO = Path(__file__).resolve().parents[2]
SCRIPTS = REPO / "scripts"
sys.path.insert(0, str(SCRIPTS))

import bench_streams as bs  # noqa: E402

CONTRACT_KEYS = {
    "streams",
    "streams_realtime",
    "p50_update_latency_ms",
    "p95_update_latency_ms",
    "p99_update_latency_ms",
    "ttff_p50_ms",
    "errors",
    "rss_mb",
    "cpu_percent",
}


def _record(
    *,
    n_chunks: int = 30,
    chunk_s: float = 0.1,
    t0: float = 100.0,
    delays: dict[float, float] | None = None,
    final_at: float | None = None,
) -> bs.StreamRecord:
    """A stream that sent ``n_chunks`` chunks at t0 + k * chunk_s; one update per second of
    media, arriving ``delays[media_s]`` after the completing chunk's send."""
    rec = bs.StreamRecord(index=0)
    for k in range(n_chunks):
        rec.send_times.append(t0 + k * chunk_s)
        rec.chunk_ends.append(round((k + 1) * chunk_s, 9))
    for media_s, delay in sorted((delays or {}).items()):
        k = round(media_s / chunk_s) - 1  # the chunk whose end is media_s
        rec.updates.append((t0 + k * chunk_s + delay, media_s, False))
    if final_at is not None:
        rec.updates.append((final_at, rec.chunk_ends[-1], True))
    return rec


def test_update_latency_is_measured_from_the_completing_chunk() -> None:
    rec = _record(delays={1.0: 0.020, 2.0: 0.050, 3.0: 0.010}, final_at=200.0)
    assert bs.update_latencies(rec) == pytest.approx([0.020, 0.050, 0.010])


def test_update_media_seconds_just_below_the_chunk_end_still_matches_that_chunk() -> None:
    rec = _record(n_chunks=20)
    # float media_seconds a hair under 1.0 (e.g. 44100 frames / 44100.0 after resampling)
    rec.updates.append((rec.send_times[9] + 0.03, 1.0 - 1e-9, False))
    # an update mid-chunk is completed by the chunk that contains its end
    rec.updates.append((rec.send_times[14] + 0.04, 1.45, False))
    assert bs.update_latencies(rec) == pytest.approx([0.03, 0.04])


def test_updates_past_the_sent_media_and_final_updates_are_not_counted() -> None:
    rec = _record(n_chunks=10, final_at=105.0)
    rec.updates.insert(0, (101.0, 5.0, False))  # claims more media than was ever sent
    assert bs.update_latencies(rec) == []


def test_final_latency_is_measured_from_the_last_chunk() -> None:
    rec = _record(n_chunks=30, t0=100.0, delays={1.0: 0.01}, final_at=103.25)
    assert bs.final_latency(rec) == pytest.approx(103.25 - (100.0 + 29 * 0.1))
    assert bs.final_latency(_record(delays={1.0: 0.01})) is None  # no final yet


def test_time_to_first_fingerprint() -> None:
    rec = _record(delays={1.0: 0.1, 2.0: 0.1})
    wall, media = bs.time_to_first(rec)  # type: ignore[misc]
    assert wall == pytest.approx(0.9 + 0.1)
    assert media == 1.0
    assert bs.time_to_first(bs.StreamRecord(index=1)) is None


def test_kept_realtime() -> None:
    good = _record(delays={1.0: 0.02, 2.0: 0.02, 3.0: 0.02}, final_at=104.0)
    assert bs.kept_realtime(good, interval_s=1.0, lag_limit_s=0.5)
    # the update at the very end of the media may arrive as the final one instead
    end_as_final = _record(delays={1.0: 0.02, 2.0: 0.02}, final_at=104.0)
    assert bs.kept_realtime(end_as_final, interval_s=1.0, lag_limit_s=0.5)
    late = _record(delays={1.0: 0.02, 2.0: 1.5, 3.0: 0.02})
    assert not bs.kept_realtime(late, interval_s=1.0, lag_limit_s=0.5)
    missing = _record(delays={1.0: 0.02})
    assert not bs.kept_realtime(missing, interval_s=1.0, lag_limit_s=0.5)
    lagging = _record(delays={1.0: 0.02, 2.0: 0.02, 3.0: 0.02})
    lagging.max_send_lag_s = 0.8
    assert not bs.kept_realtime(lagging, interval_s=1.0, lag_limit_s=0.5)
    failed = _record(delays={1.0: 0.02, 2.0: 0.02, 3.0: 0.02})
    failed.error = "RESOURCE_EXHAUSTED"
    assert not bs.kept_realtime(failed, interval_s=1.0, lag_limit_s=0.5)


def test_streams_per_worker_reads_the_session_ids() -> None:
    ids = ["w0-" + "a" * 32, "w1-" + "b" * 32, "w1-" + "c" * 32, "d" * 32, ""]
    records = [bs.StreamRecord(index=i, session_id=sid) for i, sid in enumerate(ids)]
    assert bs.streams_per_worker(records) == {"0": 1, "1": 2}


def test_expected_updates() -> None:
    assert bs.expected_updates(10.0, 1.0) == 10
    assert bs.expected_updates(9.95, 1.0) == 9
    assert bs.expected_updates(3.0, 0.0) == 0


@pytest.mark.parametrize("q", [0, 50, 95, 99, 100])
def test_percentile_matches_numpy(q: float) -> None:
    values = list(np.random.default_rng(3).exponential(0.05, 101))
    assert bs.percentile(values, q) == pytest.approx(float(np.percentile(values, q)))
    assert bs.percentile([], q) is None


def test_summarize_counts_errors_by_code_and_lost_streams() -> None:
    ok = _record(delays={1.0: 0.010, 2.0: 0.030, 3.0: 0.020}, final_at=104.0)
    bad = _record(delays={1.0: 0.040})
    bad.index, bad.error = 1, "UNAVAILABLE"
    summary = bs.summarize([ok, bad], streams=3, interval_s=1.0, lag_limit_s=0.5)
    assert summary["streams"] == 3
    assert summary["streams_realtime"] == 1
    assert summary["errors"] == 2
    assert summary["errors_by_code"] == {"CLIENT_LOST": 1, "UNAVAILABLE": 1}
    assert summary["updates"] == 4
    assert summary["p50_update_latency_ms"] == pytest.approx(25.0)
    assert summary["max_update_latency_ms"] == pytest.approx(40.0)
    assert summary["ttff_p50_ms"] == pytest.approx(((0.9 + 0.01) + (0.9 + 0.04)) / 2 * 1000)
    assert summary["final_p50_ms"] == pytest.approx((104.0 - ok.send_times[-1]) * 1000)
    empty = bs.summarize([], streams=0, interval_s=1.0, lag_limit_s=0.5)
    assert empty["p99_update_latency_ms"] is None and empty["errors"] == 0


def test_largest_within_needs_p99_under_the_limit_and_no_error() -> None:
    points: list[dict[str, Any]] = [
        {"streams": 8, "p99_update_latency_ms": 20.0, "errors": 0},
        {"streams": 16, "p99_update_latency_ms": 90.0, "errors": 0},
        {"streams": 32, "p99_update_latency_ms": 50.0, "errors": 3},
        {"streams": 64, "p99_update_latency_ms": 400.0, "errors": 0},
        {"streams": 128, "p99_update_latency_ms": None, "errors": 0},
    ]
    assert bs.largest_within(points, 100.0) == 16
    assert bs.largest_within(points, 10.0) is None


@pytest.mark.parametrize("modality", ["audio", "video"])
def test_stream_chunks_cover_the_duration_in_paced_chunks(modality: str) -> None:
    spec = bs.LoadSpec(modality=modality, duration_s=2.05, sample_rate=8000, channels=2,
                       width=8, height=4, fps=20)
    clip = bytes(range(256)) * 40  # shorter than the stream: it loops
    chunks, ends = bs.stream_chunks(spec, clip, index=3)
    assert len(chunks) == len(ends) == 21
    assert ends[-1] == pytest.approx(2.05, abs=0.05)
    assert all(b > a for a, b in itertools.pairwise(ends))
    unit = 4 if modality == "audio" else 32
    assert all(len(c) % unit == 0 for c in chunks)
    assert len(chunks[0]) == (800 * 4 if modality == "audio" else 2 * 32)
    other, _ = bs.stream_chunks(spec, clip, index=4)
    assert other[0] != chunks[0]  # streams start at other offsets of the clip


def test_docs_table_lists_every_point() -> None:
    point = {"server": "streamprint", "streams": 8, "streams_realtime": 8,
             "p99_update_latency_ms": 12.5, "errors_by_code": {}}
    text = bs.table([point, {**point, "server": "naive", "errors_by_code": {"UNAVAILABLE": 2}}])
    assert text.count("\n") == 3
    assert "| naive | 8 |" in text and "UNAVAILABLE 2" in text


def _run(args: list[str]) -> dict[str, Any]:
    proc = subprocess.run(
        [sys.executable, str(SCRIPTS / "bench_streams.py"), *args],
        capture_output=True, text=True, timeout=240, cwd=REPO,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    last: dict[str, Any] = json.loads(proc.stdout.strip().splitlines()[-1])
    return last


@pytest.mark.slow
def test_tiny_real_run_reports_the_contract_keys() -> None:
    result = _run(["--streams", "2", "--duration", "3", "--json", "--warmup-streams", "1"])
    assert set(result) >= CONTRACT_KEYS
    assert result["streams"] == 2 and result["errors"] == 0
    assert isinstance(result["updates"], int) and result["updates"] >= 2
    assert result["p99_update_latency_ms"] is not None and result["ttff_p50_ms"] is not None
    assert result["rss_mb"] is not None and result["cpu_percent"] is not None
    if Path("/proc/self/smaps_rollup").exists():  # PSS splits shared pages: never above RSS
        assert 0 < result["pss_mb"] <= result["rss_mb"]


@pytest.mark.slow
def test_tiny_sweep_with_the_naive_server_writes_a_plot(tmp_path: Path) -> None:
    pytest.importorskip("matplotlib")
    plot = tmp_path / "sweep.png"
    result = _run(["--sweep", "1", "--naive-sweep", "1", "--duration", "2", "--plot", str(plot),
                   "--warmup-streams", "0", "--json"])
    assert set(result) >= CONTRACT_KEYS
    assert [p["server"] for p in result["sweep"]] == ["streamprint"]
    assert [p["server"] for p in result["naive_sweep"]] == ["naive"]
    assert plot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


@pytest.mark.slow
def test_tiny_sweep_over_worker_counts_runs_them_side_by_side(tmp_path: Path) -> None:
    plot = tmp_path / "workers.png"
    result = _run(["--sweep", "2", "--workers", "1,2", "--duration", "2", "--plot", str(plot),
                   "--warmup-streams", "1", "--json"])
    assert [(p["server"], p["server_workers"]) for p in result["sweep"]] == [
        ("streamprint", 1), ("streamprint --workers 2", 2)
    ]
    assert all(p["errors"] == 0 and p["streams"] == 2 for p in result["sweep"])
    assert [sum(p["streams_per_worker"].values()) for p in result["sweep"]] == [0, 2]
    assert set(result["max_streams_within_limit_by_server"]) == {
        "streamprint", "streamprint --workers 2"
    }


@pytest.mark.slow
def test_tiny_sweep_over_chunk_sizes_runs_them_side_by_side(tmp_path: Path) -> None:
    plot = tmp_path / "chunks.png"
    result = _run(["--sweep", "2", "--chunk-ms", "100,250", "--duration", "2", "--plot", str(plot),
                   "--warmup-streams", "1", "--json"])
    assert [(p["server"], p["chunk_ms"]) for p in result["sweep"]] == [
        ("streamprint, 100 ms chunks", 100), ("streamprint, 250 ms chunks", 250)
    ]
    assert all(p["errors"] == 0 and p["streams"] == 2 and p["speed_probe_ms"] > 0 for p in result["sweep"])
    assert set(result["max_streams_within_limit_by_server"]) == {
        "streamprint, 100 ms chunks", "streamprint, 250 ms chunks"
    }


def test_the_cpp_load_generators_records_parse_into_stream_records(tmp_path: Path) -> None:
    """One JSON object per line (clients/cpp/src/loadgen.cc) becomes the same StreamRecord
    the Python client returns; a line cut short is an error, not a silent loss."""
    line = json.dumps({
        "index": 3, "send_times": [10.0, 10.1], "chunk_ends": [0.1, 0.2],
        "updates": [[11.05, 1.0, False], [12.0, 2.0, True]], "error": None, "error_message": "",
        "max_send_lag_s": 0.002, "session_id": "w1-" + "a" * 32,
    })
    (record,) = bs.parse_loadgen_output(line + "\n\n")
    assert record.index == 3 and record.updates == [(11.05, 1.0, False), (12.0, 2.0, True)]
    assert record.error is None and record.session_id.startswith("w1-")
    assert bs.streams_per_worker([record]) == {"1": 1}
    with pytest.raises(ValueError):
        bs.parse_loadgen_output(line[:40])
    spec = bs.LoadSpec(client="cpp", duration_s=2.5, chunk_ms=250)
    command = bs.loadgen_command(Path("/bin/loadgen"), ["a:1", "b:2"], 8, 1, 2, spec, tmp_path / "c.raw", 12.5)
    assert command[command.index("--address") + 1] == "a:1,b:2"
    assert command[command.index("--start-at") + 1] == "12.5"
    assert command[command.index("--chunk-ms") + 1] == "250"
    with pytest.raises(ValueError, match="audio only"):
        bs.loadgen_command(Path("/bin/loadgen"), ["a:1"], 1, 0, 1, bs.LoadSpec(modality="video"),
                           tmp_path / "c.raw", 0.0)


def test_repeat_summary_counts_the_runs_that_met_the_target() -> None:
    """``--repeat``: a run meets the target with every stream realtime, no error and p99 at
    or under the limit; the summary is the median run (a run behind real time or with
    errors ranks worst) with every run's numbers."""
    def run(p99: float | None, realtime: int = 4, errors: int = 0) -> dict[str, Any]:
        return {"streams": 4, "streams_realtime": realtime, "errors": errors,
                "p99_update_latency_ms": p99, "rss_mb": 100.0, "cpu_percent": 50.0}

    runs = [run(80.0), run(300.0), run(95.0, realtime=3), run(None), run(100.0), run(20.0, errors=1)]
    summary = bs.repeat_summary(runs, 100.0)
    assert summary["repeat"]["met"] == 2  # 80 and 100; not 95 (a stream fell behind) nor 20 (an error)
    assert summary["repeat"]["runs"] == 6
    assert summary["repeat"]["p99_update_latency_ms"] == [80.0, 300.0, 95.0, None, 100.0, 20.0]
    assert summary["p99_update_latency_ms"] == 100.0  # ranks: 80, 95, 100, 300, None, 20 (error)
    assert bs.repeat_summary([run(50.0)], 100.0)["repeat"]["met"] == 1
