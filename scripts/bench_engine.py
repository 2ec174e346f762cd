"""Engine speed per core, side by side with librosa computing the same descriptors.

On one generated music-like file (44.1 kHz stereo, ``--minutes`` long, default 10) this
measures, each in its own fresh process pinned to one core with one BLAS/OpenMP thread:

* ``engine_batch``: decode (soundfile) + :func:`fingerprint_buffer`, all 25 dimensions;
* ``engine_stream``: the file read in 100 ms chunks, each pushed into an
  :class:`AudioSession` (13D, one update per second of media), then ``finish()``;
* ``librosa``: ``librosa.load`` (decode, mono, soxr_hq to 22,050 Hz), then on the same
  uncentred grid (n_fft 2048, hop 512): STFT magnitude, spectral centroid, roll-off (85 %),
  flatness, chroma_stft (fixed A440 tuning, as the engine), mel spectrogram -> dB ->
  onset_strength, tempo (``feature.tempo`` on that envelope), yin (65.4-2093 Hz), HPSS
  (``decompose.hpss`` on the magnitude, kernel 31) and rms.

Each process warms up first (one short call of the same work: numba compilation, FFT
plans, lazy imports), then times the work once. Reported per measurement: wall seconds,
realtime factor (media seconds / wall seconds), peak RSS (MiB, whole process), and a
breakdown; and the speed ratios of the engine to librosa (librosa seconds / engine
seconds). The issue's target is a ratio of at least 2 with the numpy engine.

Usage::

    python scripts/bench_engine.py [--minutes 10] [--repeat 1] [--json] [--write-docs] [--core N]

``--json`` prints one JSON object as the last line (keys ``engine_batch_rtf``,
``engine_stream_rtf``, ``librosa_rtf``, ``speedup_batch_vs_librosa``,
``speedup_stream_vs_librosa`` and more); ``--write-docs`` rewrites the "Engine speed"
section of docs/benchmarks.md between its marker comments.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import platform
import re
import resource
import subprocess
import sys
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
DOCS = ROOT / "docs" / "benchmarks.md"
CACHE = ROOT / ".cache" / "bench"
BENCH_RATE = 44_100
CHUNK_SECONDS = 0.1
UPDATE_SECONDS = 1.0
WARMUP_SECONDS = 3.0
#: Environment of the measuring processes: one thread everywhere, so "per core" is true.
SINGLE_THREAD_ENV = {
    "OMP_NUM_THREADS": "1",
    "OPENBLAS_NUM_THREADS": "1",
    "MKL_NUM_THREADS": "1",
    "NUMBA_NUM_THREADS": "1",
    "VECLIB_MAXIMUM_THREADS": "1",
}
MODES = ("engine_batch", "engine_stream", "librosa")
ENGINE_SECTION = "engine-speed"


# --------------------------------------------------------------------------------------
# Shared helpers (also used by calibrate_confidence.py)
# --------------------------------------------------------------------------------------


def machine_info() -> dict[str, Any]:
    """The machine and software a measurement ran on (cores, CPU model, versions)."""
    import numpy as np

    cpu = "unknown"
    flags: set[str] = set()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name") and cpu == "unknown":
                cpu = line.split(":", 1)[1].strip()
            elif line.startswith("flags") and not flags:
                flags = set(line.split(":", 1)[1].split())
    except OSError:
        pass
    info: dict[str, Any] = {
        "nproc": os.cpu_count(),
        "cpu": cpu,
        "vector": vector_extensions(flags),
        "python": platform.python_version(),
        "numpy": np.__version__,
    }
    for name in ("scipy", "librosa", "numba", "soxr"):
        try:
            module = __import__(name)
            info[name] = getattr(module, "__version__", "?")
        except ImportError:
            info[name] = None
    return info


def speed_probe_ms(repeats: int = 7) -> float:
    """Milliseconds of a fixed single-thread workload, best of ``repeats``: a yardstick of
    how fast this (shared, virtual) machine runs right now, printed beside results so that
    runs from different moments can be compared. Half pure Python (the event loop's and
    the accumulators' kind of work), half small numpy calls and FFTs (the engine's kind).
    Lower is faster."""
    import numpy as np

    frames = np.random.default_rng(0).standard_normal((16, 2048)).astype(np.float32)

    def workload() -> float:
        acc = 0.0
        table: dict[int, float] = {}
        for i in range(60_000):
            table[i & 255] = table.get(i & 255, 0.0) + i * 0.5
        for _ in range(40):
            spectrum = np.fft.rfft(frames, axis=1)
            acc += float(np.abs(spectrum).mean()) + float(np.sqrt(np.mean(np.square(frames), axis=1)).sum())
        return acc + sum(table.values())

    best = math.inf
    for _ in range(repeats):
        start = time.perf_counter()
        workload()
        best = min(best, time.perf_counter() - start)
    return round(best * 1e3, 1)


def vector_extensions(flags: set[str]) -> str:
    """The widest SIMD of a CPU with ``flags`` (``/proc/cpuinfo``), and whether it has an 8-bit
    dot-product instruction (VNNI), which decides what INT8 can gain: e.g. ``AVX-512 + VNNI``."""
    if not flags:
        return "unknown"
    width = "AVX-512" if "avx512f" in flags else "AVX2" if "avx2" in flags else "SSE" if "sse2" in flags else "other"
    vnni = "avx512_vnni" in flags or "avx_vnni" in flags
    return f"{width} + VNNI" if vnni else f"{width}, no VNNI"


def machine_line(info: dict[str, Any]) -> str:
    """One Markdown line describing :func:`machine_info`."""
    versions = ", ".join(f"{k} {info[k]}" for k in ("numpy", "scipy", "librosa", "numba", "soxr") if info.get(k))
    vector = f", {info['vector']}" if info.get("vector") else ""
    return f"Machine: {info['nproc']} cores ({info['cpu']}{vector}), Python {info['python']}, {versions}."


def apply_nice(increment: int) -> None:
    """``os.nice(increment)`` for this process and the servers and clients it starts (a
    negative value needs root); a refusal is reported and the run goes on at the usual
    priority."""
    if not increment:
        return
    try:
        os.nice(increment)
    except OSError as exc:
        print(f"--nice {increment}: {exc} (running at the usual priority)", file=sys.stderr)


def write_doc_section(section: str, body: str, *, path: Path = DOCS, heading: str | None = None) -> None:
    """Replace the text between ``<!-- {section}:begin -->`` and ``<!-- {section}:end -->``.

    Creates ``path`` with the standard skeleton when it does not exist, and appends the
    markers at the end when they are missing (under ``## {heading}`` when given).
    """
    begin, end = f"<!-- {section}:begin -->", f"<!-- {section}:end -->"
    text = path.read_text() if path.exists() else DOC_SKELETON
    block = f"{begin}\n{body.rstrip()}\n{end}"
    if begin in text and end in text:
        pattern = re.compile(re.escape(begin) + r".*?" + re.escape(end), re.S)
        text = pattern.sub(lambda _: block, text, count=1)
    else:
        text = text.rstrip() + "\n\n" + (f"## {heading}\n\n" if heading else "") + block + "\n"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)


DOC_SKELETON = """# Benchmarks

Every number on this page is written by a script (never typed in); each section names the
command that reproduces it. Sections are replaced between their marker comments.

## Engine speed

<!-- engine-speed:begin -->
Not measured yet: run `python scripts/bench_engine.py --write-docs`.
<!-- engine-speed:end -->

## Confidence calibration

<!-- confidence-calibration:begin -->
Not measured yet: run `python scripts/calibrate_confidence.py --write-docs`.
<!-- confidence-calibration:end -->
"""


# --------------------------------------------------------------------------------------
# The benchmark file
# --------------------------------------------------------------------------------------


def bench_file(minutes: float, *, seed: int = 2024, cache: Path = CACHE) -> Path:
    """A music-like 44.1 kHz stereo 16-bit WAV of ``minutes`` minutes (made once, cached).

    Made of one-minute sections from ``make_corpus.music_mix`` (each its own tempo, key,
    timbres and drum pattern), so the content varies like a playlist.
    """
    import numpy as np
    import soundfile as sf

    sys.path.insert(0, str(Path(__file__).resolve().parent))
    from make_corpus import GENERATOR_VERSION, music_mix

    path = cache / f"music_{minutes:g}min_44k1_stereo_s{seed}_v{GENERATOR_VERSION}.wav"
    if path.exists():
        return path
    cache.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp.wav")
    total = round(minutes * 60.0 * BENCH_RATE)
    with sf.SoundFile(tmp, "w", samplerate=BENCH_RATE, channels=2, subtype="PCM_16") as out:
        written, section = 0, 0
        while written < total:
            n = min(total - written, 60 * BENCH_RATE)
            rng = np.random.default_rng([seed, section])
            mix, _ = music_mix(rng, max(n / BENCH_RATE, 1.0), BENCH_RATE)
            out.write((0.7 * mix[:n]).astype(np.float32))
            written += n
            section += 1
    tmp.rename(path)
    return path


# --------------------------------------------------------------------------------------
# The measured work, one function per mode (run in a worker process)
# --------------------------------------------------------------------------------------


def _run_engine_batch(path: Path, limit: int | None) -> dict[str, float]:
    """Decode + 25D batch fingerprint; returns timings (s)."""
    import soundfile as sf

    from streamprint.engine import dims
    from streamprint.engine.fingerprint import AudioBuffer
    from streamprint.engine.session import fingerprint_buffer

    t0 = time.perf_counter()
    samples, rate = sf.read(path, dtype="float32", always_2d=True, frames=-1 if limit is None else limit)
    t1 = time.perf_counter()
    fingerprint_buffer(AudioBuffer(samples=samples, sample_rate=int(rate)), dims.AUDIO_25D)
    t2 = time.perf_counter()
    return {"decode": t1 - t0, "fingerprint": t2 - t1}


def _run_engine_stream(path: Path, limit: int | None) -> dict[str, float]:
    """100 ms chunks read from the file and pushed into a 13D session; returns timings (s)."""
    import soundfile as sf

    from streamprint.engine import dims
    from streamprint.engine.session import AudioSession, SessionConfig

    t0 = time.perf_counter()
    updates = 0
    with sf.SoundFile(path) as f:
        chunk = round(CHUNK_SECONDS * f.samplerate)
        session = AudioSession(SessionConfig(f.samplerate, f.channels, dims.AUDIO_13D, UPDATE_SECONDS))
        remaining = f.frames if limit is None else min(limit, f.frames)
        while remaining > 0:
            block = f.read(min(chunk, remaining), dtype="float32", always_2d=True)
            remaining -= block.shape[0]
            updates += len(session.push(block))
        session.finish()
    return {"total": time.perf_counter() - t0, "updates": float(updates + 1)}


def _run_librosa(path: Path, limit: int | None) -> dict[str, float]:
    """librosa computing the engine's descriptors; returns per-step timings (s)."""
    import librosa
    import numpy as np

    sr = 22_050
    n_fft, hop = 2048, 512
    steps: dict[str, float] = {}

    def timed(name: str, fn: Callable[[], Any]) -> Any:
        t = time.perf_counter()
        result = fn()
        steps[name] = time.perf_counter() - t
        return result

    duration = None if limit is None else limit / BENCH_RATE
    y = timed("load_mono_resample", lambda: librosa.load(path, sr=sr, mono=True, res_type="soxr_hq",
                                                          duration=duration)[0])
    mag = timed("stft", lambda: np.abs(librosa.stft(y, n_fft=n_fft, hop_length=hop, center=False)))
    power = mag**2
    timed("centroid", lambda: librosa.feature.spectral_centroid(S=mag, sr=sr, n_fft=n_fft, hop_length=hop))
    timed("rolloff", lambda: librosa.feature.spectral_rolloff(S=mag, sr=sr, roll_percent=0.85))
    timed("flatness", lambda: librosa.feature.spectral_flatness(S=mag))
    timed("chroma", lambda: librosa.feature.chroma_stft(S=power, sr=sr, tuning=0.0))
    env = timed("onset_strength", lambda: librosa.onset.onset_strength(
        S=librosa.power_to_db(librosa.feature.melspectrogram(S=power, sr=sr)), sr=sr, hop_length=hop))
    timed("tempo", lambda: librosa.feature.tempo(onset_envelope=env, sr=sr, hop_length=hop))
    timed("yin", lambda: librosa.yin(y, fmin=65.40639132514966, fmax=2093.004522404789, sr=sr,
                                     frame_length=n_fft, hop_length=hop, center=False))
    timed("hpss", lambda: librosa.decompose.hpss(mag, kernel_size=31))
    timed("rms", lambda: librosa.feature.rms(y=y, frame_length=n_fft, hop_length=hop, center=False))
    return steps


_RUNNERS: dict[str, Callable[[Path, int | None], dict[str, float]]] = {
    "engine_batch": _run_engine_batch,
    "engine_stream": _run_engine_stream,
    "librosa": _run_librosa,
}


def _peak_rss_mib() -> float:
    """Peak resident set size of this process so far, MiB (Linux reports KiB)."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0


def worker(mode: str, path: Path, core: int | None) -> dict[str, Any]:
    """Pin to ``core``, warm up, time ``mode`` once on ``path``; return the measurement."""
    if core is not None and hasattr(os, "sched_setaffinity"):
        os.sched_setaffinity(0, {core})
    import soundfile as sf

    media_seconds = float(sf.info(path).duration)
    run = _RUNNERS[mode]
    run(path, round(WARMUP_SECONDS * BENCH_RATE))
    rss_before = _peak_rss_mib()
    start = time.perf_counter()
    steps = run(path, None)
    seconds = time.perf_counter() - start
    return {
        "mode": mode,
        "media_seconds": media_seconds,
        "seconds": seconds,
        "rtf": media_seconds / seconds,
        "peak_rss_mib": _peak_rss_mib(),
        "rss_after_warmup_mib": rss_before,
        "steps": steps,
        "cpu_affinity": sorted(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else None,
    }


def run_isolated(mode: str, path: Path, core: int | None) -> dict[str, Any]:
    """Run :func:`worker` in a fresh interpreter with the single-thread environment."""
    return run_worker(Path(__file__).resolve(), ["--worker", mode, "--audio", str(path)], core, f"{mode} worker")


def run_worker(
    script: Path, args: Sequence[str], core: int | None, label: str, *, single_thread: bool = True
) -> dict[str, Any]:
    """``python script ARGS [--core N]`` in a fresh interpreter with the single-thread
    environment (unless ``single_thread`` is false: the libraries' default threading); its
    last stdout line, parsed as JSON (``RuntimeError`` naming ``label`` when it fails). The
    bench scripts' ``--worker`` modes run through this."""
    env = {**os.environ, **SINGLE_THREAD_ENV} if single_thread else dict(os.environ)
    cmd = [sys.executable, str(script), *args]
    if core is not None:
        cmd += ["--core", str(core)]
    proc = subprocess.run(cmd, env=env, capture_output=True, text=True, check=False)
    if proc.returncode != 0:
        raise RuntimeError(f"{label} failed:\n{proc.stderr[-4000:]}")
    result: dict[str, Any] = json.loads(proc.stdout.strip().splitlines()[-1])
    return result


def combine(measurements: Sequence[dict[str, Any]], *, peak_rss: bool = True) -> dict[str, Any]:
    """One measurement from repeats: the run with the median time, the largest peak RSS
    (with ``peak_rss``), and every run's seconds under ``runs_seconds``."""
    ordered = sorted(measurements, key=lambda m: float(m["seconds"]))
    median = dict(ordered[(len(ordered) - 1) // 2])
    if peak_rss:
        median["peak_rss_mib"] = max(float(m["peak_rss_mib"]) for m in measurements)
    median["runs_seconds"] = [round(float(m["seconds"]), 3) for m in measurements]
    return median


# --------------------------------------------------------------------------------------
# Report
# --------------------------------------------------------------------------------------


def summarise(results: dict[str, dict[str, Any]], info: dict[str, Any]) -> dict[str, Any]:
    """The flat JSON summary of the three measurements."""
    lib = results["librosa"]["seconds"]
    out: dict[str, Any] = {
        "media_seconds": results["engine_batch"]["media_seconds"],
        "engine_batch_seconds": results["engine_batch"]["seconds"],
        "engine_stream_seconds": results["engine_stream"]["seconds"],
        "librosa_seconds": lib,
        "engine_batch_rtf": results["engine_batch"]["rtf"],
        "engine_stream_rtf": results["engine_stream"]["rtf"],
        "librosa_rtf": results["librosa"]["rtf"],
        "speedup_batch_vs_librosa": lib / results["engine_batch"]["seconds"],
        "speedup_stream_vs_librosa": lib / results["engine_stream"]["seconds"],
        "engine_batch_peak_rss_mib": results["engine_batch"]["peak_rss_mib"],
        "engine_stream_peak_rss_mib": results["engine_stream"]["peak_rss_mib"],
        "librosa_peak_rss_mib": results["librosa"]["peak_rss_mib"],
        "librosa_steps": results["librosa"]["steps"],
        "engine_batch_steps": results["engine_batch"]["steps"],
        "core": results["engine_batch"]["cpu_affinity"],
        "repeats": len(results["engine_batch"]["runs_seconds"]),
        "runs_seconds": {mode: results[mode]["runs_seconds"] for mode in MODES},
        "machine": info,
    }
    return out


def render_markdown(summary: dict[str, Any], command: str) -> str:
    """The "Engine speed" section body."""
    media = summary["media_seconds"]
    rows = [
        ("engine, batch 25D (`fingerprint_buffer`)", "engine_batch", "decode + all 25 dimensions"),
        ("engine, streaming 13D (`AudioSession`, 100 ms chunks, update every 1 s)", "engine_stream",
         "chunked file reads + session + finish"),
        ("librosa, same descriptors", "librosa", "load/mono/soxr_hq + STFT, centroid, rolloff, flatness, "
         "chroma, onset strength, tempo, yin, HPSS, rms"),
    ]
    lines = [
        f"Command: `{command}`",
        "",
        machine_line(summary["machine"]) + f" Each measurement runs in its own process pinned to core "
        f"{summary['core']} with one BLAS/OpenMP thread, after a {WARMUP_SECONDS:g} s warm-up call; "
        f"{summary['repeats']} run(s) each, interleaved, median time reported (all runs, s: "
        + "; ".join(f"{m} " + ", ".join(f"{x:.2f}" for x in v) for m, v in summary["runs_seconds"].items())
        + ").",
        "",
        f"Input: {media / 60:.1f} minutes of generated music-like audio, 44.1 kHz stereo 16-bit WAV "
        f"(`scripts/bench_engine.py` makes it from `make_corpus.music_mix`).",
        "",
        "| what | wall s | realtime factor (per core) | speed vs librosa | peak RSS MiB | work |",
        "|---|---:|---:|---:|---:|---|",
    ]
    for label, key, work in rows:
        speed = 1.0 if key == "librosa" else summary["librosa_seconds"] / summary[f"{key}_seconds"]
        lines.append(
            f"| {label} | {summary[f'{key}_seconds']:.2f} | {summary[f'{key}_rtf']:.1f}x | {speed:.2f}x | "
            f"{summary[f'{key}_peak_rss_mib']:.0f} | {work} |"
        )
    steps = summary["librosa_steps"]
    total = sum(steps.values())
    lines += [
        "",
        "librosa breakdown (s): " + ", ".join(f"{k} {v:.2f} ({100 * v / total:.0f} %)" for k, v in steps.items()) + ".",
        "Engine batch breakdown (s): " + ", ".join(f"{k} {v:.2f}" for k, v in summary["engine_batch_steps"].items()) + ".",
        "",
        "Target (issue 3): at least 2x librosa's speed with the numpy engine; product goal "
        "1,000x realtime per core for 13D streaming.",
    ]
    return "\n".join(lines)


def print_table(summary: dict[str, Any]) -> None:
    """Human-readable summary on stdout."""
    print(f"media: {summary['media_seconds']:.1f} s; machine: {machine_line(summary['machine'])}")
    print(f"{'what':16s} {'wall s':>8s} {'RTF':>9s} {'vs librosa':>10s} {'peak RSS MiB':>12s}")
    for key in ("engine_batch", "engine_stream", "librosa"):
        speed = summary["librosa_seconds"] / summary[f"{key}_seconds"]
        print(f"{key:16s} {summary[f'{key}_seconds']:8.2f} {summary[f'{key}_rtf']:8.1f}x "
              f"{speed:9.2f}x {summary[f'{key}_peak_rss_mib']:12.0f}")
    print("librosa steps (s): " + ", ".join(f"{k} {v:.2f}" for k, v in summary["librosa_steps"].items()))


def main(argv: Sequence[str] | None = None) -> int:
    """CLI entry point (also the worker entry point with ``--worker``)."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--minutes", type=float, default=10.0, help="length of the benchmark file (min)")
    parser.add_argument("--json", action="store_true", help="print one JSON object as the last line")
    parser.add_argument("--write-docs", action="store_true", help="update docs/benchmarks.md")
    parser.add_argument("--core", type=int, default=None,
                        help="CPU to pin the measurements to (default: the last one this process may use)")
    parser.add_argument("--audio", type=Path, default=None, help="benchmark this file instead")
    parser.add_argument("--repeat", type=int, default=1,
                        help="fresh processes per measurement; the median time is reported")
    parser.add_argument("--worker", choices=MODES, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.worker:
        print(json.dumps(worker(args.worker, args.audio, args.core)))
        return 0
    if args.minutes <= 0:
        parser.error("--minutes must be positive")
    if args.repeat < 1:
        parser.error("--repeat must be at least 1")
    core = args.core
    if core is None and hasattr(os, "sched_getaffinity"):
        core = max(os.sched_getaffinity(0))
    path = args.audio or bench_file(args.minutes)
    runs: dict[str, list[dict[str, Any]]] = {mode: [] for mode in MODES}
    for _ in range(args.repeat):  # interleaved, so slow spells of the machine hit every mode
        for mode in MODES:
            runs[mode].append(run_isolated(mode, path, core))
    results = {mode: combine(measurements) for mode, measurements in runs.items()}
    summary = summarise(results, machine_info())
    if not args.json:
        print_table(summary)
    if args.write_docs:
        command = "python scripts/bench_engine.py --write-docs" + (
            f" --minutes {args.minutes:g}" if args.minutes != 10.0 else "") + (
            f" --repeat {args.repeat}" if args.repeat != 1 else "")
        write_doc_section(ENGINE_SECTION, render_markdown(summary, command))
    if args.json:
        print(json.dumps(summary))
    return 0


if __name__ == "__main__":
    sys.exit(main())
