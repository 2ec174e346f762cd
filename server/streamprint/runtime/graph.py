"""The part of a graph backend that stays in numpy, around the model call.

:class:`GraphFrameAnalyzer` does what ``scripts/export_models.py`` explains stays in
numpy (the DFT with pocketfft, the frame RMS in float64, YIN) exactly as
:class:`~streamprint.engine.analysis.NumpyFrameAnalyzer` does, hands the power spectrum
to the model, and assembles :class:`~streamprint.engine.analysis.FrameDescriptors`. So
RMS, magnitudes (hence HPSS), f0 and voicing are bit-identical on every backend; only the
descriptors the graph computes can differ, within the tolerances the gate checks.
"""

from __future__ import annotations

import copy
from collections.abc import Callable, Mapping

import numpy as np
from numpy.typing import NDArray

from streamprint.engine import pitch
from streamprint.engine.analysis import FrameDescriptors, frame_rms
from streamprint.engine.spectrum import power_spectrum
from streamprint.runtime.base import as_f64, empty_descriptors

#: The model call: power ``[n, 1025]`` float32 -> the graph's named outputs.
Runner = Callable[[NDArray[np.float32]], Mapping[str, NDArray[np.float32]]]
OUTPUT_NAMES = ("centroid", "rolloff", "flatness", "chroma_concentration", "mel_db", "band_power")


class GraphFrameAnalyzer:
    """A :class:`~streamprint.engine.analysis.FrameAnalyzer` whose spectral part is a model.

    ``name`` is ``<model>-<backend>-<precision>`` (what fingerprints and cache keys carry),
    ``version`` the model version.
    """

    def __init__(
        self, runner: Runner, *, model: str, version: str, backend: str, precision: str,
        device: str, load_seconds: float,
    ) -> None:
        self._runner = runner
        self.name = f"{model}-{backend}-{precision}"
        self.model = model
        self.version = version
        self.backend = backend
        self.precision = precision
        self.device = device
        self.load_seconds = load_seconds
        #: Whether YIN runs (the learned heads replace it: :meth:`without_pitch`).
        self.pitch = True

    def without_pitch(self) -> GraphFrameAnalyzer:
        """The same analyzer (same model session) without YIN."""
        clone = copy.copy(self)
        clone.pitch = False
        return clone

    def analyze(self, frames: NDArray[np.float32]) -> FrameDescriptors:
        """Descriptors of ``frames`` ``[n, 2048]`` float32."""
        n = frames.shape[0]
        if n == 0:
            return empty_descriptors()
        frames = np.ascontiguousarray(frames, dtype=np.float32)
        rms = frame_rms(frames)
        power32 = power_spectrum(frames)
        magnitude = np.sqrt(power32)
        out = self._runner(power32)
        f0, voiced = pitch.of_frames(frames, rms, enabled=self.pitch)
        return FrameDescriptors(
            rms=rms,
            magnitude=magnitude,
            centroid=as_f64(out["centroid"]).reshape(n),
            rolloff=as_f64(out["rolloff"]).reshape(n),
            # gmean / mean is at most 1; float32 rounding in the graph can give 1 + 1e-7
            flatness=np.minimum(as_f64(out["flatness"]).reshape(n), 1.0),
            chroma_concentration=as_f64(out["chroma_concentration"]).reshape(n),
            mel_db=np.asarray(out["mel_db"], dtype=np.float32).reshape(n, -1),
            band_power=as_f64(out["band_power"]).reshape(n, -1),
            f0=f0,
            voiced=voiced,
        )
