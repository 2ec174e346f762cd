"""A streaming buffer for centred windows over frames with a fixed look-ahead.

HPSS's time median (``engine/hpss.py``) and the learned harmonic head's time mean
(``engine/heads.py``) both need, for frame ``t``, the rows of frames ``t - half`` ..
``t + half``, with reflected edges (``-1 -> 0``, ``n -> n - 1``: librosa's ``reflect``
padding of a median / uniform filter). A frame becomes decidable ``half`` frames after it
arrives; at the end of the stream the last ``half`` are completed with the reflected end.
This is that bookkeeping, once: streaming in any chunking gives exactly the rows of one
pass over everything.
"""

from __future__ import annotations

import numpy as np
from numpy.typing import NDArray

from streamprint.engine.median import reflect_indices


class LagWindow:
    """Rows ``[*, width]`` (float32) of a stream, kept for centred windows of ``2 half + 1`` frames.

    :meth:`push` adds rows; :meth:`take` returns the window rows of the frames that became
    decidable (each frame once, in order) and forgets the rows no later window needs.
    """

    def __init__(self, half: int, width: int) -> None:
        self.half = half
        self._rows = np.zeros((0, width), dtype=np.float32)
        self._base = 0  # absolute frame index of _rows[0]
        self._seen = 0
        self._done = 0

    @property
    def seen(self) -> int:
        """Frames pushed so far."""
        return self._seen

    @property
    def done(self) -> int:
        """Frames whose windows have been taken."""
        return self._done

    def push(self, rows: NDArray[np.float32]) -> None:
        """Append ``rows`` ``[m, width]`` (frames ``seen`` .. ``seen + m - 1``)."""
        self._rows = np.concatenate((self._rows, rows.astype(np.float32, copy=False)))
        self._seen += rows.shape[0]

    def take(self, *, final: bool) -> NDArray[np.float32] | None:
        """Windows of the frames now decidable, ``[k + 2 half, width]``, or ``None`` (``k = 0``).

        Row ``i`` of the result is frame ``done - half + i`` (reflected at the start, and with
        ``final`` at the end of the stream); the ``k`` frames themselves are rows
        ``half .. half + k - 1``. Without ``final`` the frames up to ``seen - half`` are
        decidable, with ``final`` all of them.
        """
        start = self._done
        stop = self._seen if final else self._seen - self.half
        if stop <= start:
            return None
        wanted = np.arange(start - self.half, stop + self.half, dtype=np.int64)
        if final:
            wanted = reflect_indices(wanted, self._seen)
        else:
            wanted = np.where(wanted < 0, -wanted - 1, wanted)
        window = self._rows[wanted - self._base]
        self._done = stop
        keep_from = max(0, stop - self.half)
        # a copy: a view would keep every row of the last push alive until the next one
        self._rows = self._rows[keep_from - self._base :].copy()
        self._base = keep_from
        return window
