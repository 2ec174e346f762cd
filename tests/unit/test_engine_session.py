"""The session API: configuration checks, bad input, call order, limits and edge lengths."""

from __future__ import annotations

import math
from dataclasses import replace
from functools import cache
from typing import Any

import numpy as np
import pytest
from signals import F32, buffer, music_like, sine

from streamprint.engine import dims
from streamprint.engine.fingerprint import Fingerprint
from streamprint.engine.session import AudioSession, SessionConfig, fingerprint_buffer
from streamprint.errors import InvalidInputError, ResourceLimitError, SessionStateError

RATE = 44_100
GOOD = SessionConfig(sample_rate=RATE, channels=2, dimensions=dims.AUDIO_25D, update_interval_s=1.0)


@cache
def clip() -> F32:
    """3 s of stereo music-like audio at 44.1 kHz."""
    return music_like(3.0, rate=RATE, channels=2, seed=9)


def violation_fields(error: InvalidInputError) -> list[str]:
    return [v.field for v in error.violations]


def assert_finite(fp: Fingerprint) -> None:
    for name, value in fp.values.items():
        assert math.isfinite(value), (name, value)
        d = dims.get(name)
        assert d.low - 1e-9 <= value <= d.high + 1e-9, (name, value)
    for name, value in fp.confidence.items():
        assert math.isfinite(value) and 0.0 <= value <= 1.0, (name, value)


# -- configuration ------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("changes", "field"),
    [
        ({"sample_rate": 0}, "sample_rate"),
        ({"sample_rate": -44_100}, "sample_rate"),
        ({"sample_rate": 1_000_000_000}, "sample_rate"),
        ({"sample_rate": 7_999}, "sample_rate"),
        ({"channels": 0}, "channels"),
        ({"channels": 9}, "channels"),
        ({"channels": -1}, "channels"),
        ({"dimensions": ("spectral_centroid", "not_a_dimension")}, "dimensions"),
        ({"dimensions": ()}, "dimensions"),
        ({"update_interval_s": 0.0}, "update_interval_s"),
        ({"update_interval_s": -1.0}, "update_interval_s"),
        ({"update_interval_s": math.nan}, "update_interval_s"),
        ({"update_interval_s": math.inf}, "update_interval_s"),
    ],
)
def test_bad_config_names_the_field(changes: dict[str, Any], field: str) -> None:
    config = replace(GOOD, **changes)
    with pytest.raises(InvalidInputError) as info:
        AudioSession(config)
    assert violation_fields(info.value) == [field]
    assert field in str(info.value)
    with pytest.raises(InvalidInputError):
        config.validate()


def test_unknown_dimension_is_named_in_the_error() -> None:
    with pytest.raises(InvalidInputError) as info:
        AudioSession(replace(GOOD, dimensions=("tempo_bpm", "bogus_dim")))
    assert "bogus_dim" in info.value.violations[0].description


@pytest.mark.parametrize(
    "config",
    [
        SessionConfig(8_000, 1),
        SessionConfig(384_000, 8, update_interval_s=3600.0),
        SessionConfig(48_000, 2, ("tempo_bpm",), update_interval_s=0.1),
        SessionConfig(22_050, 1, dims.AUDIO_25D, update_interval_s=None),
    ],
)
def test_edge_configs_are_accepted(config: SessionConfig) -> None:
    session = AudioSession(config)
    fp = session.finish()
    assert fp.final
    assert set(fp.values) == set(config.dimensions)
    assert_finite(fp)


# -- bad samples --------------------------------------------------------------------------


@pytest.mark.parametrize("bad", [math.nan, math.inf, -math.inf])
def test_non_finite_samples_are_rejected(bad: float) -> None:
    session = AudioSession(GOOD)
    chunk = clip()[:4_410].copy()
    chunk[1_234, 1] = bad
    with pytest.raises(InvalidInputError) as info:
        session.push(chunk)
    assert violation_fields(info.value) == ["chunk.data"]
    assert "NaN" in info.value.violations[0].description


@pytest.mark.parametrize("scale", [1.5, 1e10, 1e20, 3e38])
def test_samples_beyond_full_scale_are_clipped_as_the_decoders_clip(scale: float) -> None:
    """At 1e19 and above the float32 power spectrum overflowed: NaN in 8 dimensions."""
    loud = (clip() * np.float32(2.0)).clip(-1.0, 1.0)
    over = (loud * np.float32(scale)).astype(np.float32)
    assert np.isfinite(over).all()
    kept = over.copy()
    got = AudioSession(replace(GOOD, update_interval_s=None))
    got.push(over)
    assert np.array_equal(over, kept)  # the caller's samples are not changed
    want = AudioSession(replace(GOOD, update_interval_s=None))
    want.push(np.clip(over, -1.0, 1.0))
    got_fp, want_fp = got.finish(), want.finish()
    assert all(math.isfinite(v) for v in got_fp.values.values()), got_fp.values
    assert got_fp.values == want_fp.values and got_fp.confidence == want_fp.confidence


@pytest.mark.parametrize("shape", [(4_410, 1), (4_410, 3), (4_410,), (2, 4_410), (10, 2, 1)])
def test_wrong_sample_shape_is_rejected(shape: tuple[int, ...]) -> None:
    session = AudioSession(GOOD)
    with pytest.raises(InvalidInputError) as info:
        session.push(np.zeros(shape, dtype=np.float32))
    assert violation_fields(info.value) == ["chunk.data"]


def test_rejected_chunks_leave_the_session_intact() -> None:
    """A bad chunk changes nothing: the final result is that of the good chunks alone."""
    samples = clip()
    session = AudioSession(GOOD)
    updates: list[Fingerprint] = []
    for start in range(0, samples.shape[0], 10_000):
        bad = samples[start : start + 10_000].copy()
        bad[-1, 0] = math.nan
        with pytest.raises(InvalidInputError):
            session.push(bad)
        with pytest.raises(InvalidInputError):
            session.push(samples[start : start + 10_000, :1])
        updates += session.push(samples[start : start + 10_000])
    final = session.finish()
    assert [u.revision for u in updates] == [1, 2, 3]
    assert final.revision == 4
    batch = fingerprint_buffer(buffer(samples, RATE))
    for name, value in batch.values.items():
        assert final.values[name] == pytest.approx(value, rel=1e-6, abs=1e-9), name


def test_push_and_finish_after_finish_are_refused() -> None:
    session = AudioSession(GOOD)
    session.push(clip()[:22_050])
    final = session.finish()
    assert session.finished and final.final
    with pytest.raises(SessionStateError):
        session.push(clip()[:100])
    with pytest.raises(SessionStateError):
        session.push(np.zeros((0, 2), dtype=np.float32))
    with pytest.raises(SessionStateError):
        session.finish()
    again = session.snapshot()
    assert again.final and again.revision == final.revision + 1
    assert again.values == final.values


def test_media_limit() -> None:
    session = AudioSession(replace(GOOD, max_media_seconds=1.0))
    session.push(clip()[:RATE])  # exactly the limit
    with pytest.raises(ResourceLimitError) as info:
        session.push(clip()[RATE : RATE + 1])
    assert info.value.limit == "max_media_seconds"
    assert session.media_seconds == pytest.approx(1.0)
    assert session.finish().final


# -- results ------------------------------------------------------------------------------


def test_requested_dimensions_and_algorithm() -> None:
    samples = clip()
    full = fingerprint_buffer(buffer(samples, RATE), dims.AUDIO_25D)
    streamed = fingerprint_buffer(buffer(samples, RATE), dims.AUDIO_13D)
    some = fingerprint_buffer(buffer(samples, RATE), ("tempo_bpm", "spectral_centroid"))
    assert full.algorithm == dims.ALGORITHM_AUDIO_25D and len(full.values) == 25
    assert streamed.algorithm == dims.ALGORITHM_AUDIO_13D and set(streamed.values) == set(
        dims.AUDIO_13D
    )
    assert set(some.values) == {"tempo_bpm", "spectral_centroid"} == set(some.confidence)
    for name in dims.AUDIO_13D:
        assert streamed.values[name] == full.values[name], name
    assert some.values["spectral_centroid"] == full.values["spectral_centroid"]
    assert_finite(full)
    assert full.media_seconds == pytest.approx(3.0)


def test_default_session_streams_13d() -> None:
    session = AudioSession(SessionConfig(RATE, 2))
    updates = session.push(clip())
    assert [u.revision for u in updates] == [1, 2, 3]
    for update in updates:
        assert set(update.values) == set(dims.AUDIO_13D)
        assert update.algorithm == dims.ALGORITHM_AUDIO_13D
        assert_finite(update)


@pytest.mark.parametrize("n_samples", [0, 1, 1_000, 2_047, 2_048, 2_560, 22_050])
def test_very_short_media_is_finite(n_samples: int) -> None:
    samples = sine(440.0, n_samples / 22_050 + 1.0)[:n_samples]
    session = AudioSession(SessionConfig(22_050, 1, dims.AUDIO_25D, update_interval_s=None))
    assert session.push(samples) == []
    fp = session.finish()
    assert fp.final and fp.revision == 1
    assert fp.media_seconds == pytest.approx(n_samples / 22_050)
    assert_finite(fp)
    if n_samples >= 2_560:
        # At least two full frames of the tone: its centroid is already there.
        assert fp.values["spectral_centroid"] == pytest.approx(440.0, rel=0.05)
    if n_samples == 0:
        assert fp.values["transient_density"] == 0.0


def test_audio_session_rejects_video_dimensions() -> None:
    """The registry holds video dimensions too; an audio session must name them as wrong."""
    with pytest.raises(InvalidInputError) as info:
        AudioSession(SessionConfig(22_050, 1, ("spectral_centroid", "brightness_mean")))
    violation = info.value.violations[0]
    assert violation.field == "dimensions"
    assert "brightness_mean" in violation.description
    assert "spectral_centroid" in violation.allowed
