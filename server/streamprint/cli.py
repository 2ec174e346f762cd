"""The ``streamprint`` command line: offline fingerprints and the server.

``streamprint fingerprint PATH [--json] [--stream --chunk-ms N] [--modality M] [--backend B]
[--precision P] [--heads H]`` prints a file's fingerprint (video 13D when the file has a
video stream; JSON lines carry the ``backend``, ``precision`` and ``selection_reason`` of the
per-frame work, audio's spectral model or the video model, and for audio the ``heads`` that
ran and why);
``streamprint serve`` runs the gRPC server. Errors print one line on stderr and exit non-zero.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from collections.abc import Callable, Iterator, Sequence
from typing import TYPE_CHECKING, TextIO

from streamprint import __version__
from streamprint.engine import dims
from streamprint.errors import InvalidInputError, StreamprintError

if TYPE_CHECKING:  # numpy is imported by the subcommands that need it, not by `serve`'s supervisor
    from streamprint.engine.fingerprint import AudioBuffer, Fingerprint

EXIT_OK = 0
EXIT_ERROR = 1
EXIT_USAGE = 2


def _positive_int(low: int, high: int) -> Callable[[str], int]:
    def parse(text: str) -> int:
        try:
            value = int(text)
        except ValueError as exc:
            raise argparse.ArgumentTypeError(f"{text!r} is not an integer") from exc
        if not low <= value <= high:
            raise argparse.ArgumentTypeError(f"{value} is out of range {low}..{high}")
        return value

    return parse


def _positive_float(text: str) -> float:
    try:
        value = float(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number") from exc
    if not value > 0:
        raise argparse.ArgumentTypeError(f"{value} must be > 0")
    return value


def build_parser() -> argparse.ArgumentParser:
    """The argument parser of ``streamprint``."""
    parser = argparse.ArgumentParser(
        prog="streamprint", description="Streaming media fingerprints: offline CLI and gRPC server."
    )
    parser.add_argument("--version", action="version", version=f"streamprint {__version__}")
    sub = parser.add_subparsers(dest="command", required=True)
    fp = sub.add_parser(
        "fingerprint",
        help="fingerprint a media file (audio 25D, 13D live updates with --stream; video 13D)",
        description="Fingerprint a media file. Without --stream: the 25D batch fingerprint "
        "(video: 13D). With --stream: feed the file through a streaming session in chunks of "
        "--chunk-ms of media and print every update (13D); the last has final=true. Files "
        "with a video stream get the video fingerprint unless --modality audio.",
    )
    fp.add_argument(
        "path",
        help="media file (audio: WAV, FLAC, OGG/Vorbis, Opus, MP3; video: MP4, MPEG-TS, MKV, WebM, ...)",
    )
    fp.add_argument(
        "--modality", choices=("auto", "audio", "video"), default="auto",
        help="audio or video fingerprint (default auto: video when the container has a video stream)",
    )
    fp.add_argument("--json", action="store_true", help="print one JSON object per line")
    fp.add_argument("--stream", action="store_true", help="stream the file through a live session")
    fp.add_argument(
        "--chunk-ms", type=_positive_int(1, 600_000), default=100,
        help="media per streamed chunk in milliseconds (default 100)",
    )
    fp.add_argument(
        "--update-interval", type=_positive_float, default=1.0,
        help="seconds of media between streamed updates (default 1.0)",
    )
    fp.add_argument(
        "--max-seconds", type=_positive_float, default=4 * 3600.0,
        help="refuse media longer than this many seconds (default 14400)",
    )
    fp.add_argument(
        "--backend", choices=("auto", "onnxruntime", "openvino", "numpy"), default="auto",
        help="runtime for the per-frame work (default auto: the fastest that passes the "
        "accuracy gate on this machine)",
    )
    fp.add_argument(
        "--precision", choices=("auto", "int8", "fp32"), default="auto",
        help="model precision (default auto: the best that passes the accuracy gate)",
    )
    fp.add_argument(
        "--heads", choices=("auto", "learned", "dsp"), default="auto",
        help="harmonic_ratio / pitch_stability by learned heads or by HPSS + YIN (default auto: "
        "learned when the heads passed their accuracy gate)",
    )
    fp.add_argument(
        "--reselect", action="store_true",
        help="measure the backends again for --backend/--precision auto instead of loading the "
        "choice remembered from an earlier run ($STREAMPRINT_SELECTION_MEMO: its file, or off)",
    )
    fp.add_argument(
        "--threads", type=_positive_int(0, 256), default=None,
        help="worker threads of the batch fingerprint beside the main one: frame analysis and "
        "loudness filtering run there, overlapped with the rest; same result whatever the "
        "count (default: the CPUs this process may use, 0 on a single CPU; 0 = no worker)",
    )
    fp.set_defaults(handler=_cmd_fingerprint)
    try:
        from streamprint.serve_cli import add_serve_parser
    except ImportError:  # pragma: no cover - server layer not installed
        pass
    else:
        add_serve_parser(sub)
    return parser


def _emit(obj: dict[str, object], out: TextIO) -> None:
    out.write(json.dumps(obj, separators=(", ", ": ")) + "\n")
    out.flush()


def _print_table(fp: Fingerprint, path: str, out: TextIO) -> None:
    out.write(f"{path}: {fp.algorithm}, {fp.media_seconds:.2f} s, model {fp.model}/{fp.model_version}\n")
    out.write(f"  {'dimension':<26}{'value':>14}  {'unit':<6}{'confidence':>11}\n")
    for name, value in dims.ordered(fp.values).items():
        unit = dims.get(name).unit
        out.write(f"  {name:<26}{value:>14.4f}  {unit:<6}{fp.confidence[name]:>11.3f}\n")
    out.flush()


def _chunks(buffer: AudioBuffer, chunk_ms: int) -> Iterator[AudioBuffer]:
    from streamprint.engine.fingerprint import AudioBuffer

    step = max(1, buffer.sample_rate * chunk_ms // 1000)
    for start in range(0, buffer.samples.shape[0], step):
        yield AudioBuffer(buffer.samples[start : start + step], buffer.sample_rate)


def _runtime_keys(backend: str, precision: str, reason: str) -> dict[str, object]:
    """The JSON keys that say what ran the per-frame work (audio and video alike)."""
    return {"backend": backend, "precision": precision, "selection_reason": reason}


def _usable_cpus() -> int:
    """CPUs this process may run on (its affinity mask where the OS has one)."""
    if hasattr(os, "sched_getaffinity"):
        return max(1, len(os.sched_getaffinity(0)))
    return max(1, os.cpu_count() or 1)


def _is_video(args: argparse.Namespace) -> bool:
    if args.modality != "auto":
        return bool(args.modality == "video")
    from pathlib import Path

    from streamprint.engine.decode import PROBE_BYTES, is_audio_only

    path = Path(args.path)
    if not path.is_file():
        return False  # let the audio path report the missing file as before
    try:
        with path.open("rb") as fh:
            if is_audio_only(fh.read(PROBE_BYTES)):
                return False  # WAV / FLAC: no need to load PyAV to probe them
    except OSError:
        return False  # the audio path reports the unreadable file
    from streamprint.engine.video import has_video_stream

    return has_video_stream(path)


def _cmd_fingerprint_video(args: argparse.Namespace, out: TextIO) -> int:
    """Video 13D: batch (seekable decode, any container) or frames streamed through a session."""
    from itertools import islice
    from pathlib import Path

    from streamprint.engine.video import VideoSession, VideoSessionConfig, iter_frames
    from streamprint.runtime import LoadOptions
    from streamprint.runtime.video_select import select_video

    if not Path(args.path).is_file():
        raise FileNotFoundError(2, "no such file", args.path)
    selection = select_video(args.backend, args.precision, LoadOptions(threads=1))
    args.runtime_keys = _runtime_keys(selection.backend, selection.precision, selection.reason)
    interval = args.update_interval if args.stream else None
    session = VideoSession(
        VideoSessionConfig(update_interval_s=interval, max_media_seconds=args.max_seconds),
        analyzer=selection.analyzer,
    )
    frames = iter_frames(args.path, field="path")
    if not args.stream:
        session.push_frames(frames)
        fp = session.finish()
        if args.json:
            _emit({**fp.to_json_dict(), "path": args.path, **args.runtime_keys}, out)
        else:
            _print_table(fp, args.path, out)
        return EXIT_OK
    # Feed decoded frames in groups of about --chunk-ms of media (updates depend on timestamps only).
    group = max(1, round(args.chunk_ms / 1000 * 30))
    while True:
        batch = list(islice(frames, group))
        if not batch:
            break
        for update in session.push_frames(batch):
            _report_update(update, args, out)
    _report_update(session.finish(), args, out)
    return EXIT_OK


def _cmd_fingerprint(args: argparse.Namespace, out: TextIO) -> int:
    from streamprint.allocator import tune_allocator

    tune_allocator()
    if _is_video(args):
        return _cmd_fingerprint_video(args, out)
    from concurrent.futures import ThreadPoolExecutor

    from streamprint.engine import compiled
    from streamprint.engine.decode import decode_file, decode_file_blocks
    from streamprint.engine.session import (
        AudioSession,
        SessionConfig,
        batch_block_seconds,
        fingerprint_blocks,
    )
    from streamprint.runtime.memo import remembered_analyzer

    cpus = _usable_cpus()
    threads = args.threads if args.threads is not None else (cpus if cpus > 1 else 0)
    compiled.warm_up()  # a build without the compiled kernels fails here, before any work
    # Backend selection (model loads, a timing run) overlaps opening (--stream: decoding) the file.
    with ThreadPoolExecutor(1, "prepare") as pool:
        selecting = pool.submit(
            remembered_analyzer, args.backend, args.precision, heads=args.heads, reselect=args.reselect
        )
        if args.stream:
            buffer = decode_file(args.path, max_seconds=args.max_seconds)
            frames = int(buffer.samples.shape[0])
        else:
            # 16-bit WAV / AIFF / ... are read block by block while the fingerprint runs
            media = decode_file_blocks(args.path, block_seconds=batch_block_seconds(), max_seconds=args.max_seconds)
            frames = media.frames
        selection = selecting.result()
    if frames == 0:
        raise InvalidInputError.for_field("path", "the file holds no audio samples", "non-empty audio")
    args.runtime_keys = {
        **_runtime_keys(selection.backend, selection.precision, selection.reason),
        "heads": selection.heads,
        "heads_reason": selection.heads_reason,
    }
    if not args.stream:
        fp = fingerprint_blocks(media, dims.AUDIO_25D, analyzer=selection.analyzer, analysis_threads=threads)
        if args.json:
            _emit({**fp.to_json_dict(), "path": args.path, **args.runtime_keys}, out)
        else:
            _print_table(fp, args.path, out)
        return EXIT_OK
    session = AudioSession(
        SessionConfig(buffer.sample_rate, buffer.channels, dims.AUDIO_13D, args.update_interval),
        analyzer=selection.analyzer,
    )
    updates: list[Fingerprint] = []
    for chunk in _chunks(buffer, args.chunk_ms):
        updates = session.push(chunk.samples)
        for update in updates:
            _report_update(update, args, out)
    final = session.finish()
    _report_update(final, args, out)
    return EXIT_OK


def _report_update(fp: Fingerprint, args: argparse.Namespace, out: TextIO) -> None:
    if args.json:
        _emit({**fp.to_json_dict(), "path": args.path, **args.runtime_keys}, out)
    elif fp.final:
        _print_table(fp, args.path, out)
    else:
        low = min(fp.confidence.values())
        out.write(f"revision {fp.revision}: {fp.media_seconds:7.2f} s, lowest confidence {low:.2f}\n")
        out.flush()


def _fail(reason: str, message: str) -> int:
    """Print the one stderr line of an expected error; the exit code for it."""
    print(f"streamprint: error: {reason}: {message}", file=sys.stderr)
    return EXIT_ERROR


def main(argv: Sequence[str] | None = None, *, out: TextIO | None = None) -> int:
    """Run the CLI; returns the exit code (never raises for expected errors)."""
    parser = build_parser()
    args = parser.parse_args(argv)
    stream = out or sys.stdout
    try:
        code: int = args.handler(args, stream)
        return code
    except StreamprintError as exc:
        return _fail(exc.reason, exc.message)
    except FileNotFoundError as exc:
        return _fail("NOT_FOUND", f"no such file: {exc.filename}")
    except IsADirectoryError as exc:
        return _fail("INVALID_INPUT", f"is a directory: {exc.filename}")
    except PermissionError as exc:
        return _fail("PERMISSION_DENIED", str(exc.filename))
    except KeyboardInterrupt:
        return 130
    except BrokenPipeError:
        return EXIT_OK


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
