"""The start-up warm-up loads the very signatures the engine then calls, so no stream or
request compiles a kernel (and grows the server's memory) after the server is ready."""

from __future__ import annotations

import numpy as np

from streamprint.engine import iir, kernels, median, pitch
from streamprint.engine.grid import FRAME_LENGTH
from streamprint.engine.native import IntegratedLoudness


def _signatures() -> dict[str, int]:
    compiled = {"iir": iir._weighted_energy_rows, "yin": pitch._yin_rows, "median": median._sliding_median_rows}
    return {name: len(kernel.signatures) for name, kernel in compiled.items()}


def test_warm_up_covers_what_the_engine_calls() -> None:
    kernels.warm_up()
    warmed = _signatures()
    assert all(count >= 1 for count in warmed.values()), warmed
    rng = np.random.default_rng(0)
    stereo = rng.uniform(-0.5, 0.5, (100_000, 2)).astype(np.float32)
    meter = IntegratedLoudness(44_100, 2)
    meter.push(stereo)  # several 64 Ki-sample slices
    meter.push(stereo[1::2])  # a strided view of the caller's block
    for frames in (1, 43, 48):  # one frame (the end of a stream) and full batches
        pitch.yin(rng.standard_normal((frames, FRAME_LENGTH)).astype(np.float32))
    pitch.yin(rng.standard_normal((40, 2 * FRAME_LENGTH)).astype(np.float32)[:, ::2])
    median.sliding_median(rng.standard_normal((1025, 60)).astype(np.float32).T, 31)
    assert _signatures() == warmed
