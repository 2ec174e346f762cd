"""Validating a candidate fingerprint against a reference, dimension by dimension.

Pure library code (no gRPC): the api layer and the CLI both call :func:`validate` and
print :meth:`ValidationReport.to_json_dict`.

Rules (the registry in :mod:`dims` supplies every tolerance, range and critical flag):

* Each compared dimension's error is ``|candidate - reference|`` in tolerance units,
  i.e. divided by ``dims.get(name).tolerance_for(reference)``; it passes at ``<= 1``.
* ``tempo_bpm`` off by a tempo octave (within tolerance of 2x, 1/2x, 3x or 1/3x the
  reference) is an ``OCTAVE_ERROR``, reported but not counted as a failure: beat
  trackers commonly lock to the half or double (or, in triple metre, a third or three
  times) of the annotated tempo and both readings describe the same pulse, so the usual
  tempo metric (Acc2) accepts them too; the report still names it so callers that need
  the exact tempo can reject it.
* A dimension the candidate lacks is ``MISSING`` and fails.
* ``passed`` is ``similarity >= similarity_threshold`` and no failing (``FAIL`` or
  ``MISSING``) dimension that the registry marks critical; ``failed_dimensions`` lists
  every failing dimension, critical or not.

Similarity: the cosine of the two fingerprints after range normalisation *centred on the
middle of each range*, ``2 * Dimension.normalise(value) - 1`` in [-1, 1]. Plain cosine of
[0, 1]-normalised vectors is nearly always close to 1, since every component is positive
(two unrelated uniform random fingerprints average about 0.75, so 0.95 would separate
almost nothing); centring makes unrelated fingerprints score about 0 (random directions)
while identical ones still score exactly 1. Raw values would be worse still: tempo in
BPM would drown every ratio. For a tempo octave error the octave-corrected candidate
(candidate / factor) enters the similarity, so an accepted octave error does not fail
the report through the back door. Missing dimensions are left out of the similarity
(they already fail on their own). When both centred vectors are zero (every value at
mid-range) the similarity is 1.0; when only one is, 0.0.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from enum import StrEnum

from streamprint.engine import dims
from streamprint.errors import InvalidInputError

#: Tempo ratios that count as an octave error rather than a miss (best match wins).
OCTAVE_FACTORS: tuple[float, ...] = (2.0, 0.5, 3.0, 1.0 / 3.0)

#: Dimensions for which octave errors are recognised.
OCTAVE_DIMENSIONS: frozenset[str] = frozenset({"tempo_bpm"})

DEFAULT_SIMILARITY_THRESHOLD = 0.95


class Verdict(StrEnum):
    """Outcome for one dimension."""

    PASS = "PASS"
    FAIL = "FAIL"
    OCTAVE_ERROR = "OCTAVE_ERROR"
    MISSING = "MISSING"


@dataclass(frozen=True)
class DimensionVerdict:
    """How one dimension compares.

    ``reference``/``candidate`` are in the dimension's unit (``candidate`` is ``None``
    when missing); ``tolerance`` is the absolute tolerance around the reference, in the
    same unit; ``error_tolerance_units`` is ``|candidate - reference| / tolerance``
    (``None`` when missing, ``inf`` when the tolerance is 0 and the values differ);
    ``within_tolerance`` is ``error_tolerance_units <= 1``. ``octave_factor`` is the
    tempo ratio (2, 0.5, 3 or 1/3) of an ``OCTAVE_ERROR``, else ``None``.
    """

    name: str
    reference: float
    candidate: float | None
    error_tolerance_units: float | None
    tolerance: float
    verdict: Verdict
    within_tolerance: bool
    octave_factor: float | None = None

    @property
    def failed(self) -> bool:
        """Whether this dimension fails (``FAIL`` or ``MISSING``)."""
        return self.verdict in (Verdict.FAIL, Verdict.MISSING)

    @property
    def critical(self) -> bool:
        """Whether the registry marks this dimension critical."""
        return dims.get(self.name).critical

    def to_json_dict(self) -> dict[str, object]:
        """JSON-ready dict with snake_case keys (non-finite numbers become ``None``)."""
        return {
            "name": self.name,
            "reference": self.reference,
            "candidate": self.candidate,
            "error_tolerance_units": _finite_or_none(self.error_tolerance_units),
            "tolerance": self.tolerance,
            "verdict": self.verdict.value,
            "within_tolerance": self.within_tolerance,
            "critical": self.critical,
            "octave_factor": self.octave_factor,
        }


@dataclass(frozen=True)
class ValidationReport:
    """The outcome of :func:`validate`.

    ``dimensions`` in comparison order; ``similarity`` in [-1, 1] (see module docs);
    ``passed`` per the module rules; ``failed_dimensions`` names every ``FAIL`` and
    ``MISSING`` dimension; ``octave_errors`` names every ``OCTAVE_ERROR`` dimension.
    """

    dimensions: list[DimensionVerdict]
    similarity: float
    passed: bool
    failed_dimensions: list[str]
    octave_errors: list[str]

    def to_json_dict(self) -> dict[str, object]:
        """JSON-ready dict: ``passed`` (always present), ``similarity``, ``dimensions``, ..."""
        return {
            "passed": self.passed,
            "similarity": self.similarity,
            "failed_dimensions": list(self.failed_dimensions),
            "octave_errors": list(self.octave_errors),
            "dimensions": [d.to_json_dict() for d in self.dimensions],
        }


def validate(
    reference: Mapping[str, float],
    candidate: Mapping[str, float],
    *,
    similarity_threshold: float = DEFAULT_SIMILARITY_THRESHOLD,
    names: Sequence[str] | None = None,
) -> ValidationReport:
    """Compare ``candidate`` with ``reference`` by dimension name.

    Both map registered dimension names to values in the dimension's unit. Every
    dimension of ``reference`` is compared, or only ``names`` (in that order) when given.
    Raises :class:`InvalidInputError` for an unregistered name (in either mapping or in
    ``names``), a name in ``names`` that the reference lacks, a non-finite value, or a
    threshold outside [-1, 1].
    """
    _check_threshold(similarity_threshold)
    compared = _compared_names(reference, candidate, names)
    verdicts = [_judge(name, reference[name], candidate.get(name)) for name in compared]
    similarity = _similarity(verdicts)
    failed = [v.name for v in verdicts if v.failed]
    critical_failure = any(v.failed and v.critical for v in verdicts)
    return ValidationReport(
        dimensions=verdicts,
        similarity=similarity,
        passed=similarity >= similarity_threshold and not critical_failure,
        failed_dimensions=failed,
        octave_errors=[v.name for v in verdicts if v.verdict is Verdict.OCTAVE_ERROR],
    )


# ------------------------------------------------------------------ input checks


def _check_threshold(threshold: float) -> None:
    """Reject a similarity threshold that is not a number in [-1, 1]."""
    if not (math.isfinite(threshold) and -1.0 <= threshold <= 1.0):
        raise InvalidInputError.for_field(
            "similarity_threshold", f"{threshold} is out of range", "a number in [-1, 1]"
        )


def _check_values(label: str, values: Mapping[str, float]) -> None:
    """Every key must be a registered dimension and every value a finite number."""
    for name, value in values.items():
        if not dims.known(name):
            raise InvalidInputError.for_field(
                f"{label}.{name}", f"unknown dimension {name!r}", ", ".join(dims.AUDIO_25D)
            )
        if not math.isfinite(value):
            raise InvalidInputError.for_field(
                f"{label}.{name}", f"{value} is not a finite number", "a finite number"
            )


def _compared_names(
    reference: Mapping[str, float],
    candidate: Mapping[str, float],
    names: Sequence[str] | None,
) -> list[str]:
    """The dimensions to compare, after checking both mappings and ``names``."""
    _check_values("reference", reference)
    _check_values("candidate", candidate)
    if names is None:
        compared = list(dims.ordered(reference))
    else:
        compared = list(dict.fromkeys(names))
        for name in compared:
            if not dims.known(name):
                raise InvalidInputError.for_field(
                    f"names.{name}", f"unknown dimension {name!r}", ", ".join(dims.AUDIO_25D)
                )
            if name not in reference:
                raise InvalidInputError.for_field(
                    f"reference.{name}", "missing from the reference", "every compared name"
                )
    if not compared:
        raise InvalidInputError.for_field("reference", "no dimensions to compare")
    return compared


# ------------------------------------------------------------------ per-dimension verdicts


def _error_units(difference: float, tolerance: float) -> float:
    """``|difference| / tolerance``; with a zero tolerance 0.0 if equal, else ``inf``."""
    if tolerance > 0.0:
        return abs(difference) / tolerance
    return 0.0 if difference == 0.0 else math.inf


def _judge(name: str, reference: float, candidate: float | None) -> DimensionVerdict:
    """The verdict for one dimension."""
    dimension = dims.get(name)
    tolerance = dimension.tolerance_for(reference)
    if candidate is None:
        return DimensionVerdict(name, reference, None, None, tolerance, Verdict.MISSING, False)
    error = _error_units(candidate - reference, tolerance)
    if error <= 1.0:
        return DimensionVerdict(name, reference, candidate, error, tolerance, Verdict.PASS, True)
    factor = _octave_factor(dimension, reference, candidate)
    verdict = Verdict.FAIL if factor is None else Verdict.OCTAVE_ERROR
    return DimensionVerdict(name, reference, candidate, error, tolerance, verdict, False, factor)


def _octave_factor(dimension: dims.Dimension, reference: float, candidate: float) -> float | None:
    """The octave factor whose multiple of ``reference`` matches ``candidate`` best, if any."""
    if dimension.name not in OCTAVE_DIMENSIONS or reference <= 0.0:
        return None
    best: tuple[float, float] | None = None
    for factor in OCTAVE_FACTORS:
        target = factor * reference
        error = _error_units(candidate - target, dimension.tolerance_for(target))
        if error <= 1.0 and (best is None or error < best[0]):
            best = (error, factor)
    return None if best is None else best[1]


# ------------------------------------------------------------------ similarity


def centred(name: str, value: float) -> float:
    """``value`` of dimension ``name`` range-normalised and centred: [low, high] -> [-1, 1]."""
    return 2.0 * dims.get(name).normalise(value) - 1.0


def _similarity(verdicts: Sequence[DimensionVerdict]) -> float:
    """Cosine of the centred, range-normalised vectors of the present dimensions."""
    dot = norm_ref = norm_cand = 0.0
    for verdict in verdicts:
        if verdict.candidate is None:
            continue
        candidate = verdict.candidate
        if verdict.octave_factor is not None:
            candidate /= verdict.octave_factor
        r, c = centred(verdict.name, verdict.reference), centred(verdict.name, candidate)
        dot += r * c
        norm_ref += r * r
        norm_cand += c * c
    if norm_ref == 0.0 and norm_cand == 0.0:
        return 1.0 if any(v.candidate is not None for v in verdicts) else 0.0
    if norm_ref == 0.0 or norm_cand == 0.0:
        return 0.0
    return max(-1.0, min(1.0, dot / math.sqrt(norm_ref * norm_cand)))


def _finite_or_none(value: float | None) -> float | None:
    """``value`` if it is a finite number, else ``None`` (JSON has no infinity)."""
    return value if value is not None and math.isfinite(value) else None
