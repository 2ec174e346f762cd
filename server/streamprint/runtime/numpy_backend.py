"""The ``numpy`` backend: the reference :class:`~streamprint.engine.analysis.NumpyFrameAnalyzer`."""

from __future__ import annotations

import copy
import time

import numpy as np
from numpy.typing import NDArray

from streamprint.engine.analysis import FrameDescriptors, NumpyFrameAnalyzer
from streamprint.engine.fingerprint import REFERENCE_MODEL_VERSION
from streamprint.errors import ModelError
from streamprint.runtime.base import LoadOptions


class NumpyAnalyzer:
    """The reference analyzer with the :class:`~streamprint.runtime.base.LoadedAnalyzer` fields."""

    name = "numpy"
    version = REFERENCE_MODEL_VERSION
    backend = "numpy"
    precision = "fp32"
    device = "CPU"

    def __init__(self) -> None:
        start = time.perf_counter()
        self._inner = NumpyFrameAnalyzer()
        self.load_seconds = time.perf_counter() - start

    def without_pitch(self) -> NumpyAnalyzer:
        """The reference without YIN (for the learned heads)."""
        clone = copy.copy(self)
        clone._inner = NumpyFrameAnalyzer(pitch=False)
        return clone

    def analyze(self, frames: NDArray[np.float32]) -> FrameDescriptors:
        """Descriptors of ``frames`` ``[n, 2048]`` float32 (the reference)."""
        return self._inner.analyze(frames)


class NumpyBackend:
    """Always available; FP32 (float32 FFTs, float64 reductions) only."""

    name = "numpy"

    def unavailable_reason(self) -> str | None:
        return None

    def precisions(self) -> tuple[str, ...]:
        return ("fp32",)

    def devices(self) -> tuple[str, ...]:
        return ("CPU",)

    def load(self, precision: str, options: LoadOptions) -> NumpyAnalyzer:
        del options
        if precision != "fp32":
            raise ModelError(f"the numpy reference backend runs fp32 only, not {precision}")
        return NumpyAnalyzer()
