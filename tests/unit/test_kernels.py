"""The compiled loops load with their declared signatures, and a build without them fails
with one clear error (at start-up: the server and the CLI load them before any work)."""

from __future__ import annotations

import importlib.util
from collections.abc import Iterator

import numpy as np
import pytest

from streamprint.engine import compiled, iir, median, pitch
from streamprint.engine.grid import FRAME_LENGTH
from streamprint.engine.native import CrestFactor, StereoImage
from streamprint.errors import InstallationError


def test_library_declares_every_kernel() -> None:
    lib = compiled.library()
    for name in compiled._SIGNATURES:
        assert getattr(lib, name).argtypes, name


@pytest.fixture
def fresh_library() -> Iterator[None]:
    """The loader's cache cleared around the test (its monkeypatches undone first), so the
    test loads afresh and later tests get the real library again."""
    compiled.library.cache_clear()
    yield
    compiled.library.cache_clear()


@pytest.mark.usefixtures("fresh_library")
def test_a_missing_build_is_an_installation_error(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(compiled, "_MODULE", "streamprint.engine._no_such_build")
    with pytest.raises(InstallationError, match="make setup"):
        compiled.warm_up()


@pytest.mark.usefixtures("fresh_library")
def test_a_library_without_the_kernels_is_an_installation_error(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(compiled, "_SIGNATURES", {"sp_not_there": []})
    with pytest.raises(InstallationError, match="do not load"):
        compiled.library()


@pytest.mark.usefixtures("fresh_library")
def test_a_library_from_an_older_source_is_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    """ctypes would pass this code's arguments to the old functions: refused at load."""
    monkeypatch.setattr(compiled, "ABI_VERSION", compiled.ABI_VERSION + 1)
    with pytest.raises(InstallationError, match="another version"):
        compiled.library()


def test_wrappers_refuse_shapes_the_c_code_would_overrun() -> None:
    with pytest.raises(ValueError, match="frames must be"):
        pitch.yin(np.zeros((2, 100), np.float32))
    for width in (0, 9):
        with pytest.raises(ValueError, match="width"):
            median.sliding_median(np.zeros((2, 8), np.float32), width)
    with pytest.raises(ValueError):
        iir.weighted_energy(np.array([[1.0, 0, 0, 1.0, 0, 0]]), np.zeros((4, 2), np.float32), np.zeros((1, 3, 2)),
                            np.ones(2))


def test_strided_and_transposed_inputs_give_the_contiguous_results() -> None:
    """Every wrapper makes its input contiguous before the C code sees it."""
    rng = np.random.default_rng(1)
    sos = np.array([[0.5, 0.2, 0.1, 1.0, -0.3, 0.1], [1.0, -1.0, 0.2, 1.0, 0.1, 0.05]])
    wide = rng.uniform(-0.5, 0.5, (2000, 4)).astype(np.float32)
    strided = wide[::2, 1:3]
    got, got_state = iir.weighted_energy(sos, strided, np.zeros((2, 2, 2)), np.array([1.0, 1.41]))
    ref, ref_state = iir.weighted_energy(sos, strided.copy(), np.zeros((2, 2, 2)), np.array([1.0, 1.41]))
    assert np.array_equal(got, ref) and np.array_equal(got_state, ref_state)
    frames = rng.standard_normal((6, 2 * FRAME_LENGTH)).astype(np.float32)[:, ::2]
    assert all(np.array_equal(a, b) for a, b in zip(pitch.yin(frames), pitch.yin(frames.copy()), strict=True))
    columns = rng.standard_normal((70, 5)).astype(np.float32)
    assert np.array_equal(median.sliding_median(columns.T, 31), median.sliding_median(columns.T.copy(), 31))
    stereo = rng.uniform(-1, 1, (30_000, 3)).astype(np.float32)
    for meter_type in (StereoImage, CrestFactor):
        views, copies = meter_type(8_000, 2), meter_type(8_000, 2)
        views.push(stereo[::3, ::2])
        copies.push(np.ascontiguousarray(stereo[::3, ::2]))
        assert views.values() == copies.values() and views.confidences() == copies.confidences()


def test_wrong_arguments_never_reach_the_c_code() -> None:
    """ctypes checks dtype and contiguity: a wrapper bug raises instead of reading memory."""
    lib = compiled.library()
    sos = np.array([[1.0, 0.0, 0.0, 1.0, 0.0, 0.0]])
    with pytest.raises(Exception, match="array"):
        lib.sp_weighted_energy_f32(sos, 1, np.zeros((4, 2)), 4, 2, np.zeros((1, 2, 2)), np.ones(2), np.empty(4))
    # the wrapper converts what it may
    energy, _ = iir.weighted_energy(sos, np.ones((4, 2), dtype=np.int16), np.zeros((1, 2, 2)), np.ones(2))
    assert energy.tolist() == [2.0] * 4


def test_the_library_is_an_extension_of_the_package() -> None:
    spec = importlib.util.find_spec(compiled._MODULE)
    assert spec is not None and spec.origin is not None and spec.origin.endswith(".so")


@pytest.mark.parametrize("channels", [2, 3])
def test_segment_kernels_are_the_numpy_sums(channels: int) -> None:
    """sp_stereo_segments / sp_crest_segments: per piece of a cut block, the float64 sums
    (in sample order) and peak that numpy's reduceat gives (to rounding)."""
    rng = np.random.default_rng(channels)
    n = 50_000
    x = rng.uniform(-1.0, 1.0, (n, channels)).astype(np.float32)
    starts = np.concatenate(([0], np.sort(rng.choice(np.arange(1, n), 7, replace=False)))).astype(np.int64)
    lib = compiled.library()
    stereo = np.empty((starts.shape[0], 4))
    lib.sp_stereo_segments(x, n, channels, starts, starts.shape[0], stereo)
    left, right = x[:, 0].astype(np.float64), x[:, 1].astype(np.float64)
    side = (left - right) * 0.5
    products = np.stack([left * left, right * right, left * right, side * side])
    np.testing.assert_allclose(stereo.T, np.add.reduceat(products, starts, axis=1), rtol=1e-12)
    squares, peaks = np.empty(starts.shape[0]), np.empty(starts.shape[0])
    lib.sp_crest_segments(x, n, channels, starts, starts.shape[0], squares, peaks)
    wide = x.astype(np.float64)
    np.testing.assert_allclose(squares, np.add.reduceat((wide * wide).sum(axis=1), starts), rtol=1e-12)
    assert np.array_equal(peaks, np.maximum.reduceat(np.abs(wide).max(axis=1), starts))


@pytest.mark.parametrize("length", [FRAME_LENGTH, 1, 7, 8, 128, 129, 1000])
def test_frame_rms_is_numpys_mean_of_squares_bit_for_bit(length: int) -> None:
    """sp_frame_rms replicates numpy's pairwise sum (blocks of 8 accumulators, halves above
    128), so the frame RMS keeps the bits of the numpy expression it replaces."""
    from streamprint.engine.analysis import frame_rms

    rng = np.random.default_rng(length)
    frames = (rng.standard_normal((40, length)) * rng.uniform(1e-6, 1.0, (40, 1))).astype(np.float32)
    frames[0] = 0.0
    frames[1, ::2] = np.float32(1e-30)
    want = np.sqrt(np.mean(np.square(frames, dtype=np.float64), axis=1))
    assert np.array_equal(frame_rms(frames), want)
    assert np.array_equal(frame_rms(frames[::2]), want[::2])  # strided rows are copied first
    assert frame_rms(frames[:0]).shape == (0,)
