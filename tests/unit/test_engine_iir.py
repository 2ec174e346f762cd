"""The compiled K-weighting pass equals scipy.signal.sosfilt, squared and weighted channel by
channel, bit for bit, with the same carried state, in any chunking."""

from __future__ import annotations

import numpy as np
import pytest
import scipy.signal
from hypothesis import given, settings
from hypothesis import strategies as st

from streamprint.engine.iir import weighted_energy
from streamprint.engine.native import channel_weights, k_weighting_sos


@settings(max_examples=30, deadline=None)
@given(
    rate=st.sampled_from([8_000, 44_100, 96_000]),
    channels=st.integers(1, 6),
    cuts=st.lists(st.integers(0, 3_000), max_size=6),
    dtype=st.sampled_from([np.float32, np.float64]),
    seed=st.integers(0, 2**16),
)
def test_weighted_energy_is_filter_square_weight_bitwise(
    rate: int, channels: int, cuts: list[int], dtype: type[np.floating], seed: int
) -> None:
    sos = k_weighting_sos(rate)
    weights = channel_weights(channels)
    samples = np.random.default_rng(seed).standard_normal((6_000, channels)).astype(dtype)
    filtered, expected_zi = scipy.signal.sosfilt(sos, samples.T, axis=1, zi=np.zeros((2, channels, 2)))
    expected = np.zeros(samples.shape[0])
    for gain, channel in zip(weights, filtered, strict=True):  # channels summed in order
        expected += gain * (channel * channel)
    if channels <= 2:  # what the meter computed before: the same bits
        assert np.array_equal(expected, weights @ (filtered * filtered))
    zi = np.zeros((2, channels, 2))
    parts = []
    for piece in np.split(samples, sorted(cuts), axis=0):
        energy, zi = weighted_energy(sos, piece, zi, weights)
        parts.append(energy)
    assert np.array_equal(np.concatenate(parts), expected)
    assert np.array_equal(zi, expected_zi)


def test_weighted_energy_refuses_mismatched_weights() -> None:
    sos = k_weighting_sos(48_000)
    with pytest.raises(ValueError):
        weighted_energy(sos, np.ones((4, 2), np.float32), np.zeros((2, 2, 2)), np.ones(3))


def test_state_passed_in_is_not_modified() -> None:
    sos = k_weighting_sos(48_000)
    zi = np.full((2, 1, 2), 0.25)
    weighted_energy(sos, np.ones((100, 1), np.float32), zi, np.ones(1))
    assert np.all(zi == 0.25)


@pytest.mark.parametrize(
    ("sos", "samples", "zi"),
    [
        (np.ones((2, 5)), np.ones((4, 1)), np.zeros((2, 1, 2))),  # 5 coefficients
        (np.ones((2, 6)) * 2.0, np.ones((4, 1)), np.zeros((2, 1, 2))),  # a0 != 1
        (np.ones((2, 6)), np.ones(4), np.zeros((2, 1, 2))),  # samples not [n, channels]
        (np.ones((2, 6)), np.ones((4, 2)), np.zeros((2, 1, 2))),  # zi for one channel
    ],
)
def test_bad_shapes_are_refused(sos: np.ndarray, samples: np.ndarray, zi: np.ndarray) -> None:
    with pytest.raises(ValueError):
        weighted_energy(sos, samples, zi, np.ones(samples.shape[-1]))
