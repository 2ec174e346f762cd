"""Choosing the video analyzer: ``--backend`` / ``--precision`` for the per-frame video work.

The audio selection (:mod:`streamprint.runtime.select`) and this one read the same two
flags; each picks among its own model's variants. For every candidate (backend x precision
of the ``video`` model, plus the numpy reference) the selection:

1. skips backends whose runtime package is not installed (reason recorded; an explicit
   ``--backend`` that is not installed is a :class:`~streamprint.errors.ModelError`);
2. reads ``models/video/<version>/manifest.json``: with ``--precision auto`` a variant
   whose accuracy gate failed, or was never measured, is skipped with the gate's reason;
   with an explicit ``--precision`` it runs anyway, with a warning;
3. sha256-checks the files of every remaining graph variant (a missing or corrupt file is
   a ``ModelError``, never a silent fallback);
4. ranks what is left by the manifest's measured frames per second (one thread, process
   CPU time, at the 256x144 analysis size; ties: the reference first). Measured on this
   machine the candidates are within a few per cent of each other, so a live timing would
   flip between them from run to run and split the cache by model id;
5. loads the fastest and runs the start-up check: the 13D fingerprint of a small generated
   clip (:func:`check_clip`) must match the numpy reference within every dimension's
   registry tolerance. A failure skips the candidate with a warning in the log and the next
   one is tried (the reference always passes), or, for an explicit ``--precision``, is a
   warning and the candidate runs.

The resulting :class:`VideoSelection` says what runs and why (``reason``), for the log, the
CLI's JSON and GetServerInfo.
"""

from __future__ import annotations

import importlib.util
import logging
import math
from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray

from streamprint.engine import dims
from streamprint.engine.fingerprint import (
    REFERENCE_MODEL_VERSION,
    VIDEO_REFERENCE_MODEL,
    Fingerprint,
)
from streamprint.runtime.base import LoadOptions
from streamprint.runtime.candidates import (
    BaseCandidate,
    BaseSelection,
    SelectionCache,
    Survey,
    check_request,
    gate_problem,
    resolved_options,
)
from streamprint.runtime.manifest import ModelManifest, load_manifest
from streamprint.runtime.video import (
    VIDEO_MODEL,
    VIDEO_VERSION,
    NumpyVideoAnalyzer,
    VideoAnalyzer,
    load_video_analyzer,
)

log = logging.getLogger("streamprint.runtime")

#: Backends of the video model, the reference first (it wins ties).
VIDEO_BACKENDS = ("numpy", "onnxruntime", "openvino")
_PRECISIONS = {"numpy": ("fp32",), "onnxruntime": ("fp32", "int8"), "openvino": ("fp32", "int8")}
#: Analysis size of the check clip (the analysis grid's size for 16:9 sources), pixels.
CHECK_WIDTH, CHECK_HEIGHT = 256, 144
#: Frames of the check clip (at 10 fps: 2.4 s).
CHECK_FRAMES = 24


@dataclass(frozen=True)
class VideoCandidate(BaseCandidate):
    """What the selection found about one backend x precision of the video model (see
    :class:`~streamprint.runtime.candidates.BaseCandidate`).

    ``frames_per_second`` is the manifest's measured speed (``None`` when unknown).
    """

    frames_per_second: float | None = None

    def speed_json(self) -> dict[str, object]:
        return {"frames_per_second": self.frames_per_second}


def video_model_identity(analyzer: VideoAnalyzer | None) -> tuple[str, str]:
    """``(model id, version)`` that fingerprints of ``analyzer`` carry (``None``: the reference).

    The same values :attr:`VideoSession.model` / :attr:`VideoSession.model_version` report;
    they are part of every video cache key.
    """
    if analyzer is None or analyzer.backend == "numpy":
        return VIDEO_REFERENCE_MODEL, REFERENCE_MODEL_VERSION
    return analyzer.name, analyzer.version


@dataclass(frozen=True)
class VideoSelection(BaseSelection[VideoAnalyzer, VideoCandidate]):
    """The video analyzer that runs, what was asked, and why this one (``reason``)."""

    @property
    def model(self) -> str:
        """Model id of the fingerprints it makes (see :func:`video_model_identity`)."""
        return video_model_identity(self.analyzer)[0]

    @property
    def model_version(self) -> str:
        """Version of :attr:`model`."""
        return video_model_identity(self.analyzer)[1]


def reference_video_selection(reason: str = "numpy/fp32 on CPU: the reference (no selection was made)") -> VideoSelection:
    """The numpy reference as a selection, without looking at any model (test engines)."""
    return VideoSelection(NumpyVideoAnalyzer(), "numpy", "fp32", reason)


_CACHE: SelectionCache[VideoSelection] = SelectionCache()


def select_video(
    backend: str = "auto", precision: str = "auto", options: LoadOptions | None = None,
    *, cached: bool = True,
) -> VideoSelection:
    """Pick and load the video analyzer (see module docstring); cached per arguments.

    Raises :class:`InvalidInputError` for an unknown backend or precision and
    :class:`ModelError` when an explicitly requested variant cannot run, or when a model
    file is missing or corrupt.
    """
    opts = resolved_options(options)

    def make() -> VideoSelection:
        selection = _select(backend, precision, opts)
        log.info("runtime: video: %s", selection.reason)
        return selection

    return _CACHE.get((backend, precision, opts), make, cached=cached)


def clear_cache() -> None:
    """Forget cached selections (tests)."""
    _CACHE.clear()


def _installed(runtime: str) -> bool:
    """Whether the runtime package ``runtime`` (``onnxruntime``, ``openvino``) is importable."""
    return importlib.util.find_spec(runtime) is not None


def _speed(manifest: ModelManifest | None, backend: str, precision: str) -> float | None:
    if manifest is None:
        return None
    if backend == "numpy":
        ref = dict(manifest.raw.get("reference_speed", {})).get("numpy", {})
        value = ref.get("frames_per_second") if isinstance(ref, dict) else None
        return None if value is None else float(value)
    variant = manifest.variants.get(f"{backend}/{precision}")
    return None if variant is None else variant.frames_per_second


def _select(backend: str, precision: str, opts: LoadOptions) -> VideoSelection:
    check_request(backend, precision)
    survey = Survey(backend, precision, VideoCandidate)
    names = survey.names(VIDEO_BACKENDS)
    # Read only once a runtime is installed: without one the reference needs no model files.
    manifest: ModelManifest | None = None
    if any(n != "numpy" and _installed(n) for n in names):
        manifest = load_manifest(VIDEO_MODEL, VIDEO_VERSION, models_dir=opts.models_dir)

    def gate(name: str, prec: str) -> tuple[str, str] | None:
        assert manifest is not None
        return gate_problem(manifest, name, prec, "scripts/quantize.py --model video")

    eligible: list[tuple[str, str]] = []
    for name, prec in survey.variants(
        names,
        unavailable=lambda n: None if n == "numpy" or _installed(n) else f"{n} is not installed",
        precisions=lambda n: _PRECISIONS[n],
        gate=gate,
    ):
        if name != "numpy":
            assert manifest is not None
            manifest.verify_variant(manifest.variants[f"{name}/{prec}"])
        eligible.append((name, prec))
    # Fastest first by the manifest's speed; the sort is stable, so ties keep the reference first.
    eligible.sort(key=lambda bp: -(_speed(manifest, *bp) or 0.0))
    chosen: VideoAnalyzer | None = None
    reference: Fingerprint | None = None
    for name, prec in eligible:
        speed = _speed(manifest, name, prec)
        if chosen is not None:
            survey.reports.append(VideoCandidate(name, prec, "slower", "", "", speed))
            continue
        analyzer = load_video_analyzer(name, prec, opts)
        if name != "numpy":
            if reference is None:
                reference = check_fingerprint(None)
            mismatch = startup_check(check_fingerprint(analyzer), reference)
            if mismatch is not None:
                detail = f"start-up check against the numpy reference failed: {mismatch}"
                if not survey.explicit_precision:
                    log.warning("runtime: video: %s/%s skipped: %s", name, prec, detail)
                    survey.reports.append(VideoCandidate(name, prec, "check-failed", detail, analyzer.device, speed))
                    continue
                survey.asked_anyway(name, prec, f"its {detail}")
        chosen = analyzer
        survey.reports.append(VideoCandidate(name, prec, "chosen", "", analyzer.device, speed))
    if chosen is None:
        raise survey.no_runnable("video analyzer")
    warnings = survey.warnings_for(chosen)
    for warning in warnings:
        log.warning("runtime: video: %s", warning)
    final = tuple(survey.reports)
    return VideoSelection(chosen, backend, precision, _reason(survey, chosen, final, warnings), final)


def _reason(
    survey: Survey[VideoCandidate], chosen: VideoAnalyzer, candidates: tuple[VideoCandidate, ...],
    warnings: list[str],
) -> str:
    what = f"{chosen.backend}/{chosen.precision} on {chosen.device}"
    ranked = [c for c in candidates if c.status in ("chosen", "slower", "check-failed")]
    if len(ranked) > 1:
        speeds = ", ".join(
            f"{c.label} {c.frames_per_second:g}" if c.frames_per_second is not None
            else f"{c.label} unmeasured"
            for c in ranked
        )
        head = f"{what}: the fastest candidate passing the start-up check (manifest frames/s: {speeds})"
    else:
        head = what
    return survey.reason(head, candidates, warnings)


def check_clip() -> tuple[NDArray[np.uint8], list[float]]:
    """The generated clip of the start-up check: uint8 RGB ``[24, 144, 256, 3]`` at 10 fps.

    Flat grey, black, colour bars, a moving stripe pattern on a gradient, a hard cut to
    blocky noise: every video dimension sees non-trivial input. Timestamps in seconds.
    """
    rng = np.random.default_rng(20240607)
    h, w = CHECK_HEIGHT, CHECK_WIDTH
    x = np.arange(w)[None, :]
    frames = np.zeros((CHECK_FRAMES, h, w, 3), np.uint8)
    frames[0:3] = 128
    # frames[3:6] stay black
    bars = np.array([[235, 235, 235], [235, 235, 16], [16, 235, 235], [16, 235, 16],
                     [235, 16, 235], [235, 16, 16], [16, 16, 235], [16, 16, 16]], np.uint8)
    frames[6:9] = bars[np.minimum(x[0] * 8 // w, 7)][None, None, :, :]
    ramp = (np.linspace(30, 200, w)[None, :] * np.ones((h, 1))).astype(np.float64)
    for i in range(9, 16):
        stripes = 40.0 * ((x + 6 * i) // 8 % 2)
        lum = np.clip(ramp + stripes, 0, 255)
        frames[i, ..., 0] = lum.astype(np.uint8)
        frames[i, ..., 1] = (lum * 0.8).astype(np.uint8)
        frames[i, ..., 2] = np.clip(255 - lum, 0, 255).astype(np.uint8)
    blocks = rng.integers(0, 256, (CHECK_FRAMES, h // 8, w // 8, 3), dtype=np.uint8)
    for i in range(16, CHECK_FRAMES):
        frames[i] = np.repeat(np.repeat(blocks[i], 8, axis=0), 8, axis=1)
    return frames, [i / 10.0 for i in range(CHECK_FRAMES)]


def check_fingerprint(analyzer: VideoAnalyzer | None) -> Fingerprint:
    """The 13D fingerprint of :func:`check_clip` through ``analyzer`` (``None``: the reference).

    The video session (and PyAV, which scales its frames) is imported here, not with this
    module: a server whose selection is the numpy reference runs no check and never loads
    PyAV (about 16 MB resident) until a video request comes.
    """
    from streamprint.engine.video.session import VideoSession, VideoSessionConfig

    frames, timestamps = check_clip()
    session = VideoSession(VideoSessionConfig(update_interval_s=None), analyzer=analyzer)
    session.push_rgb(frames, timestamps)
    return session.finish()


def startup_check(got: Fingerprint, ref: Fingerprint) -> str | None:
    """``None`` when every dimension of ``got`` is within tolerance of ``ref``, else what differs."""
    problems = []
    for name in dims.VIDEO_13D:
        r, g = ref.values[name], got.values[name]
        if not math.isfinite(g) or abs(g - r) > dims.get(name).tolerance_for(r):
            problems.append(f"{name} {g:.4g} vs {r:.4g}")
    return ", ".join(problems) or None



def video_selection_for(backend: str, precision: str) -> VideoSelection:
    """The server's video selection for ``--backend`` / ``--precision`` (one thread per call)."""
    return select_video(backend, precision, LoadOptions(threads=1))
