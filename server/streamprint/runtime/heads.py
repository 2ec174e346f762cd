"""``--heads auto|learned|dsp``: whether learned heads replace HPSS and YIN.

The heads model (``models/heads/<version>/``, made by ``scripts/train_heads.py``) holds the
weights for the numpy reference (``heads.npz``) and the same networks as ONNX graphs
(``harmonic.onnx``, ``pitch.onnx``); every file is sha256-checked against the manifest at
load (a missing or corrupt file is a :class:`~streamprint.errors.ModelError`, a clear
start-up error). :func:`resolve_heads` wraps the selected frame analyzer:

* ``dsp``: the analyzer as selected (HPSS + YIN, the reference definitions);
* ``learned``: a :class:`HeadsAnalyzer` running both heads — the base analyzer without YIN,
  plus the heads' inputs on every descriptor batch, so the session accumulators run the
  heads instead of HPSS and YIN (even when the manifest's gate failed: the reason says so);
* ``auto``: each head only when its dimension passed the accuracy gate recorded in the
  manifest (within tolerance of the DSP fingerprint on >= 99 % of the held-out clips):
  both, one (the other dimension keeps its DSP step), or none (``dsp``). The reason is in
  :attr:`Selection.heads_reason` (GetServerInfo, CLI JSON).

The heads run on ONNX Runtime when the base analyzer does, otherwise in numpy (the
networks are tiny MLPs: a numpy matmul chain costs about what an ORT call does).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray

from streamprint.engine.analysis import FrameAnalyzer, FrameDescriptors
from streamprint.engine.heads import HeadsRunner, HeadWeights, NumpyHeads, frame_inputs
from streamprint.errors import InvalidInputError, ModelError
from streamprint.runtime.base import LoadedAnalyzer, LoadOptions
from streamprint.runtime.graph_loading import CPU_PROVIDER, ort_session
from streamprint.runtime.manifest import ModelManifest, load_manifest

HEADS_MODEL = "heads"
HEADS_VERSION = "1"
HEADS_CHOICES = ("auto", "learned", "dsp")


#: The heads and the dimension each one computes.
HEAD_DIMENSIONS = {"harmonic": "harmonic_ratio", "pitch": "pitch_stability"}


@dataclass(frozen=True)
class HeadVerdict:
    """One head's accuracy gate as the manifest records it."""

    head: str
    passed: bool
    reason: str


def head_verdicts(manifest: ModelManifest) -> dict[str, HeadVerdict] | None:
    """Per head, whether its dimension passed the gate (``None``: never measured).

    A head passes when its dimension is within tolerance on at least the required share
    of held-out clips and every other dimension passes too (they are computed as without
    heads, so they always should).
    """
    gate = manifest.raw.get("gate")
    if not isinstance(gate, Mapping):
        return None
    shares = {str(k): float(v) for k, v in dict(gate.get("share_within", {})).items()}
    required = float(gate.get("required_share", 0.99))
    clips = gate.get("clips", "?")
    others_ok = all(v >= required for k, v in shares.items() if k not in HEAD_DIMENSIONS.values())
    out = {}
    for head, dim in HEAD_DIMENSIONS.items():
        share = shares.get(dim, 0.0)
        passed = share >= required and others_ok
        out[head] = HeadVerdict(head, passed, f"{dim} within tolerance on {100 * share:.1f} % of {clips} "
                                f"held-out clips (needs {100 * required:.0f} %)")
    return out


class OrtHeads:
    """Both heads on ONNX Runtime (CPU, one intra-op thread per call by default)."""

    name = "onnxruntime"

    def __init__(self, manifest: ModelManifest, options: LoadOptions) -> None:
        providers = [CPU_PROVIDER]
        self._harmonic = ort_session(str(manifest.path("harmonic.onnx")), options.threads, providers)
        self._pitch = ort_session(str(manifest.path("pitch.onnx")), options.threads, providers)

    def harmonic(self, proxies: NDArray[np.float32]) -> NDArray[np.float32]:
        out: NDArray[np.float32] = self._harmonic.run(["energy_share"], {"proxies": proxies})[0]
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


class HeadsAnalyzer:
    """A frame analyzer whose descriptors carry the heads' inputs (see module docstring).

    ``heads`` names the heads that run (``harmonic``, ``pitch``); with the pitch head the
    base analyzer runs without YIN. ``name`` is ``<base name>+heads<version>`` with both
    heads, ``...:harmonic`` or ``...:pitch`` with one (fingerprints, cache keys and
    validation tell learned from DSP results by it); the other fields are the base's.
    """

    def __init__(
        self, base: LoadedAnalyzer, runner: HeadsRunner, version: str = HEADS_VERSION,
        heads: tuple[str, ...] = ("harmonic", "pitch"),
    ) -> None:
        unknown = set(heads) - set(HEAD_DIMENSIONS)
        if unknown or not heads:
            raise ModelError(f"unknown or no heads {sorted(unknown)} (known: harmonic, pitch)")
        self._harmonic = "harmonic" in heads
        self._pitch = "pitch" in heads
        inner: FrameAnalyzer = base
        if self._pitch:
            strip = getattr(base, "without_pitch", None)
            if strip is None:
                raise ModelError(f"analyzer {base.name} cannot run without YIN, so not with the pitch head")
            inner = strip()
        self.base = base
        self._inner = inner
        self.runner = runner
        self.heads = tuple(h for h in HEAD_DIMENSIONS if h in heads)
        suffix = "" if len(self.heads) == 2 else f":{self.heads[0]}"
        self.name = f"{base.name}+heads{version}{suffix}"
        self.version = base.version
        self.backend = base.backend
        self.precision = base.precision
        self.device = base.device
        self.load_seconds = base.load_seconds

    def analyze(self, frames: NDArray[np.float32]) -> FrameDescriptors:
        """Descriptors of ``frames`` ``[n, 2048]`` with ``heads`` set."""
        d = self._inner.analyze(frames)
        inputs = frame_inputs(d.magnitude, d.mel_db, d.rms, self.runner, harmonic=self._harmonic, pitch=self._pitch)
        return dataclasses.replace(d, heads=inputs)


def heads_runtime_for(base: LoadedAnalyzer) -> str:
    """Where the heads run next to ``base``: ONNX Runtime with an ORT analyzer, else numpy."""
    return "onnxruntime" if base.backend == "onnxruntime" else "numpy"


def resolve_heads(
    mode: str, base: LoadedAnalyzer, options: LoadOptions | None = None
) -> tuple[LoadedAnalyzer, str, str]:
    """``(analyzer, heads, reason)`` for ``--heads mode`` on top of ``base``.

    ``heads`` is ``dsp``, ``learned`` (both heads) or ``learned:harmonic`` /
    ``learned:pitch`` (``auto`` with one head past its gate).
    """
    if mode not in HEADS_CHOICES:
        raise InvalidInputError.for_field("heads", f"unknown heads mode {mode!r}", ", ".join(HEADS_CHOICES))
    if mode == "dsp":
        return base, "dsp", "--heads dsp: HPSS and YIN (the reference definitions) run"
    manifest = load_heads_manifest(options)
    verdicts = head_verdicts(manifest)
    if verdicts is None:
        verdict = "the heads' accuracy gate was never measured"
    else:
        verdict = "; ".join(
            f"{v.head} head {'passed' if v.passed else 'failed'} its gate: {v.reason}" for v in verdicts.values()
        )
    if mode == "auto":
        chosen = tuple(h for h, v in (verdicts or {}).items() if v.passed)
        if not chosen:
            return base, "dsp", f"--heads auto: dsp (HPSS + YIN) because no learned head passed: {verdict}"
    else:
        chosen = tuple(HEAD_DIMENSIONS)
    runtime = heads_runtime_for(base)
    analyzer = HeadsAnalyzer(base, load_heads_runner(runtime, options, manifest), manifest.version, chosen)
    replaced = {"harmonic": "HPSS", "pitch": "YIN"}
    what = " and ".join(f"the {h} head replaces {replaced[h]}" for h in chosen)
    kept = [replaced[h] for h in HEAD_DIMENSIONS if h not in chosen]
    why = f"--heads {mode}: {what} ({manifest.model_id} on {runtime})"
    if kept:
        why += f"; {' and '.join(kept)} still {'runs' if len(kept) == 1 else 'run'}"
    why += f"; {verdict}"
    if mode == "learned" and (verdicts is None or not all(v.passed for v in verdicts.values())):
        why += " (run anyway because --heads learned was asked for)"
    label = "learned" if len(chosen) == 2 else f"learned:{chosen[0]}"
    return analyzer, label, why
