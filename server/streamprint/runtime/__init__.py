"""Runtime backends for the per-frame work: the numpy reference, ONNX Runtime, OpenVINO.

``select_analyzer(backend, precision)`` loads (and sha256-checks) the model and returns a
:class:`Selection` whose ``analyzer`` is a
:class:`~streamprint.engine.analysis.FrameAnalyzer` for
:class:`~streamprint.engine.session.AudioSession` / ``fingerprint_buffer``; ``reason``
says why that backend and precision run. No gRPC here; the runtime packages are imported
only when a backend loads.
"""

from streamprint.runtime.base import (
    BACKEND_NAMES,
    Backend,
    LoadedAnalyzer,
    LoadOptions,
    backend_names,
    get_backend,
    register_backend,
)
from streamprint.runtime.manifest import ModelManifest, load_manifest
from streamprint.runtime.registry import ensure_registered
from streamprint.runtime.select import (
    BACKEND_CHOICES,
    PRECISION_CHOICES,
    Candidate,
    Selection,
    select_analyzer,
)

__all__ = [
    "BACKEND_CHOICES",
    "BACKEND_NAMES",
    "PRECISION_CHOICES",
    "Backend",
    "Candidate",
    "LoadOptions",
    "LoadedAnalyzer",
    "ModelManifest",
    "Selection",
    "backend_names",
    "ensure_registered",
    "get_backend",
    "load_manifest",
    "register_backend",
    "select_analyzer",
]
