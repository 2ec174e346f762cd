"""Dynamic batching side by side: live sessions with and without the batcher, one run.

Emulates the server's stream path without gRPC: an asyncio loop drives N audio sessions
(13D, one update per second of media, 44.1 kHz stereo float32 in 100 ms chunks), each
chunk's ``AudioSession.push`` runs on a thread pool the way ``DataPlane.run_stream_work``
runs it (``--engine-threads`` threads unbatched; with batching the pool the server would size,
``ServerConfig.stream_threads``, and every work item inside ``BatchingAnalyzer.working``).
Batched and unbatched runs alternate for every backend and concurrency level (``--repeat``
rounds; best throughput and median latency kept), so both see the same machine load.

Two measurements per backend x streams x mode:

* **saturated**: every session pushes its chunks back to back (the next as soon as the
  last returned): analysis frames per wall second and per CPU second of the process
  (CPU time is what the work cost; wall time also counts the neighbours on a shared
  machine), mean frames and requests per inner analyzer call;
* **paced**: every session sends a chunk every 100 ms (real time): per-chunk latency
  (submit to return of ``push``) p50 / p99 in ms, i.e. what batching adds or saves at
  a load the machine sustains.

Usage::

    python scripts/bench_batching.py [--backends numpy,onnxruntime/fp32,onnxruntime/int8]
        [--streams 1,8,32,128] [--paced 8,32,64] [--seconds 4] [--paced-seconds 5]
        [--max-frames 256] [--max-wait-ms 2] [--engine-threads 2] [--repeat 2] [--json] [--write-docs]

``--json``: the last line is one JSON object (``rows``: one per measurement).
``--write-docs`` rewrites the "Dynamic batching" section of docs/benchmarks.md between
its ``dynamic-batching`` marker comments.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import statistics
import sys
import threading
import time
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import numpy as np
from numpy.typing import NDArray

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "scripts"))

import bench_engine  # noqa: E402

from streamprint.config import ServerConfig  # noqa: E402
from streamprint.engine.analysis import FrameAnalyzer, FrameDescriptors  # noqa: E402
from streamprint.engine.session import AudioSession, SessionConfig  # noqa: E402
from streamprint.runtime import LoadOptions, get_backend  # noqa: E402
from streamprint.runtime.batching import BatchingAnalyzer  # noqa: E402
from streamprint.runtime.registry import ensure_registered  # noqa: E402

SECTION = "dynamic-batching"
RATE = 44_100
CHUNK_S = 0.1
#: Frames each inference-only run analyses in all (callers x rounds of the trace).
INFERENCE_FRAMES = 24_000


def music(seconds: float, seed: int) -> NDArray[np.float32]:
    """Music-like stereo (a chord that changes every 2 s, clicks on the beat, noise)."""
    rng = np.random.default_rng(seed)
    n = int(seconds * RATE)
    t = np.arange(n) / RATE
    root = rng.choice([110.0, 130.8, 146.8, 164.8, 196.0], size=int(seconds // 2) + 1)[
        (t // 2).astype(int)
    ]
    tone = sum(0.12 * np.sin(2 * np.pi * root * r * t) for r in (1.0, 1.26, 1.5, 2.0))
    beat = np.zeros(n)
    period = 60.0 / rng.uniform(80, 160)
    for start in np.arange(rng.uniform(0, period), seconds, period):
        i = int(start * RATE)
        m = min(n - i, int(0.04 * RATE))
        beat[i : i + m] += 0.5 * np.exp(-np.arange(m) / (0.008 * RATE)) * rng.standard_normal(m)
    mono = tone + beat + 0.01 * rng.standard_normal(n)
    stereo = np.stack([mono, 0.9 * mono + 0.02 * rng.standard_normal(n)], axis=1)
    out: NDArray[np.float32] = np.clip(stereo, -1, 1).astype(np.float32)
    return out


class Counting:
    """The inner analyzer with a count of calls and frames (thread-safe)."""

    def __init__(self, inner: FrameAnalyzer) -> None:
        self.inner = inner
        self.name = inner.name
        self.calls = 0
        self.frames = 0
        self.cpu_s = 0.0
        self._lock = threading.Lock()

    def analyze(self, frames: NDArray[np.float32]) -> FrameDescriptors:
        start = time.thread_time()
        result = self.inner.analyze(frames)
        spent = time.thread_time() - start
        with self._lock:
            self.calls += 1
            self.frames += int(frames.shape[0])
            self.cpu_s += spent
        return result


def load(key: str) -> FrameAnalyzer:
    ensure_registered()
    runtime, _, precision = key.partition("/")
    analyzer: FrameAnalyzer = get_backend(runtime).load(precision or "fp32", LoadOptions(threads=1))
    return analyzer


async def drive(
    inner: FrameAnalyzer, media: Sequence[NDArray[np.float32]], *, batched: bool, paced: bool,
    settings: ServerConfig, threads_override: int = 0,
) -> dict[str, Any]:
    """Run every session's chunks (see module docstring); the measurement."""
    counting = Counting(inner)
    batcher = (
        BatchingAnalyzer(counting, max_batch_frames=settings.batch_max_frames,
                         max_wait_s=settings.batch_max_wait_ms / 1e3)
        if batched else None
    )
    threads = (threads_override or settings.stream_threads) if batched else settings.effective_engine_threads
    pool = ThreadPoolExecutor(threads)
    loop = asyncio.get_running_loop()
    latencies: list[float] = []
    step = int(CHUNK_S * RATE)

    def work(session: AudioSession, chunk: NDArray[np.float32] | None) -> None:
        if batcher is None:
            session.push(chunk) if chunk is not None else session.finish()
            return
        with batcher.working():
            session.push(chunk) if chunk is not None else session.finish()

    async def one(samples: NDArray[np.float32], start: float) -> None:
        analyzer: FrameAnalyzer = batcher.bind() if batcher is not None else counting
        session = AudioSession(SessionConfig(RATE, 2, update_interval_s=1.0), analyzer=analyzer)
        for k, pos in enumerate(range(0, samples.shape[0], step)):
            if paced:
                await asyncio.sleep(max(0.0, start + k * CHUNK_S - time.perf_counter()))
            sent = time.perf_counter()
            await loop.run_in_executor(pool, work, session, samples[pos : pos + step])
            latencies.append(time.perf_counter() - sent)
        await loop.run_in_executor(pool, work, session, None)

    cpu0, wall0 = time.process_time(), time.perf_counter()
    # stream starts spread over the first chunk interval, as real clients would be
    await asyncio.gather(*(one(m, wall0 + CHUNK_S * i / len(media)) for i, m in enumerate(media)))
    wall, cpu = time.perf_counter() - wall0, time.process_time() - cpu0
    pool.shutdown()
    if batcher is not None:
        batcher.close()
    lat = np.asarray(latencies) * 1e3
    return {
        "frames": counting.frames,
        "frames_per_s": counting.frames / wall,
        "frames_per_cpu_s": counting.frames / cpu,
        "calls": counting.calls,
        "frames_per_call": counting.frames / max(1, counting.calls),
        "analyze_cpu_share": counting.cpu_s / cpu,
        "analyze_frames_per_cpu_s": counting.frames / max(counting.cpu_s, 1e-9),
        "requests_per_call": (batcher.requests / max(1, batcher.batches)) if batcher else 1.0,
        "p50_ms": float(np.percentile(lat, 50)),
        "p99_ms": float(np.percentile(lat, 99)),
        "threads": threads,
    }


def request_trace(seconds: float = 10.0) -> list[int]:
    """The frame counts of one session's ``analyze`` calls (13D, 1 s updates, 100 ms chunks)."""
    from streamprint.engine.analysis import NumpyFrameAnalyzer

    counting = _Trace(NumpyFrameAnalyzer())
    session = AudioSession(SessionConfig(RATE, 2, update_interval_s=1.0), analyzer=counting)
    samples = music(seconds, seed=7)
    step = int(CHUNK_S * RATE)
    for pos in range(0, samples.shape[0], step):
        session.push(samples[pos : pos + step])
    return counting.sizes


class _Trace(Counting):
    def __init__(self, inner: FrameAnalyzer) -> None:
        super().__init__(inner)
        self.sizes: list[int] = []

    def analyze(self, frames: NDArray[np.float32]) -> FrameDescriptors:
        self.sizes.append(int(frames.shape[0]))
        return super().analyze(frames)


def measure_inference(
    key: str, inner: FrameAnalyzer, callers: int, trace: list[int], *, settings: ServerConfig,
    repeat: int,
) -> list[dict[str, Any]]:
    """``callers`` threads replay ``trace`` (one session's analyze calls; repeated so that
    every level analyses about ``INFERENCE_FRAMES`` frames) back to back, each
    call inside a ``working`` scope, through the batcher and directly; frames per second of
    wall time and of process CPU time, frames per backend call. Alternating, best of
    ``repeat``."""
    rng = np.random.default_rng(5)
    pool_frames = music(4.0, seed=3)[:, 0]
    windows = np.lib.stride_tricks.sliding_window_view(pool_frames, 2048)[::512]
    rounds = max(1, -(-INFERENCE_FRAMES // (callers * sum(trace))))  # same work at every level
    frames = [np.ascontiguousarray(windows[int(rng.integers(0, windows.shape[0] - 64)):][:n])
              for n in trace] * rounds

    def run(batched: bool) -> dict[str, Any]:
        counting = Counting(inner)
        batcher = (BatchingAnalyzer(counting, max_batch_frames=settings.batch_max_frames,
                                    max_wait_s=settings.batch_max_wait_ms / 1e3)
                   if batched else None)
        barrier = threading.Barrier(callers + 1)

        def caller() -> None:
            analyzer: FrameAnalyzer = batcher.bind() if batcher is not None else counting
            barrier.wait()
            for f in frames:
                if batcher is None:
                    analyzer.analyze(f)
                else:
                    with batcher.working():
                        analyzer.analyze(f)

        threads = [threading.Thread(target=caller) for _ in range(callers)]
        for t in threads:
            t.start()
        barrier.wait()
        cpu0, wall0 = time.process_time(), time.perf_counter()
        for t in threads:
            t.join()
        wall, cpu = time.perf_counter() - wall0, time.process_time() - cpu0
        return {"frames_per_s": counting.frames / wall, "frames_per_cpu_s": counting.frames / cpu,
                "frames_per_call": counting.frames / counting.calls}

    runs: dict[bool, list[dict[str, Any]]] = {True: [], False: []}
    for r in range(repeat):
        for batched in ((True, False) if r % 2 == 0 else (False, True)):
            runs[batched].append(run(batched))
    return [
        {"backend": key, "streams": callers, "mode": "inference", "batching": batched,
         "frames_per_s": round(max(x["frames_per_s"] for x in results)),
         "frames_per_cpu_s": round(max(x["frames_per_cpu_s"] for x in results)),
         "frames_per_call": round(statistics.median(x["frames_per_call"] for x in results), 1)}
        for batched, results in runs.items()
    ]


def measure(
    key: str, inner: FrameAnalyzer, streams: int, seconds: float, *, paced: bool,
    settings: ServerConfig, repeat: int, media_cache: dict[tuple[int, float], NDArray[np.float32]],
    threads_override: int = 0,
) -> list[dict[str, Any]]:
    """Batched and unbatched runs, alternating, ``repeat`` times; one row per mode."""
    media = []
    for i in range(streams):
        clip = media_cache.setdefault((i % 16, seconds), music(seconds, seed=i % 16))
        media.append(np.roll(clip, 997 * i, axis=0))  # every stream different
    runs: dict[bool, list[dict[str, Any]]] = {True: [], False: []}
    for r in range(repeat):
        for batched in ((True, False) if r % 2 == 0 else (False, True)):
            runs[batched].append(asyncio.run(
                drive(inner, media, batched=batched, paced=paced, settings=settings,
                      threads_override=threads_override)
            ))
    rows = []
    for batched, results in runs.items():
        best = max(results, key=lambda x: x["frames_per_cpu_s"])
        rows.append({
            "backend": key, "streams": streams, "mode": "paced" if paced else "saturated",
            "batching": batched,
            "frames_per_s": round(max(x["frames_per_s"] for x in results)),
            "frames_per_cpu_s": round(best["frames_per_cpu_s"]),
            "frames_per_call": round(best["frames_per_call"], 1),
            "analyze_cpu_share": round(best["analyze_cpu_share"], 3),
            "analyze_frames_per_cpu_s": round(max(x["analyze_frames_per_cpu_s"] for x in results)),
            "requests_per_call": round(best["requests_per_call"], 2),
            "p50_ms": round(statistics.median(x["p50_ms"] for x in results), 2),
            "p99_ms": round(statistics.median(x["p99_ms"] for x in results), 2),
            "threads": best["threads"],
        })
    return rows


def _ratio(rows: list[dict[str, Any]], backend: str, streams: int, mode: str, field: str) -> str:
    on = next(r for r in rows if (r["backend"], r["streams"], r["mode"], r["batching"]) == (backend, streams, mode, True))
    off = next(r for r in rows if (r["backend"], r["streams"], r["mode"], r["batching"]) == (backend, streams, mode, False))
    return f"x{on[field] / off[field]:.2f}" if off[field] else "n/a"


def render(
    rows: list[dict[str, Any]], command: str, settings: ServerConfig, load: tuple[float, float]
) -> str:
    info = bench_engine.machine_info()
    lines = [
        f"Command: `{command}`",
        "",
        bench_engine.machine_line(info) + f" 1-minute load average at the start / end of the "
        f"run: {load[0]:.1f} / {load[1]:.1f} (other jobs on the machine count too).",
        "",
        "Engine sessions without gRPC (scripts/bench_batching.py says how): 13D, one update per "
        "second, 44.1 kHz stereo in 100 ms chunks; chunks run on a thread pool as in the server "
        f"({settings.effective_engine_threads} threads unbatched; {settings.stream_threads} with batching "
        f"at --batch-max-frames {settings.batch_max_frames} --batch-max-wait-ms "
        f"{settings.batch_max_wait_ms:g}). Batched and unbatched runs alternate in one process.",
        "",
        "Inference only: N threads (one per session, as many as sessions) replay one session's "
        "`analyze` calls (their frame counts recorded from a real session: a full 43-frame "
        "step, and the partial steps the 1 s snapshots cut; about "
        f"{INFERENCE_FRAMES:,} frames per run at every level) back to back, directly or through "
        "the batcher (each call in a `working` scope): frames per second of wall and of "
        "process CPU time, and frames per backend call.",
        "",
        "| backend | callers | batching | frames/s (wall) | frames/CPU-s | ratio on/off | frames per call |",
        "|---|---:|---|---:|---:|---:|---:|",
    ]
    for r in rows:
        if r["mode"] != "inference":
            continue
        ratio = _ratio(rows, r["backend"], r["streams"], "inference", "frames_per_cpu_s") if r["batching"] else ""
        lines.append(
            f"| {r['backend']} | {r['streams']} | {'on' if r['batching'] else 'off'} | "
            f"{r['frames_per_s']:,} | {r['frames_per_cpu_s']:,} | {ratio} | {r['frames_per_call']} |"
        )
    lines += [
        "",
        "Saturated (every session pushes back to back): analysis frames per second of wall "
        "time and of process CPU time (the whole session: resampling, HPSS, onsets, snapshots "
        "...); the same for the backend's `analyze` calls alone (CPU time of the calling "
        "thread), and their share of the process CPU; frames and requests per call.",
        "",
        "| backend | streams | batching | frames/s (wall) | frames/CPU-s | ratio on/off | analyze frames/CPU-s | ratio on/off | analyze share of CPU | frames per call | requests per call |",
        "|---|---:|---|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for r in rows:
        if r["mode"] != "saturated":
            continue
        ratio = _ratio(rows, r["backend"], r["streams"], "saturated", "frames_per_cpu_s") if r["batching"] else ""
        aratio = (_ratio(rows, r["backend"], r["streams"], "saturated", "analyze_frames_per_cpu_s")
                  if r["batching"] else "")
        lines.append(
            f"| {r['backend']} | {r['streams']} | {'on' if r['batching'] else 'off'} | "
            f"{r['frames_per_s']:,} | {r['frames_per_cpu_s']:,} | {ratio} | "
            f"{r['analyze_frames_per_cpu_s']:,} | {aratio} | {r['analyze_cpu_share']:.0%} | "
            f"{r['frames_per_call']} | {r['requests_per_call']} |"
        )
    lines += [
        "",
        "Paced (every session sends a 100 ms chunk every 100 ms of wall time): latency of one "
        "chunk's `push` (submit to return; an update's latency is that of the chunk that "
        "completes it), median over the rounds.",
        "",
        "| backend | streams | batching | chunk p50 ms | chunk p99 ms | frames per call | requests per call |",
        "|---|---:|---|---:|---:|---:|---:|",
    ]
    for r in rows:
        if r["mode"] != "paced":
            continue
        lines.append(
            f"| {r['backend']} | {r['streams']} | {'on' if r['batching'] else 'off'} | "
            f"{r['p50_ms']} | {r['p99_ms']} | {r['frames_per_call']} | {r['requests_per_call']} |"
        )
    return "\n".join(lines)


def _ints(text: str) -> list[int]:
    return [int(x) for x in text.split(",") if x]


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n\n")[0])
    parser.add_argument("--backends", default="numpy,onnxruntime/fp32,onnxruntime/int8")
    parser.add_argument("--streams", type=_ints, default=[1, 8, 32, 128], help="saturated levels")
    parser.add_argument("--inference", type=_ints, default=[1, 4, 16, 64],
                        help="inference-only levels (threads)")
    parser.add_argument("--paced", type=_ints, default=[8, 32, 64], help="paced levels")
    parser.add_argument("--seconds", type=float, default=4.0, help="media per saturated stream")
    parser.add_argument("--paced-seconds", type=float, default=5.0, help="media per paced stream")
    parser.add_argument("--max-frames", type=int, default=256)
    parser.add_argument("--max-wait-ms", type=float, default=2.0)
    parser.add_argument("--engine-threads", type=int, default=2)
    parser.add_argument("--repeat", type=int, default=2)
    parser.add_argument("--threads", type=int, default=0,
                        help="threads of the batched runs' pool (default: what the server uses)")
    parser.add_argument("--json", action="store_true")
    parser.add_argument("--write-docs", action="store_true")
    args = parser.parse_args(argv)
    settings = ServerConfig(
        engine_threads=args.engine_threads, batching=True, batch_max_frames=args.max_frames,
        batch_max_wait_ms=args.max_wait_ms,
    )
    rows: list[dict[str, Any]] = []
    media_cache: dict[tuple[int, float], NDArray[np.float32]] = {}
    say: Callable[[str], None] = lambda s: print(s, file=sys.stderr, flush=True)  # noqa: E731
    load_start = os.getloadavg()[0]
    trace = request_trace()
    for key in args.backends.split(","):
        inner = load(key)
        for callers in args.inference:
            new = measure_inference(key, inner, callers, trace, settings=settings, repeat=args.repeat)
            rows += new
            say(f"{key} inference {callers}: " + "; ".join(
                f"{'on' if r['batching'] else 'off'} {r['frames_per_cpu_s']} f/CPU-s "
                f"{r['frames_per_s']} f/s {r['frames_per_call']} f/call" for r in new))
        for batched in (True, False):  # warm-up: lazy imports, FFT plans, JIT, runtime caches
            asyncio.run(drive(inner, [music(3.0, seed=99)] * 2, batched=batched, paced=False,
                              settings=settings))
        for streams in args.streams:
            new = measure(key, inner, streams, args.seconds, paced=False, settings=settings,
                          repeat=args.repeat, media_cache=media_cache, threads_override=args.threads)
            rows += new
            say(f"{key} saturated {streams}: " + "; ".join(
                f"{'on' if r['batching'] else 'off'} {r['frames_per_cpu_s']} f/CPU-s {r['frames_per_s']} f/s "
                f"analyze {r['analyze_frames_per_cpu_s']} f/CPU-s ({r['analyze_cpu_share']:.0%}) "
                f"{r['frames_per_call']} f/call" for r in new))
        for streams in args.paced:
            new = measure(key, inner, streams, args.paced_seconds, paced=True, settings=settings,
                          repeat=args.repeat, media_cache=media_cache, threads_override=args.threads)
            rows += new
            say(f"{key} paced {streams}: " + "; ".join(
                f"{'on' if r['batching'] else 'off'} p50 {r['p50_ms']} p99 {r['p99_ms']} ms "
                f"{r['frames_per_call']} f/call" for r in new))
    command = "python scripts/bench_batching.py " + " ".join(argv if argv is not None else sys.argv[1:])
    body = render(rows, command.strip(), settings, (load_start, os.getloadavg()[0]))
    print(body)
    if args.write_docs:
        bench_engine.write_doc_section(SECTION, body)
    if args.json:
        print(json.dumps({"rows": rows}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
