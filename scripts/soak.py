#!/usr/bin/env python3
"""Soak test: N realtime streams for M minutes, sessions opening and closing; RSS slope.

Starts ``python -m streamprint serve`` on 127.0.0.1 (or uses ``--target``, then RSS needs
``--pid``), then keeps ``--streams`` streams live for ``--minutes``: each worker streams raw
PCM (16 kHz mono, 100 ms chunks, paced at media time) for a random 5-40 s session, ends it
(half-close, final update; one in ten is cancelled mid-stream instead), and opens the next
one. Every ``--sample-s`` seconds it samples the server's RSS and the
``streamprint_active_streams`` gauge. At the end it prints one JSON object: sessions,
updates, errors, update latency percentiles (update arrival vs. the media time it covers),
RSS start / end / max and the RSS slope (least squares over the second half of the run,
after warm-up) in MB per minute and MB per hour, also with the media kept on purpose
subtracted (the fingerprint cache, the finished-session store and live streams' media for
validation; they grow until ``--cache-max-bytes`` / ``--session-store-max-bytes``, then
plateau): that second slope is the one a leak would show in.

Defaults are the full run: 128 streams for 30 minutes. A short run::

    python scripts/soak.py --streams 16 --minutes 2
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import random
import re
import subprocess
import sys
import threading
import time
import urllib.request
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import psutil

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "clients" / "python"))

from streamprint_client import (  # noqa: E402
    AsyncStreamprintClient,
    AudioFormat,
    Encoding,
    StreamprintRpcError,
)

RATE = 16000
CHUNK_S = 0.1
_LISTEN_RE = re.compile(r"serving on \S+:(\d+)")
_METRICS_RE = re.compile(r"metrics on :(\d+)")


@dataclass
class Totals:
    sessions_done: int = 0
    sessions_cancelled: int = 0
    updates: int = 0
    errors: dict[str, int] = field(default_factory=dict)
    latencies_ms: list[float] = field(default_factory=list)


def pcm_block(seconds: float, seed: int) -> bytes:
    rng = np.random.default_rng(seed)
    t = np.arange(int(seconds * RATE)) / RATE
    f0 = rng.uniform(110, 880)
    x = 0.2 * np.sin(2 * np.pi * f0 * t) + 0.05 * rng.standard_normal(t.size)
    x[:: RATE // 2] += 0.6  # clicks twice a second
    return (np.clip(x, -1, 1) * 32767).astype("<i2").tobytes()


async def worker(
    client: AsyncStreamprintClient,
    index: int,
    stop_at: float,
    totals: Totals,
    audio: bytes,
) -> None:
    rng = random.Random(index)
    chunk_bytes = int(RATE * CHUNK_S) * 2
    fmt = AudioFormat(Encoding.PCM_S16LE, RATE, 1)
    await asyncio.sleep(rng.uniform(0, 5))  # stagger the starts
    while time.monotonic() < stop_at:
        session_s = rng.uniform(5, 40)
        n_chunks = int(session_s / CHUNK_S)
        cancel_after = rng.randint(5, n_chunks) if rng.random() < 0.1 else None
        started = time.monotonic()

        async def chunks(n: int = n_chunks, t0: float = started) -> AsyncIterator[bytes]:
            offset = rng.randrange(0, len(audio) - chunk_bytes * n, chunk_bytes)
            for k in range(n):
                delay = t0 + k * CHUNK_S - time.monotonic()
                if delay > 0:
                    await asyncio.sleep(delay)
                yield audio[offset + k * chunk_bytes : offset + (k + 1) * chunk_bytes]
                if time.monotonic() > stop_at:  # end the session (final update) at stop time
                    return

        stream = client.stream(chunks(), fmt=fmt, update_interval_s=1.0)
        received = 0
        try:
            async for update in stream:
                received += 1
                totals.updates += 1
                # the update covering media time m can exist from started + m at the earliest
                ready_at = started + update.fingerprint.media_seconds
                totals.latencies_ms.append(max(0.0, (time.monotonic() - ready_at) * 1000.0))
                if cancel_after is not None and received * 10 >= cancel_after:
                    stream.cancel()
                    totals.sessions_cancelled += 1
                    break
                if update.final:
                    totals.sessions_done += 1
        except StreamprintRpcError as exc:
            if exc.code_name != "CANCELLED":
                totals.errors[exc.code_name] = totals.errors.get(exc.code_name, 0) + 1
                await asyncio.sleep(1.0)


def rss_mb(pid: int) -> float:
    """RSS of the server and its child processes (``serve --workers N``), summed, in MB."""
    try:
        root = psutil.Process(pid)
        processes = [root, *root.children(recursive=True)]
    except psutil.Error:
        return float("nan")
    total = 0
    for process in processes:
        try:
            total += process.memory_info().rss
        except psutil.Error:
            continue  # a worker that has just exited
    return total / (1024.0 * 1024.0)


def gauge(metrics_port: int, name: str = "streamprint_active_streams") -> float:
    """A gauge's value from the server's /metrics (NaN when unavailable)."""
    if not metrics_port:
        return float("nan")
    try:
        text = urllib.request.urlopen(f"http://127.0.0.1:{metrics_port}/metrics", timeout=5).read()
    except OSError:
        return float("nan")
    for line in text.decode().splitlines():
        if line.startswith(name + " "):
            return float(line.split()[1])
    return float("nan")


def start_server(streams: int, extra: list[str]) -> tuple[subprocess.Popen[str], int, int]:
    proc = subprocess.Popen(
        [sys.executable, "-m", "streamprint", "serve", "--host", "127.0.0.1", "--port", "0",
         "--metrics-port", "0", "--max-streams", str(max(512, streams * 2)), *extra],
        stderr=subprocess.PIPE,
        stdout=subprocess.DEVNULL,
        text=True,
        env={**os.environ, "STREAMPRINT_LOG_LEVEL": "warning"},
    )  # fmt: skip
    assert proc.stderr is not None
    # the "serving on" line is at info level: read it from a short-lived info logger instead
    deadline = time.monotonic() + 60
    port = metrics = 0
    while time.monotonic() < deadline:
        line = proc.stderr.readline()
        if not line:
            break
        match = _LISTEN_RE.search(line)
        if match:
            port = int(match.group(1))
            m = _METRICS_RE.search(line)
            metrics = int(m.group(1)) if m else 0
            break
    if not port:
        proc.kill()
        raise SystemExit("the server did not start")

    def drain() -> None:
        for _ in proc.stderr or ():
            pass

    threading.Thread(target=drain, daemon=True).start()
    return proc, port, metrics


def slope_mb_per_min(samples: list[tuple[float, float]]) -> float:
    """Least-squares slope of RSS over the second half of the run, MB per minute."""
    half = [(t, r) for t, r in samples if t >= samples[-1][0] / 2]
    if len(half) < 3:
        return float("nan")
    t = np.array([s[0] for s in half]) / 60.0
    r = np.array([s[1] for s in half])
    return float(np.polyfit(t, r, 1)[0])


async def run(args: argparse.Namespace) -> dict[str, object]:
    proc = None
    metrics_port = args.metrics_port
    if args.target:
        target, pid = args.target, args.pid
    else:
        extra = ["--backend", args.backend, "--log-level", "info", *args.server_arg]
        proc, port, metrics_port = start_server(args.streams, extra)
        target, pid = f"127.0.0.1:{port}", proc.pid
    audio = pcm_block(60.0, 1)
    totals = Totals()
    samples: list[tuple[float, float]] = []
    # MB of media kept on purpose: cache + finished-session store + live streams' kept media
    store: list[tuple[float, float]] = []
    gauges: list[float] = []
    t0 = time.monotonic()
    stop_at = t0 + args.minutes * 60.0
    try:
        async with AsyncStreamprintClient(target, timeout_s=60) as client:
            await client.wait_ready(30)
            workers = [
                asyncio.ensure_future(worker(client, i, stop_at, totals, audio))
                for i in range(args.streams)
            ]
            while time.monotonic() < stop_at:
                await asyncio.sleep(args.sample_s)
                if pid:
                    samples.append((time.monotonic() - t0, rss_mb(pid)))
                    try:
                        stats = await client.cache_stats(timeout_s=10)
                        kept = sum(c.size_bytes for c in stats.values()) / 2**20
                    except StreamprintRpcError:
                        kept = 0.0
                    live = gauge(metrics_port, "streamprint_live_media_bytes")
                    kept += 0.0 if live != live else live / 2**20  # NaN: no metrics
                    store.append((samples[-1][0], kept))
                gauges.append(gauge(metrics_port))
                if args.verbose:
                    print(
                        f"t={samples[-1][0] if samples else 0:6.0f}s rss={samples[-1][1] if samples else 0:6.1f}MB "
                        f"kept={store[-1][1] if store else 0:6.1f}MB "
                        f"streams={gauges[-1]:.0f} sessions={totals.sessions_done} "
                        f"updates={totals.updates} errors={sum(totals.errors.values())}",
                        file=sys.stderr,
                        flush=True,
                    )
            await asyncio.wait_for(asyncio.gather(*workers), timeout=120)
        await asyncio.sleep(2.0)
        final_gauge = gauge(metrics_port)
        final_rss = rss_mb(pid) if pid else float("nan")
    finally:
        if proc is not None:
            proc.terminate()
            try:
                proc.wait(15)
            except subprocess.TimeoutExpired:
                proc.kill()
    lat = np.array(totals.latencies_ms) if totals.latencies_ms else np.array([float("nan")])
    rss = [r for _, r in samples]
    slope = slope_mb_per_min(samples) if samples else float("nan")
    # RSS without the media the session store and cache keep on purpose (bounded by
    # --session-store-max-bytes / --cache-max-bytes): what is left is what could leak.
    other = [(t, r - k) for (t, r), (_, k) in zip(samples, store, strict=True)]
    other_slope = slope_mb_per_min(other) if other else float("nan")
    return {
        "streams": args.streams,
        "minutes": args.minutes,
        "sessions_completed": totals.sessions_done,
        "sessions_cancelled": totals.sessions_cancelled,
        "updates": totals.updates,
        "errors": totals.errors,
        "update_latency_ms": {
            "p50": round(float(np.percentile(lat, 50)), 1),
            "p99": round(float(np.percentile(lat, 99)), 1),
            "max": round(float(lat.max()), 1),
        },
        "active_streams_max": max(gauges) if gauges else None,
        "active_streams_after": final_gauge,
        "rss_mb": {
            "start": round(rss[0], 1) if rss else None,
            "max": round(max(rss), 1) if rss else None,
            "end": round(rss[-1], 1) if rss else None,
            "after_streams_closed": round(final_rss, 1),
        },
        "kept_media_mb_end": round(store[-1][1], 1) if store else None,
        "rss_slope_mb_per_min": round(slope, 3),
        "rss_slope_mb_per_hour": round(slope * 60.0, 1),
        "rss_minus_store_slope_mb_per_min": round(other_slope, 3),
        "rss_minus_store_slope_mb_per_hour": round(other_slope * 60.0, 1),
        "server_args": args.server_arg,
        "server_exit_code": proc.returncode if proc is not None else None,
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--streams", type=int, default=128, help="concurrent streams (128)")
    parser.add_argument("--minutes", type=float, default=30.0, help="run time (30)")
    parser.add_argument("--sample-s", type=float, default=5.0, help="RSS sampling period")
    parser.add_argument("--backend", default="auto", help="server --backend (auto)")
    parser.add_argument("--target", default="", help="use this server instead of starting one")
    parser.add_argument("--pid", type=int, default=0, help="the --target server's pid (RSS)")
    parser.add_argument("--metrics-port", type=int, default=0, help="the --target's metrics")
    parser.add_argument(
        "--server-arg",
        action="append",
        default=[],
        help="extra `streamprint serve` argument (repeat; e.g. --server-arg=--grace-s=2)",
    )
    parser.add_argument("--verbose", action="store_true", help="print every sample on stderr")
    args = parser.parse_args(argv)
    result = asyncio.run(run(args))
    print(json.dumps(result), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
