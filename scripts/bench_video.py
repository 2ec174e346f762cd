#!/usr/bin/env python3
"""Video engine speed: 720p30 H.264, decode included, realtime factor per core.

Makes a synthetic 720p30 H.264 clip (x264 ``veryfast``, CRF 23, B-frames on: moving
texture, a cut, some noise so the bitrate is realistic), then measures on one core:

* decode only (PyAV, one decoder thread), every frame;
* the whole engine, batch (``fingerprint_video``: decode + 10 fps sampling + scaling to
  256 px + descriptors);
* the whole engine, streaming (``VideoContainerSession`` fed MPEG-TS in 100 ms chunks);
* how many realtime 720p30 streams the machine holds: ``--procs`` processes (default: CPU
  count) stream the clip back to back; aggregate media seconds per wall second.

Realtime factor = media seconds / CPU seconds of the process (decode is single-threaded).

Usage::

    python scripts/bench_video.py                 # print
    python scripts/bench_video.py --write-docs    # and replace the docs/benchmarks.md section
"""

from __future__ import annotations

import argparse
import io
import multiprocessing as mp
import os
import platform
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import TypeVar

import av
import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "server"))

from streamprint.engine.video import (  # noqa: E402
    VideoContainerSession,
    VideoSessionConfig,
    fingerprint_video,
)

T = TypeVar("T")
W, H, FPS = 1280, 720, 30


def make_clip(seconds: float, container: str, seed: int = 0) -> bytes:
    """A 720p30 H.264 clip: a textured pan, a cut at half time, light noise."""
    rng = np.random.default_rng(seed)
    texture = rng.integers(0, 255, (H // 8, (W + 2 * FPS * 10) // 8, 3), dtype=np.uint8)
    texture = np.repeat(np.repeat(texture, 8, axis=0), 8, axis=1)
    gx = np.linspace(0, 255, W, dtype=np.float32)[None, :, None]
    buf = io.BytesIO()
    with av.open(buf, "w", format=container) as out:
        stream = out.add_stream("libx264", rate=FPS)
        assert isinstance(stream, av.VideoStream)
        stream.width, stream.height, stream.pix_fmt = W, H, "yuv420p"
        stream.codec_context.options = {"preset": "veryfast", "crf": "23"}
        n = round(seconds * FPS)
        for i in range(n):
            x = (i * 4) % (2 * FPS * 10)
            img = texture[:, x : x + W].astype(np.float32)
            if i >= n // 2:
                img = 0.5 * img + 0.5 * gx
            img += rng.normal(0, 4, (H, W, 1)).astype(np.float32)
            frame = av.VideoFrame.from_ndarray(np.clip(img, 0, 255).astype(np.uint8), format="rgb24")
            frame.pts = i
            for packet in stream.encode(frame):
                out.mux(packet)
        for packet in stream.encode(None):
            out.mux(packet)
    return buf.getvalue()


def decode_only(data: bytes) -> int:
    frames = 0
    with av.open(io.BytesIO(data), mode="r") as container:
        stream = container.streams.video[0]
        stream.codec_context.thread_count = 1
        stream.thread_type = "SLICE"
        for _ in container.decode(stream):
            frames += 1
    return frames


def stream_once(data: bytes, chunk: int) -> float:
    session = VideoContainerSession(VideoSessionConfig())
    try:
        for i in range(0, len(data), chunk):
            session.push(data[i : i + chunk])
        _, final = session.finish()
    finally:
        session.close()
    return final.media_seconds


def timed(fn: Callable[..., T], *args: object) -> tuple[T, float, float]:
    """``fn(*args)``, its CPU seconds and its wall seconds."""
    c0, w0 = time.process_time(), time.perf_counter()
    result = fn(*args)
    return result, time.process_time() - c0, time.perf_counter() - w0


def _worker(args: tuple[bytes, int, float]) -> float:
    data, chunk, until = args
    media = 0.0
    while time.perf_counter() < until:
        media += stream_once(data, chunk)
    return media


def _free_port() -> int:
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def grpc_streams(path: Path, counts: list[int]) -> list[tuple[int, float, float, float]]:
    """Concurrent realtime video streams through a real server (``python -m streamprint serve``).

    For each count ``n``: ``n`` client threads stream the MPEG-TS file paced by its timestamps
    (``stream_file(realtime=True)``, 100 ms chunks). An update's lag is its arrival time minus
    the moment its media time was reached on the wall clock. Returns ``(n, p50 lag, p99 lag,
    worst final lag)`` in seconds per count.
    """
    import importlib
    import subprocess
    import threading

    sys.path.insert(0, str(ROOT / "clients" / "python"))
    client_cls = importlib.import_module("streamprint_client").StreamprintClient

    port = _free_port()
    server = subprocess.Popen(
        [sys.executable, "-m", "streamprint", "serve", "--port", str(port), "--log-level", "warning"],
        cwd=ROOT, env={**os.environ, "PYTHONPATH": str(ROOT / "server")},
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )
    results: list[tuple[int, float, float, float]] = []
    try:
        with client_cls(f"127.0.0.1:{port}", timeout_s=120) as probe_client:
            probe_client.wait_ready(30.0)
        for n in counts:
            lags: list[float] = []
            finals: list[float] = []
            lock = threading.Lock()

            def one(lags: list[float], finals: list[float], lock: threading.Lock) -> None:
                with client_cls(f"127.0.0.1:{port}", timeout_s=120) as client:
                    start = time.perf_counter()
                    for update in client.stream_file(path, chunk_ms=100, realtime=True, modality="video"):
                        lag = time.perf_counter() - start - update.fingerprint.media_seconds
                        with lock:
                            (finals if update.final else lags).append(lag)

            threads = [threading.Thread(target=one, args=(lags, finals, lock)) for _ in range(n)]
            for t in threads:
                t.start()
            for t in threads:
                t.join()
            arr = np.asarray(lags) if lags else np.zeros(1)
            results.append((n, float(np.percentile(arr, 50)), float(np.percentile(arr, 99)), max(finals or [0.0])))
            print(f"grpc: {n:3d} realtime streams: update lag p50 {results[-1][1]:.2f} s, p99 "
                  f"{results[-1][2]:.2f} s, final {results[-1][3]:.2f} s", flush=True)
    finally:
        server.terminate()
        server.wait(timeout=15)
    return results


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seconds", type=float, default=10.0, help="clip length (default 10)")
    parser.add_argument("--repeat", type=int, default=3, help="best of N (default 3)")
    parser.add_argument("--procs", type=int, default=os.cpu_count() or 1)
    parser.add_argument("--concurrency-seconds", type=float, default=15.0)
    parser.add_argument(
        "--grpc-streams", default="",
        help="comma-separated stream counts for the end-to-end gRPC check (e.g. 2,4,8; default: skip)",
    )
    parser.add_argument("--write-docs", action="store_true")
    args = parser.parse_args()

    load_before = os.getloadavg()[0]
    ts = make_clip(args.seconds, "mpegts")
    mp4 = make_clip(args.seconds, "mp4")
    media = args.seconds
    kbps = len(ts) * 8 / media / 1000
    chunk = max(1, round(len(ts) / media * 0.1))  # 100 ms of media

    rows: list[tuple[str, float, float]] = []

    def best(label: str, fn: Callable[..., object], *fargs: object) -> None:
        runs = [timed(fn, *fargs) for _ in range(args.repeat)]
        cpu = min(r[1] for r in runs)
        wall = min(r[2] for r in runs)
        rows.append((label, media / cpu, media / wall))
        print(f"{label:<48} {media / cpu:8.1f}x per core  {media / wall:8.1f}x wall", flush=True)

    best("decode only (H.264 720p30, MPEG-TS)", decode_only, ts)
    best("engine batch, MP4 (decode + 10 fps analysis)", fingerprint_video, mp4)
    best("engine streaming, MPEG-TS in 100 ms chunks", stream_once, ts, chunk)

    until = time.perf_counter() + args.concurrency_seconds
    start = time.perf_counter()
    with mp.get_context("spawn").Pool(args.procs) as pool:
        totals = pool.map(_worker, [(ts, chunk, until)] * args.procs)
    elapsed = time.perf_counter() - start
    streams = sum(totals) / elapsed
    print(f"concurrent realtime 720p30 streams ({args.procs} processes): {streams:.1f}", flush=True)

    grpc_rows: list[tuple[int, float, float, float]] = []
    if args.grpc_streams:
        import tempfile

        with tempfile.TemporaryDirectory() as tmp:
            clip = Path(tmp) / "clip.ts"
            clip.write_bytes(ts)
            counts = [int(c) for c in args.grpc_streams.split(",") if c.strip()]
            grpc_rows = grpc_streams(clip, counts)
    load_after = os.getloadavg()[0]
    print(f"1-minute load average: {load_before:.1f} before, {load_after:.1f} after", flush=True)
    if args.write_docs:
        lines = [
            "Command: `python scripts/bench_video.py --write-docs`",
            "",
            f"Machine: {os.cpu_count()} cores ({platform.processor() or platform.machine()}), "
            f"Python {platform.python_version()}, PyAV {av.__version__} (FFmpeg "
            f"{'.'.join(map(str, av.library_versions['libavcodec']))} libavcodec), numpy {np.__version__}.",
            "",
            f"Clip: {args.seconds:g} s synthetic 1280x720 30 fps H.264 (x264 veryfast, CRF 23, "
            f"B-frames), {kbps:.0f} kbit/s; textured pan, one cut, light noise. Realtime factor = "
            "media seconds / CPU seconds of the process (one decoder thread); best of "
            f"{args.repeat}. Target: >= 10x per core, decode included. 1-minute load average "
            f"{load_before:.1f} before and {load_after:.1f} after the run (on a shared machine the "
            "wall column and the stream count drop with the load; the per-core column much less).",
            "",
            "| what | realtime factor per core | wall |",
            "|---|---:|---:|",
            *[f"| {label} | {cpu:.1f}x | {wall:.1f}x |" for label, cpu, wall in rows],
            "",
            f"Concurrent realtime 720p30 streams the machine holds (engine only, no gRPC; "
            f"{args.procs} processes streaming back to back for {args.concurrency_seconds:g} s): "
            f"**{streams:.1f}**.",
            *(
                [
                    "",
                    "End to end over gRPC (`--grpc-streams`): a real server (`python -m streamprint "
                    "serve`, default workers) and N client threads streaming the MPEG-TS clip paced by "
                    "its timestamps in 100 ms chunks, one update per second. Lag = update arrival minus "
                    "the wall-clock moment its media time was sent (chunking, demuxer probe and decoder delay "
                    "included).",
                    "",
                    "| streams | update lag p50 | p99 | final |",
                    "|---:|---:|---:|---:|",
                    *[f"| {n} | {p50:.2f} s | {p99:.2f} s | {fin:.2f} s |" for n, p50, p99, fin in grpc_rows],
                ]
                if grpc_rows
                else []
            ),
        ]
        from bench_engine import DOCS, write_doc_section

        write_doc_section("video-speed", "\n".join(lines), heading="Video engine speed")
        print(f"wrote {DOCS}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
