"""Downmix and streaming resampler: shapes, rates, pitch, and chunking independence."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from media import peak_frequency, sine, split_at

from streamprint.engine.resample import (
    ANALYSIS_RATE,
    StreamingResampler,
    resample_whole,
    to_mono,
)

RATES = [8000, 11025, 16000, 22050, 44100, 48000, 96000]


def test_to_mono_is_channel_mean() -> None:
    stereo = np.array([[1.0, 0.0], [0.5, -0.5], [-1.0, -1.0]], np.float32)
    mono = to_mono(stereo)
    assert mono.dtype == np.float32
    np.testing.assert_array_equal(mono, [0.5, 0.0, -1.0])


def test_to_mono_single_channel_and_1d() -> None:
    x = np.arange(6, dtype=np.float32)
    np.testing.assert_array_equal(to_mono(x[:, None]), x)
    assert to_mono(x) is x
    assert to_mono(np.zeros((0, 2), np.float32)).shape == (0,)
    with pytest.raises(ValueError):
        to_mono(np.zeros((2, 2, 2), np.float32))


def test_passthrough_is_copy_free() -> None:
    r = StreamingResampler(ANALYSIS_RATE)
    x = sine(440, 0.1, ANALYSIS_RATE)
    assert r.passthrough
    assert r.push(x) is x
    assert r.flush().shape == (0,)
    assert resample_whole(x, ANALYSIS_RATE) is x


@pytest.mark.parametrize("rate", RATES)
def test_length_and_pitch_preserved(rate: int) -> None:
    x = sine(440, 1.0, rate)
    y = resample_whole(x, rate)
    assert y.dtype == np.float32 and y.ndim == 1
    assert abs(len(y) - ANALYSIS_RATE) <= 1
    assert peak_frequency(y, ANALYSIS_RATE) == pytest.approx(440, abs=0.5)
    # HQ keeps the in-band amplitude (0.5) away from the edges
    assert np.max(np.abs(y[2000:-2000])) == pytest.approx(0.5, abs=0.01)


def test_other_output_rate() -> None:
    y = resample_whole(sine(1000, 1.0, 44100), 44100, 16000)
    assert abs(len(y) - 16000) <= 1
    assert peak_frequency(y, 16000) == pytest.approx(1000, abs=0.5)


def test_errors() -> None:
    with pytest.raises(ValueError):
        StreamingResampler(0)
    r = StreamingResampler(44100)
    with pytest.raises(ValueError):
        r.push(np.zeros((4, 2), np.float32))
    r.flush()
    with pytest.raises(RuntimeError):
        r.push(np.zeros(4, np.float32))
    with pytest.raises(RuntimeError):
        r.flush()


def test_empty_and_float64_input() -> None:
    r = StreamingResampler(48000)
    assert r.push(np.zeros(0, np.float32)).shape == (0,)
    out = r.push(np.ones(4800, np.float64))
    assert out.dtype == np.float32


_SIGNAL = np.random.default_rng(7).uniform(-0.5, 0.5, 6000).astype(np.float32)


@settings(max_examples=60, deadline=None)
@given(
    rate=st.sampled_from(RATES),
    cuts=st.lists(st.integers(0, len(_SIGNAL)), max_size=30),
    ones_at=st.integers(0, len(_SIGNAL)),
    ones=st.integers(0, 40),
)
def test_chunking_independent(rate: int, cuts: list[int], ones_at: int, ones: int) -> None:
    """Any split (empty and 1-sample chunks included) gives the batch output."""
    cuts = cuts + list(range(ones_at, min(ones_at + ones, len(_SIGNAL))))  # 1-sample run
    r = StreamingResampler(rate)
    pieces = [r.push(chunk) for chunk in split_at(_SIGNAL, cuts)]
    streamed = np.concatenate([*pieces, r.flush()])
    batch = resample_whole(_SIGNAL, rate)
    assert streamed.shape == batch.shape
    np.testing.assert_allclose(streamed, batch, rtol=0, atol=1e-6)


@pytest.mark.parametrize("rate", [44100, 96000])
def test_a_long_push_is_cut_into_bounded_soxr_calls_with_the_same_bits(rate: int) -> None:
    """soxr keeps buffers sized by its largest input (about 450 KiB per live stream for a
    second of 44.1 kHz): a push longer than MAX_PUSH_SAMPLES goes in pieces, and the output
    is bit for bit that of soxr fed the whole block at once, or any other chunking."""
    import soxr

    from streamprint.engine.resample import MAX_PUSH_SAMPLES, SOXR_QUALITY

    signal = np.random.default_rng(rate).standard_normal(3 * rate).astype(np.float32) * 0.3
    assert signal.size > 4 * MAX_PUSH_SAMPLES
    whole_stream = soxr.ResampleStream(rate, ANALYSIS_RATE, 1, dtype="float32", quality=SOXR_QUALITY)
    want = np.concatenate([whole_stream.resample_chunk(signal), whole_stream.resample_chunk(signal[:0], last=True)])
    r = StreamingResampler(rate)
    sizes: list[int] = []
    real = r._stream
    assert real is not None

    class Spy:
        def resample_chunk(self, x: np.ndarray, last: bool = False) -> np.ndarray:
            sizes.append(x.size)
            return real.resample_chunk(x, last=last)

    r._stream = Spy()  # type: ignore[assignment]
    got = np.concatenate([r.push(signal), r.flush()])
    assert np.array_equal(got.view(np.uint32), want.view(np.uint32))
    assert max(sizes) == MAX_PUSH_SAMPLES and sum(sizes) == signal.size
    small = StreamingResampler(rate)
    cuts = split_at(signal, list(range(0, signal.size, 4410)))
    got_small = np.concatenate([*(small.push(c) for c in cuts), small.flush()])
    assert np.array_equal(got_small.view(np.uint32), want.view(np.uint32))
