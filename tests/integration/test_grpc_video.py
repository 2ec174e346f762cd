"""Video over gRPC end to end: StreamFingerprint, Fingerprint, BatchFingerprint, Validate."""

from __future__ import annotations

import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import grpc
import numpy as np
import pytest
from grpc_harness import ServerThread

from streamprint.engine import dims
from streamprint_client._generated import fingerprint_service_pb2 as fs_pb
from streamprint_client._generated import fingerprint_service_pb2_grpc as fs_grpc
from streamprint_client._generated import media_pb2 as m_pb
from streamprint_client.errors import StreamprintRpcError

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "unit"))
import video_clips as vc


@pytest.fixture(scope="module")
def clip_ts() -> bytes:
    return vc.encode(vc.moving_with_cut(2.0), seconds=4.0, container="ts")


@pytest.fixture
def stub(server: ServerThread) -> Iterator[fs_grpc.FingerprintServiceStub]:
    with grpc.insecure_channel(server.address) as channel:
        yield fs_grpc.FingerprintServiceStub(channel)


def _values(fp: m_pb.Fingerprint) -> dict[str, float]:
    return {d.name: d.value for d in fp.dimensions}


def _stream(stub: fs_grpc.FingerprintServiceStub, config: fs_pb.StreamConfig, chunks: list[fs_pb.MediaChunk]) -> list[fs_pb.StreamFingerprintResponse]:
    def requests() -> Iterator[fs_pb.StreamFingerprintRequest]:
        yield fs_pb.StreamFingerprintRequest(config=config)
        for chunk in chunks:
            yield fs_pb.StreamFingerprintRequest(chunk=chunk)

    return list(stub.StreamFingerprint(requests(), timeout=60))


def test_stream_container_equals_unary(stub: fs_grpc.FingerprintServiceStub, clip_ts: bytes) -> None:
    config = fs_pb.StreamConfig(modality=m_pb.MODALITY_VIDEO, client_stream_id="cam")
    step = 3000
    chunks = [fs_pb.MediaChunk(data=clip_ts[i : i + step], seq=k) for k, i in enumerate(range(0, len(clip_ts), step))]
    responses = _stream(stub, config, chunks)
    assert len(responses) >= 4
    finals = [r.fingerprint.final for r in responses]
    assert finals == [False] * (len(responses) - 1) + [True]
    last = responses[-1].fingerprint
    assert last.algorithm == "video-13d/1"
    assert [d.name for d in last.dimensions] == list(dims.VIDEO_13D)
    unary = stub.Fingerprint(
        fs_pb.FingerprintRequest(media=m_pb.MediaSource(data=clip_ts), modality=m_pb.MODALITY_VIDEO), timeout=60
    )
    assert unary.fingerprint.algorithm == "video-13d/1" and not unary.cached
    for name, value in _values(unary.fingerprint).items():
        assert _values(last)[name] == pytest.approx(value, rel=1e-9, abs=1e-9), name
    again = stub.Fingerprint(
        fs_pb.FingerprintRequest(media=m_pb.MediaSource(data=clip_ts), modality=m_pb.MODALITY_VIDEO), timeout=60
    )
    assert again.cached
    # validate the streamed result against the media
    report = stub.ValidateFingerprints(
        fs_pb.ValidateFingerprintsRequest(
            items=[fs_pb.ValidationItem(media=m_pb.MediaSource(data=clip_ts), candidate=list(last.dimensions))]
        ),
        timeout=60,
    )
    assert report.results[0].report.passed
    # a video session keeps no media: validating by id is refused with a reason
    by_id = stub.ValidateFingerprints(
        fs_pb.ValidateFingerprintsRequest(items=[fs_pb.ValidationItem(session_id=responses[0].session_id)]),
        timeout=60,
    )
    assert by_id.results[0].status.code == 9  # FAILED_PRECONDITION: no media kept
    assert "video sessions keep no media" in by_id.results[0].status.message


def test_stream_raw_frames_with_timestamps(stub: fs_grpc.FingerprintServiceStub) -> None:
    w, h = 32, 24
    frames = [np.full((h, w, 3), 20 * (i // 10), np.uint8) for i in range(30)]
    config = fs_pb.StreamConfig(
        modality=m_pb.MODALITY_VIDEO,
        video_format=m_pb.VideoFormat(pixel_format=m_pb.PIXEL_FORMAT_RGB24, width=w, height=h),
        update_interval_seconds=1.0,
    )
    chunks = [
        fs_pb.MediaChunk(
            data=b"".join(f.tobytes() for f in frames[i : i + 5]),
            seq=k,
            timestamps_seconds=[j / 10 for j in range(i, i + 5)],
        )
        for k, i in enumerate(range(0, 30, 5))
    ]
    responses = _stream(stub, config, chunks)
    assert [r.fingerprint.final for r in responses] == [False, False, False, True]
    values = _values(responses[-1].fingerprint)
    assert values["brightness_mean"] == pytest.approx(20 / 255, abs=1e-9)


def test_bad_video_inputs(stub: fs_grpc.FingerprintServiceStub) -> None:
    mp4 = vc.encode(vc.noise(), seconds=1.0, container="mp4")
    with pytest.raises(grpc.RpcError) as info:
        stub.Fingerprint(
            fs_pb.FingerprintRequest(media=m_pb.MediaSource(data=mp4[: len(mp4) // 2]), modality=m_pb.MODALITY_VIDEO),
            timeout=30,
        )
    assert info.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert "media.data" in (info.value.details() or "")
    with pytest.raises(grpc.RpcError) as info:
        stub.Fingerprint(
            fs_pb.FingerprintRequest(media=m_pb.MediaSource(data=b"not a video" * 100), modality=m_pb.MODALITY_VIDEO),
            timeout=30,
        )
    assert info.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    config = fs_pb.StreamConfig(
        modality=m_pb.MODALITY_VIDEO,
        video_format=m_pb.VideoFormat(pixel_format=m_pb.PIXEL_FORMAT_I420, width=33, height=24),
    )
    with pytest.raises(grpc.RpcError) as info:
        _stream(stub, config, [])
    assert info.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert "config.video_format.width" in (info.value.details() or "")
    config = fs_pb.StreamConfig(
        modality=m_pb.MODALITY_VIDEO,
        video_format=m_pb.VideoFormat(pixel_format=m_pb.PIXEL_FORMAT_GRAY8, width=32, height=24, frame_rate=10),
    )
    with pytest.raises(grpc.RpcError) as info:
        _stream(stub, config, [fs_pb.MediaChunk(data=b"\0" * 100, seq=0)])
    assert info.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert "chunk.data" in (info.value.details() or "")
    config = fs_pb.StreamConfig(modality=m_pb.MODALITY_VIDEO)
    with pytest.raises(grpc.RpcError) as info:
        _stream(stub, config, [fs_pb.MediaChunk(data=b"garbage bytes " * 500, seq=0)])
    assert info.value.code() == grpc.StatusCode.INVALID_ARGUMENT


def test_a_raw_frame_no_chunk_can_carry_is_refused_with_the_config(stub: fs_grpc.FingerprintServiceStub) -> None:
    """1920x1080 rgb24 (6.2 MB a frame) was accepted, and every chunk then failed: a chunk may
    carry 4 MiB by default, so no whole frame ever fit."""
    config = fs_pb.StreamConfig(
        modality=m_pb.MODALITY_VIDEO,
        video_format=m_pb.VideoFormat(pixel_format=m_pb.PIXEL_FORMAT_RGB24, width=1920, height=1080, frame_rate=25),
    )
    with pytest.raises(grpc.RpcError) as info:
        _stream(stub, config, [])
    error = StreamprintRpcError.from_rpc_error(info.value)
    assert error.code is grpc.StatusCode.INVALID_ARGUMENT
    assert [v.field for v in error.field_violations] == ["config.video_format"]
    assert "6220800 bytes, more than a chunk may carry (4194304 bytes" in error.message
    i420 = fs_pb.StreamConfig(  # the same picture in i420 fits (3.1 MB a frame)
        modality=m_pb.MODALITY_VIDEO,
        video_format=m_pb.VideoFormat(pixel_format=m_pb.PIXEL_FORMAT_I420, width=1920, height=1080, frame_rate=25),
    )
    frame = bytes(1920 * 1080 * 3 // 2)
    responses = _stream(stub, i420, [fs_pb.MediaChunk(data=frame, seq=0), fs_pb.MediaChunk(data=frame, seq=1)])
    assert responses[-1].fingerprint.final


def test_raw_media_timed_by_frame_rate_past_the_media_limit_is_refused_at_once(
    make_server: Callable[..., ServerThread],
) -> None:
    """Frame-rate-timed raw frames were checked against --max-media-s one frame at a time,
    after a Python list of every timestamp: 60 MiB of 2x2 frames at 1000 fps took 1.2 GB
    and minutes of CPU before the refusal."""
    srv = make_server(max_media_s=10.0)
    gray = m_pb.VideoFormat(pixel_format=m_pb.PIXEL_FORMAT_GRAY8, width=2, height=2, frame_rate=1000)
    data = bytes(4 * 20_001)  # 20,001 frames: 20 s at 1000 fps
    with grpc.insecure_channel(srv.address) as channel:
        stub = fs_grpc.FingerprintServiceStub(channel)
        started = time.monotonic()
        with pytest.raises(grpc.RpcError) as unary:
            stub.Fingerprint(
                fs_pb.FingerprintRequest(
                    media=m_pb.MediaSource(data=data, video_format=gray), modality=m_pb.MODALITY_VIDEO
                ),
                timeout=30,
            )
        config = fs_pb.StreamConfig(modality=m_pb.MODALITY_VIDEO, video_format=gray)
        with pytest.raises(grpc.RpcError) as streamed:
            _stream(stub, config, [fs_pb.MediaChunk(data=data[: 4 * 5000], seq=0), fs_pb.MediaChunk(data=data, seq=1)])
        elapsed = time.monotonic() - started
    for info in (unary, streamed):
        error = StreamprintRpcError.from_rpc_error(info.value)
        assert error.code is grpc.StatusCode.RESOURCE_EXHAUSTED
        assert error.error_info_metadata["limit"] == "max_media_seconds"
    assert "frames at 1000 fps" in StreamprintRpcError.from_rpc_error(streamed.value).message
    assert elapsed < 5


def test_batch_mixes_audio_and_video(stub: fs_grpc.FingerprintServiceStub, clip_ts: bytes) -> None:
    w, h = 16, 16
    raw = bytes([200]) * (w * h) * 20
    response = stub.BatchFingerprint(
        fs_pb.BatchFingerprintRequest(
            items=[
                fs_pb.FingerprintRequest(media=m_pb.MediaSource(data=clip_ts), modality=m_pb.MODALITY_VIDEO),
                fs_pb.FingerprintRequest(
                    media=m_pb.MediaSource(
                        data=raw,
                        video_format=m_pb.VideoFormat(
                            pixel_format=m_pb.PIXEL_FORMAT_GRAY8, width=w, height=h, frame_rate=10
                        ),
                    ),
                    modality=m_pb.MODALITY_VIDEO,
                ),
                fs_pb.FingerprintRequest(media=m_pb.MediaSource(data=b"nope" * 10), modality=m_pb.MODALITY_VIDEO),
            ]
        ),
        timeout=60,
    )
    codes = [r.status.code for r in response.results]
    assert codes[0] == 0 and codes[1] == 0 and codes[2] == 3
    grey = _values(response.results[1].result.fingerprint)
    assert grey["brightness_mean"] == pytest.approx(200 / 255, abs=1e-9)
    assert response.results[1].result.fingerprint.media_seconds == pytest.approx(2.0)


def test_server_info_lists_video(stub: fs_grpc.FingerprintServiceStub) -> None:
    info = stub.GetServerInfo(fs_pb.GetServerInfoRequest(), timeout=30)
    assert m_pb.MODALITY_VIDEO in info.modalities
    video = [d.name for d in info.dimensions if d.modality == m_pb.MODALITY_VIDEO]
    assert video == list(dims.VIDEO_13D)
    assert any(a.id == "video-13d/1" for a in info.algorithms)
