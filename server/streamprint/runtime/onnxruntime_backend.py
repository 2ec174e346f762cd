"""The ``onnxruntime`` backend: the spectral model on ONNX Runtime.

Uses ``CUDAExecutionProvider`` when the installed onnxruntime (``onnxruntime-gpu``) offers
it, else ``CPUExecutionProvider``. FP32 runs ``fp32/model.onnx``; INT8 runs the static QDQ
model (per-channel weights) that ``scripts/quantize.py`` calibrated on the corpus. Every
file is sha256-checked against the manifest before it is loaded.
"""

from __future__ import annotations

import importlib
import importlib.metadata
import logging
import time
from typing import Any

from streamprint.errors import ModelError
from streamprint.runtime.base import LoadOptions
from streamprint.runtime.graph import OUTPUT_NAMES, GraphFrameAnalyzer
from streamprint.runtime.graph_loading import CPU_PROVIDER, ort_providers, ort_runner, ort_session
from streamprint.runtime.manifest import SPECTRAL_MODEL, SPECTRAL_VERSION, load_manifest

CUDA = "CUDAExecutionProvider"
CPU = CPU_PROVIDER


log = logging.getLogger("streamprint.runtime")


def _ort() -> Any:
    return importlib.import_module("onnxruntime")


def installed_distributions() -> list[str]:
    """Which of ``onnxruntime`` / ``onnxruntime-gpu`` are installed (never both, ideally)."""
    found = []
    for dist in ("onnxruntime", "onnxruntime-gpu"):
        try:
            importlib.metadata.version(dist)
        except importlib.metadata.PackageNotFoundError:
            continue
        found.append(dist)
    return found


class OnnxRuntimeBackend:
    """See module docstring."""

    name = "onnxruntime"

    def unavailable_reason(self) -> str | None:
        try:
            _ort()
        except ImportError:
            return "onnxruntime is not installed (pip install 'streamprint[cpu]' or '[gpu]')"
        if len(installed_distributions()) > 1:
            log.warning(
                "runtime: both onnxruntime and onnxruntime-gpu are installed; they share one "
                "import name and break each other: keep one (extras cpu or gpu, docs/runtime.md)"
            )
        return None

    def precisions(self) -> tuple[str, ...]:
        return ("fp32", "int8")

    def devices(self) -> tuple[str, ...]:
        available = set(_ort().get_available_providers())
        return tuple(p for p in (CUDA, CPU) if p in available) or (CPU,)

    def load(self, precision: str, options: LoadOptions) -> GraphFrameAnalyzer:
        start = time.perf_counter()
        manifest = load_manifest(SPECTRAL_MODEL, SPECTRAL_VERSION, models_dir=options.models_dir)
        variant = manifest.variant(self.name, precision)
        manifest.verify_variant(variant)
        path = manifest.path(variant.files["onnx"])
        providers = ort_providers(options.device, self.devices())
        try:
            session = ort_session(str(path), options.threads, providers)
        except Exception as exc:  # onnxruntime raises its own exception types
            raise ModelError(f"model {manifest.model_id}: onnxruntime cannot load {path}: {exc}") from exc
        device = str(session.get_providers()[0])
        run = ort_runner(session, "power", OUTPUT_NAMES)

        return GraphFrameAnalyzer(
            run, model=manifest.name, version=manifest.version, backend=self.name,
            precision=precision, device=device, load_seconds=time.perf_counter() - start,
        )
