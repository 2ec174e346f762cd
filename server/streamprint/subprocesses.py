"""Starting this package's own Python child processes."""

from __future__ import annotations

import os
import sys


def python_child_env() -> dict[str, str]:
    """This process's environment with ``PYTHONPATH`` set to its ``sys.path``, so a child
    ``sys.executable`` imports the same ``streamprint`` (a source checkout on ``PYTHONPATH``
    or an installed package alike)."""
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(p for p in sys.path if p)
    return env
