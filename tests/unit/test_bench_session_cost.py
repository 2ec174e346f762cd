"""scripts/bench_session_cost.py: its accounting and its docs section (no timings checked)."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "scripts"))
import bench_session_cost as bench


def test_engine_worker_splits_the_total() -> None:
    got = bench.engine_worker(2.0, profile=False)
    assert got["updates"] == 2
    assert got["total_ms"] > 0 and got["analyzer_ms"] > 0 and got["hpss_ms"] > 0
    parts = got["analyzer_ms"] + got["hpss_ms"] + got["rest_ms"]
    assert parts == pytest.approx(got["total_ms"], rel=1e-9)


def test_docs_body_has_both_tables() -> None:
    report = {
        "seconds": 30.0, "repeat": 3, "backend": "auto", "grpc_seconds": 15.0,
        "load_average": [1.0, 2.0],
        "engine": {
            "current": {"total_ms": 20.0, "analyzer_ms": 8.0, "hpss_ms": 9.0, "rest_ms": 3.0},
        },
        "grpc": {
            "current": {
                "runs": [
                    {"streams": 8, "server_ms_per_stream_s": 25.0, "base_rss_mb": 110.0,
                     "rss_mb": 300.0, "p99_update_latency_ms": 50.0, "errors": 0},
                    {"streams": 32, "server_ms_per_stream_s": 24.0, "base_rss_mb": 110.0,
                     "rss_mb": 348.0, "p99_update_latency_ms": 80.0, "errors": 0,
                     "threads_ms_per_stream_s": {"loop": 5.0, "grpc": 1.0, "workers": 18.0}},
                ],
                "rss_mb_per_stream": 2.0,
            },
        },
    }
    text = bench.docs_body(report, "python scripts/bench_session_cost.py", "Machine: test.")
    assert "| current | 20.00 | 8.00 | 9.00 | 3.00 |" in text
    assert "| current | 32 | 24.00 | 5.0 / 1.0 / 18.0 | 110.0 | 348.0 | 80.0 | 0 |" in text
    assert "| current | 8 | 25.00 | 0.0 / 0.0 / 0.0 | 110.0 | 300.0 | 50.0 | 0 |" in text
    assert "current: 2.00 MB RSS per extra stream" in text
    assert "Command: `python scripts/bench_session_cost.py`" in text


def test_a_baseline_tree_gets_its_compiled_loops_built(tmp_path: Path) -> None:
    """--baseline-rev exports server/ of a revision and builds its C loops in place, so the
    exported tree loads its own library (not this checkout's)."""
    import subprocess

    server = bench._export_tree("HEAD", tmp_path)
    built = list((server / "streamprint" / "engine").glob("_ckernels*.so"))
    assert len(built) == 1
    probe = ("import streamprint.engine.compiled as c, sys; c.warm_up(); "
             "print(c.library()._name)")
    out = subprocess.run([sys.executable, "-c", probe], env=bench._env_for(server), capture_output=True,
                         text=True, check=True)
    assert out.stdout.strip() == str(built[0])
