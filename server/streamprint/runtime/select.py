"""Choosing the backend and precision: ``--backend auto|numpy|onnxruntime|openvino`` and
``--precision auto|fp32|int8``.

For every candidate (backend x precision) the selection:

1. skips backends whose runtime package is not installed (reason recorded);
2. reads the model manifest: with ``--precision auto`` a variant whose corpus accuracy
   gate failed, or was never measured, is skipped and the gate's reason is recorded; with
   an explicit ``--precision`` it runs even when its gate failed, with a warning (what
   was asked for wins; ``auto`` never picks it);
3. loads it, which sha256-checks its files: a missing or corrupt model file raises
   :class:`~streamprint.errors.ModelError` (a clear start-up error, never a silent
   fallback);
4. runs a start-up check on this machine: on a fixed synthetic batch of frames (tones,
   noise, a quiet tone, silence) the candidate's descriptors must match the numpy
   reference within the registry tolerances (this catches a runtime or device that
   computes garbage, e.g. FP16 on a GPU); a failure skips the candidate, or, for an
   explicit ``--precision``, is a warning;
5. times it (best of several calls on a 43-frame batch, the size sessions use, in CPU time).

``auto`` then takes the fastest candidate left; the :class:`Selection` records why, and the
reason is logged. The numpy reference is always a candidate of ``auto``, so a machine
without the runtime packages still works; with a runtime installed, a missing or corrupt
model is an error (``make models``), not a reason to fall back.
"""

from __future__ import annotations

import logging
import math
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass, field, replace

import numpy as np
from numpy.typing import NDArray

from streamprint.engine import dims
from streamprint.engine.analysis import FrameDescriptors
from streamprint.engine.grid import ANALYSIS_RATE, FRAME_LENGTH, HOP_LENGTH, SILENCE_RMS
from streamprint.errors import InvalidInputError, ModelError
from streamprint.runtime.base import BACKEND_NAMES, LoadedAnalyzer, LoadOptions, get_backend
from streamprint.runtime.heads import resolve_heads
from streamprint.runtime.manifest import (
    SPECTRAL_MODEL,
    SPECTRAL_VERSION,
    default_models_dir,
    load_manifest,
)
from streamprint.runtime.registry import ensure_registered

log = logging.getLogger("streamprint.runtime")

BACKEND_CHOICES = ("auto", *BACKEND_NAMES)
PRECISION_CHOICES = ("auto", "fp32", "int8")
#: Mean |mel dB difference| allowed by the start-up check (the onset envelope's input).
MEL_DB_CHECK = 0.5
_TIMING_CALLS = 7


@dataclass(frozen=True)
class Candidate:
    """What the selection found about one backend x precision.

    ``status``: ``chosen``, ``slower``, ``gate-failed``, ``unmeasured``, ``unavailable``,
    ``check-failed`` or ``not-built``; ``ms_per_batch`` is the measured time of one
    43-frame ``analyze`` call (``None`` when not timed); ``detail`` explains the status.
    """

    backend: str
    precision: str
    status: str
    detail: str = ""
    device: str = ""
    ms_per_batch: float | None = None

    def to_json_dict(self) -> dict[str, object]:
        return {
            "backend": self.backend, "precision": self.precision, "status": self.status,
            "detail": self.detail, "device": self.device,
            "ms_per_batch": None if self.ms_per_batch is None else round(self.ms_per_batch, 3),
        }


@dataclass(frozen=True)
class Selection:
    """The analyzer that runs, what was asked, and why this one (``reason``)."""

    analyzer: LoadedAnalyzer
    requested_backend: str
    requested_precision: str
    reason: str
    candidates: tuple[Candidate, ...] = field(default_factory=tuple)
    #: ``learned`` when learned heads replace HPSS and YIN, else ``dsp`` (``runtime/heads.py``).
    heads: str = "dsp"
    heads_reason: str = ""

    @property
    def backend(self) -> str:
        return self.analyzer.backend

    @property
    def precision(self) -> str:
        return self.analyzer.precision

    @property
    def device(self) -> str:
        return self.analyzer.device

    def to_json_dict(self) -> dict[str, object]:
        """JSON-ready description (for logs, GetServerInfo, benchmarks)."""
        return {
            "backend": self.backend, "precision": self.precision, "device": self.device,
            "model": self.analyzer.name, "model_version": self.analyzer.version,
            "requested_backend": self.requested_backend,
            "requested_precision": self.requested_precision, "reason": self.reason,
            "heads": self.heads, "heads_reason": self.heads_reason,
            "candidates": [c.to_json_dict() for c in self.candidates],
        }


_CACHE: dict[tuple[str, str, str, LoadOptions], Selection] = {}
_LOCK = threading.Lock()


def select_analyzer(
    backend: str = "auto", precision: str = "auto", options: LoadOptions | None = None,
    *, cached: bool = True, heads: str = "dsp",
) -> Selection:
    """Pick and load the analyzer (see module docstring); cached per arguments.

    ``heads`` (``auto``, ``learned``, ``dsp``) says whether learned heads replace HPSS and
    YIN on top of the chosen analyzer (:func:`streamprint.runtime.heads.resolve_heads`).

    Raises :class:`InvalidInputError` for an unknown backend or precision and
    :class:`ModelError` when an explicitly requested variant cannot run, or when a model
    file is missing or corrupt.
    """
    opts = options or LoadOptions()
    if opts.models_dir is None:  # resolve now: $STREAMPRINT_MODELS_DIR may change between calls
        opts = replace(opts, models_dir=default_models_dir())
    key = (backend, precision, heads, opts)
    with _LOCK:
        if cached and key in _CACHE:
            return _CACHE[key]
        selection = _select(backend, precision, opts)
        analyzer, chosen_heads, heads_reason = resolve_heads(heads, selection.analyzer, opts)
        selection = replace(selection, analyzer=analyzer, heads=chosen_heads, heads_reason=heads_reason)
        log.info("runtime: %s", selection.reason)
        log.info("runtime: %s", heads_reason)
        if cached:
            _CACHE[key] = selection
        return selection


def clear_cache() -> None:
    """Forget cached selections (tests)."""
    with _LOCK:
        _CACHE.clear()


def _select(backend: str, precision: str, opts: LoadOptions) -> Selection:
    if backend not in BACKEND_CHOICES:
        raise InvalidInputError.for_field("backend", f"unknown backend {backend!r}", ", ".join(BACKEND_CHOICES))
    if precision not in PRECISION_CHOICES:
        raise InvalidInputError.for_field(
            "precision", f"unknown precision {precision!r}", ", ".join(PRECISION_CHOICES)
        )
    ensure_registered()
    explicit_backend = backend != "auto"
    explicit_precision = precision != "auto"
    names = (backend,) if explicit_backend else BACKEND_NAMES
    frames = check_frames()
    reference = get_backend("numpy").load("fp32", opts).analyze(frames)
    reports: list[Candidate] = []
    ready: list[tuple[float, LoadedAnalyzer]] = []
    warnings: list[str] = []
    for name in names:
        impl = get_backend(name)
        why = impl.unavailable_reason()
        if why is not None:
            if explicit_backend:
                raise ModelError(f"backend {name} is unavailable: {why}")
            reports.append(Candidate(name, "-", "unavailable", why))
            continue
        precisions = impl.precisions()
        if explicit_precision:
            if precision not in precisions:
                if explicit_backend:
                    raise ModelError(f"backend {name} cannot run {precision} (it runs {', '.join(precisions)})")
                reports.append(Candidate(name, precision, "unavailable", f"{name} runs {', '.join(precisions)} only"))
                continue
            precisions = (precision,)
        for prec in precisions:
            if name != "numpy":
                gate_problem = _gate_problem(name, prec, opts)
                if gate_problem is not None:
                    status, detail = gate_problem
                    if status == "not-built" and explicit_backend and explicit_precision:
                        raise ModelError(detail)
                    if not explicit_precision or status == "not-built":
                        reports.append(Candidate(name, prec, status, detail))
                        continue
                    warnings.append(f"{name}/{prec} was asked for although {detail}")
            analyzer = impl.load(prec, opts)
            problem = startup_check(analyzer.analyze(frames), reference)
            if problem is not None:
                detail = f"start-up check against the numpy reference failed: {problem}"
                if not explicit_precision:
                    reports.append(Candidate(name, prec, "check-failed", detail, analyzer.device))
                    continue
                warnings.append(f"{name}/{prec} was asked for although its {detail}")
            ms = time_analyzer(analyzer, frames)
            ready.append((ms, analyzer))
            reports.append(Candidate(name, prec, "ready", "", analyzer.device, ms))
    if not ready:
        asked = f"--backend {backend} --precision {precision}"
        raise ModelError(f"no runnable analyzer for {asked}: " + "; ".join(
            f"{c.backend}/{c.precision}: {c.detail}" for c in reports))
    ready.sort(key=lambda pair: pair[0])
    best_ms, chosen = ready[0]
    final = tuple(
        Candidate(c.backend, c.precision,
                  ("chosen" if (c.backend, c.precision) == (chosen.backend, chosen.precision) else "slower")
                  if c.status == "ready" else c.status, c.detail, c.device, c.ms_per_batch)
        for c in reports
    )
    warnings = [w for w in warnings if w.startswith(f"{chosen.backend}/{chosen.precision} ")]
    reason = _reason(backend, precision, chosen, best_ms, final, warnings)
    for warning in warnings:
        log.warning("runtime: %s", warning)
    return Selection(chosen, backend, precision, reason, final)


def _gate_problem(backend: str, precision: str, opts: LoadOptions) -> tuple[str, str] | None:
    """``None`` when the manifest says the variant passed its accuracy gate, else why not."""
    manifest = load_manifest(SPECTRAL_MODEL, SPECTRAL_VERSION, models_dir=opts.models_dir)
    key = f"{backend}/{precision}"
    variant = manifest.variants.get(key)
    if variant is None:
        return "not-built", f"model {manifest.model_id} has no {key} variant (run `make models`)"
    if variant.gate is None:
        return "unmeasured", "its accuracy gate was never measured (run scripts/quantize.py)"
    if not variant.gate.passed:
        return "gate-failed", f"its accuracy gate failed: {variant.gate.reason}"
    return None


def _reason(
    backend: str, precision: str, chosen: LoadedAnalyzer, best_ms: float,
    candidates: Sequence[Candidate], warnings: Sequence[str],
) -> str:
    what = f"{chosen.backend}/{chosen.precision} on {chosen.device}"
    timed = [c for c in candidates if c.ms_per_batch is not None]
    if len(timed) > 1:
        speeds = ", ".join(f"{c.backend}/{c.precision} {c.ms_per_batch:.2f} ms" for c in timed)
        head = f"{what}: the fastest candidate (per 43-frame batch: {speeds})"
    else:
        head = f"{what} ({best_ms:.2f} ms per 43-frame batch)"
    head += f" for --backend {backend} --precision {precision}"
    skipped = [c for c in candidates if c.status not in ("chosen", "slower")]
    parts = [head]
    parts += [f"skipped {c.backend}/{c.precision}: {c.detail}" for c in skipped]
    parts += list(warnings)
    return "; ".join(parts)


def check_frames() -> NDArray[np.float32]:
    """The fixed synthetic batch of the start-up check: 43 frames of varied content."""
    rng = np.random.default_rng(20240601)
    n = FRAME_LENGTH + 42 * HOP_LENGTH
    t = np.arange(n) / ANALYSIS_RATE
    tone = np.zeros(n)
    for k in range(1, 8):
        tone += 0.3 / k * np.sin(2 * np.pi * 220.0 * k * t)
    noise = 0.05 * rng.standard_normal(n)
    quiet = 0.003 * np.sin(2 * np.pi * 3_000.0 * t)
    signal = np.concatenate((tone[: n // 3] + noise[: n // 3], noise[n // 3 : 2 * n // 3] * 4.0,
                             quiet[2 * n // 3 :]))
    signal[-FRAME_LENGTH // 2 :] = 0.0
    frames = np.lib.stride_tricks.sliding_window_view(signal, FRAME_LENGTH)[::HOP_LENGTH][:43]
    return np.ascontiguousarray(frames, dtype=np.float32)


def startup_check(got: FrameDescriptors, ref: FrameDescriptors) -> str | None:
    """``None`` when ``got`` matches ``ref`` within tolerance on the check batch, else what differs.

    Means over the loud frames are compared with the tolerance of the dimension they feed;
    band shares with the band tolerance; the mel dB spectrum by its mean absolute
    difference (``MEL_DB_CHECK`` dB).
    """
    loud = ref.rms >= SILENCE_RMS
    problems = []
    pairs = (("centroid", "spectral_centroid"), ("rolloff", "spectral_rolloff"),
             ("flatness", "spectral_flatness"), ("chroma_concentration", "chroma_energy"))
    for field_name, dim in pairs:
        r = float(np.mean(getattr(ref, field_name)[loud]))
        g = float(np.mean(getattr(got, field_name)[loud]))
        if not math.isfinite(g) or abs(g - r) > dims.get(dim).tolerance_for(r):
            problems.append(f"{field_name} {g:.4g} vs {r:.4g}")
    r_share = ref.band_power[:, :-1].sum(axis=0) / max(float(ref.band_power[:, -1].sum()), 1e-30)
    g_share = got.band_power[:, :-1].sum(axis=0) / max(float(got.band_power[:, -1].sum()), 1e-30)
    worst = float(np.max(np.abs(g_share - r_share))) if np.all(np.isfinite(g_share)) else math.inf
    if worst > dims.get("band_mid").tolerance:
        problems.append(f"band share off by {worst:.3f}")
    mel = float(np.mean(np.abs(got.mel_db.astype(np.float64) - ref.mel_db)))
    if not mel <= MEL_DB_CHECK:
        problems.append(f"mel dB off by {mel:.2f} dB on average")
    return ", ".join(problems) or None


def time_analyzer(analyzer: LoadedAnalyzer, frames: NDArray[np.float32]) -> float:
    """Best of a few ``analyze`` calls on ``frames``, in CPU milliseconds (after a warm-up).

    CPU time of the process (all threads, so a runtime's worker threads count too), not
    wall time: on a busy machine wall time mostly measures the neighbours, and ``auto``
    would flip between candidates from run to run.
    """
    analyzer.analyze(frames)
    best = math.inf
    for _ in range(_TIMING_CALLS):
        start = time.process_time()
        analyzer.analyze(frames)
        best = min(best, time.process_time() - start)
    return best * 1e3
