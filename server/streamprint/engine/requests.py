"""Validation shared by every session config (audio and video): which dimensions, how often.

Each check raises :class:`~streamprint.errors.InvalidInputError` naming the field, what is
wrong and what is allowed.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

from streamprint.errors import InvalidInputError

MIN_UPDATE_INTERVAL_S = 0.1
MAX_UPDATE_INTERVAL_S = 3600.0


def check_dimensions(requested: Sequence[str], allowed: Sequence[str], modality: str) -> None:
    """``requested`` must be a non-empty subset of ``allowed`` (the modality's dimensions)."""
    if not requested:
        raise InvalidInputError.for_field("dimensions", "no dimensions requested", "at least one")
    wrong = [name for name in requested if name not in allowed]
    if wrong:
        raise InvalidInputError.for_field(
            "dimensions",
            f"not {modality} dimension(s): {', '.join(wrong)}",
            ", ".join(allowed),
        )


def check_update_interval(interval: float | None) -> None:
    """``interval`` (seconds of media between updates) must be ``None`` or within range."""
    if interval is not None and not (
        math.isfinite(interval) and MIN_UPDATE_INTERVAL_S <= interval <= MAX_UPDATE_INTERVAL_S
    ):
        raise InvalidInputError.for_field(
            "update_interval_s",
            f"{interval} s is out of range",
            f"{MIN_UPDATE_INTERVAL_S}..{MAX_UPDATE_INTERVAL_S} s",
        )
