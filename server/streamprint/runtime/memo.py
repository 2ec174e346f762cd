"""Remembered ``--backend auto`` choices: measure once per machine, then load the winner.

``select_analyzer("auto", ...)`` loads every candidate backend and times it on this machine
(about half a second, all runtimes' libraries loaded). The command-line tool runs once per
file, so it remembers the outcome in a small JSON file and, next time, loads only the
winner, with the remembered reason and candidates. A remembered choice is used only while
everything it depends on is unchanged: the model manifests (their bytes: sha256 values,
gate verdicts, variants), the runtime libraries' versions, the CPU (model name and flags),
the CPUs the process may use, the Python and streamprint versions, and the request
(backend, precision, heads, models directory). Anything else measures again.

Where: ``$STREAMPRINT_SELECTION_MEMO`` (a file path; ``off`` disables), else
``$XDG_CACHE_HOME/streamprint/selection.json`` (``~/.cache`` when unset). The file keeps
the :data:`MAX_ENTRIES` most recent keys; it is written atomically (temporary file, then
rename), and a missing, unreadable or malformed file just means "not remembered".
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import platform
import tempfile
import time
from collections.abc import Mapping
from dataclasses import replace
from importlib import metadata
from pathlib import Path
from typing import Any

from streamprint import __version__
from streamprint.errors import StreamprintError
from streamprint.runtime.base import LoadOptions
from streamprint.runtime.candidates import resolved_options
from streamprint.runtime.select import Candidate, Selection, select_analyzer

log = logging.getLogger(__name__)

MEMO_ENV = "STREAMPRINT_SELECTION_MEMO"
MAX_ENTRIES = 32
_LIBRARIES = ("numpy", "onnxruntime", "onnxruntime-gpu", "openvino", "onnx")


def memo_path() -> Path | None:
    """The memo file, or ``None`` when ``$STREAMPRINT_SELECTION_MEMO`` is ``off``."""
    configured = os.environ.get(MEMO_ENV, "").strip()
    if configured.lower() in ("off", "0", "no", "false"):
        return None
    if configured:
        return Path(configured)
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "streamprint" / "selection.json"


def memo_key(backend: str, precision: str, heads: str, options: LoadOptions) -> str:
    """sha256 over everything a remembered choice depends on (see module docstring)."""
    models = options.models_dir
    assert models is not None  # resolved_options filled it in
    manifests = sorted(models.glob("*/*/manifest.json"))
    parts: dict[str, Any] = {
        "request": [backend, precision, heads, str(models.resolve()), options.threads, options.device],
        "manifests": {str(p.relative_to(models)): hashlib.sha256(p.read_bytes()).hexdigest() for p in manifests},
        "libraries": {name: _version(name) for name in _LIBRARIES},
        "python": platform.python_version(),
        "streamprint": __version__,
        "cpu": _cpu_identity(),
        "cpus": len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count(),
    }
    return hashlib.sha256(json.dumps(parts, sort_keys=True).encode()).hexdigest()


def remembered_analyzer(
    backend: str, precision: str, options: LoadOptions | None = None, *, heads: str = "dsp",
    reselect: bool = False,
) -> Selection:
    """:func:`select_analyzer`, remembering an ``auto`` choice across processes.

    Explicit ``--backend`` and ``--precision`` need no measurement and go straight through;
    ``reselect`` measures again and replaces the remembered choice.
    """
    path = memo_path()
    if path is None or (backend != "auto" and precision != "auto"):
        return select_analyzer(backend, precision, options, heads=heads)
    opts = resolved_options(options)
    key = memo_key(backend, precision, heads, opts)
    entries = _read(path)
    record = None if reselect else entries.get(key)
    if record is not None:
        try:
            chosen = select_analyzer(str(record["backend"]), str(record["precision"]), opts, heads=heads)
            when = time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime(float(record["measured_at"])))
            return with_record(
                chosen, record, backend, precision,
                note=f" (measured on this machine {when}, remembered in {path}; --reselect measures again)",
            )
        except (StreamprintError, KeyError, TypeError, ValueError) as exc:  # stale or damaged: measure
            log.warning("runtime: remembered selection unusable (%s); measuring again", exc)
    selection = select_analyzer(backend, precision, opts, heads=heads)
    record = {**selection.to_json_dict(), "measured_at": time.time()}
    entries.pop(key, None)
    entries[key] = {k: record[k] for k in ("backend", "precision", "reason", "candidates", "measured_at")}
    _write(path, dict(list(entries.items())[-MAX_ENTRIES:]))
    return selection


def with_record(
    chosen: Selection, record: Mapping[str, Any], backend: str, precision: str, *, note: str = "",
) -> Selection:
    """``chosen`` (loaded explicitly) described as the ``backend``/``precision`` request that
    picked it: the measured ``reason`` (plus ``note``) and ``candidates`` of ``record`` (a
    ``Selection.to_json_dict()``)."""
    candidates = record.get("candidates")
    return replace(
        chosen,
        requested_backend=backend,
        requested_precision=precision,
        reason=str(record["reason"]) + note,
        candidates=tuple(Candidate(**c) for c in (candidates if isinstance(candidates, list) else [])),
    )


def _read(path: Path) -> dict[str, Any]:
    try:
        data = json.loads(path.read_text())
    except (OSError, ValueError):
        return {}
    return data if isinstance(data, dict) else {}


def _write(path: Path, entries: dict[str, Any]) -> None:
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=".selection-", dir=path.parent)
        try:
            with os.fdopen(fd, "w") as f:
                json.dump(entries, f)
            os.replace(tmp, path)
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise
    except OSError as exc:  # a read-only home: just measure every time
        log.info("runtime: cannot remember the selection in %s: %s", path, exc)


def _version(name: str) -> str | None:
    try:
        return metadata.version(name)
    except metadata.PackageNotFoundError:
        return None


def _cpu_identity() -> str:
    """CPU model name and flags (Linux ``/proc/cpuinfo``), else ``platform.processor()``."""
    try:
        text = Path("/proc/cpuinfo").read_text()
    except OSError:
        return platform.processor() or platform.machine()
    wanted = ("model name", "flags")
    lines = [line for line in text.splitlines() if line.split(":")[0].strip() in wanted]
    return "\n".join(sorted(set(lines)))
