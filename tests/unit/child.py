"""Running a snippet in a fresh interpreter (what a new server process imports at start-up)."""

from __future__ import annotations

import subprocess
import sys

from streamprint.subprocesses import python_child_env


def python_stdout(code: str) -> str:
    """Run ``code`` with ``python -c`` and this process's import path; its stdout (raises
    :class:`subprocess.CalledProcessError` when it fails)."""
    done = subprocess.run(
        [sys.executable, "-c", code], env=python_child_env(), capture_output=True, text=True, check=True
    )
    return done.stdout
