"""``--backend auto`` measured in a child process, so the caller loads only the winner.

``select_analyzer("auto", ...)`` loads every candidate runtime and times it; a server
process that did so itself would keep every runtime's libraries resident (onnxruntime and
OpenVINO together cost about 45 MB more than the one chosen). A child process measures and
prints its ``Selection.to_json_dict()``; the server then loads that backend and precision
explicitly. With ``--workers N`` the supervisor measures once and hands the same record to
every worker: the workers run one runtime (the same bits on every worker, whichever one a
connection lands on) and none of them times candidates while the others start.

No numpy here: the supervisor imports this module.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from typing import Any

from streamprint.subprocesses import python_child_env

_CHILD_PROGRAM = """
import json, sys
from streamprint.runtime import LoadOptions, select_analyzer
print(json.dumps(select_analyzer(sys.argv[1], sys.argv[2], LoadOptions(threads=1)).to_json_dict()))
"""
#: Seconds the child may take (it loads and times every candidate).
CHILD_TIMEOUT_S = 300.0
_MEASURED: dict[tuple[str, str, str], dict[str, Any]] = {}


def select_in_child(backend: str, precision: str) -> dict[str, Any] | None:
    """The selection for ``backend``/``precision`` (``Selection.to_json_dict()``: ``backend``,
    ``precision``, ``reason``, ``candidates``...) made in a child process, remembered per
    process; ``None`` when the child fails (the caller then selects in-process and raises
    what that raises)."""
    key = (backend, precision, os.environ.get("STREAMPRINT_MODELS_DIR", ""))
    if key in _MEASURED:
        return _MEASURED[key]
    try:
        done = subprocess.run(
            [sys.executable, "-c", _CHILD_PROGRAM, backend, precision],
            env=python_child_env(), capture_output=True, text=True, timeout=CHILD_TIMEOUT_S, check=True,
        )
        chosen = json.loads(done.stdout.strip().splitlines()[-1])
    except (OSError, subprocess.SubprocessError, ValueError, IndexError):
        return None
    if not isinstance(chosen, dict) or not {"backend", "precision", "reason"} <= chosen.keys():
        return None
    _MEASURED[key] = chosen
    return chosen
