"""``streamprint serve``: run the gRPC server.

Every flag is also an environment variable (``--max-streams`` ⇔ ``STREAMPRINT_MAX_STREAMS``);
see :mod:`streamprint.config`. Logs go to stderr; the first line says where it listens.
Exit codes: 0 after a graceful shutdown (SIGTERM/SIGINT), 1 when it cannot start (port in
use, unreadable TLS or token file, ...), 2 for a bad flag or environment value, or an unsafe
combination (a non-loopback ``--host`` without TLS and ``--auth-tokens`` and without
``--insecure``; ``--tls-cert`` without ``--tls-key``).
"""

from __future__ import annotations

import argparse
import sys
from typing import Any, TextIO

from streamprint.config import ServerConfig
from streamprint.errors import InvalidInputError, StreamprintError

EXIT_OK = 0
EXIT_ERROR = 1
EXIT_USAGE = 2

DESCRIPTION = (
    "Run the streamprint gRPC server (streamprint.v1 FingerprintService and AdminService, "
    "grpc.health.v1 health, server reflection). Every flag can also be set as an environment "
    "variable STREAMPRINT_<FLAG> (e.g. STREAMPRINT_PORT=50052); a flag beats the environment. "
    "Sizes accept KiB/MiB/GiB suffixes. SIGTERM drains: health turns NOT_SERVING, live "
    "streams get their final update, and the server exits 0 within --grace-s. --workers N "
    "(N > 1, or auto) runs N server processes on the one port (SO_REUSEPORT) under a "
    "supervisor that forwards SIGTERM and restarts a worker that dies."
)


def add_serve_parser(subparsers: Any) -> None:
    """Add the ``serve`` sub-command to ``streamprint``'s sub-parsers."""
    parser: argparse.ArgumentParser = subparsers.add_parser(
        "serve", help="run the gRPC server", description=DESCRIPTION
    )
    ServerConfig.add_arguments(parser)
    parser.set_defaults(handler=run_serve)


def configure_logging(level: str, fmt: str = "text") -> None:
    """One line per record on stderr (``fmt``: ``text`` or ``json``)."""
    from streamprint.session_log import configure_logging as configure

    configure(level, fmt)


def run_serve(args: argparse.Namespace, out: TextIO | None = None) -> int:
    """Handler of ``streamprint serve``: build the config once, then serve until SIGTERM."""
    del out  # the server logs to stderr
    try:
        config = ServerConfig.from_sources(args)
    except InvalidInputError as exc:
        print(f"streamprint serve: error: {exc.message}", file=sys.stderr)
        return EXIT_USAGE
    problems = config.security_problems()
    if problems:
        for problem in problems:
            print(f"streamprint serve: error: {problem}", file=sys.stderr)
        return EXIT_USAGE
    configure_logging(config.log_level, config.log_format)
    try:
        if config.effective_workers > 1:
            from streamprint.workers.supervisor import run_supervisor

            return run_supervisor(config)
        import asyncio  # here, not at the top: `streamprint fingerprint` builds this parser too

        from streamprint.api.server import serve
        from streamprint.shutdown import exit_leaving_no_work

        return exit_leaving_no_work(asyncio.run(serve(config)))
    except StreamprintError as exc:
        print(f"streamprint serve: error: {exc.reason}: {exc.message}", file=sys.stderr)
        return EXIT_ERROR
    except (OSError, RuntimeError) as exc:
        print(f"streamprint serve: error: cannot start on {config.address}: {exc}", file=sys.stderr)
        return EXIT_ERROR


def main(argv: list[str] | None = None) -> int:
    """``python -m streamprint.serve_cli``: the same as ``streamprint serve``."""
    parser = argparse.ArgumentParser(prog="streamprint serve", description=DESCRIPTION)
    ServerConfig.add_arguments(parser)
    return run_serve(parser.parse_args(argv))


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
