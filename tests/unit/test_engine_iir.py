"""The compiled SOS filter equals scipy.signal.sosfilt bit for bit, in any chunking."""

from __future__ import annotations

import numpy as np
import pytest
import scipy.signal
from hypothesis import given, settings
from hypothesis import strategies as st

from streamprint.engine.iir import sosfilt
from streamprint.engine.native import k_weighting_sos


@settings(max_examples=30, deadline=None)
@given(
    rate=st.sampled_from([8_000, 22_050, 44_100, 48_000, 96_000]),
    channels=st.integers(1, 6),
    cuts=st.lists(st.integers(0, 3_000), max_size=6),
    dtype=st.sampled_from([np.float32, np.float64]),
    seed=st.integers(0, 2**16),
)
def test_equals_scipy_bitwise_with_carried_state(
    rate: int, channels: int, cuts: list[int], dtype: type[np.floating], seed: int
) -> None:
    sos = k_weighting_sos(rate)
    x = np.random.default_rng(seed).standard_normal((channels, 6_000)).astype(dtype)
    expected, expected_zi = scipy.signal.sosfilt(sos, x, axis=1, zi=np.zeros((2, channels, 2)))
    zi = np.zeros((2, channels, 2))
    parts = []
    for piece in np.split(x, sorted(cuts), axis=1):
        out, zi = sosfilt(sos, piece, zi)
        parts.append(out)
    got = np.concatenate(parts, axis=1)
    assert got.dtype == np.float64
    assert np.array_equal(got, expected)
    assert np.array_equal(zi, expected_zi)


def test_state_passed_in_is_not_modified() -> None:
    sos = k_weighting_sos(48_000)
    zi = np.full((2, 1, 2), 0.25)
    sosfilt(sos, np.ones((1, 100)), zi)
    assert np.all(zi == 0.25)


@pytest.mark.parametrize(
    ("sos", "x", "zi"),
    [
        (np.ones((2, 5)), np.ones((1, 4)), np.zeros((2, 1, 2))),  # 5 coefficients
        (np.ones((2, 6)) * 2.0, np.ones((1, 4)), np.zeros((2, 1, 2))),  # a0 != 1
        (np.ones((2, 6)), np.ones(4), np.zeros((2, 1, 2))),  # x not [channels, n]
        (np.ones((2, 6)), np.ones((2, 4)), np.zeros((2, 1, 2))),  # zi for one channel
    ],
)
def test_bad_shapes_are_refused(sos: np.ndarray, x: np.ndarray, zi: np.ndarray) -> None:
    with pytest.raises(ValueError):
        sosfilt(sos, x, zi)
