"""``--heads auto|learned|dsp``: whether learned heads replace HPSS and YIN.

The heads model (``models/heads/<version>/``, made by ``scripts/train_heads.py``) holds the
weights for the numpy reference (``heads.npz``) and the same networks as ONNX graphs
(``harmonic.onnx``, ``pitch.onnx``); every file is sha256-checked against the manifest at
load (a missing or corrupt file is a :class:`~streamprint.errors.ModelError`, a clear
start-up error). :func:`apply_heads` wraps the selected frame analyzer:

* ``dsp``: the analyzer as selected (HPSS + YIN, the reference definitions);
* ``learned``: a :class:`HeadsAnalyzer` — the base analyzer without YIN, plus the heads'
  inputs on every descriptor batch, so the session accumulators run the heads instead of
  HPSS and YIN (even when the manifest's gate failed: a warning says so);
* ``auto``: ``learned`` only when the manifest records a passed accuracy gate (every
  dimension within tolerance of the DSP fingerprint on >= 99 % of the held-out clips),
  else ``dsp``; the reason is in :attr:`Selection.heads_reason` (GetServerInfo, CLI JSON).

The heads run on ONNX Runtime when the base analyzer does, otherwise in numpy (the
networks are tiny: a numpy matmul chain costs about what an ORT call does).
"""

from __future__ import annotations

import dataclasses
import importlib
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Protocol

import numpy as np
from numpy.typing import NDArray

from streamprint.engine.analysis import FrameAnalyzer, FrameDescriptors
from streamprint.engine.heads import HeadsRunner, HeadWeights, NumpyHeads, frame_inputs
from streamprint.errors import InvalidInputError, ModelError
from streamprint.runtime.base import LoadedAnalyzer, LoadOptions
from streamprint.runtime.manifest import ModelManifest, load_manifest

HEADS_MODEL = "heads"
HEADS_VERSION = "1"
HEADS_CHOICES = ("auto", "learned", "dsp")


@dataclass(frozen=True)
class HeadsGate:
    """The heads' accuracy gate as the manifest records it."""

    passed: bool
    reason: str


def heads_gate(manifest: ModelManifest) -> HeadsGate | None:
    """The gate verdict of the manifest (``None``: never measured)."""
    gate = manifest.raw.get("gate")
    if not isinstance(gate, Mapping):
        return None
    return HeadsGate(bool(gate.get("passed")), str(gate.get("reason", "")))


class OrtHeads:
    """Both heads on ONNX Runtime (CPU, one intra-op thread per call by default)."""

    name = "onnxruntime"

    def __init__(self, manifest: ModelManifest, options: LoadOptions) -> None:
        ort: Any = importlib.import_module("onnxruntime")
        opts = ort.SessionOptions()
        opts.intra_op_num_threads = max(1, options.threads)
        opts.inter_op_num_threads = 1
        opts.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
        opts.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
        opts.add_session_config_entry("session.intra_op.allow_spinning", "0")
        opts.log_severity_level = 3
        providers = ["CPUExecutionProvider"]
        self._harmonic = ort.InferenceSession(str(manifest.path("harmonic.onnx")), opts, providers=providers)
        self._pitch = ort.InferenceSession(str(manifest.path("pitch.onnx")), opts, providers=providers)

    def harmonic(self, window: NDArray[np.float32]) -> NDArray[np.float32]:
        out: NDArray[np.float32] = self._harmonic.run(["energy_share"], {"features": window})[0]
        return out

    def pitch(self, frames: NDArray[np.float32]) -> NDArray[np.float32]:
        out: NDArray[np.float32] = self._pitch.run(["pitch_prob"], {"frames": frames})[0]
        return out


def load_heads_manifest(options: LoadOptions | None = None) -> ModelManifest:
    """The heads manifest with every file sha256-checked (:class:`ModelError` otherwise)."""
    options = options or LoadOptions()
    manifest = load_manifest(HEADS_MODEL, HEADS_VERSION, models_dir=options.models_dir)
    manifest.verify()
    return manifest


def load_heads_runner(
    runtime: str = "numpy", options: LoadOptions | None = None, manifest: ModelManifest | None = None
) -> HeadsRunner:
    """The heads on ``runtime`` (``numpy`` or ``onnxruntime``), sha256-checked."""
    options = options or LoadOptions()
    manifest = manifest or load_heads_manifest(options)
    if runtime == "numpy":
        return NumpyHeads(HeadWeights.load(str(manifest.path("heads.npz"))))
    if runtime == "onnxruntime":
        try:
            return OrtHeads(manifest, options)
        except ImportError as exc:
            raise ModelError(f"onnxruntime is not installed: {exc}") from exc
        except Exception as exc:  # onnxruntime raises its own exception types
            raise ModelError(f"model {manifest.model_id}: onnxruntime cannot load the heads: {exc}") from exc
    raise ModelError(f"unknown heads runtime {runtime!r} (known: numpy, onnxruntime)")


class _PitchlessAnalyzer(LoadedAnalyzer, Protocol):
    def without_pitch(self) -> LoadedAnalyzer: ...


class HeadsAnalyzer:
    """A frame analyzer whose descriptors carry the heads' inputs, and that skips YIN.

    ``name`` is ``<base name>+heads<version>`` (fingerprints, cache keys and validation
    tell learned from DSP results by it); the other fields are the base analyzer's.
    """

    def __init__(self, base: LoadedAnalyzer, runner: HeadsRunner, version: str = HEADS_VERSION) -> None:
        strip = getattr(base, "without_pitch", None)
        if strip is None:
            raise ModelError(f"analyzer {base.name} cannot run without YIN, so not with learned heads")
        self.base = base
        self._inner: FrameAnalyzer = strip()
        self.runner = runner
        self.name = f"{base.name}+heads{version}"
        self.version = base.version
        self.backend = base.backend
        self.precision = base.precision
        self.device = base.device
        self.load_seconds = base.load_seconds

    def analyze(self, frames: NDArray[np.float32]) -> FrameDescriptors:
        """Descriptors of ``frames`` ``[n, 2048]`` with ``heads`` set (no YIN)."""
        d = self._inner.analyze(frames)
        return dataclasses.replace(d, heads=frame_inputs(d.magnitude, d.mel_db, d.rms, self.runner))


def heads_runtime_for(base: LoadedAnalyzer) -> str:
    """Where the heads run next to ``base``: ONNX Runtime with an ORT analyzer, else numpy."""
    return "onnxruntime" if base.backend == "onnxruntime" else "numpy"


def resolve_heads(
    mode: str, base: LoadedAnalyzer, options: LoadOptions | None = None
) -> tuple[LoadedAnalyzer, str, str]:
    """``(analyzer, heads, reason)`` for ``--heads mode`` on top of ``base`` (see module docstring)."""
    if mode not in HEADS_CHOICES:
        raise InvalidInputError.for_field("heads", f"unknown heads mode {mode!r}", ", ".join(HEADS_CHOICES))
    if mode == "dsp":
        return base, "dsp", "--heads dsp: HPSS and YIN (the reference definitions) run"
    manifest = load_heads_manifest(options)
    gate = heads_gate(manifest)
    verdict = (
        "its accuracy gate was never measured" if gate is None
        else ("its accuracy gate passed: " if gate.passed else "its accuracy gate failed: ") + gate.reason
    )
    if mode == "auto" and (gate is None or not gate.passed):
        return base, "dsp", f"--heads auto: dsp (HPSS + YIN) because the learned heads' {verdict}"
    runtime = heads_runtime_for(base)
    analyzer = HeadsAnalyzer(base, load_heads_runner(runtime, options, manifest), manifest.version)
    why = f"--heads {mode}: learned heads {manifest.model_id} on {runtime} replace HPSS and YIN; {verdict}"
    if mode == "learned" and (gate is None or not gate.passed):
        why += " (run anyway because --heads learned was asked for)"
    return analyzer, "learned", why
