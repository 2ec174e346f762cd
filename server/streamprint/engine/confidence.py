"""Turning the uncertainty of a running statistic into a confidence.

A dimension's confidence is the probability that its current value is already within the
dimension's tolerance of the final value. Each accumulator estimates the standard error of
its current value from the data (batch means over one-second blocks, so correlated frames
are not counted as independent); if the final value is modelled as
``current + N(0, (INFLATION * se)^2)``, the probability of being within ``tol`` is
``erf(tol / (sqrt(2) * INFLATION * se))``. ``INFLATION`` is fitted on a generated corpus by
``scripts/calibrate_confidence.py`` (see docs/benchmarks.md).
"""

from __future__ import annotations

import math

#: Multiplier on standard errors that makes stated confidences match observed frequencies.
INFLATION = 1.0

#: Fewer one-second blocks than this and no standard error is trusted.
MIN_BLOCKS = 2


def within_tolerance(tolerance: float, standard_error: float, *, inflation: float = INFLATION) -> float:
    """Probability (0-1) that a normal error with ``standard_error`` stays within ``tolerance``.

    Both arguments are in the dimension's unit. A zero standard error gives 1.0.
    """
    if not math.isfinite(standard_error):
        return 0.0
    if standard_error <= 0.0:
        return 1.0
    return math.erf(tolerance / (math.sqrt(2.0) * inflation * standard_error))
