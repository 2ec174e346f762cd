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

``auto`` then takes the fastest candidate left, except that candidates within
:data:`TIE_MARGIN` of the fastest count as equally fast (this timing moves by that much from
run to run on a shared machine) and among those the lightest runtime wins
(:data:`FOOTPRINT_ORDER`: numpy loads no runtime; OpenVINO's costs a process about 30 MB
more resident memory than ONNX Runtime's). The :class:`Selection` records why, and the
reason is logged. The numpy reference is always a candidate of ``auto``, so a machine
without the runtime packages still works; with a runtime installed, a missing or corrupt
model is an error (``make models``), not a reason to fall back.
"""

from __future__ import annotations

import logging
import math
import time
from dataclasses import dataclass, replace

import numpy as np
from numpy.typing import NDArray

from streamprint.engine import dims
from streamprint.engine.analysis import FrameDescriptors
from streamprint.engine.grid import ANALYSIS_RATE, FRAME_LENGTH, HOP_LENGTH, SILENCE_RMS
from streamprint.runtime.base import BACKEND_NAMES, LoadedAnalyzer, LoadOptions, get_backend
from streamprint.runtime.candidates import BACKEND_CHOICES as BACKEND_CHOICES
from streamprint.runtime.candidates import PRECISION_CHOICES as PRECISION_CHOICES
from streamprint.runtime.candidates import (
    BaseCandidate,
    BaseSelection,
    SelectionCache,
    Survey,
    check_request,
    gate_problem,
    resolved_options,
)
from streamprint.runtime.heads import resolve_heads
from streamprint.runtime.manifest import SPECTRAL_MODEL, SPECTRAL_VERSION, load_manifest
from streamprint.runtime.registry import ensure_registered

log = logging.getLogger("streamprint.runtime")

#: Mean |mel dB difference| allowed by the start-up check (the onset envelope's input).
MEL_DB_CHECK = 0.5
_TIMING_CALLS = 7
#: Candidates at most this much slower than the fastest count as equally fast (fraction).
TIE_MARGIN = 0.10
#: Lightest first: the runtime a tie goes to (resident memory of a process that loads it).
FOOTPRINT_ORDER = ("numpy", "onnxruntime", "openvino")


def pick_fastest(timed: list[tuple[float, LoadedAnalyzer]]) -> tuple[float, LoadedAnalyzer, bool]:
    """``(ms, analyzer, tie)`` of the candidate ``auto`` takes from ``(ms, analyzer)`` pairs:
    the lightest (:data:`FOOTPRINT_ORDER`) of those within :data:`TIE_MARGIN` of the fastest;
    ``tie`` says a faster candidate lost on footprint."""
    best_ms = min(ms for ms, _ in timed)
    close = [(ms, a) for ms, a in timed if ms <= best_ms * (1.0 + TIE_MARGIN)]
    rank = {name: i for i, name in enumerate(FOOTPRINT_ORDER)}
    ms, chosen = min(close, key=lambda pair: (rank.get(pair[1].backend, len(rank)), pair[0]))
    return ms, chosen, ms > best_ms


@dataclass(frozen=True)
class Candidate(BaseCandidate):
    """What the selection found about one backend x precision (see :class:`BaseCandidate`).

    ``ms_per_batch`` is the measured time of one 43-frame ``analyze`` call (``None`` when
    not timed).
    """

    ms_per_batch: float | None = None

    def speed_json(self) -> dict[str, object]:
        return {"ms_per_batch": None if self.ms_per_batch is None else round(self.ms_per_batch, 3)}


@dataclass(frozen=True)
class Selection(BaseSelection[LoadedAnalyzer, Candidate]):
    """The analyzer that runs, what was asked, and why this one (``reason``)."""

    #: ``learned`` when learned heads replace HPSS and YIN, else ``dsp`` (``runtime/heads.py``).
    heads: str = "dsp"
    heads_reason: str = ""

    def extra_json(self) -> dict[str, object]:
        return {"heads": self.heads, "heads_reason": self.heads_reason}


_CACHE: SelectionCache[Selection] = SelectionCache()


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
    opts = resolved_options(options)

    def make() -> Selection:
        selection = _select(backend, precision, opts)
        analyzer, chosen_heads, heads_reason = resolve_heads(heads, selection.analyzer, opts)
        selection = replace(selection, analyzer=analyzer, heads=chosen_heads, heads_reason=heads_reason)
        log.info("runtime: %s", selection.reason)
        log.info("runtime: %s", heads_reason)
        return selection

    return _CACHE.get((backend, precision, heads, opts), make, cached=cached)


def clear_cache() -> None:
    """Forget cached selections (tests)."""
    _CACHE.clear()


def _select(backend: str, precision: str, opts: LoadOptions) -> Selection:
    check_request(backend, precision)
    ensure_registered()
    survey = Survey(backend, precision, Candidate)
    frames = check_frames()
    reference = get_backend("numpy").load("fp32", opts).analyze(frames)
    ready: list[tuple[float, LoadedAnalyzer]] = []
    for name, prec in survey.variants(
        survey.names(BACKEND_NAMES),
        unavailable=lambda n: get_backend(n).unavailable_reason(),
        precisions=lambda n: get_backend(n).precisions(),
        gate=lambda n, p: _gate_problem(n, p, opts),
    ):
        analyzer = get_backend(name).load(prec, opts)
        problem = startup_check(analyzer.analyze(frames), reference)
        if problem is not None:
            detail = f"start-up check against the numpy reference failed: {problem}"
            if not survey.explicit_precision:
                survey.reports.append(Candidate(name, prec, "check-failed", detail, analyzer.device))
                continue
            survey.asked_anyway(name, prec, f"its {detail}")
        ms = time_analyzer(analyzer, frames)
        ready.append((ms, analyzer))
        survey.reports.append(Candidate(name, prec, "ready", "", analyzer.device, ms))
    if not ready:
        raise survey.no_runnable("analyzer")
    chosen_ms, chosen, tie = pick_fastest(ready)
    final = tuple(_ranked(c, chosen, chosen_ms) if c.status == "ready" else c for c in survey.reports)
    warnings = survey.warnings_for(chosen)
    reason = _reason(survey, chosen, chosen_ms, final, warnings, tie=tie)
    for warning in warnings:
        log.warning("runtime: %s", warning)
    return Selection(chosen, backend, precision, reason, final)


def _ranked(candidate: Candidate, chosen: LoadedAnalyzer, chosen_ms: float) -> Candidate:
    """A timed candidate's final status: ``chosen``, ``slower``, or ``heavier`` (a tie lost
    on footprint)."""
    if (candidate.backend, candidate.precision) == (chosen.backend, chosen.precision):
        return replace(candidate, status="chosen")
    as_fast = candidate.ms_per_batch is not None and candidate.ms_per_batch <= chosen_ms
    return replace(candidate, status="heavier" if as_fast else "slower")


def _gate_problem(backend: str, precision: str, opts: LoadOptions) -> tuple[str, str] | None:
    """``None`` when the manifest says the variant passed its accuracy gate, else why not."""
    manifest = load_manifest(SPECTRAL_MODEL, SPECTRAL_VERSION, models_dir=opts.models_dir)
    return gate_problem(manifest, backend, precision, "scripts/quantize.py")


def _reason(
    survey: Survey[Candidate], chosen: LoadedAnalyzer, chosen_ms: float,
    candidates: tuple[Candidate, ...], warnings: list[str], *, tie: bool = False,
) -> str:
    what = f"{chosen.backend}/{chosen.precision} on {chosen.device}"
    timed = [c for c in candidates if c.ms_per_batch is not None]
    if len(timed) > 1:
        speeds = ", ".join(f"{c.label} {c.ms_per_batch:.2f} ms" for c in timed)
        how = (f"within {100 * TIE_MARGIN:.0f} % of the fastest and the lightest runtime there"
               if tie else "the fastest candidate")
        head = f"{what}: {how} (per 43-frame batch: {speeds})"
    else:
        head = f"{what} ({chosen_ms:.2f} ms per 43-frame batch)"
    return survey.reason(head, candidates, warnings)


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
