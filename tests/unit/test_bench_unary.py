"""scripts/bench_unary.py's own logic: percentiles, targets, the docs table, and a tiny real
run through the CLI (a short track against a started server). No timing is asserted."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import numpy as np
import pytest

REPO = Path(__file__).resolve().parents[2]
SCRIPTS = REPO / "scripts"
sys.path.insert(0, str(SCRIPTS))

import bench_unary as bu  # noqa: E402

CONTRACT_KEYS = {
    "unary_cold_s",
    "unary_cold_runs_s",
    "cache_hit_p50_ms",
    "cache_hit_p95_ms",
    "cache_hit_p99_ms",
    "cache_hit_path_p50_ms",
    "cache_hit_small_p50_ms",
    "validate_first_ms",
    "validate_ms",
    "validate_warm_ms",
    "validate_prefetch_ms",
    "validate_prefetch_ready_s",
    "batch_s",
    "targets_met",
}


def test_latency_summary_percentiles_in_ms_and_call_count() -> None:
    seconds = [0.001 * k for k in range(1, 101)]  # 1 .. 100 ms
    got = bu.latency_summary(seconds, "hit")
    assert got["hit_calls"] == 100
    for q in (50, 95, 99):
        assert got[f"hit_p{q}_ms"] == pytest.approx(np.percentile(seconds, q) * 1000.0, abs=1e-3)
    assert got["hit_max_ms"] == pytest.approx(100.0)
    empty = bu.latency_summary([], "none")
    assert empty["none_p50_ms"] is None and empty["none_calls"] == 0


def test_targets_met_compares_with_the_issue_limits() -> None:
    result: dict[str, Any] = {"unary_cold_s": 0.5, "cache_hit_p50_ms": 2.5}
    met = bu.targets_met(result)
    assert met == {"unary_cold_s": True, "cache_hit_p50_ms": False, "validate_ms": None}
    with_path = bu.targets_met({**result, "cache_hit_path_p50_ms": 1.5})
    assert with_path["cache_hit_path_p50_ms"] is True and "validate_prefetch_ms" not in with_path
    text = bu.targets_text({**result, "targets_met": met})
    assert "**met**" in text and "**not met**" in text and "not measured" in text


def test_docs_body_names_the_command_and_every_measured_row() -> None:
    result: dict[str, Any] = {
        "media_seconds": 180.0, "media_bytes": 31_752_044, "unary_cold_s": 2.5,
        "unary_cold_runs_s": [2.4, 2.5], "unary_cold_server_cpu_s": 2.4,
        "unary_cold_peak_rss_growth_mb": 95.5,
        **bu.latency_summary([0.1, 0.11], "cache_hit"),
        **bu.latency_summary([0.0015], "cache_hit_path"),
        "validate_first_ms": 2300.0, "validate_ms": 2200.0, "validate_runs_ms": [2200.0],
        "validate_warm_ms": 2.0, "validate_prefetch_ms": 3.0, "validate_prefetch_ready_s": 2.5,
        "batch_s": 0.4, "batch_items": 2, "batch_item_seconds": 10.0,
        "server": "streamprint", "server_args": [], "repeat": 2, "track": "t.wav",
    }
    result["targets_met"] = bu.targets_met(result)
    body = bu.docs_body(result, command="python scripts/bench_unary.py --json")
    assert body.startswith("Command: `python scripts/bench_unary.py --json`")
    assert "Machine:" in body and "`server_path`" in body and "--validation-prefetch" in body
    assert "BatchFingerprint" in body and "excerpt as bytes" not in body  # not measured: no row
    table_rows = [line for line in body.splitlines() if line.startswith("| ")]
    assert len(table_rows) == 1 + 8  # header + rows measured above
    assert "- s" not in body  # unmeasured server CPU: a bare dash
    assert body.count("server peak RSS +") == 1  # the unary row's; the validation's unmeasured
    assert "server peak RSS +95.5 MB" in body
    assert "the median growth of the timed calls" in body  # no settle_s in this result
    settled = bu.docs_body({**result, "settle_s": 11.0}, command="x")
    assert "made 11 s after the cache was cleared" in settled


@pytest.mark.slow
def test_tiny_real_run_reports_the_keys(tmp_path: Path) -> None:
    import soundfile as sf

    rate = 22_050
    t = np.arange(int(4.0 * rate)) / rate
    tone = 0.3 * np.sin(2 * np.pi * 440.0 * t) * (1.0 + np.sign(np.sin(2 * np.pi * 2.0 * t))) / 2
    track = tmp_path / "short.wav"
    sf.write(track, np.stack([tone, tone], axis=1), rate, subtype="PCM_16")
    done = subprocess.run(
        [sys.executable, str(SCRIPTS / "bench_unary.py"), "--track", str(track), "--repeat", "2", "--settle-s", "0.2",
         "--hits", "3", "--small-seconds", "1", "--batch-items", "2", "--batch-seconds", "1",
         "--server-arg=--backend=numpy", "--server-arg=--heads=dsp",
         "--json"],
        capture_output=True, text=True, timeout=600, check=False,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    result = json.loads(done.stdout.strip().splitlines()[-1])
    assert set(result) >= CONTRACT_KEYS
    assert result["media_seconds"] == pytest.approx(4.0)
    assert len(result["unary_cold_runs_s"]) == 2 and result["cache_hit_calls"] == 3
    assert result["cache_hit_path_calls"] == 3 and result["cache_hit_small_calls"] == 3
    assert result["validate_dimensions"] == result["streamed_final_dimensions"] == 13
    # the server's peak RSS growth: measured where /proc/PID/clear_refs works (Linux)
    for key in ("unary_cold_peak_rss_growth_mb", "validate_peak_rss_growth_mb"):
        assert result[key] is None or 0.0 <= result[key] < 2_000.0, key
    if os.access("/proc/self/clear_refs", os.W_OK):
        assert result["unary_cold_peak_rss_growth_mb"] is not None
    assert result["batch_items"] == 2 and result["server_args"] == [
        "--backend=numpy", "--heads=dsp"
    ]
    assert set(result["targets_met"]) == {
        "unary_cold_s", "cache_hit_p50_ms", "validate_ms", "cache_hit_path_p50_ms",
        "cache_hit_small_p50_ms", "validate_prefetch_ms",
    }
