"""Exact running median filters (a compiled C loop, ``sp_sliding_median_rows``).

A median of ``k`` values slides along the last axis of a 2-D array keeping one sorted window
per row: each step deletes the outgoing value and inserts the incoming one by shifting,
``O(k)`` per output instead of the ``O(k log k)`` selection per output that
``scipy.ndimage.median_filter`` does. The result is bit-identical to scipy's (it selects
the same order statistic); it is about ten times faster on 31-wide windows.
"""

from __future__ import annotations

import numpy as np
from numpy.typing import NDArray

from streamprint.engine.compiled import library


def sliding_median(padded: NDArray[np.float32], width: int) -> NDArray[np.float32]:
    """Median over ``width`` consecutive values along the last axis.

    ``padded`` is ``[rows, n + width - 1]`` float32 (the caller pads the edges as it
    wants); the result is ``[rows, n]``: ``out[r, j] = median(padded[r, j : j + width])``.
    Inputs must be finite.
    """
    if padded.ndim != 2 or not 1 <= width <= padded.shape[1]:
        raise ValueError(f"need [rows, n] input with 1 <= width <= n, got {padded.shape} and width {width}")
    padded = np.ascontiguousarray(padded, dtype=np.float32)
    rows, n = padded.shape
    result: NDArray[np.float32] = np.empty((rows, n - width + 1), dtype=np.float32)
    library().sp_sliding_median_rows(padded, rows, n, width, result, np.empty(width, dtype=np.float32))
    return result


def reflect_indices(indices: NDArray[np.int64], length: int) -> NDArray[np.int64]:
    """Map out-of-range indices into ``[0, length)`` by half-sample symmetric reflection.

    This is scipy.ndimage's ``mode="reflect"`` (``d c b a | a b c d | d c b a``), repeated
    as often as needed when the window is longer than the data.
    """
    period = 2 * length
    wrapped = np.mod(indices, period)
    return np.where(wrapped >= length, period - 1 - wrapped, wrapped)
