"""CPU per stream-second of a streaming audio session, engine alone and over gRPC.

Usage::

    python scripts/bench_session_cost.py [--seconds 60] [--repeat 3] [--baseline-rev REV]
        [--grpc-streams 8,32 --grpc-seconds 15] [--profile] [--write-docs]

``--engine`` part (always): a fresh process per measurement decodes a music-like clip sent
as 100 ms chunks of PCM s16le 44.1 kHz stereo (``PcmDecoder``), feeds an ``AudioSession``
(13D, one update per second of media) and finishes it, pinned to one core with one BLAS
thread. It reports CPU milliseconds per second of media (= per stream-second of a realtime
stream), and how much of that the frame analyzer (STFT, filterbanks, YIN) and the HPSS
medians took; the rest is the session's own work (accumulators, framing, resampling,
native-rate statistics, snapshots).

``--baseline-rev REV`` measures the same thing on the ``server/`` tree of git revision REV
(exported with ``git archive`` to a temporary directory), interleaved with the current tree
in the same run, so the two are compared on the same (noisy, shared) machine.

``--grpc-streams N1,N2,...`` also runs N paced realtime streams against a fresh
``python -m streamprint serve`` (the load generator of ``scripts/bench_streams.py``) for each
tree and each N, and reports the server's CPU per stream-second and peak RSS; the RSS one
more stream costs is the slope between the smallest and the largest N (the warm-up and lazy
imports cancel out).

``--profile`` prints the top of a cProfile of one engine run of the current tree;
``--write-docs`` replaces the ``session-cost`` section of docs/benchmarks.md.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import shlex
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
SCRIPTS = REPO / "scripts"
RATE = 44_100
CHANNELS = 2
CHUNK_MS = 100
DOC_SECTION = "session-cost"
#: Unpaced warm-up streams (3 s each) before the measured ones.
WARMUP_STREAMS = 2


def _clip_bytes(seconds: float) -> bytes:
    """``seconds`` of the demo mix as interleaved PCM s16le stereo at 44.1 kHz."""
    import numpy as np

    sys.path.insert(0, str(SCRIPTS))
    from make_demo_clip import demo_mix

    stereo = demo_mix(seconds=seconds, rate=RATE)
    pcm: bytes = (np.clip(stereo, -1.0, 1.0) * 32767.0).astype("<i2").tobytes()
    return pcm


class _Timed:
    """Wraps an object; accumulates the process CPU time spent in one of its methods."""

    def __init__(self, inner: Any, method: str) -> None:
        self._inner = inner
        self._method = method
        self.seconds = 0.0

    def __getattr__(self, name: str) -> Any:
        attr = getattr(self._inner, name)
        if name != self._method:
            return attr

        def timed(*args: Any, **kwargs: Any) -> Any:
            t0 = time.process_time()
            try:
                return attr(*args, **kwargs)
            finally:
                self.seconds += time.process_time() - t0

        return timed


def engine_worker(seconds: float, profile: bool) -> dict[str, Any]:
    """One engine measurement in this process (the tree on ``sys.path``)."""
    from streamprint.engine.decode import PcmDecoder, PcmFormat
    from streamprint.engine.session import AudioSession, SessionConfig, default_analyzer

    pcm = _clip_bytes(seconds)
    chunk = RATE * CHANNELS * 2 * CHUNK_MS // 1000
    chunks = [pcm[i : i + chunk] for i in range(0, len(pcm), chunk)]

    def run(timed: bool) -> tuple[float, float, float, int]:
        analyzer: Any = _Timed(default_analyzer(), "analyze")
        session = AudioSession(SessionConfig(RATE, CHANNELS), analyzer=analyzer)
        features: Any = session._features
        hpss = _Timed(features._hpss, "push") if hasattr(features, "_hpss") else None
        if hpss is not None:
            features._hpss = hpss
        decoder = PcmDecoder(PcmFormat("s16le", RATE, CHANNELS))
        updates = 0
        t0 = time.process_time()
        for c in chunks:
            updates += len(session.push(decoder.decode(c)))
        session.finish()
        total = time.process_time() - t0
        return total, analyzer.seconds, hpss.seconds if hpss is not None else 0.0, updates

    run(False)  # warm-up: first-call costs (filterbanks, soxr, numpy dispatch)
    if profile:
        import cProfile
        import pstats

        prof = cProfile.Profile()
        prof.enable()
        run(True)
        prof.disable()
        pstats.Stats(prof, stream=sys.stderr).sort_stats("tottime").print_stats(35)
    total, analyze, hpss, updates = run(True)
    per_s = 1000.0 / seconds
    return {
        "total_ms": total * per_s,
        "analyzer_ms": analyze * per_s,
        "hpss_ms": hpss * per_s,
        "rest_ms": (total - analyze - hpss) * per_s,
        "updates": updates,
    }


def _export_tree(rev: str, into: Path) -> Path:
    """``server/`` of git revision ``rev`` exported under ``into``; returns its server dir.

    A tree with compiled loops (``setup.py``) gets them built in place, with its own flags.
    """
    paths = ["server"]
    listed = subprocess.run(["git", "-C", str(REPO), "ls-tree", "--name-only", rev], check=True,
                            capture_output=True, text=True).stdout.split()
    paths += [name for name in ("setup.py", "pyproject.toml", "README.md") if name in listed]
    archive = subprocess.run(
        ["git", "-C", str(REPO), "archive", rev, *paths], check=True, capture_output=True
    ).stdout
    subprocess.run(["tar", "-x", "-C", str(into)], input=archive, check=True)
    if (into / "setup.py").exists():
        built = subprocess.run([sys.executable, "setup.py", "-q", "build_ext", "--inplace"], cwd=into,
                               check=False, capture_output=True, text=True)
        if built.returncode != 0:
            raise RuntimeError(f"building the compiled loops of {rev} failed:\n{built.stderr[-4000:]}")
    return into / "server"


def _env_for(server_dir: Path) -> dict[str, str]:
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join([str(server_dir), str(REPO / "clients" / "python")])
    env["OPENBLAS_NUM_THREADS"] = env["OMP_NUM_THREADS"] = "1"
    env.setdefault("STREAMPRINT_MODELS_DIR", str(REPO / "models"))  # an exported tree has none
    return env


def _engine_run(server_dir: Path, seconds: float, profile: bool) -> dict[str, Any]:
    cmd = [sys.executable, __file__, "--worker", "--seconds", str(seconds)]
    if profile:
        cmd.append("--profile")
    done = subprocess.run(
        cmd, env=_env_for(server_dir), check=True, stdout=subprocess.PIPE, text=True
    )
    result: dict[str, Any] = json.loads(done.stdout.strip().splitlines()[-1])
    return result


def _grpc_run(server_dir: Path, streams: int, seconds: float, backend: str) -> dict[str, Any]:
    sys.path.insert(0, str(SCRIPTS))
    import bench_streams as bs

    with tempfile.TemporaryDirectory() as tmp, Path(tmp, "server.log").open("wb") as log:
        port = bs.free_port()
        proc = subprocess.Popen(
            [sys.executable, "-m", "streamprint", "serve", "--host", "127.0.0.1",
             "--port", str(port), "--max-streams", str(max(512, 2 * streams)),
             "--log-level", "warning", "--backend", backend],
            env=_env_for(server_dir), stdout=log, stderr=subprocess.STDOUT,
        )
        address = f"127.0.0.1:{port}"
        try:
            bs.wait_serving(address)
            sampler = bs.ProcessSampler([proc.pid])
            base_rss = sampler.rss()
            spec = bs.LoadSpec(duration_s=seconds, sample_rate=RATE, channels=CHANNELS)
            # warm-up first (lazy imports, JIT compilation, runtime start-up stay out)
            bs.warm_up(address, spec, bs.audio_clip(spec), streams=WARMUP_STREAMS)
            cpu0, threads0 = sampler.cpu_seconds(), _thread_ticks(proc.pid)
            result = bs.run_load(
                streams=streams, spec=spec, server=address, server_pid=proc.pid,
                warmup_streams=0,
            )
            cpu_total = sampler.cpu_seconds() - cpu0
            threads1 = _thread_ticks(proc.pid)
        finally:
            bs.stop_server(proc)
    # every stream ran to its final update: all its media was analysed
    media_s = streams * seconds
    ticks = os.sysconf("SC_CLK_TCK")
    by_role: dict[str, float] = {}
    for key, value in threads1.items():
        role = key[1]
        by_role[role] = by_role.get(role, 0.0) + (value - threads0.get(key, 0)) / ticks
    return {
        "streams": streams,
        "server_ms_per_stream_s": 1000.0 * cpu_total / media_s,
        "cpu_percent": result["cpu_percent"],
        # ms CPU per stream-second by server thread: the event loop (main thread), gRPC's
        # own threads, and the rest (the engine worker pools)
        "threads_ms_per_stream_s": {k: 1000.0 * v / media_s for k, v in sorted(by_role.items())},
        "rss_mb": result["rss_mb"],
        "base_rss_mb": round(base_rss / 1e6, 1),
        "p99_update_latency_ms": result["p99_update_latency_ms"],
        "errors": result["errors"],
    }


def _thread_ticks(pid: int) -> dict[tuple[str, str], int]:
    """CPU ticks per thread of ``pid``, keyed ``(tid, role)``: role ``loop`` for the main
    thread (asyncio + grpc.aio), ``grpc`` for gRPC's event-engine threads, else ``workers``."""
    out: dict[tuple[str, str], int] = {}
    for tid in os.listdir(f"/proc/{pid}/task"):
        try:
            stat = Path(f"/proc/{pid}/task/{tid}/stat").read_text()
        except OSError:
            continue
        name = stat[stat.index("(") + 1 : stat.rindex(")")]
        fields = stat.rsplit(")", 1)[1].split()
        role = "loop" if tid == str(pid) else ("grpc" if "event_engine" in name else "workers")
        out[(tid, role)] = int(fields[11]) + int(fields[12])
    return out


def _median(runs: list[dict[str, Any]], key: str) -> float:
    return float(statistics.median(r[key] for r in runs))


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seconds", type=float, default=60.0, help="media seconds per engine run")
    parser.add_argument("--repeat", type=int, default=3, help="engine runs per tree (median; 0: skip)")
    parser.add_argument("--baseline-rev", help="git revision to compare with (its server/ tree)")
    parser.add_argument("--grpc-streams", default="", help="paced gRPC stream counts, e.g. 8,32")
    parser.add_argument("--grpc-seconds", type=float, default=15.0)
    parser.add_argument("--backend", default="auto", help="server --backend for the gRPC runs")
    parser.add_argument("--profile", action="store_true", help="cProfile one engine run (stderr)")
    parser.add_argument("--cpu", type=int, default=1, help="core the engine runs are pinned to")
    parser.add_argument("--json", action="store_true", help="last line: one JSON object")
    parser.add_argument("--write-docs", action="store_true",
                        help=f"replace the {DOC_SECTION!r} section of docs/benchmarks.md")
    parser.add_argument("--worker", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)

    if args.worker:
        if hasattr(os, "sched_setaffinity"):
            with contextlib.suppress(OSError):
                os.sched_setaffinity(0, {args.cpu})
        print(json.dumps(engine_worker(args.seconds, args.profile)))
        return 0

    load_before = os.getloadavg()[0]
    with tempfile.TemporaryDirectory(prefix="bench-cost-") as tmp:
        trees: dict[str, Path] = {"current": REPO / "server"}
        if args.baseline_rev:
            trees[f"baseline {args.baseline_rev}"] = _export_tree(args.baseline_rev, Path(tmp))
        if args.profile:
            _engine_run(trees["current"], args.seconds, True)
        runs: dict[str, list[dict[str, Any]]] = {name: [] for name in trees}
        for _ in range(args.repeat):
            for name, tree in trees.items():  # interleaved: same machine load for both
                runs[name].append(_engine_run(tree, args.seconds, False))
        report: dict[str, Any] = {
            "seconds": args.seconds, "repeat": args.repeat, "engine": {},
            "backend": args.backend, "grpc_seconds": args.grpc_seconds,
        }
        if args.repeat > 0:
            print(f"engine, ms CPU per stream-second ({args.seconds:g} s of media, "
                  f"median of {args.repeat}, one core):")
            print(f"{'tree':<28} {'total':>8} {'analyzer':>9} {'hpss':>7} {'rest':>7}")
            for name, rs in runs.items():
                keys = ("total_ms", "analyzer_ms", "hpss_ms", "rest_ms")
                row = {k: round(_median(rs, k), 2) for k in keys}
                report["engine"][name] = row
                print(f"{name:<28} {row['total_ms']:8.2f} {row['analyzer_ms']:9.2f} "
                      f"{row['hpss_ms']:7.2f} {row['rest_ms']:7.2f}")
        counts = [int(x) for x in args.grpc_streams.split(",") if x.strip()]
        if counts:
            report["grpc"] = {}
            print(f"\ngRPC, paced streams for {args.grpc_seconds:g} s:")
            for name, tree in trees.items():
                rows = [_grpc_run(tree, n, args.grpc_seconds, args.backend) for n in counts]
                lo, hi = rows[0], rows[-1]
                slope = (
                    (float(hi["rss_mb"]) - float(lo["rss_mb"])) / (hi["streams"] - lo["streams"])
                    if hi["streams"] != lo["streams"] else None
                )
                report["grpc"][name] = {"runs": rows, "rss_mb_per_stream": slope}
                for g in rows:
                    print(f"{name:<28} {g['streams']:4d} streams: server "
                          f"{g['server_ms_per_stream_s']:.2f} ms CPU/stream-s, RSS "
                          f"{g['base_rss_mb']} MB idle -> {g['rss_mb']} MB peak, p99 "
                          f"{g['p99_update_latency_ms']} ms, errors {g['errors']}; by thread "
                          f"{g['threads_ms_per_stream_s']}")
                if slope is not None:
                    print(f"{name:<28} RSS per extra stream: {slope:.2f} MB")
    report["load_average"] = [load_before, os.getloadavg()[0]]
    if args.write_docs:
        sys.path.insert(0, str(SCRIPTS))
        from bench_engine import machine_info, machine_line, write_doc_section

        command = "python scripts/bench_session_cost.py " + " ".join(
            shlex.quote(a) for a in (sys.argv[1:] if argv is None else argv)
        )
        write_doc_section(DOC_SECTION, docs_body(report, command, machine_line(machine_info())))
    if args.json:
        print(json.dumps(report))
    return 0


def docs_body(report: dict[str, Any], command: str, machine: str) -> str:
    """The Markdown of docs/benchmarks.md's per-stream cost section."""
    lines = [
        "## Per-stream cost and memory",
        "",
        f"Command: `{command}`",
        "",
        f"{machine} 1-minute load average {report['load_average'][0]:.1f} before and "
        f"{report['load_average'][1]:.1f} after the run (the machine is shared with other "
        "jobs: absolute numbers move with the load, the side-by-side ratios much less).",
        "",
    ]
    engine = report.get("engine") or {}
    if engine:
        lines += [
            f"Engine alone: one `AudioSession` (13D, one update per second) fed {report['seconds']:g} s "
            "of music-like PCM s16le 44.1 kHz stereo in 100 ms chunks, decode included, in a fresh "
            "process pinned to one core with one BLAS thread; median of "
            f"{report['repeat']} interleaved runs per tree. CPU ms per second of media = per "
            "stream-second of a realtime stream. *analyzer*: the frame analyzer (STFT, filterbanks, "
            "YIN); *hpss*: the HPSS median filters; *rest*: everything else the session does "
            "(downmix, resampling, framing, accumulators, onsets, tempo, snapshots).",
            "",
            "| tree | total ms | analyzer ms | hpss ms | rest ms |",
            "|---|---:|---:|---:|---:|",
        ]
        for name, row in engine.items():
            lines.append(
                f"| {name} | {row['total_ms']:.2f} | {row['analyzer_ms']:.2f} | "
                f"{row['hpss_ms']:.2f} | {row['rest_ms']:.2f} |"
            )
        lines.append("")
    grpc = report.get("grpc") or {}
    if grpc:
        lines += [
            f"Over gRPC: a fresh `python -m streamprint serve` (`--backend {report['backend']}`) "
            "per row and N paced realtime streams from `scripts/bench_streams.py`'s load "
            f"generator for {report['grpc_seconds']:g} s (the same stream as above, one update "
            "per second). Server CPU per stream-second = the server's CPU seconds from after two "
            "warm-up streams to the last final update, over all media seconds streamed (a server "
            "that falls behind still accounts for all its work); idle RSS is the "
            "fresh server before any stream, peak RSS the largest during the run (warm-up "
            "streams and the finished-session store included); RSS per extra stream is the "
            "slope of peak RSS between the smallest and largest N.",
            "",
            "| tree | streams | server CPU ms / stream-s | of which event loop / gRPC threads / "
            "engine workers | idle RSS MB | peak RSS MB | p99 update latency ms | errors |",
            "|---|---:|---:|---|---:|---:|---:|---:|",
        ]
        for name, entry in grpc.items():
            for g in entry["runs"]:
                th = g.get("threads_ms_per_stream_s", {})
                split = " / ".join(f"{th.get(k, 0.0):.1f}" for k in ("loop", "grpc", "workers"))
                lines.append(
                    f"| {name} | {g['streams']} | {g['server_ms_per_stream_s']:.2f} | {split} | "
                    f"{g['base_rss_mb']} | {g['rss_mb']} | {g['p99_update_latency_ms']} | "
                    f"{g['errors']} |"
                )
        lines.append("")
        for name, entry in grpc.items():
            if entry["rss_mb_per_stream"] is not None:
                lines.append(f"- {name}: {entry['rss_mb_per_stream']:.2f} MB RSS per extra stream.")
        lines.append("")
    return "\n".join(lines)


if __name__ == "__main__":
    raise SystemExit(main())
