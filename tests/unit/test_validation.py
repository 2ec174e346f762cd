"""validate(): per-dimension verdicts, octave errors, critical dimensions, similarity."""

from __future__ import annotations

import itertools
import json
import math

import numpy as np
import pytest

from streamprint.engine import dims, validation
from streamprint.engine.validation import (
    DimensionVerdict,
    ValidationReport,
    Verdict,
    centred,
    validate,
)
from streamprint.errors import InvalidInputError

#: A plausible 25D fingerprint (values in each dimension's unit).
REFERENCE: dict[str, float] = {
    "spectral_centroid": 2200.0,
    "spectral_rolloff": 4800.0,
    "spectral_flatness": 0.12,
    "chroma_energy": 0.35,
    "harmonic_ratio": 0.62,
    "pitch_stability": 0.55,
    "tempo_bpm": 120.0,
    "rhythm_stability": 0.7,
    "transient_density": 3.5,
    "silence_ratio": 0.04,
    "loudness_variation_std": 6.0,
    "dynamic_range_variation": 2.5,
    "peak_consistency": 0.8,
    "band_sub_bass": 0.05,
    "band_bass": 0.25,
    "band_low_mid": 0.15,
    "band_mid": 0.3,
    "band_upper_mid": 0.12,
    "band_presence": 0.08,
    "band_air": 0.05,
    "integrated_lufs": -14.0,
    "crest_db": 12.0,
    "bass_mid_ratio": -1.5,
    "stereo_width": 0.2,
    "phase_correlation": 0.6,
}


def tampered(name: str, tolerance_units: float) -> dict[str, float]:
    """``REFERENCE`` with ``name`` moved up by ``tolerance_units`` tolerances (or down near the top)."""
    dimension = dims.get(name)
    value = REFERENCE[name]
    step = tolerance_units * dimension.tolerance_for(value)
    moved = value + step if value + step <= dimension.high else value - step
    return {**REFERENCE, name: moved}


def verdict_of(report: ValidationReport, name: str) -> DimensionVerdict:
    """The verdict for ``name`` in ``report``."""
    return next(d for d in report.dimensions if d.name == name)


def random_fingerprint(rng: np.random.Generator) -> dict[str, float]:
    """Values drawn uniformly from each dimension's valid range."""
    return {d.name: float(rng.uniform(d.low, d.high)) for d in dims.AUDIO_DIMENSIONS}


def test_reference_covers_the_whole_registry() -> None:
    assert set(REFERENCE) == set(dims.AUDIO_25D)


def test_identical_fingerprints_pass_with_similarity_one() -> None:
    report = validate(REFERENCE, dict(REFERENCE))
    assert report.passed
    assert report.similarity == 1.0
    assert report.failed_dimensions == [] and report.octave_errors == []
    assert [d.name for d in report.dimensions] == list(dims.AUDIO_25D)
    assert all(d.verdict is Verdict.PASS and d.within_tolerance for d in report.dimensions)
    assert all(d.error_tolerance_units == 0.0 for d in report.dimensions)


@pytest.mark.parametrize("name", dims.AUDIO_25D)
def test_each_dimension_tampered_beyond_tolerance_fails_and_is_named(name: str) -> None:
    report = validate(REFERENCE, tampered(name, 1.5))
    verdict = verdict_of(report, name)
    assert verdict.verdict is Verdict.FAIL and not verdict.within_tolerance
    assert verdict.error_tolerance_units == pytest.approx(1.5)
    assert report.failed_dimensions == [name]
    assert report.passed is not dims.get(name).critical  # similarity stays high
    assert report.similarity < 1.0


@pytest.mark.parametrize("name", dims.AUDIO_25D)
def test_each_dimension_within_tolerance_passes(name: str) -> None:
    report = validate(REFERENCE, tampered(name, 0.9))
    assert verdict_of(report, name).verdict is Verdict.PASS
    assert verdict_of(report, name).error_tolerance_units == pytest.approx(0.9)
    assert report.passed


def test_relative_tolerance_uses_the_floor() -> None:
    # transient_density: 10 % relative, at least 0.2 per second
    report = validate({"transient_density": 0.5}, {"transient_density": 0.68})
    verdict = verdict_of(report, "transient_density")
    assert verdict.tolerance == pytest.approx(0.2)
    assert verdict.verdict is Verdict.PASS


@pytest.mark.parametrize("factor", [2.0, 0.5, 3.0, 1.0 / 3.0])
def test_tempo_octave_is_reported_not_failed(factor: float) -> None:
    candidate = {**REFERENCE, "tempo_bpm": REFERENCE["tempo_bpm"] * factor * 1.01}
    report = validate(REFERENCE, candidate)
    tempo = verdict_of(report, "tempo_bpm")
    assert tempo.verdict is Verdict.OCTAVE_ERROR
    assert tempo.octave_factor == pytest.approx(factor)
    assert not tempo.within_tolerance and tempo.error_tolerance_units is not None
    assert tempo.error_tolerance_units > 1.0
    assert report.octave_errors == ["tempo_bpm"]
    assert report.failed_dimensions == []
    assert report.passed  # tempo is critical, but an octave error is not a failure
    assert report.similarity > 0.999  # the octave-corrected tempo enters the similarity


def test_tempo_off_by_a_non_octave_ratio_fails() -> None:
    report = validate(REFERENCE, {**REFERENCE, "tempo_bpm": 150.0})
    assert verdict_of(report, "tempo_bpm").verdict is Verdict.FAIL
    assert not report.passed  # critical


def test_octave_errors_only_apply_to_tempo() -> None:
    candidate = {**REFERENCE, "spectral_centroid": 2 * REFERENCE["spectral_centroid"]}
    assert verdict_of(validate(REFERENCE, candidate), "spectral_centroid").verdict is Verdict.FAIL


def test_missing_dimension_fails() -> None:
    candidate = {k: v for k, v in REFERENCE.items() if k != "stereo_width"}
    report = validate(REFERENCE, candidate)
    missing = verdict_of(report, "stereo_width")
    assert missing.verdict is Verdict.MISSING and missing.candidate is None
    assert missing.error_tolerance_units is None and not missing.within_tolerance
    assert report.failed_dimensions == ["stereo_width"]
    assert report.passed  # stereo_width is not critical
    assert report.similarity == 1.0  # the rest is identical


def test_missing_critical_dimension_fails_the_report() -> None:
    candidate = {k: v for k, v in REFERENCE.items() if k != "integrated_lufs"}
    report = validate(REFERENCE, candidate)
    assert not report.passed
    assert report.failed_dimensions == ["integrated_lufs"]


def test_critical_versus_non_critical() -> None:
    critical = [d.name for d in dims.AUDIO_DIMENSIONS if d.critical]
    assert critical  # the registry marks some
    for name in critical:
        assert not validate(REFERENCE, tampered(name, 3.0)).passed
    # several non-critical failures still pass while the similarity holds
    candidate = {**tampered("spectral_flatness", 2.0), "silence_ratio": 0.1, "crest_db": 14.0}
    report = validate(REFERENCE, candidate)
    assert report.failed_dimensions == ["spectral_flatness", "silence_ratio", "crest_db"]
    assert report.passed


def test_similarity_threshold_gates_passing() -> None:
    report = validate(REFERENCE, tampered("band_mid", 1.5), similarity_threshold=1.0)
    assert not report.passed
    assert validate(REFERENCE, REFERENCE, similarity_threshold=1.0).passed


def test_names_restrict_and_order_the_comparison() -> None:
    streamed_only = {n: REFERENCE[n] for n in dims.AUDIO_13D}
    report = validate(REFERENCE, streamed_only, names=["tempo_bpm", *dims.AUDIO_13D])
    assert [d.name for d in report.dimensions] == [
        "tempo_bpm", *(n for n in dims.AUDIO_13D if n != "tempo_bpm")
    ]
    assert report.passed and report.failed_dimensions == []
    # without names the 25D reference finds the batch-only dimensions missing
    full = validate(REFERENCE, streamed_only)
    assert set(full.failed_dimensions) == set(dims.AUDIO_25D) - set(dims.AUDIO_13D)
    assert not full.passed  # integrated_lufs is critical


def test_one_tampered_dimension_lowers_similarity_monotonically() -> None:
    similarities = [validate(REFERENCE, tampered("harmonic_ratio", k)).similarity
                    for k in (0.0, 2.0, 4.0, 6.0)]
    assert similarities[0] == 1.0
    assert all(a > b for a, b in itertools.pairwise(similarities))


def test_unrelated_fingerprints_score_well_below_threshold() -> None:
    rng = np.random.default_rng(11)
    pairs = [(random_fingerprint(rng), random_fingerprint(rng)) for _ in range(300)]
    scores = np.array([validate(a, b).similarity for a, b in pairs])
    assert abs(scores.mean()) < 0.1
    assert scores.max() < 0.9
    assert not any(validate(a, b).passed for a, b in pairs)
    # the plain cosine of [0, 1]-normalised vectors would call them alike (about 0.75)
    plain = [
        _cosine([dims.get(n).normalise(a[n]) for n in a], [dims.get(n).normalise(b[n]) for n in a])
        for a, b in pairs
    ]
    assert np.mean(plain) > 0.7


def test_unrelated_to_the_reference_fails() -> None:
    rng = np.random.default_rng(12)
    report = validate(REFERENCE, random_fingerprint(rng))
    assert report.similarity < 0.8 and not report.passed


def test_centring_maps_the_range_to_plus_minus_one() -> None:
    tempo = dims.get("tempo_bpm")
    assert centred("tempo_bpm", tempo.low) == -1.0
    assert centred("tempo_bpm", tempo.high) == 1.0
    assert centred("tempo_bpm", (tempo.low + tempo.high) / 2) == 0.0
    assert centred("stereo_width", 2.0) == 1.0  # clipped


def test_mid_range_fingerprints_compare_sensibly() -> None:
    middle = {"stereo_width": 0.5, "harmonic_ratio": 0.5}
    assert validate(middle, middle).similarity == 1.0
    assert validate(middle, {"stereo_width": 0.9, "harmonic_ratio": 0.9}).similarity == 0.0


def test_no_pulse_tempo_is_compared_without_octaves() -> None:
    # tempo 0 means "no pulse"; the relative tolerance then rests on the registry's floor
    assert verdict_of(validate({"tempo_bpm": 0.0}, {"tempo_bpm": 0.0}), "tempo_bpm").verdict \
        is Verdict.PASS
    differs = verdict_of(validate({"tempo_bpm": 0.0}, {"tempo_bpm": 90.0}), "tempo_bpm")
    assert differs.verdict is Verdict.FAIL
    assert differs.tolerance == dims.get("tempo_bpm").tolerance_for(0.0)
    lost = verdict_of(validate({"tempo_bpm": 120.0}, {"tempo_bpm": 0.0}), "tempo_bpm")
    assert lost.verdict is Verdict.FAIL


def test_zero_tolerance_gives_infinite_error_and_json_null() -> None:
    assert validation._error_units(0.0, 0.0) == 0.0
    assert validation._error_units(1.0, 0.0) == math.inf
    verdict = DimensionVerdict("crest_db", 0.0, 1.0, math.inf, 0.0, Verdict.FAIL, False)
    encoded = json.dumps(verdict.to_json_dict(), allow_nan=False)
    assert '"error_tolerance_units": null' in encoded


def test_json_shape() -> None:
    candidate = {k: v for k, v in tampered("crest_db", 2.0).items() if k != "band_air"}
    candidate["tempo_bpm"] = 240.0
    payload = validate(REFERENCE, candidate).to_json_dict()
    json.dumps(payload, allow_nan=False)
    assert payload["passed"] is True
    assert payload["failed_dimensions"] == ["band_air", "crest_db"]
    assert payload["octave_errors"] == ["tempo_bpm"]
    dimensions = payload["dimensions"]
    assert isinstance(dimensions, list) and len(dimensions) == len(REFERENCE)
    by_name = {d["name"]: d for d in dimensions}
    assert by_name["crest_db"]["within_tolerance"] is False
    assert by_name["crest_db"]["verdict"] == "FAIL"
    assert by_name["tempo_bpm"]["verdict"] == "OCTAVE_ERROR"
    assert by_name["tempo_bpm"]["octave_factor"] == 2.0
    assert by_name["band_air"]["verdict"] == "MISSING"
    assert by_name["band_air"]["candidate"] is None
    assert by_name["integrated_lufs"]["within_tolerance"] is True
    assert set(by_name["integrated_lufs"]) == {
        "name", "reference", "candidate", "error_tolerance_units", "tolerance", "verdict",
        "within_tolerance", "critical", "octave_factor",
    }


def test_failed_report_still_prints_passed() -> None:
    payload = validate(REFERENCE, tampered("integrated_lufs", 5.0)).to_json_dict()
    assert payload["passed"] is False


@pytest.mark.parametrize(
    ("reference", "candidate", "names", "field"),
    [
        ({"tempo": 120.0}, {"tempo": 120.0}, None, "reference.tempo"),
        (REFERENCE, {**REFERENCE, "loudness": 1.0}, None, "candidate.loudness"),
        (REFERENCE, REFERENCE, ["no_such_dim"], "names.no_such_dim"),
        ({"crest_db": 3.0}, {"crest_db": 3.0}, ["tempo_bpm"], "reference.tempo_bpm"),
        (REFERENCE, {**REFERENCE, "crest_db": math.nan}, None, "candidate.crest_db"),
        (REFERENCE, {**REFERENCE, "tempo_bpm": math.inf}, None, "candidate.tempo_bpm"),
        ({**REFERENCE, "stereo_width": -math.inf}, REFERENCE, None, "reference.stereo_width"),
        ({}, REFERENCE, None, "reference"),
    ],
)
def test_bad_input_is_rejected_naming_the_field(
    reference: dict[str, float], candidate: dict[str, float], names: list[str] | None, field: str
) -> None:
    with pytest.raises(InvalidInputError) as caught:
        validate(reference, candidate, names=names)
    assert [v.field for v in caught.value.violations] == [field]


@pytest.mark.parametrize("threshold", [math.nan, 1.5, -2.0])
def test_bad_threshold_is_rejected(threshold: float) -> None:
    with pytest.raises(InvalidInputError, match="similarity_threshold"):
        validate(REFERENCE, REFERENCE, similarity_threshold=threshold)


def _cosine(a: list[float], b: list[float]) -> float:
    """Plain cosine similarity."""
    va, vb = np.asarray(a), np.asarray(b)
    return float(va @ vb / math.sqrt(float(va @ va) * float(vb @ vb)))
