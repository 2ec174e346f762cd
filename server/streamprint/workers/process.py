"""A worker process: ``python -m streamprint.workers.process READY_FD``.

The supervisor (:mod:`streamprint.workers.supervisor`) starts it with ``subprocess``, writes
the pickled ``(ServerConfig, WorkerRole)`` to its stdin and closes it, and reads from the
pipe whose write end is ``READY_FD``: ``("ready", port, pid)`` once the worker accepts calls,
or ``("error", message)`` when it cannot start. The pipe's end of file (the worker holds the
only write end) tells the supervisor a worker died while starting.

A plain subprocess, not multiprocessing's ``spawn``: ``spawn`` starts multiprocessing's
resource tracker, one more Python process (about 13 MB resident) that nothing here uses
(the shared ledger is an ``mmap`` of a file in the run directory).
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import pickle
import sys
from multiprocessing.connection import Connection

from streamprint.config import ServerConfig
from streamprint.errors import StreamprintError
from streamprint.workers.role import WorkerRole


def serve_worker(config: ServerConfig, role: WorkerRole, conn: Connection) -> int:
    """Serve as worker ``role``, telling ``conn`` once it accepts calls; the exit code."""
    from streamprint.api.server import serve
    from streamprint.session_log import configure_logging

    configure_logging(config.log_level, config.log_format, worker=role.index)

    def started(port: int) -> None:
        conn.send(("ready", port, os.getpid()))

    code = 1
    try:
        code = asyncio.run(serve(config, role=role, started=started))
    except StreamprintError as exc:
        with contextlib.suppress(OSError):
            conn.send(("error", f"{exc.reason}: {exc.message}"))
    except (OSError, RuntimeError) as exc:
        with contextlib.suppress(OSError):
            conn.send(("error", f"cannot start on {config.address}: {exc}"))
    finally:
        conn.close()
    from streamprint.shutdown import exit_leaving_no_work

    return exit_leaving_no_work(code)


def main(argv: list[str]) -> int:
    """``READY_FD`` in ``argv[1]``; the config and role pickled on stdin."""
    conn = Connection(int(argv[1]), readable=False)
    config, role = pickle.loads(sys.stdin.buffer.read())
    devnull = os.open(os.devnull, os.O_RDONLY)  # fd 0 stays taken: not a socket later
    os.dup2(devnull, 0)
    os.close(devnull)
    if not isinstance(config, ServerConfig) or not isinstance(role, WorkerRole):
        conn.send(("error", "the supervisor sent no (ServerConfig, WorkerRole)"))
        return 2
    return serve_worker(config, role, conn)


if __name__ == "__main__":
    sys.exit(main(sys.argv))
