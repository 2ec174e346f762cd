"""Video 13D engine: analytic clips, streaming == batch, raw inputs, registry."""

from __future__ import annotations

import math
import random

import numpy as np
import pytest
import video_clips as vc

from streamprint.engine import dims
from streamprint.engine.video import (
    PixelFormat,
    RawVideoFormat,
    VideoSession,
    VideoSessionConfig,
    analysis_size,
    calibration,
    fingerprint_raw,
    fingerprint_video,
)
from streamprint.engine.video.grid import FrameSampler
from streamprint.errors import InvalidInputError, SessionStateError


@pytest.fixture(scope="module")
def cut_clip() -> bytes:
    """10 s at 15 fps, one hard cut at 5 s."""
    return vc.encode(vc.moving_with_cut(5.0), seconds=10.0)


def test_registry_has_13_video_dimensions() -> None:
    assert len(dims.VIDEO_13D) == 13
    assert dims.algorithm_for(dims.VIDEO_13D) == "video-13d/1"
    assert dims.algorithm_for(dims.AUDIO_13D) == "audio-13d/1"
    assert set(dims.VIDEO_13D).isdisjoint(dims.AUDIO_25D)
    for name in dims.VIDEO_13D:
        d = dims.get(name)
        assert d.modality is dims.Modality.VIDEO and d.streamed and d.tolerance > 0 and d.high > d.low
    assert any(dims.get(n).critical for n in dims.VIDEO_13D)


def test_analysis_size_and_sampler() -> None:
    assert analysis_size(1280, 720) == (256, 144)
    assert analysis_size(1920, 1080) == (256, 144)
    assert analysis_size(640, 480) == (256, 192)
    # very wide sources keep an interior row for the 3x3 operators (a 256x2 grid crashed)
    assert analysis_size(300, 2) == analysis_size(8192, 64) == (256, 4)
    assert analysis_size(2, 8192) == (256, 1024)


@pytest.mark.parametrize("width, height", [(300, 2), (512, 4), (8192, 64), (257, 3)])
def test_very_wide_raw_frames_have_a_fingerprint(width: int, height: int) -> None:
    raw = RawVideoFormat(PixelFormat.RGB24, width, height)
    rng = np.random.default_rng(width)
    frames = rng.integers(0, 256, size=(3, raw.frame_bytes), dtype=np.uint8)
    fp = fingerprint_raw(frames.tobytes(), raw, [0.0, 0.1, 0.2])
    assert all(math.isfinite(v) for v in fp.values.values()), fp.values
    assert fp.values["sharpness"] > 0.0
    sampler = FrameSampler()
    analysed = [sampler.accept(i / 30.0)[1] for i in range(30)]
    assert sum(analysed) == 10 and analysed[0] and analysed[3]
    sampler = FrameSampler()
    assert sum(sampler.accept(i / 5.0)[1] for i in range(10)) == 10  # slower source: every frame
    assert sampler.accept(1.8) == (False, False)  # repeated timestamp dropped


def test_black_clip() -> None:
    fp = fingerprint_video(vc.encode(vc.flat((0, 0, 0)), seconds=3.0))
    assert fp.algorithm == "video-13d/1" and fp.final
    assert fp.values["black_frame_ratio"] == 1.0
    assert fp.values["brightness_mean"] < 0.01
    # constant content: zero standard error, so the dimension's calibrated maximum (its cap)
    assert fp.confidence["black_frame_ratio"] == pytest.approx(calibration.CAP.get("black_frame_ratio", 1.0))


def test_flat_grey_has_known_brightness_and_no_contrast() -> None:
    fp = fingerprint_video(vc.encode(vc.flat((128, 128, 128)), seconds=3.0))
    assert fp.values["brightness_mean"] == pytest.approx(128 / 255, abs=0.01)  # codec range rounding
    for name in ("contrast", "saturation_mean", "colorfulness", "edge_density", "spatial_information",
                 "brightness_variation", "black_frame_ratio"):
        assert fp.values[name] == pytest.approx(0.0, abs=1e-3), name
    raw = RawVideoFormat(PixelFormat.GRAY8, 64, 36)
    exact = fingerprint_raw(bytes([128]) * raw.frame_bytes * 20, raw, [i / 10 for i in range(20)])
    assert exact.values["brightness_mean"] == pytest.approx(128 / 255, abs=1e-9)
    assert exact.values["contrast"] == 0.0 and exact.media_seconds == pytest.approx(2.0)


def test_static_clip_has_no_motion() -> None:
    fp = fingerprint_video(vc.encode(vc.bars(), seconds=3.0))
    assert fp.values["motion_intensity"] < 0.1
    assert fp.values["temporal_information"] < 0.5
    assert fp.values["motion_stability"] > 0.9
    assert fp.values["scene_cut_rate"] == 0.0
    assert fp.values["saturation_mean"] > 0.5 and fp.values["colorfulness"] > 100


def test_one_cut_in_ten_seconds(cut_clip: bytes) -> None:
    fp = fingerprint_video(cut_clip)
    assert fp.media_seconds == pytest.approx(10.0, abs=0.1)
    assert fp.values["scene_cut_rate"] == pytest.approx(6.0, rel=0.05)
    assert fp.values["motion_intensity"] > 5.0
    assert fp.values["brightness_variation"] > 0.1


def test_noise_is_sharp_and_busy() -> None:
    fp = fingerprint_video(vc.encode(vc.noise(), seconds=2.0))
    grey = fingerprint_video(vc.encode(vc.flat((90, 90, 90)), seconds=2.0))
    assert fp.values["sharpness"] > grey.values["sharpness"] + 2
    assert fp.values["edge_density"] > 0.3
    assert fp.values["temporal_information"] > 10


def test_raw_formats_agree() -> None:
    rng = np.random.default_rng(1)
    w, h, n = 64, 48, 12
    rgb = rng.integers(0, 256, (n, h, w, 3), dtype=np.uint8)
    ts = [i / 10 for i in range(n)]
    by_rgb = fingerprint_raw(rgb.tobytes(), RawVideoFormat(PixelFormat.RGB24, w, h), ts)
    session = VideoSession(VideoSessionConfig(update_interval_s=None))
    session.push_rgb(rgb, ts)
    assert session.finish().values == by_rgb.values
    grey = rgb[..., 1]
    y = np.concatenate([grey.reshape(n, -1), np.full((n, w * h // 2), 128, np.uint8)], axis=1)
    by_i420 = fingerprint_raw(y.tobytes(), RawVideoFormat(PixelFormat.I420, w, h), ts)
    by_gray = fingerprint_raw(grey.tobytes(), RawVideoFormat(PixelFormat.GRAY8, w, h), ts)
    assert by_i420.values["saturation_mean"] < 0.05
    assert by_gray.values["saturation_mean"] == 0.0
    # limited-range i420 vs full-range grey of the same bytes: same contrast order
    assert by_i420.values["contrast"] == pytest.approx(by_gray.values["contrast"] * 255 / 219, rel=0.05)


@pytest.mark.parametrize(
    ("fmt", "field"),
    [
        (RawVideoFormat(PixelFormat.I420, 63, 48), "width"),
        (RawVideoFormat(PixelFormat.RGB24, 64, 1), "height"),
    ],
)
def test_bad_raw_geometry(fmt: RawVideoFormat, field: str) -> None:
    with pytest.raises(InvalidInputError) as info:
        VideoSession(VideoSessionConfig(raw=fmt))
    assert info.value.violations[0].field == field


def test_bad_raw_chunks() -> None:
    raw = RawVideoFormat(PixelFormat.RGB24, 32, 16)
    session = VideoSession(VideoSessionConfig(raw=raw))
    with pytest.raises(InvalidInputError) as info:
        session.push_raw(b"\0" * (raw.frame_bytes - 1), [0.0])
    assert info.value.violations[0].field == "chunk.data"
    with pytest.raises(InvalidInputError) as info:
        session.push_raw(b"\0" * raw.frame_bytes * 2, [0.1, 0.1])
    assert info.value.violations[0].field == "chunk.timestamps_seconds"
    session.push_raw(b"\0" * raw.frame_bytes, [0.5])
    with pytest.raises(InvalidInputError):
        session.push_raw(b"\0" * raw.frame_bytes, [0.4])
    session.finish()
    with pytest.raises(SessionStateError):
        session.push_raw(b"\0" * raw.frame_bytes, [0.6])
    with pytest.raises(InvalidInputError) as info:
        VideoSession(VideoSessionConfig(dimensions=("spectral_centroid",)))
    assert info.value.violations[0].field == "dimensions"


def test_raw_streaming_equals_batch_in_random_chunkings() -> None:
    rng = np.random.default_rng(2)
    w, h, n = 48, 32, 45
    base = rng.integers(0, 200, (h, w, 3), dtype=np.uint8)
    frames = np.stack([np.roll(base, i, axis=1) + (40 if i > 25 else 0) for i in range(n)]).astype(np.uint8)
    ts = [i / 15 for i in range(n)]
    raw = RawVideoFormat(PixelFormat.RGB24, w, h)
    batch = fingerprint_raw(frames.tobytes(), raw, ts)
    for seed in range(3):
        pick = random.Random(seed)
        session = VideoSession(VideoSessionConfig(raw=raw, update_interval_s=0.5))
        updates = []
        i = 0
        while i < n:
            k = pick.randint(1, 7)
            updates += session.push_raw(frames[i : i + k].tobytes(), ts[i : i + k])
            i += k
        final = session.finish()
        assert [u.revision for u in updates] == list(range(1, len(updates) + 1))
        assert len(updates) == 6  # every 0.5 s of media, 0.5 .. 3.0 s (the last frame covers 3.0)
        for name in dims.VIDEO_13D:
            assert final.values[name] == pytest.approx(batch.values[name], rel=1e-9, abs=1e-12), name
            assert final.confidence[name] == pytest.approx(batch.confidence[name], abs=1e-9), name


def test_confidence_grows_on_a_steady_clip(cut_clip: bytes) -> None:
    fp = fingerprint_video(vc.encode(vc.noise(3), seconds=4.0))
    assert all(0.0 <= c <= 1.0 for c in fp.confidence.values())
    cap = calibration.CAP.get("brightness_mean", 1.0)
    assert fp.confidence["brightness_mean"] == pytest.approx(cap, abs=0.02)  # steady: near its cap
    assert calibration.confidence("brightness_mean", 0.02, math.inf) == calibration.UNDEFINED.get(
        "brightness_mean", 0.0
    )
    assert calibration.confidence("brightness_mean", 0.02, 1.0) < 0.1
