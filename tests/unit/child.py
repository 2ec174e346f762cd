"""Running a snippet in a fresh interpreter (what a new server process imports at start-up)."""

from __future__ import annotations

import os
import subprocess
import sys


def python_stdout(code: str) -> str:
    """Run ``code`` with ``python -c`` and this process's import path; its stdout (raises
    :class:`subprocess.CalledProcessError` when it fails)."""
    env = dict(os.environ, PYTHONPATH=os.pathsep.join(p for p in sys.path if p))
    done = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, check=True)
    return done.stdout
