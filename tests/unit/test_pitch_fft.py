"""YIN: the shorter autocorrelation FFT gives the same lags as the 2 * FRAME_LENGTH transform,
the block autocorrelation of consecutive frames the same lags as the whole-frame one (to
rounding), and the compiled pass gives the same bits as the vectorised definition."""

from __future__ import annotations

import numpy as np
import pytest

from streamprint.engine import pitch
from streamprint.engine.grid import ANALYSIS_RATE, FRAME_LENGTH, HOP_LENGTH, Framer


def _fast_fft_size(minimum: int) -> int:
    """The smallest ``2^a 3^b 5^c >= minimum`` (sizes pocketfft transforms fastest)."""
    best = 1 << (minimum - 1).bit_length()
    power5 = 1
    while power5 < best:
        power3 = power5
        while power3 < best:
            size = power3
            while size < minimum:
                size *= 2
            best = min(best, size)
            power3 *= 3
        power5 *= 5
    return best


#: The whole-frame transform needs ``FRAME_LENGTH + MAX_PERIOD`` points to keep the lags up
#: to ``MAX_PERIOD`` free of wrap-around (2400 here, where ``2 * FRAME_LENGTH`` would be 4096).
ACF_FFT_SIZE = _fast_fft_size(FRAME_LENGTH + pitch.MAX_PERIOD)
#: ``e^{2 pi i k HOP / BLOCK_FFT_SIZE} = (-1)^k``: moves a cross-correlation by one hop.
HOP_SHIFT = (-1.0) ** np.arange(pitch.BLOCK_FFT_SIZE // 2 + 1)


def autocorrelation_direct(frames: np.ndarray) -> np.ndarray:
    """The whole-frame definition of pitch.autocorrelation: one ACF_FFT_SIZE-point transform
    each way per frame (the block form equals it to rounding)."""
    spectrum = np.fft.rfft(frames.astype(np.float64), ACF_FFT_SIZE, axis=1)
    power = (spectrum.real**2 + spectrum.imag**2).astype(np.complex128)
    return np.ascontiguousarray(np.fft.irfft(power, ACF_FFT_SIZE, axis=1)[:, : pitch.MAX_PERIOD + 1])


def block_spectrum_numpy(spectra: np.ndarray, first_block: np.ndarray) -> np.ndarray:
    """The frames' lag spectra [n, bins] from the block spectra [m, bins] and each frame's
    first block [n], in numpy: what sp_block_acf_spectrum computes in one pass."""
    power = spectra.real**2 + spectra.imag**2
    cross = np.conj(spectra[:-1]) * spectra[1:]
    cross *= HOP_SHIFT
    total: np.ndarray = power[first_block] + cross[first_block]
    for b in range(1, pitch.BLOCKS):
        total += power[first_block + b]
        if b < pitch.BLOCKS - 1:
            total += cross[first_block + b]
    return total


def _smooth(n: int) -> bool:
    for p in (2, 3, 5):
        while n % p == 0:
            n //= p
    return n == 1


@pytest.mark.parametrize("minimum", [1, 2, 7, 97, 1000, 2386, 4097])
def test_fast_fft_size_is_the_smallest_5_smooth_size(minimum: int) -> None:
    expected = next(n for n in range(minimum, 4 * minimum + 2) if _smooth(n))
    assert _fast_fft_size(minimum) == expected


def test_acf_size_leaves_every_lag_free_of_wrap_around() -> None:
    assert ACF_FFT_SIZE >= FRAME_LENGTH + pitch.MAX_PERIOD
    assert ACF_FFT_SIZE < 2 * FRAME_LENGTH


def _yin_vectorised(
    frames: np.ndarray, fft_size: int = 2 * FRAME_LENGTH, acf: np.ndarray | None = None
) -> tuple[np.ndarray, np.ndarray]:
    """The definition, vectorised in numpy, with parabolas everywhere (on ``acf`` when given,
    else the whole-frame transform of ``fft_size`` points)."""
    y = frames.astype(np.float64)
    if acf is None:
        spectrum = np.fft.rfft(y, fft_size, axis=1)
        acf = np.fft.irfft(spectrum.real**2 + spectrum.imag**2, fft_size, axis=1)[:, : pitch.MAX_PERIOD + 1]
    energy = np.cumsum(y[:, : pitch.MAX_PERIOD] ** 2, axis=1)
    diff = np.zeros((y.shape[0], pitch.MAX_PERIOD + 1))
    diff[:, 1:] = 2.0 * (acf[:, :1] - acf[:, 1:]) - energy
    cumulative = np.cumsum(diff[:, 1:], axis=1) / np.arange(1, pitch.MAX_PERIOD + 1)
    d = diff[:, pitch.MIN_PERIOD :] / (cumulative[:, pitch.MIN_PERIOD - 1 :] + np.finfo(np.float64).tiny)
    is_trough = np.zeros_like(d, dtype=bool)
    is_trough[:, 1:-1] = (d[:, 1:-1] < d[:, :-2]) & (d[:, 1:-1] <= d[:, 2:])
    is_trough[:, 0] = d[:, 0] < d[:, 1]
    below = is_trough & (d < pitch.TROUGH_THRESHOLD)
    voiced = below.any(axis=1)
    period = np.where(voiced, np.argmax(below, axis=1), np.argmin(d, axis=1))
    shifts = np.zeros_like(d)
    left, mid, right = d[:, :-2], d[:, 1:-1], d[:, 2:]
    a = right + left - 2.0 * mid
    b = (right - left) / 2.0
    with np.errstate(divide="ignore", invalid="ignore"):
        shifts[:, 1:-1] = np.nan_to_num(np.where(np.abs(b) >= np.abs(a), 0.0, -b / a))
    lag = pitch.MIN_PERIOD + period + shifts[np.arange(len(d)), period]
    return ANALYSIS_RATE / lag, voiced


def _frames(seed: int) -> np.ndarray:
    """Noise, tones over the whole f0 range and beyond, chords, tones in noise, and the
    degenerate frames (silence, DC, denormal-small)."""
    rng = np.random.default_rng(seed)
    t = np.arange(FRAME_LENGTH) / ANALYSIS_RATE
    tones = np.sin(2 * np.pi * rng.uniform(50.0, 2300.0, (60, 1)) * t) * rng.uniform(0.01, 1.0, (60, 1))
    chords = tones[:30] + 0.5 * np.sin(2 * np.pi * rng.uniform(60.0, 2200.0, (30, 1)) * t)
    noisy = tones + rng.uniform(0.0, 0.5, (60, 1)) * rng.standard_normal((60, FRAME_LENGTH))
    degenerate = [np.zeros((2, FRAME_LENGTH)), np.full((2, FRAME_LENGTH), 0.3), 1e-30 * rng.standard_normal((2, FRAME_LENGTH))]
    return np.concatenate([rng.standard_normal((60, FRAME_LENGTH)), tones, chords, noisy, *degenerate]).astype(np.float32)


def test_yin_equals_the_full_transform_definition() -> None:
    frames = _frames(11)
    f0, voiced = pitch.yin(frames)
    ref_f0, ref_voiced = _yin_vectorised(frames)
    assert np.array_equal(voiced, ref_voiced)
    assert np.allclose(f0, ref_f0, rtol=1e-12, atol=0.0)


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_compiled_yin_is_the_vectorised_definition_bit_for_bit(seed: int) -> None:
    frames = _frames(seed)
    f0, voiced = pitch.yin(frames)
    ref_f0, ref_voiced = _yin_vectorised(frames, acf=pitch.autocorrelation(frames))
    assert 0.2 < voiced.mean() < 0.9  # both branches (trough / global minimum) are exercised
    assert np.array_equal(voiced, ref_voiced)
    assert np.array_equal(f0, ref_f0)


def test_yin_of_no_frames_and_of_a_strided_view() -> None:
    f0, voiced = pitch.yin(np.zeros((0, FRAME_LENGTH), dtype=np.float32))
    assert f0.shape == voiced.shape == (0,)
    frames = _frames(4)
    f0, voiced = pitch.yin(frames[::2])
    ref_f0, ref_voiced = pitch.yin(np.ascontiguousarray(frames[::2]))
    assert np.array_equal(f0, ref_f0) and np.array_equal(voiced, ref_voiced)


def _stream_frames(seed: int, seconds: float = 4.0) -> np.ndarray:
    """Consecutive analysis frames (one hop apart, as the grid cuts them) of a signal with
    tones, a glide, noise, a silent stretch and a near-silent one."""
    rng = np.random.default_rng(seed)
    t = np.arange(int(seconds * ANALYSIS_RATE)) / ANALYSIS_RATE
    glide = np.sin(2 * np.pi * np.cumsum(np.linspace(80.0, 1800.0, t.size)) / ANALYSIS_RATE)
    signal = 0.4 * glide + 0.2 * np.sin(2 * np.pi * 330.0 * t) + 0.05 * rng.standard_normal(t.size)
    quarter = t.size // 4
    signal[quarter : 2 * quarter] = 0.0
    signal[2 * quarter : 2 * quarter + quarter // 2] *= 1e-20
    frames: np.ndarray = Framer().push(signal.astype(np.float32))
    return frames


@pytest.mark.parametrize("seed", [1, 2])
def test_block_autocorrelation_of_consecutive_frames_is_the_whole_frame_one(seed: int) -> None:
    frames = _stream_frames(seed)
    assert pitch.consecutive_rows(frames).all()
    for start, count in ((0, frames.shape[0]), (5, 1), (17, 43), (60, 2)):
        batch = np.ascontiguousarray(frames[start : start + count])
        blocks = pitch.autocorrelation(batch)
        whole = autocorrelation_direct(batch)
        scale = np.maximum(np.abs(whole[:, :1]), np.finfo(np.float64).tiny)
        assert blocks.shape == whole.shape == (count, pitch.MAX_PERIOD + 1)
        assert np.all(np.abs(blocks - whole) <= 1e-13 * scale)
    # and so YIN's decisions: the same voicing, f0 to rounding
    f0, voiced = pitch.yin(frames)
    ref_f0, ref_voiced = _yin_vectorised(frames, ACF_FFT_SIZE)
    assert 0.2 < voiced.mean() < 0.9
    assert np.array_equal(voiced, ref_voiced)
    assert np.allclose(f0, ref_f0, rtol=1e-12, atol=0.0)


def test_a_batch_gets_the_same_autocorrelation_bits_however_it_is_cut() -> None:
    """Streaming == batch: a frame's lags do not depend on the batch it came in."""
    frames = _stream_frames(3)
    whole = pitch.autocorrelation(frames)
    cut = np.concatenate([pitch.autocorrelation(np.ascontiguousarray(frames[i : i + 7]))
                          for i in range(0, frames.shape[0], 7)])
    assert np.array_equal(whole, cut)


def test_a_frames_lags_do_not_depend_on_the_frames_beside_it() -> None:
    """Frames of several streams in one call (dynamic batching), frames that are not one hop
    apart, a lone frame: each frame gets the bits it gets in its own stream's call."""
    a, b = _stream_frames(4), _stream_frames(5)
    own = np.concatenate([pitch.autocorrelation(a[:30]), pitch.autocorrelation(b[10:40])])
    mixed = pitch.autocorrelation(np.concatenate([a[:30], b[10:40]]))
    assert np.array_equal(mixed, own)
    apart = np.ascontiguousarray(a[::3])
    assert not pitch.consecutive_rows(apart[:10]).any()  # (silent frames do repeat)
    alone = np.concatenate([pitch.autocorrelation(apart[i : i + 1]) for i in range(apart.shape[0])])
    assert np.array_equal(pitch.autocorrelation(apart), alone)
    shifted = a.copy()
    shifted[5, : FRAME_LENGTH - HOP_LENGTH] += np.float32(1e-3)  # one frame that does not overlap
    assert pitch.consecutive_rows(shifted).tolist().count(False) == 2
    whole = autocorrelation_direct(shifted)
    got = pitch.autocorrelation(shifted)
    assert np.all(np.abs(got - whole) <= 1e-13 * np.maximum(np.abs(whole[:, :1]), np.finfo(np.float64).tiny))


@pytest.mark.parametrize("n", [1, 2, 43])
def test_compiled_block_spectrum_is_the_numpy_sum_to_rounding(n: int) -> None:
    from streamprint.engine.compiled import library

    rng = np.random.default_rng(n)
    m = n + 2 * pitch.BLOCKS
    spectra = rng.standard_normal((m, 513)) + 1j * rng.standard_normal((m, 513))
    spectra[:, 0] = spectra[:, 0].real  # a real signal's DC and Nyquist bins are real
    spectra[:, -1] = spectra[:, -1].real
    first = np.sort(rng.integers(0, m - pitch.BLOCKS + 1, n)).astype(np.int64)
    want = block_spectrum_numpy(spectra, first)
    got = np.empty_like(want)
    power, cross = np.empty((m, 513)), np.empty((m - 1, 513), dtype=np.complex128)
    library().sp_block_acf_spectrum(np.ascontiguousarray(spectra), first, n, m, pitch.BLOCKS, 513, power, cross, got)
    scale = (np.abs(spectra) ** 2).sum()
    assert np.abs(got - want).max() <= 1e-15 * scale


def test_frames_continue_each_other_only_when_their_overlap_is_the_same_bits() -> None:
    """A frame whose overlap equals its neighbour's by value but not by bits (0.0 against
    -0.0) gets blocks of its own: its lags are what it gets alone."""
    frames = np.ascontiguousarray(_stream_frames(6)[:12])
    for j in range(1, 5):  # one sample of frame 4 set to 0.0 in every frame that holds it
        frames[j, (4 - j) * HOP_LENGTH + 10] = np.float32(0.0)
    assert pitch.consecutive_rows(frames).all()
    frames[4, 10] = np.float32(-0.0)  # == frame 3's 0.0, not the same bits
    assert pitch.consecutive_rows(frames).tolist() == [True] * 3 + [False] + [True] * 7
    alone = np.concatenate([pitch.autocorrelation(frames[i : i + 1]) for i in range(12)])
    assert np.array_equal(pitch.autocorrelation(frames)[4], alone[4])


@pytest.mark.parametrize("shape", [(3, HOP_LENGTH - 1), (3, FRAME_LENGTH + 1), (FRAME_LENGTH,)])
def test_frames_of_another_width_are_refused_before_the_compiled_code(shape: tuple[int, ...]) -> None:
    frames = np.zeros(shape, dtype=np.float32)
    for call in (pitch.consecutive_rows, pitch.autocorrelation, pitch.yin):
        with pytest.raises(ValueError, match="frames must be"):
            call(frames)


def test_yin_of_loud_frames_is_yin_of_those_frames_and_unvoiced_elsewhere(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    frames = _frames(5)
    n = frames.shape[0]
    loud = np.random.default_rng(5).random(n) < 0.6
    loud[:3] = True  # a run of consecutive loud frames, then gaps
    ref_f0, ref_voiced = pitch.yin(frames)
    rows_seen: list[int] = []
    real_yin = pitch.yin

    def counting_yin(rows: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        rows_seen.append(rows.shape[0])
        return real_yin(rows)

    monkeypatch.setattr(pitch, "yin", counting_yin)
    f0, voiced = pitch.yin_of_loud(frames, loud)
    assert rows_seen == [int(loud.sum())]  # YIN saw only the loud frames
    assert np.array_equal(f0[loud], ref_f0[loud]) and np.array_equal(voiced[loud], ref_voiced[loud])
    assert not voiced[~loud].any() and np.all(f0[~loud] == 0.0)
    assert ref_voiced[~loud].any()  # the quiet rows would have had voiced frames
    rows_seen.clear()
    none_f0, none_voiced = pitch.yin_of_loud(frames, np.zeros(n, dtype=bool))
    assert rows_seen == [] and not none_voiced.any() and not none_f0.any()
    with pytest.raises(ValueError, match="loud must be"):
        pitch.yin_of_loud(frames, loud[:-1])
