"""Video container decoding: incremental streams equal whole-media decoding; bad media."""

from __future__ import annotations

import random

import pytest
import video_clips as vc

from streamprint.engine import dims
from streamprint.engine.video import (
    VideoContainerSession,
    VideoSessionConfig,
    fingerprint_video,
    has_video_stream,
)
from streamprint.errors import InvalidInputError, MediaDecodeError


def _stream(data: bytes, seed: int, max_chunk: int) -> tuple[int, dict[str, float]]:
    pick = random.Random(seed)
    session = VideoContainerSession(VideoSessionConfig(update_interval_s=1.0))
    try:
        updates = 0
        pos = 0
        while pos < len(data):
            n = pick.randint(1, max_chunk)
            updates += len(session.push(data[pos : pos + n]))
            pos += n
        more, final = session.finish()
    finally:
        session.close()
    return updates + len(more), final.values


def _stream_all(data: bytes, step: int = 4096) -> None:
    """Stream ``data`` in ``step``-byte chunks to a container session, then finish it."""
    session = VideoContainerSession(VideoSessionConfig())
    try:
        for i in range(0, len(data), step):
            session.push(data[i : i + step])
        session.finish()
    finally:
        session.close()


@pytest.mark.parametrize("container", ["ts", "fmp4", "mkv", "webm", "mp4"])
def test_streaming_equals_batch_in_random_chunkings(container: str) -> None:
    data = vc.encode(vc.moving_with_cut(1.5), seconds=3.0, container=container)
    assert has_video_stream(data)
    batch = fingerprint_video(data).values
    for seed, max_chunk in ((0, 700), (1, 9000)):
        updates, values = _stream(data, seed, max_chunk)
        assert updates >= 2
        for name in dims.VIDEO_13D:
            assert values[name] == pytest.approx(batch[name], rel=1e-9, abs=1e-9), (container, name)


def test_plain_mp4_with_index_at_end_is_unary_only() -> None:
    # larger than the demuxer's probe buffer (1 MiB), so the index arrives too late to seek back
    data = vc.encode(vc.noise(), seconds=7.0, container="mp4-moov-end")
    assert len(data) > 1 << 20
    assert fingerprint_video(data).values["edge_density"] > 0.3
    with pytest.raises(MediaDecodeError) as info:
        _stream_all(data)
    assert "moov" in info.value.message


@pytest.mark.parametrize("bad", [b"", b"hello, this is not video" * 100, bytes(range(256)) * 64])
def test_non_video_bytes(bad: bytes) -> None:
    assert not has_video_stream(bad)
    with pytest.raises(MediaDecodeError):
        fingerprint_video(bad)
    session = VideoContainerSession(VideoSessionConfig())
    with pytest.raises(MediaDecodeError) as info:
        session.push(bad)
        session.finish()
    session.close()
    assert info.value.violations[0].field == "chunk.data"


def test_truncated_mp4() -> None:
    data = vc.encode(vc.noise(), seconds=2.0, container="mp4")
    with pytest.raises(MediaDecodeError):
        fingerprint_video(data[: len(data) // 2])
    with pytest.raises(MediaDecodeError):
        fingerprint_video(data[:200])


def test_audio_only_container_is_not_video() -> None:
    import io

    import av
    import numpy as np

    buf = io.BytesIO()
    with av.open(buf, "w", format="wav") as out:
        stream = out.add_stream("pcm_s16le", rate=8000)
        frame = av.AudioFrame.from_ndarray(np.zeros((1, 8000), np.int16), format="s16", layout="mono")
        frame.sample_rate = 8000
        for packet in stream.encode(frame):
            out.mux(packet)
    assert not has_video_stream(buf.getvalue())
    with pytest.raises(MediaDecodeError, match="no video stream"):
        fingerprint_video(buf.getvalue())


def test_abandoned_stream_closes_cleanly() -> None:
    data = vc.encode(vc.bars(), seconds=1.0, container="ts")
    session = VideoContainerSession(VideoSessionConfig())
    session.push(data[:1000])
    session.close()
    session.close()


def test_live_ts_joined_mid_gop() -> None:
    """A receiver that joins a broadcast mid-GOP (even mid-packet) starts at the next keyframe."""
    data = vc.encode(vc.moving_with_cut(5.0), seconds=6.0, container="ts", gop=15)
    joined = data[len(data) // 4 + 50 :]
    batch = fingerprint_video(joined)
    assert 0.5 < batch.media_seconds < 6.0
    updates, values = _stream(joined, 3, 1500)
    assert updates >= 1
    assert values == batch.values


@pytest.mark.parametrize("container", ["ts", "fmp4"])
def test_frames_over_the_size_limit_are_refused_before_decoding_with_the_media_field(container: str) -> None:
    """Frames were decoded before their size was checked, and only those picked for analysis
    were: a 769 KB stream of 16000x16000 frames took 1.2 GB, and such frames appended to a
    normal stream (timestamps going back, so never analysed) passed. A unary call's error
    named ``chunk.data``."""
    wide = vc.encode(vc.flat((90, 90, 90), width=8200, height=16), seconds=0.4, container=container, width=8200, height=16)
    with pytest.raises(InvalidInputError) as unary:
        fingerprint_video(wide)
    assert [v.field for v in unary.value.violations] == ["media.data"]
    assert "frame size 8200x16 is out of range" in unary.value.message
    assert unary.value.violations[0].allowed == "2..8192 px a side"
    with pytest.raises(InvalidInputError) as streamed:
        _stream_all(wide)
    assert [v.field for v in streamed.value.violations] == ["chunk.data"]


def test_an_oversized_part_after_normal_frames_is_refused_too() -> None:
    normal = vc.encode(vc.bars(), seconds=1.0, container="ts")
    wide = vc.encode(vc.flat((90, 90, 90), width=8200, height=16), seconds=0.4, container="ts", width=8200, height=16)
    with pytest.raises(InvalidInputError) as info:
        fingerprint_video(normal + wide)
    assert "8200x16" in info.value.message


@pytest.mark.parametrize("container", ["ts", "fmp4"])
def test_the_decoders_refuse_pictures_over_the_pixel_limit(container: str, monkeypatch: pytest.MonkeyPatch) -> None:
    """The pixel cap reaches libav's decoder (whole media and streams), so a picture over it
    is never allocated; here the cap is lowered below a 160x96 clip's frames."""
    from streamprint.engine.video import decode

    data = vc.encode(vc.bars(), seconds=1.0, container=container)
    assert fingerprint_video(data).values["edge_density"] > 0
    monkeypatch.setattr(decode, "_CODEC_OPTIONS", {"max_pixels": str(160 * 96 - 1)})
    with pytest.raises(MediaDecodeError):
        fingerprint_video(data)
    with pytest.raises(MediaDecodeError):
        _stream_all(data)


def test_a_damaged_fragmented_mp4_is_not_told_its_index_is_at_the_end() -> None:
    """Any MP4 that failed before its first frame was told its index (moov) was not at the
    start, also a fragmented one whose index is first and whose fragments were damaged."""
    data = vc.encode(vc.noise(), seconds=1.0, container="fmp4")
    moov_end = data.index(b"moov") - 4 + int.from_bytes(data[data.index(b"moov") - 4 : data.index(b"moov")], "big")
    damaged = data[:moov_end] + bytes(range(256)) * 64
    with pytest.raises(MediaDecodeError) as info:
        _stream_all(damaged)
    assert "moov" not in info.value.message
    assert [v.field for v in info.value.violations] == ["chunk.data"]
