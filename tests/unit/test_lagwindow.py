"""The fixed-lag window buffer shared by HPSS and the learned harmonic head."""

from __future__ import annotations

import numpy as np
import pytest

from streamprint.engine.lagwindow import LagWindow
from streamprint.engine.median import reflect_indices

HALF, WIDTH = 3, 5


def _windows(rows: np.ndarray, chunks: list[int]) -> list[np.ndarray]:
    """Every window ``take`` returned, pushing ``rows`` in ``chunks`` (the rest at the end)."""
    buf = LagWindow(HALF, WIDTH)
    out: list[np.ndarray] = []
    i = 0
    for c in chunks:
        buf.push(rows[i : i + c])
        i = min(rows.shape[0], i + c)
        got = buf.take(final=False)
        if got is not None:
            out.append(got)
    buf.push(rows[i:])
    last = buf.take(final=True)
    if last is not None:
        out.append(last)
    assert buf.done == buf.seen == rows.shape[0]
    return out


@pytest.mark.parametrize("n", [0, 1, 2, HALF, 2 * HALF + 1, 40])
@pytest.mark.parametrize("chunks", [[], [1] * 50, [4, 0, 9, 2], [100]])
def test_windows_are_reflected_and_each_frame_comes_once(n: int, chunks: list[int]) -> None:
    rows = np.random.default_rng(n).standard_normal((n, WIDTH)).astype(np.float32)
    windows = _windows(rows, chunks)
    centres = [w[HALF : w.shape[0] - HALF] for w in windows]
    assert all(w.shape[0] > 2 * HALF for w in windows)  # never an empty window
    np.testing.assert_array_equal(np.concatenate(centres) if centres else rows[:0], rows)
    start = 0
    for w in windows:  # row i of a window is frame start - HALF + i, reflected at both ends
        k = w.shape[0] - 2 * HALF
        want = reflect_indices(np.arange(start - HALF, start + k + HALF, dtype=np.int64), n)
        np.testing.assert_array_equal(w, rows[want])
        start += k


def test_a_frame_waits_for_its_look_ahead() -> None:
    buf = LagWindow(HALF, WIDTH)
    buf.push(np.ones((HALF, WIDTH), np.float32))
    assert buf.take(final=False) is None and buf.done == 0
    buf.push(np.ones((1, WIDTH), np.float32))
    got = buf.take(final=False)
    assert got is not None and got.shape == (1 + 2 * HALF, WIDTH) and buf.done == 1
    assert buf.take(final=False) is None
