"""The end of a server process: nothing it was computing outlives the drain's grace.

A unary call's computation runs on a worker thread that cannot be interrupted. When the
call ends (deadline, cancel, shutdown) the computation goes on, and Python joins every such
non-daemon thread at exit: a server told to stop, whose grace (``--grace-s``) was over,
stayed alive 45 s and more, at full CPU, until a long computation nobody waited for ended.
"""

from __future__ import annotations

import logging
import os
import sys
import threading
import time

log = logging.getLogger("streamprint.server")

#: How long idle worker threads get to notice their pool was shut down.
IDLE_THREADS_EXIT_S = 1.0


def exit_leaving_no_work(code: int) -> int:
    """Once the server has stopped: ``code`` if no other non-daemon thread is still running
    after :data:`IDLE_THREADS_EXIT_S`; otherwise log the abandoned computations, flush the
    logs and end the process now with ``code`` (``os._exit``: no thread is joined)."""
    deadline = time.monotonic() + IDLE_THREADS_EXIT_S
    busy = _other_threads()
    for thread in busy:
        thread.join(max(0.0, deadline - time.monotonic()))
    busy = _other_threads()
    if not busy:
        return code
    log.warning(
        "stopped with %d computation thread(s) still running (%s); ending the process without them",
        len(busy), ", ".join(sorted(t.name for t in busy)),
    )
    logging.shutdown()
    for stream in (sys.stdout, sys.stderr):
        stream.flush()
    os._exit(code)


def _other_threads() -> list[threading.Thread]:
    return [
        t for t in threading.enumerate()
        if t is not threading.current_thread() and not t.daemon and t.is_alive()
    ]
