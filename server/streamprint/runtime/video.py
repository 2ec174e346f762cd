"""Video per-frame analyzers: the numpy reference and the ``video`` model on ONNX Runtime / OpenVINO.

A :class:`VideoAnalyzer` has the signature of
:func:`streamprint.engine.video.features.describe`: one analysis-size uint8 RGB frame plus
the previous frame's luma and histogram in, the descriptor row, luma and histogram out.
:class:`NumpyVideoAnalyzer` *is* ``describe`` (the reference). :class:`GraphVideoAnalyzer`
hands the frame to the ``video`` model (``models/video/<version>/``, made by
``scripts/export_video_model.py``) for luma, the Sobel / Laplacian convolutions and the
statistics, and keeps in numpy what needs the previous frame or data-dependent bins (the
luma histogram, ti, mad, cut), exactly as ``describe`` does.

:func:`load_video_analyzer` loads (and sha256-checks) a variant; the default of
:class:`~streamprint.engine.video.session.VideoSession` stays the numpy reference.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Mapping
from typing import Protocol

import numpy as np
from numpy.typing import NDArray

from streamprint.engine.fingerprint import REFERENCE_MODEL_VERSION
from streamprint.engine.video import features
from streamprint.engine.video.features import BLACK_PIXEL_SHARE, COLUMNS, Luma
from streamprint.errors import ModelError
from streamprint.runtime.base import LoadOptions
from streamprint.runtime.graph_loading import (
    CPU_PROVIDER,
    ort_providers,
    ort_runner,
    ort_session,
    ov_compile,
    ov_runner,
)
from streamprint.runtime.manifest import load_manifest

VIDEO_MODEL = "video"
VIDEO_VERSION = "1"
#: The model's ``stats`` output, in order.
STATS = (
    "luma_mean", "luma_std", "saturation", "mean_rg", "std_rg", "mean_yb", "std_yb",
    "lap_var", "edge_share", "si", "dark_share",
)
_C = {name: i for i, name in enumerate(COLUMNS)}
_S = {name: i for i, name in enumerate(STATS)}

Prev = tuple[Luma, NDArray[np.float64]] | None
Described = tuple[NDArray[np.float64], Luma, NDArray[np.float64]]
#: The model call: rgb float32 ``[h, w, 3]`` -> ``{"luma": [h, w], "stats": [len(STATS)]}``.
Runner = Callable[[NDArray[np.float32]], Mapping[str, NDArray[np.float32]]]


class VideoAnalyzer(Protocol):
    """Per-frame video descriptors plus what runs them (see module docstring)."""

    name: str
    version: str
    backend: str
    precision: str
    device: str

    def describe(self, rgb: NDArray[np.uint8], prev: Prev) -> Described:
        """Same contract as :func:`streamprint.engine.video.features.describe`."""
        ...


class NumpyVideoAnalyzer:
    """The reference: :func:`streamprint.engine.video.features.describe`."""

    name = "numpy"
    version = REFERENCE_MODEL_VERSION
    backend = "numpy"
    precision = "fp32"
    device = "CPU"
    load_seconds = 0.0

    def describe(self, rgb: NDArray[np.uint8], prev: Prev) -> Described:
        return features.describe(rgb, prev)


class GraphVideoAnalyzer:
    """``describe`` with the per-frame array work done by the ``video`` model."""

    def __init__(
        self, runner: Runner, *, version: str, backend: str, precision: str, device: str,
        load_seconds: float,
    ) -> None:
        self._runner = runner
        self.name = f"{VIDEO_MODEL}-{backend}-{precision}"
        self.version = version
        self.backend = backend
        self.precision = precision
        self.device = device
        self.load_seconds = load_seconds

    def describe(self, rgb: NDArray[np.uint8], prev: Prev) -> Described:
        out = self._runner(np.ascontiguousarray(rgb, dtype=np.float32))
        y = np.asarray(out["luma"], dtype=np.float32).reshape(rgb.shape[:2])
        s = np.asarray(out["stats"], dtype=np.float64).reshape(len(STATS))
        row = np.zeros(len(COLUMNS))
        row[_C["luma_mean"]] = s[_S["luma_mean"]]
        row[_C["luma_std"]] = s[_S["luma_std"]]
        row[_C["saturation"]] = s[_S["saturation"]]
        row[_C["colorfulness"]] = math.hypot(s[_S["std_rg"]], s[_S["std_yb"]]) + 0.3 * math.hypot(
            s[_S["mean_rg"]], s[_S["mean_yb"]]
        )
        row[_C["sharpness"]] = math.log10(1.0 + max(0.0, float(s[_S["lap_var"]])))
        row[_C["edge_density"]] = s[_S["edge_share"]]
        row[_C["si"]] = s[_S["si"]]
        # the share of dark pixels is a mean of 0/1 in float32: compare with a half-pixel margin
        half_pixel = 0.5 / y.size
        row[_C["black"]] = float(s[_S["dark_share"]] + half_pixel >= BLACK_PIXEL_SHARE)
        hist = features.luma_histogram(y)
        if prev is not None and prev[0].shape == y.shape:
            diff = y - prev[0]
            mad = float(np.mean(np.abs(diff), dtype=np.float64))
            distance = 0.5 * float(np.abs(hist - prev[1]).sum())
            row[_C["has_prev"]] = 1.0
            row[_C["ti"]] = features._mean_std(diff)[1]
            row[_C["mad"]] = mad
            row[_C["cut"]] = float(
                distance >= features.CUT_HIST_DISTANCE and mad >= features.CUT_MEAN_ABS_DIFF
            )
        return row, y, hist


def _ort_runner(path: str, options: LoadOptions) -> tuple[Runner, str]:
    session = ort_session(path, options.threads, ort_providers(options.device, [CPU_PROVIDER]))
    return ort_runner(session, "rgb", ("luma", "stats")), str(session.get_providers()[0])


def _ov_runner(path: str, options: LoadOptions) -> tuple[Runner, str]:
    device = options.device or "CPU"
    return ov_runner(ov_compile(path, device, options.threads), "rgb", ("luma", "stats")), device


def load_video_analyzer(
    backend: str = "numpy", precision: str = "fp32", options: LoadOptions | None = None
) -> VideoAnalyzer:
    """The video analyzer ``backend`` (``numpy``, ``onnxruntime``, ``openvino``) at ``precision``.

    Graph variants are sha256-checked against ``models/video/<version>/manifest.json``;
    :class:`ModelError` when the variant is missing, corrupt or cannot load.
    """
    options = options or LoadOptions()
    if backend == "numpy":
        if precision != "fp32":
            raise ModelError(f"the numpy reference backend runs fp32 only, not {precision}")
        return NumpyVideoAnalyzer()
    if backend not in ("onnxruntime", "openvino"):
        raise ModelError(f"unknown video backend {backend!r} (known: numpy, onnxruntime, openvino)")
    start = time.perf_counter()
    manifest = load_manifest(VIDEO_MODEL, VIDEO_VERSION, models_dir=options.models_dir)
    variant = manifest.variant(backend, precision)
    manifest.verify_variant(variant)
    role = "onnx" if backend == "onnxruntime" else "xml"
    path = str(manifest.path(variant.files[role]))
    try:
        runner, device = (_ort_runner if backend == "onnxruntime" else _ov_runner)(path, options)
    except ImportError as exc:
        raise ModelError(f"{backend} is not installed: {exc}") from exc
    except Exception as exc:  # the runtimes raise their own exception types
        raise ModelError(f"model {manifest.model_id}: {backend} cannot load {path}: {exc}") from exc
    return GraphVideoAnalyzer(
        runner, version=manifest.version, backend=backend, precision=precision, device=device,
        load_seconds=time.perf_counter() - start,
    )


def select_video_analyzer(
    backend: str = "auto", precision: str = "auto", options: LoadOptions | None = None
) -> VideoAnalyzer:
    """Like :func:`load_video_analyzer`, with ``auto`` for either argument.

    The analyzer of :func:`streamprint.runtime.video_select.select_video` (which also says
    why it was chosen): the numpy reference and every installed graph variant whose accuracy
    gate passed (an explicit ``precision`` runs anyway), the fastest by the manifest's
    measured frames per second that passes the start-up check.
    """
    from streamprint.runtime.video_select import select_video

    return select_video(backend, precision, options).analyzer
