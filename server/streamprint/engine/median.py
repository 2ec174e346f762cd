"""Exact running median filters (compiled with numba).

A median of ``k`` values slides along the last axis of a 2-D array keeping one sorted window
per row: each step deletes the outgoing value and inserts the incoming one by shifting,
``O(k)`` per output instead of the ``O(k log k)`` selection per output that
``scipy.ndimage.median_filter`` does. The result is bit-identical to scipy's (it selects
the same order statistic); it is about ten times faster on 31-wide windows.
"""

from __future__ import annotations

import numba
import numpy as np
from numpy.typing import NDArray


@numba.njit(cache=True, nogil=True)  # type: ignore[untyped-decorator,unused-ignore]
def _sliding_median_rows(x: NDArray[np.float32], k: int) -> NDArray[np.float32]:  # pragma: no cover - compiled
    rows, n = x.shape
    half = k // 2
    out = np.empty((rows, n - k + 1), dtype=np.float32)
    win = np.empty(k, dtype=np.float32)
    for r in range(rows):
        for i in range(k):
            win[i] = x[r, i]
        win.sort()
        out[r, 0] = win[half]
        for j in range(1, n - k + 1):
            old = x[r, j - 1]
            new = x[r, j + k - 1]
            p = 0
            while p < k - 1 and win[p] != old:
                p += 1
            if new > old:
                while p < k - 1 and win[p + 1] < new:
                    win[p] = win[p + 1]
                    p += 1
            else:
                while p > 0 and win[p - 1] > new:
                    win[p] = win[p - 1]
                    p -= 1
            win[p] = new
            out[r, j] = win[half]
    return out


def sliding_median(padded: NDArray[np.float32], width: int) -> NDArray[np.float32]:
    """Median over ``width`` consecutive values along the last axis.

    ``padded`` is ``[rows, n + width - 1]`` float32 (the caller pads the edges as it
    wants); the result is ``[rows, n]``: ``out[r, j] = median(padded[r, j : j + width])``.
    Inputs must be finite.
    """
    if padded.shape[1] < width:
        raise ValueError("padded input shorter than the median width")
    result: NDArray[np.float32] = _sliding_median_rows(
        np.ascontiguousarray(padded, dtype=np.float32), width
    )
    return result


def warm_up() -> None:
    """Load the compiled kernel now (see :mod:`streamprint.engine.kernels`)."""
    sliding_median(np.zeros((1, 3), np.float32), 3)


def reflect_indices(indices: NDArray[np.int64], length: int) -> NDArray[np.int64]:
    """Map out-of-range indices into ``[0, length)`` by half-sample symmetric reflection.

    This is scipy.ndimage's ``mode="reflect"`` (``d c b a | a b c d | d c b a``), repeated
    as often as needed when the window is longer than the data.
    """
    period = 2 * length
    wrapped = np.mod(indices, period)
    return np.where(wrapped >= length, period - 1 - wrapped, wrapped)
