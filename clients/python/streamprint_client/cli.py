"""``streamprint-client``: talk to a streamprint server from the command line.

Sub-commands: ``stream PATH [--realtime] [--chunk-ms N] [--json]``, ``fingerprint PATH``,
``batch PATH...``, ``validate --session ID``, ``info``, ``cache-stats``, ``cache-clear``
(each also takes ``--json``: one JSON object per line, flushed as produced). The server
address comes from ``--server`` or ``STREAMPRINT_SERVER`` (default 127.0.0.1:50051); ``--ca``
(``STREAMPRINT_CA``) connects with TLS, ``--token`` (``STREAMPRINT_TOKEN``) authenticates, and
``--cert``/``--key`` (``STREAMPRINT_CLIENT_CERT``/``_KEY``) present a client certificate.

Errors print the status code name (e.g. ``INVALID_ARGUMENT``) and its details on stderr
(and, with ``--json``, an ``{"error": ...}`` line on stdout). Exit codes: 0 success,
1 an RPC or file error, 2 usage, 3 a validation that ran but did not pass, 130 Ctrl-C.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Callable, Sequence
from typing import TextIO

from streamprint_client import __version__
from streamprint_client._common import (
    CA_ENV,
    CLIENT_CERT_ENV,
    CLIENT_KEY_ENV,
    SERVER_ENV,
    TOKEN_ENV,
    default_server,
    read_file,
)
from streamprint_client.client import StreamprintClient
from streamprint_client.errors import StreamprintRpcError
from streamprint_client.types import Fingerprint, StreamUpdate, ValidationResult

EXIT_OK = 0
EXIT_ERROR = 1
EXIT_USAGE = 2
EXIT_NOT_PASSED = 3
EXIT_INTERRUPTED = 130

PROG = "streamprint-client"


def _positive_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not an integer") from None
    if value <= 0:
        raise argparse.ArgumentTypeError(f"{value} must be > 0")
    return value


def _positive_float(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number") from None
    if not value > 0:
        raise argparse.ArgumentTypeError(f"{value} must be > 0")
    return value


def build_parser() -> argparse.ArgumentParser:
    """The argument parser."""
    parser = argparse.ArgumentParser(
        prog=PROG,
        description="Client for a streamprint gRPC server: live streaming fingerprints, whole-media "
        "and batch fingerprints, validation, server info and cache administration.",
    )
    parser.add_argument("--version", action="version", version=f"{PROG} {__version__}")
    parser.add_argument(
        "--server",
        default=None,
        help=f"server address host:port (default: ${SERVER_ENV} or 127.0.0.1:50051)",
    )
    parser.add_argument(
        "--ca",
        default=None,
        metavar="PEM",
        help=f"connect with TLS, trusting this CA bundle (default: ${CA_ENV}; unset: plaintext)",
    )
    parser.add_argument(
        "--token",
        default=None,
        help=f"auth token, sent as 'authorization: Bearer TOKEN' (default: ${TOKEN_ENV})",
    )
    parser.add_argument(
        "--cert",
        default=None,
        metavar="PEM",
        help=f"client certificate for mutual TLS (default: ${CLIENT_CERT_ENV}); needs --key",
    )
    parser.add_argument(
        "--key",
        default=None,
        metavar="PEM",
        help=f"private key of --cert (default: ${CLIENT_KEY_ENV})",
    )
    parser.add_argument(
        "--timeout",
        type=_positive_float,
        default=120.0,
        help="deadline of unary calls in seconds (default 120)",
    )
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    def command(name: str, help_text: str, handler: Callable[..., int]) -> argparse.ArgumentParser:
        p = sub.add_parser(name, help=help_text, description=help_text)
        p.add_argument("--json", action="store_true", help="print one JSON object per line")
        p.set_defaults(handler=handler)
        return p

    p = command(
        "stream",
        "stream a file's encoded bytes and print live updates (the last one has final=true)",
        _cmd_stream,
    )
    p.add_argument(
        "path",
        help="media file (WAV, FLAC, Ogg Vorbis/Opus, MP3; video: MPEG-TS, fragmented MP4, "
        "WebM, MKV); the server decodes it",
    )
    p.add_argument(
        "--realtime",
        action="store_true",
        help="pace chunks at media time (video: by the container's timestamps)",
    )
    p.add_argument(
        "--modality",
        choices=("auto", "audio", "video"),
        default="auto",
        help="audio or video (default auto: video for MPEG-TS, MP4 and Matroska/WebM files)",
    )
    p.add_argument(
        "--chunk-ms",
        type=_positive_int,
        default=100,
        help="media per chunk in milliseconds (default 100)",
    )
    p.add_argument(
        "--update-interval",
        type=_positive_float,
        default=None,
        help="seconds of media between updates (default: the server's, 1.0)",
    )
    p.add_argument("--client-stream-id", default="", help="id echoed in every update")

    p = command(
        "fingerprint",
        "fingerprint a whole file (25 audio / 13 video dimensions; cached by content)",
        _cmd_fingerprint,
    )
    p.add_argument("path", help="media file")
    p.add_argument(
        "--modality",
        choices=("auto", "audio", "video"),
        default="auto",
        help="audio or video (default auto: video for MPEG-TS, MP4 and Matroska/WebM files)",
    )

    p = command("batch", "fingerprint many files in one call (a status per item)", _cmd_batch)
    p.add_argument("paths", nargs="+", metavar="PATH", help="media files")

    p = command(
        "validate",
        "recompute a finished session from its kept media and check its final fingerprint",
        _cmd_validate,
    )
    p.add_argument("--session", required=True, metavar="ID", help="session id printed by `stream`")
    p.add_argument(
        "--threshold",
        type=float,
        default=None,
        help="similarity needed to pass (default: the server's, 0.95)",
    )

    command("info", "server versions, dimension registry, models and limits", _cmd_info)
    command("cache-stats", "cache and session-store statistics", _cmd_cache_stats)
    p = command("cache-clear", "empty the server's fingerprint cache", _cmd_cache_clear)
    p.add_argument(
        "--sessions", action="store_true", help="also drop finished sessions' kept media"
    )
    return parser


# ---------------------------------------------------------------------------- output


def _emit(obj: object, out: TextIO) -> None:
    out.write(json.dumps(obj, separators=(", ", ": "), allow_nan=False, default=str) + "\n")
    out.flush()


def _table(fp: Fingerprint, out: TextIO, title: str) -> None:
    out.write(f"{title}\n  {'dimension':<26}{'value':>14}{'confidence':>12}\n")
    for name, value in fp.values.items():
        out.write(f"  {name:<26}{value:>14.4f}{fp.confidence.get(name, 0.0):>12.3f}\n")
    out.flush()


class _LiveView:
    """A redrawn terminal view: progress bar, then each dimension with its confidence."""

    def __init__(self, out: TextIO, path: str) -> None:
        self._out = out
        self._path = path
        self._lines = 0
        self._sent = 0
        self._total = 1
        self._update: StreamUpdate | None = None

    def progress(self, sent: int, total: int) -> None:
        self._sent, self._total = sent, max(1, total)
        self._draw()

    def update(self, update: StreamUpdate) -> None:
        self._update = update
        self._draw()

    def _draw(self) -> None:
        width = 30
        frac = min(1.0, self._sent / self._total)
        bar = "#" * round(frac * width) + "-" * (width - round(frac * width))
        lines = [f"{self._path} [{bar}] {frac * 100:5.1f}%"]
        u = self._update
        if u is not None:
            fp = u.fingerprint
            lines[0] += f"  {fp.media_seconds:7.2f} s  revision {fp.revision}"
            for name, value in fp.values.items():
                conf = fp.confidence.get(name, 0.0)
                lines.append(
                    f"  {name:<26}{value:>12.3f}  {'*' * round(conf * 10):<10} {conf:4.2f}"
                )
        text = (f"\x1b[{self._lines}F" if self._lines else "") + "".join(
            f"\x1b[2K{line}\n" for line in lines
        )
        self._out.write(text)
        self._out.flush()
        self._lines = len(lines)


# ---------------------------------------------------------------------------- commands


def _cmd_stream(client: StreamprintClient, args: argparse.Namespace, out: TextIO) -> int:
    live = None if args.json or not out.isatty() else _LiveView(out, args.path)
    stream = client.stream_file(
        args.path,
        chunk_ms=args.chunk_ms,
        realtime=args.realtime,
        on_progress=live.progress if live else None,
        update_interval_s=args.update_interval or 0.0,
        client_stream_id=args.client_stream_id,
        modality=None if args.modality == "auto" else args.modality,
    )
    try:
        for update in stream:
            if args.json:
                _emit({**update.to_json_dict(), "path": args.path}, out)
            elif live is not None:
                live.update(update)
                if update.final:
                    out.write(f"session {update.session_id}\n")
            elif update.final:
                _table(
                    update.fingerprint,
                    out,
                    f"{args.path}: session {update.session_id}, {update.fingerprint.algorithm}, "
                    f"{update.fingerprint.media_seconds:.2f} s, final (revision {update.revision})",
                )
            else:
                low = min(update.fingerprint.confidence.values(), default=0.0)
                out.write(
                    f"revision {update.revision}: {update.fingerprint.media_seconds:7.2f} s, "
                    f"lowest confidence {low:.2f}\n"
                )
                out.flush()
    except BaseException:
        stream.cancel()
        raise
    return EXIT_OK


def _cmd_fingerprint(client: StreamprintClient, args: argparse.Namespace, out: TextIO) -> int:
    result = client.fingerprint_file(
        args.path, modality=None if args.modality == "auto" else args.modality
    )
    if args.json:
        _emit({**result.to_json_dict(), "path": args.path}, out)
    else:
        fp = result.fingerprint
        _table(
            fp,
            out,
            f"{args.path}: {fp.algorithm}, {fp.media_seconds:.2f} s, model {fp.model}/{fp.model_version}, "
            f"cached {'yes' if result.cached else 'no'}",
        )
    return EXIT_OK


def _cmd_batch(client: StreamprintClient, args: argparse.Namespace, out: TextIO) -> int:
    items = client.batch([read_file(p) for p in args.paths])
    failed = 0
    for item in items:
        path = args.paths[item.index]
        if args.json:
            _emit({**item.to_json_dict(), "path": path}, out)
        elif item.result is not None:
            fp = item.result.fingerprint
            _table(
                fp,
                out,
                f"{path}: {fp.algorithm}, {fp.media_seconds:.2f} s, cached {'yes' if item.result.cached else 'no'}",
            )
        else:
            assert item.error is not None
            out.write(f"{path}: error: {item.error.describe()}\n")
            out.flush()
        failed += item.error is not None
    if failed:
        print(f"{PROG}: error: {failed} of {len(items)} items failed", file=sys.stderr)
    return EXIT_ERROR if failed else EXIT_OK


def _print_validation(result: ValidationResult, out: TextIO) -> None:
    r = result.report
    assert r is not None
    out.write(
        f"session {result.session_id}: {'PASSED' if r.passed else 'FAILED'}, similarity {r.similarity:.4f} "
        f"(threshold {r.similarity_threshold:g})\n"
    )
    out.write(f"  {'dimension':<26}{'reference':>12}{'candidate':>12}{'err/tol':>9}  verdict\n")
    for d in r.dimensions:
        cand = "-" if d.candidate is None else f"{d.candidate:.4f}"
        err = "-" if d.error_tolerance_units is None else f"{d.error_tolerance_units:.2f}"
        mark = " (critical)" if d.critical and not d.within_tolerance else ""
        out.write(f"  {d.name:<26}{d.reference:>12.4f}{cand:>12}{err:>9}  {d.verdict}{mark}\n")
    if r.failed_dimensions:
        out.write(f"  failed: {', '.join(r.failed_dimensions)}\n")
    if r.octave_errors:
        out.write(f"  octave errors: {', '.join(r.octave_errors)}\n")
    out.flush()


def _cmd_validate(client: StreamprintClient, args: argparse.Namespace, out: TextIO) -> int:
    from streamprint_client._common import validation_item

    (result,) = client.validate(
        [validation_item(session_id=args.session)], similarity_threshold=args.threshold
    )
    if args.json:
        _emit(result.to_json_dict(), out)
    elif result.error is None:
        _print_validation(result, out)
    if result.error is not None:
        if args.json:  # the JSON line already carries the error
            print(f"{PROG}: error: {result.error.describe()}", file=sys.stderr)
            return EXIT_ERROR
        raise result.error
    return EXIT_OK if result.passed else EXIT_NOT_PASSED


def _cmd_info(client: StreamprintClient, args: argparse.Namespace, out: TextIO) -> int:
    info = client.server_info()
    if args.json:
        _emit(info.to_json_dict(), out)
        return EXIT_OK
    out.write(f"streamprint server {info.server_version} ({info.api_version}) at {client.target}\n")
    out.write(
        "components: "
        + ", ".join(f"{k} {v}" for k, v in sorted(info.component_versions.items()))
        + "\n"
    )
    for m in info.models:
        out.write(
            f"model ({m['modality']}): {m['name']} {m['version']} on {m['backend']} ({m['precision']})\n"
        )
    out.write(f"containers: {', '.join(info.container_formats)}\n")
    out.write("limits:\n")
    for key, value in info.limits.items():
        out.write(f"  {key}: {value}\n")
    out.write(f"dimensions ({len(info.dimensions)}):\n")
    for d in info.dimensions:
        flags = ("streamed" if d.streamed else "batch") + (", critical" if d.critical else "")
        out.write(
            f"  {d.name:<26}{d.unit:<7}{d.low:>9g}..{d.high:<9g} tol {d.tolerance:g} {d.tolerance_kind:<9} {flags}\n"
        )
    out.flush()
    return EXIT_OK


def _cmd_cache_stats(client: StreamprintClient, args: argparse.Namespace, out: TextIO) -> int:
    stats = client.cache_stats()
    if args.json:
        _emit({name: s.to_json_dict() for name, s in stats.items()}, out)
        return EXIT_OK
    for name, s in stats.items():
        out.write(
            f"{name}: size {s.size}/{s.max_size} ({s.size_bytes}/{s.max_bytes} bytes), hits {s.hits}, "
            f"misses {s.misses}, hit rate {s.hit_rate:.3f}, evictions {s.evictions}, "
            f"expirations {s.expirations}, ttl {s.ttl_seconds:g} s\n"
        )
    out.flush()
    return EXIT_OK


def _cmd_cache_clear(client: StreamprintClient, args: argparse.Namespace, out: TextIO) -> int:
    removed = client.clear_cache(include_sessions=args.sessions)
    if args.json:
        _emit(removed, out)
    else:
        out.write(
            f"removed {removed['fingerprints_removed']} fingerprints and {removed['sessions_removed']} sessions\n"
        )
        out.flush()
    return EXIT_OK


def main(argv: Sequence[str] | None = None, *, out: TextIO | None = None) -> int:
    """Run the CLI; returns the exit code."""
    parser = build_parser()
    args = parser.parse_args(argv)
    stream = out or sys.stdout
    target = args.server or default_server()
    try:
        connection = StreamprintClient(
            target,
            timeout_s=args.timeout,
            ca=args.ca,
            token=args.token,
            client_cert=args.cert,
            client_key=args.key,
        )
    except ValueError as exc:
        print(f"{PROG}: error: {exc}", file=sys.stderr)
        return EXIT_USAGE
    except OSError as exc:
        print(
            f"{PROG}: error: cannot read {getattr(exc, 'filename', '') or 'a TLS file'}: "
            f"{exc.strerror or exc}",
            file=sys.stderr,
        )
        return EXIT_USAGE
    try:
        with connection as client:
            code: int = args.handler(client, args, stream)
            return code
    except StreamprintRpcError as exc:
        print(f"{PROG}: error: {exc.describe()}", file=sys.stderr)
        if getattr(args, "json", False):
            _emit({"error": exc.to_json_dict()}, stream)
        return EXIT_ERROR
    except OSError as exc:
        if isinstance(exc, BrokenPipeError):
            return EXIT_OK
        message = f"{exc.strerror or exc}: {getattr(exc, 'filename', '') or ''}"
        print(f"{PROG}: error: {message}", file=sys.stderr)
        if getattr(args, "json", False):  # the same {"error": ...} line as an RPC error's
            _emit({"error": {"code": "LOCAL_FILE", "message": message, "details": []}}, stream)
        return EXIT_ERROR
    except KeyboardInterrupt:
        print(f"{PROG}: interrupted", file=sys.stderr)
        return EXIT_INTERRUPTED


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
