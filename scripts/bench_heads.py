"""Learned heads vs DSP (HPSS + YIN): streaming CPU per stream-second and the end-to-end CLI
against librosa, side by side in one run.

On the generated 10-minute music-like file of ``scripts/bench_engine.py`` (44.1 kHz stereo),
each measurement in its own fresh process pinned to one core with one BLAS/OpenMP thread:

* ``stream_dsp`` / ``stream_auto`` / ``stream_learned``: a 13D :class:`AudioSession` fed
  100 ms chunks with an update every second of media, analyzer from
  ``select_analyzer("auto", "auto", heads=dsp|auto|learned)`` (selected before timing, after a 3 s warm-up session),
  with the server's malloc tuning (``streamprint.allocator``); reported as
  CPU milliseconds (``process_time``) per stream-second;
* ``cli_dsp`` / ``cli_auto`` / ``cli_learned``: ``python -m streamprint fingerprint FILE
  --json --heads dsp|auto|learned`` as a subprocess, wall time from spawn to exit (interpreter start, imports,
  backend selection, decode and the 25D fingerprint: everything a user waits for);
* ``librosa``: ``bench_engine``'s librosa worker computing the same descriptors (with its
  warm-up, which favours librosa);
* ``cli_auto_machine`` / ``librosa_machine``: the same two on the whole machine, not pinned,
  with the libraries' default threading (the CLI's batch fingerprint uses one worker thread
  per CPU; librosa may use its BLAS/numba threads): what a user of this machine waits for.

Usage::

    python scripts/bench_heads.py [--minutes 10] [--repeat 3] [--write-docs]

``--write-docs`` rewrites the "Learned heads" section of docs/benchmarks.md.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "scripts"))

import bench_engine as be  # noqa: E402

SECTION = "heads-speed"
MODES = ("stream_dsp", "stream_auto", "stream_learned", "cli_dsp", "cli_auto", "cli_learned", "librosa",
         "cli_auto_machine", "librosa_machine")
#: Modes run on every CPU of the machine, unpinned, with default threading.
MACHINE_MODES = ("cli_auto_machine", "librosa_machine")


def _stream(path: Path, heads: str, limit: int | None) -> dict[str, Any]:
    import soundfile as sf

    from streamprint.engine import dims
    from streamprint.engine.session import AudioSession, SessionConfig
    from streamprint.runtime import LoadOptions, select_analyzer

    selection = select_analyzer("auto", "auto", LoadOptions(threads=1), heads=heads)
    t0 = time.process_time()
    with sf.SoundFile(path) as f:
        chunk = round(be.CHUNK_SECONDS * f.samplerate)
        session = AudioSession(
            SessionConfig(f.samplerate, f.channels, dims.AUDIO_13D, be.UPDATE_SECONDS),
            analyzer=selection.analyzer,
        )
        remaining = f.frames if limit is None else min(limit, f.frames)
        media = remaining / f.samplerate
        while remaining > 0:
            block = f.read(min(chunk, remaining), dtype="float32", always_2d=True)
            remaining -= block.shape[0]
            session.push(block)
        final = session.finish()
    cpu = time.process_time() - t0
    return {"cpu_seconds": cpu, "media_seconds": media, "cpu_ms_per_stream_second": 1e3 * cpu / media,
            "model": final.model, "backend": selection.backend, "precision": selection.precision}


def worker(mode: str, path: Path, core: int | None) -> dict[str, Any]:
    """Pin, warm up, time one streaming session (``stream_*``) or librosa."""
    if core is not None and hasattr(os, "sched_setaffinity"):
        os.sched_setaffinity(0, {core})
    if mode in ("librosa", "librosa_machine"):
        return be.worker("librosa", path, core)
    heads = mode.removeprefix("stream_")
    from streamprint.allocator import tune_allocator

    tune_allocator()  # as `streamprint serve` does at start (the CLI modes do it themselves)
    _stream(path, heads, round(be.WARMUP_SECONDS * be.BENCH_RATE))
    out = _stream(path, heads, None)
    out["mode"] = mode
    out["seconds"] = out["cpu_seconds"]
    return out


def run_isolated(mode: str, path: Path, core: int | None) -> dict[str, Any]:
    """One measurement in a fresh process (see module docstring)."""
    machine = mode in MACHINE_MODES
    if machine:
        core = None
    env = dict(os.environ) if machine else {**os.environ, **be.SINGLE_THREAD_ENV}
    pin = (lambda: os.sched_setaffinity(0, {core})) if core is not None else None
    if mode.startswith("cli_"):
        cmd = [sys.executable, "-m", "streamprint", "fingerprint", str(path), "--json",
               "--heads", mode.removeprefix("cli_").removesuffix("_machine")]
        start = time.perf_counter()
        proc = subprocess.run(cmd, env=env, capture_output=True, text=True, check=False, preexec_fn=pin)
        seconds = time.perf_counter() - start
        if proc.returncode != 0:
            raise RuntimeError(f"{mode} failed:\n{proc.stderr[-4000:]}")
        line = json.loads(proc.stdout.strip().splitlines()[-1])
        return {"mode": mode, "seconds": seconds, "model": line["model"], "backend": line["backend"],
                "precision": line["precision"], "heads": line["heads"],
                "media_seconds": line["media_seconds"]}
    return be.run_worker(
        Path(__file__).resolve(), ["--worker", mode, "--audio", str(path)], core, f"{mode} worker",
        single_thread=not machine,
    )


def render(results: dict[str, dict[str, Any]], command: str, core: int | None) -> str:
    lib = results["librosa"]["seconds"]
    media = results["cli_dsp"]["media_seconds"]
    heads = ("dsp", "auto", "learned")
    runs = "; ".join(f"{m} " + ", ".join(f"{x:.2f}" for x in r["runs_seconds"]) for m, r in results.items())
    stream = [results[f"stream_{h}"]["cpu_ms_per_stream_second"] for h in heads]
    cli = [results[f"cli_{h}"]["seconds"] for h in heads]
    models = " / ".join(f"`{results[f'cli_{h}']['model']}`" for h in heads)
    return "\n".join([
        f"Command: `{command}`",
        "",
        be.machine_line(be.machine_info()) + f" Every measurement in its own process pinned to core "
        f"[{core}] with one BLAS/OpenMP thread (except the whole-machine pair below); modes "
        f"interleaved, median of the runs reported (all runs, s: {runs}). Other jobs may share "
        "the machine, so compare the columns (same run) rather than absolute numbers across sections.",
        "",
        f"Input: {media / 60:.1f} minutes of generated music-like audio, 44.1 kHz stereo "
        f"(the `bench_engine.py` file). Models that ran (CLI, `--backend auto`): {models}.",
        "",
        "| what | `--heads dsp` (HPSS + YIN) | `--heads auto` | `--heads learned` (both heads) |",
        "|---|---:|---:|---:|",
        "| streaming 13D session, CPU ms per stream-second | "
        + " | ".join(f"{v:.2f} ({v / stream[0]:.2f}x)" for v in stream) + " |",
        "| `streamprint fingerprint FILE --json` end to end, wall s | "
        + " | ".join(f"{v:.2f} ({v / cli[0]:.2f}x)" for v in cli) + " |",
        f"| speed vs librosa ({lib:.2f} s, same descriptors) | "
        + " | ".join(f"{lib / v:.2f}x" for v in cli) + " |",
        "",
        *_machine_rows(results),
        "Target (issue 5): `streamprint fingerprint` of a 10-minute file at least 10x faster than "
        "librosa computing the same descriptors.",
    ])


def _machine_rows(results: dict[str, dict[str, Any]]) -> list[str]:
    """The whole-machine comparison (``cli_auto_machine`` vs ``librosa_machine``), if run."""
    if not all(m in results for m in MACHINE_MODES):
        return []
    cli, lib = results["cli_auto_machine"]["seconds"], results["librosa_machine"]["seconds"]
    cpus = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    return [
        f"On the whole machine ({cpus} CPUs, nothing pinned, the libraries' default threading; "
        "the CLI's batch fingerprint runs its frame analysis and loudness filter on one worker "
        "thread per CPU, `--threads`):",
        "",
        "| what | wall s | speed vs librosa |",
        "|---|---:|---:|",
        f"| `streamprint fingerprint FILE --json` (`--heads auto`), end to end | {cli:.2f} | {lib / cli:.2f}x |",
        f"| librosa, same descriptors (after its warm-up, imports not counted) | {lib:.2f} | 1.00x |",
        "",
    ]


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--minutes", type=float, default=10.0)
    parser.add_argument("--repeat", type=int, default=1)
    parser.add_argument("--core", type=int, default=None)
    parser.add_argument("--audio", type=Path, default=None)
    parser.add_argument("--write-docs", action="store_true")
    parser.add_argument("--modes", default=",".join(MODES), help="comma-separated subset (debugging)")
    parser.add_argument("--worker", choices=MODES, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.worker:
        print(json.dumps(worker(args.worker, args.audio, args.core)))
        return 0
    core = args.core
    if core is None and hasattr(os, "sched_getaffinity"):
        core = max(os.sched_getaffinity(0))
    path = args.audio or be.bench_file(args.minutes)
    modes = [m for m in args.modes.split(",") if m]
    runs: dict[str, list[dict[str, Any]]] = {m: [] for m in modes}
    for _ in range(args.repeat):
        for mode in modes:
            runs[mode].append(run_isolated(mode, path, core))
            print(mode, round(runs[mode][-1]["seconds"], 3), flush=True)
    results = {m: be.combine(r, peak_rss=False) for m, r in runs.items()}
    print(json.dumps(results, indent=1, default=str))
    if args.write_docs:
        command = "python scripts/bench_heads.py --write-docs" + (
            f" --minutes {args.minutes:g}" if args.minutes != 10.0 else "") + (
            f" --repeat {args.repeat}" if args.repeat != 1 else "")
        be.write_doc_section(SECTION, render(results, command, core))
    return 0


if __name__ == "__main__":
    sys.exit(main())
