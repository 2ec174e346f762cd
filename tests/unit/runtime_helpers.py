"""Shared helpers of the runtime tests: which backends x precisions exist here, comparisons."""

from __future__ import annotations

import importlib.util
from functools import cache
from pathlib import Path
from types import ModuleType

import pytest

from streamprint.engine import dims
from streamprint.engine.fingerprint import Fingerprint
from streamprint.runtime import LoadOptions, get_backend
from streamprint.runtime.base import LoadedAnalyzer
from streamprint.runtime.manifest import default_models_dir, load_manifest
from streamprint.runtime.registry import ensure_registered

ROOT = Path(__file__).resolve().parents[2]
MODELS = default_models_dir()
VARIANTS = ("onnxruntime/fp32", "onnxruntime/int8", "openvino/fp32", "openvino/int8")


def load_script(name: str) -> ModuleType:
    """Import ``scripts/<name>.py`` as a module."""
    spec = importlib.util.spec_from_file_location(name, ROOT / "scripts" / f"{name}.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def require_runtime(runtime: str) -> None:
    """Skip (outside CI) when ``runtime`` is not installed; CI installs both (the dev extra)."""
    ensure_registered()
    why = get_backend(runtime).unavailable_reason()
    if why is not None:
        pytest.skip(why)


@cache
def analyzer(key: str) -> LoadedAnalyzer:
    """The loaded analyzer ``runtime/precision`` (``numpy`` for the reference), cached."""
    ensure_registered()
    if key == "numpy":
        return get_backend("numpy").load("fp32", LoadOptions())
    runtime, precision = key.split("/")
    require_runtime(runtime)
    return get_backend(runtime).load(precision, LoadOptions(models_dir=MODELS))


#: The fingerprint dimensions downstream of each projection a quantizer may make INT8.
NODE_DIMENSIONS: dict[str, frozenset[str]] = {
    "chroma_band_projection": frozenset(
        {"chroma_energy", "bass_mid_ratio", *(n for n in dims.AUDIO_25D if n.startswith("band_"))}
    ),
    "mel_projection": frozenset({"tempo_bpm", "rhythm_stability", "transient_density"}),
}


def strict_dimensions(key: str) -> set[str]:
    """Dimensions that must be within tolerance of the reference for variant ``key``.

    All of them when the variant passed its corpus gate (FP32 always does); otherwise all
    but those downstream of its quantized nodes: those are the ones the gate measured as
    failing, and the reason ``auto`` does not choose the variant.
    """
    variant = load_manifest(models_dir=MODELS).variants[key]
    assert variant.gate is not None, f"{key} was never measured (run scripts/quantize.py)"
    if variant.gate.passed:
        return set(dims.AUDIO_25D)
    affected: set[str] = set()
    for node in variant.raw["quantization"]["quantized_nodes"]:
        affected |= NODE_DIMENSIONS[node.split("/")[0]]  # a projection split in parts: "name/k"
    failed = {n for n, s in variant.gate.worst_share.items() if s < variant.gate.required_share}
    assert failed <= affected, f"{key}: gate failures outside the quantized nodes' reach: {failed - affected}"
    return set(dims.AUDIO_25D) - affected


def errors_in_tolerance_units(got: Fingerprint, ref: Fingerprint) -> dict[str, float]:
    """``|got - ref|`` per dimension, in units of the registry tolerance around ``ref``."""
    out = {}
    for name, reference in ref.values.items():
        tol = dims.get(name).tolerance_for(reference)
        diff = abs(got.values[name] - reference)
        out[name] = diff / tol if tol > 0 else (0.0 if diff == 0 else float("inf"))
    return out
