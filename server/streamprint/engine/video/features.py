"""Per-frame video descriptors and the exact online accumulators of the 13 video dimensions.

Per analysed frame (uint8 RGB ``[h, w, 3]`` on the analysis grid) :func:`describe` computes
a row of :data:`COLUMNS`; pairs of consecutive analysed frames add temporal columns. The
accumulators are sums, counts and Welford moments fed in any chunking, so a stream's
statistics equal one pass over the same frames up to float rounding. Standard errors use
batch means over one-second blocks (10 analysed frames). Definitions: docs/fingerprint.md,
"Video 13D".
"""

from __future__ import annotations

import math

import numpy as np
from numpy.typing import NDArray

from streamprint.engine import dims
from streamprint.engine.stats import MaskedStd, RatioOfSums
from streamprint.engine.video import calibration
from streamprint.engine.video.grid import FRAMES_PER_BLOCK

#: A pixel is dark when its luma is at most this (10 % of full scale, ffmpeg blackdetect).
BLACK_PIXEL_LEVEL = 0.10 * 255.0
#: A frame is black when at least this share of its pixels is dark (ffmpeg blackdetect).
BLACK_PIXEL_SHARE = 0.98
#: Sobel magnitude threshold of an edge pixel: 10 % of the largest 3x3 Sobel response (4 x 255).
EDGE_LEVEL = 0.10 * 4.0 * 255.0
#: Luma histogram bins used by the cut detector.
CUT_HIST_BINS = 32
#: A pair is a hard cut when the luma histograms differ by at least this total variation ...
CUT_HIST_DISTANCE = 0.35
#: ... and the mean absolute luma difference is at least this many levels.
CUT_MEAN_ABS_DIFF = 15.0

#: Motion below this many levels is codec noise: the denominator floor of motion_stability's CV.
MOTION_FLOOR = 1.0

#: Per-frame descriptor columns (a row per analysed frame).
COLUMNS = (
    "luma_mean", "luma_std", "saturation", "colorfulness", "sharpness", "edge_density",
    "si", "black", "has_prev", "ti", "mad", "cut",
)
_C = {name: i for i, name in enumerate(COLUMNS)}

Luma = NDArray[np.float32]


def luma_of(rgb: NDArray[np.uint8]) -> Luma:
    """BT.601 luma ``[h, w]`` (levels 0-255, float32) of uint8 RGB ``[h, w, 3]``."""
    f = rgb.astype(np.float32)
    return np.asarray(0.299 * f[..., 0] + 0.587 * f[..., 1] + 0.114 * f[..., 2], dtype=np.float32)


def luma_histogram(y: Luma) -> NDArray[np.float64]:
    """Normalised :data:`CUT_HIST_BINS`-bin histogram of luma ``[h, w]`` (sums to 1)."""
    idx = np.minimum((y * (CUT_HIST_BINS / 256.0)).astype(np.intp), CUT_HIST_BINS - 1)
    counts = np.bincount(idx.ravel(), minlength=CUT_HIST_BINS).astype(np.float64)
    return counts / max(1.0, float(counts.sum()))


def _mean_std(x: NDArray[np.float32]) -> tuple[float, float]:
    """Mean and population standard deviation of ``x`` (float64 accumulation)."""
    n = x.size
    total = float(np.sum(x, dtype=np.float64))
    mean = total / n
    centred = x - np.float32(mean)
    var = float(np.dot(centred.ravel(), centred.ravel())) / n
    return mean, math.sqrt(max(var, 0.0))


def describe(rgb: NDArray[np.uint8], prev: tuple[Luma, NDArray[np.float64]] | None) -> tuple[
    NDArray[np.float64], Luma, NDArray[np.float64]
]:
    """Descriptors of one analysed frame.

    ``rgb`` is uint8 ``[h, w, 3]`` (h, w >= 3: :func:`~streamprint.engine.video.grid.analysis_size`
    gives at least 256 x 4); ``prev`` the previous analysed frame's luma and
    histogram (``None`` for the first). Returns the row ``[len(COLUMNS)]`` plus this frame's
    luma and histogram (for the next call).
    """
    f = rgb.astype(np.float32)
    r, g, b = f[..., 0], f[..., 1], f[..., 2]
    y = np.asarray(0.299 * r + 0.587 * g + 0.114 * b, dtype=np.float32)
    row = np.zeros(len(COLUMNS))
    mean_y, std_y = _mean_std(y)
    row[_C["luma_mean"]] = mean_y
    row[_C["luma_std"]] = std_y
    r8, g8, b8 = rgb[..., 0], rgb[..., 1], rgb[..., 2]
    mx = np.maximum(np.maximum(r8, g8), b8)
    mn = np.minimum(np.minimum(r8, g8), b8)
    chroma = (mx - mn).astype(np.float32)
    row[_C["saturation"]] = float(np.mean(chroma / np.maximum(mx, 1).astype(np.float32), dtype=np.float64))
    rg = r - g
    yb = 0.5 * (r + g) - b
    mean_rg, std_rg = _mean_std(rg)
    mean_yb, std_yb = _mean_std(yb)
    row[_C["colorfulness"]] = math.hypot(std_rg, std_yb) + 0.3 * math.hypot(mean_rg, mean_yb)
    lap = y[:-2, 1:-1] + y[2:, 1:-1] + y[1:-1, :-2] + y[1:-1, 2:] - 4.0 * y[1:-1, 1:-1]
    row[_C["sharpness"]] = math.log10(1.0 + _mean_std(lap)[1] ** 2)
    # Sobel, separably: smooth [1, 2, 1] across, difference [-1, 0, 1] along
    sx = y[:-2] + 2.0 * y[1:-1] + y[2:]
    sy = y[:, :-2] + 2.0 * y[:, 1:-1] + y[:, 2:]
    gx = sx[:, 2:] - sx[:, :-2]
    gy = sy[2:] - sy[:-2]
    mag = np.sqrt(gx * gx + gy * gy)
    row[_C["edge_density"]] = float(np.count_nonzero(mag > EDGE_LEVEL)) / mag.size
    row[_C["si"]] = _mean_std(mag)[1]
    row[_C["black"]] = float(np.count_nonzero(y <= BLACK_PIXEL_LEVEL) >= BLACK_PIXEL_SHARE * y.size)
    hist = luma_histogram(y)
    if prev is not None and prev[0].shape == y.shape:
        diff = y - prev[0]
        mad = float(np.mean(np.abs(diff), dtype=np.float64))
        distance = 0.5 * float(np.abs(hist - prev[1]).sum())
        row[_C["has_prev"]] = 1.0
        row[_C["ti"]] = _mean_std(diff)[1]
        row[_C["mad"]] = mad
        row[_C["cut"]] = float(distance >= CUT_HIST_DISTANCE and mad >= CUT_MEAN_ABS_DIFF)
    return row, y, hist


class VideoFeatures:
    """Accumulators of the 13 video dimensions, fed descriptor rows ``[n, len(COLUMNS)]``."""

    def __init__(self) -> None:
        block = FRAMES_PER_BLOCK
        self._means = {
            name: RatioOfSums(block_frames=block)
            for name in (
                "brightness_mean", "contrast", "saturation_mean", "colorfulness", "sharpness",
                "edge_density", "spatial_information", "temporal_information",
                "motion_intensity", "black_frame_ratio",
            )
        }
        self._brightness_std = MaskedStd(block_frames=block)
        self._motion_std = MaskedStd(block_frames=block)
        self.frames = 0
        self.cuts = 0

    def add(self, rows: NDArray[np.float64]) -> None:
        """Add descriptor rows ``[n, len(COLUMNS)]`` of consecutive analysed frames."""
        if rows.shape[0] == 0:
            return
        c = {name: rows[:, i] for name, i in _C.items()}
        ones = np.ones(rows.shape[0])
        lit = 1.0 - c["black"]
        pair = c["has_prev"]
        motion = pair * (1.0 - c["cut"])
        m = self._means
        m["brightness_mean"].add(c["luma_mean"] / 255.0, ones)
        m["contrast"].add(c["luma_std"] / 255.0, ones)
        m["saturation_mean"].add(c["saturation"], ones)
        m["colorfulness"].add(c["colorfulness"], ones)
        m["sharpness"].add(c["sharpness"] * lit, lit)
        m["edge_density"].add(c["edge_density"], ones)
        m["spatial_information"].add(c["si"], ones)
        m["temporal_information"].add(c["ti"] * pair, pair)
        m["motion_intensity"].add(c["mad"] * motion, motion)
        m["black_frame_ratio"].add(c["black"], ones)
        self._brightness_std.add(c["luma_mean"] / 255.0, np.ones(rows.shape[0], dtype=bool))
        self._motion_std.add(c["mad"], motion > 0)
        self.frames += rows.shape[0]
        self.cuts += int(c["cut"].sum())

    def _motion_stability(self) -> tuple[float, float]:
        mean = self._means["motion_intensity"]
        if mean.den < 2:
            return 1.0, math.inf
        scale = max(mean.value, MOTION_FLOOR)
        std = self._motion_std.value
        cv = std / scale
        se_std = self._motion_std.std_error()
        se_mean = mean.std_error() if mean.value > MOTION_FLOOR else 0.0
        se = math.sqrt((se_std / scale) ** 2 + (cv * se_mean / scale) ** 2)
        return min(1.0, max(0.0, 1.0 - cv)), se

    def values_and_errors(self, media_seconds: float) -> dict[str, tuple[float, float]]:
        """``name -> (value, standard error)`` of every video dimension (units of dims)."""
        out = {name: (acc.value, acc.std_error()) for name, acc in self._means.items()}
        out["brightness_variation"] = (self._brightness_std.value, self._brightness_std.std_error())
        out["motion_stability"] = self._motion_stability()
        minutes = media_seconds / 60.0
        if minutes > 0:
            out["scene_cut_rate"] = (self.cuts / minutes, math.sqrt(self.cuts + 1.0) / minutes)
        else:
            out["scene_cut_rate"] = (0.0, math.inf)
        return out

    def values(self, media_seconds: float) -> dict[str, float]:
        """Current value of every video dimension (registry names)."""
        return {k: v for k, (v, _) in self.values_and_errors(media_seconds).items()}

    def confidences(self, media_seconds: float) -> dict[str, float]:
        """Calibrated confidence (0-1) of every video dimension (see :mod:`.calibration`)."""
        out: dict[str, float] = {}
        for name, (value, se) in self.values_and_errors(media_seconds).items():
            tol = dims.get(name).tolerance_for(value)
            out[name] = calibration.confidence(name, tol, se)
        return out
