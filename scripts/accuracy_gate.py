"""The corpus accuracy gate of a model variant, shared by ``scripts/quantize.py`` (the int8
and graph variants against the numpy reference) and ``scripts/heads_gate.py`` (the learned
heads against HPSS + YIN).

Errors come in units of each dimension's registry tolerance (``|got - ref| / tolerance``,
so ``<= 1`` is within tolerance), one per clip; the gate passes when every dimension is
within tolerance on at least :data:`GATE_SHARE` of the clips.
"""

from __future__ import annotations

from typing import Any

import numpy as np

#: Share of the clips on which every dimension must be within tolerance.
GATE_SHARE = 0.99


def accuracy_and_gate(
    per_dim: dict[str, list[float]], clips: int, *, reference: str = "the numpy reference",
    failed_clips: str = "clips", passed_clips: str = "corpus clips", p99: bool = True,
) -> tuple[dict[str, Any], dict[str, Any]]:
    """The manifest's ``accuracy`` (per dimension) and ``gate`` entries of one variant.

    ``per_dim``: per dimension, one error (tolerance units) per clip; ``clips``: how many.
    The gate's ``reason`` names ``reference`` and calls the clips ``failed_clips`` (when
    it failed) or ``passed_clips``; ``p99`` adds the 99th-percentile error per dimension.
    """
    accuracy: dict[str, Any] = {}
    shares: dict[str, float] = {}
    for name, errs in per_dim.items():
        a = np.asarray(errs)
        shares[name] = round(float(np.mean(a <= 1.0)), 4)
        entry: dict[str, Any] = {
            "share_within_tolerance": shares[name],
            "max_error_tolerance_units": float(f"{float(a.max()):.3g}"),
        }
        if p99:
            entry["p99_error_tolerance_units"] = float(f"{float(np.quantile(a, 0.99)):.3g}")
        entry["mean_error_tolerance_units"] = float(f"{float(a.mean()):.3g}")
        accuracy[name] = entry
    failed = {n: s for n, s in shares.items() if s < GATE_SHARE}
    if failed:
        reason = "; ".join(
            f"{n} within tolerance on {100 * s:.1f} % of {clips} {failed_clips} (< {100 * GATE_SHARE:.0f} %)"
            for n, s in sorted(failed.items(), key=lambda kv: kv[1])
        )
    else:
        reason = (
            f"all {len(shares)} dimensions within tolerance of {reference} on "
            f">= {100 * GATE_SHARE:.0f} % of {clips} {passed_clips}"
        )
    gate = {"passed": not failed, "reason": reason, "required_share": GATE_SHARE,
            "clips": clips, "share_within": shares}
    return accuracy, gate
