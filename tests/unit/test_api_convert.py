"""Protobuf → typed requests (all bad fields at once, proto paths) and results → protobuf."""

from __future__ import annotations

import math

import pytest

from streamprint.api import convert
from streamprint.api._generated import fingerprint_service_pb2 as fs_pb
from streamprint.api._generated import media_pb2 as m_pb
from streamprint.dataplane import Encoding
from streamprint.engine import dims
from streamprint.engine.fingerprint import Fingerprint
from streamprint.errors import InvalidInputError

LIMITS = convert.Limits(rate_range=(8000, 384000), max_channels=8, interval_range=(0.1, 3600.0))


def _fields(error: InvalidInputError) -> set[str]:
    return {v.field for v in error.violations}


def test_default_stream_config() -> None:
    spec = convert.stream_spec(fs_pb.StreamConfig(), LIMITS)
    assert spec.format.encoding is Encoding.CONTAINER
    assert spec.dimensions == dims.AUDIO_13D and spec.update_interval_s == 1.0


def test_pcm_stream_config() -> None:
    config = fs_pb.StreamConfig(
        audio_format=m_pb.AudioFormat(
            encoding=m_pb.AUDIO_ENCODING_PCM_S16LE, sample_rate_hz=44100, channels=2
        ),
        update_interval_seconds=0.5,
        dimensions=["tempo_bpm", "spectral_centroid"],
        client_stream_id="cam-1",
    )
    spec = convert.stream_spec(config, LIMITS)
    assert (spec.format.encoding, spec.format.sample_rate, spec.format.channels) == (
        Encoding.PCM_S16LE,
        44100,
        2,
    )
    assert spec.dimensions == ("spectral_centroid", "tempo_bpm")  # registry order
    assert spec.client_stream_id == "cam-1"


def test_bad_stream_config_reports_every_field() -> None:
    config = fs_pb.StreamConfig(
        modality=99,  # type: ignore[arg-type]  # an unknown modality
        audio_format=m_pb.AudioFormat(
            encoding=m_pb.AUDIO_ENCODING_PCM_F32LE, sample_rate_hz=7, channels=0
        ),
        update_interval_seconds=0.01,
        dimensions=["tempo_bpm", "band_bass", "nonsense"],
    )
    with pytest.raises(InvalidInputError) as info:
        convert.stream_spec(config, LIMITS)
    assert _fields(info.value) == {
        "config.modality",
        "config.audio_format.sample_rate_hz",
        "config.audio_format.channels",
        "config.update_interval_seconds",
        "config.dimensions[1]",
        "config.dimensions[2]",
    }


def test_container_with_rate_is_rejected() -> None:
    config = fs_pb.StreamConfig(audio_format=m_pb.AudioFormat(sample_rate_hz=44100))
    with pytest.raises(InvalidInputError) as info:
        convert.stream_spec(config, LIMITS)
    assert _fields(info.value) == {"config.audio_format.sample_rate_hz"}


def test_batch_item_paths_carry_the_index() -> None:
    with pytest.raises(InvalidInputError) as info:
        convert.fingerprint_job(
            fs_pb.FingerprintRequest(dimensions=["x"]), LIMITS, prefix="items[4]."
        )
    assert _fields(info.value) == {"items[4].media.data", "items[4].dimensions[0]"}


def test_validation_item_needs_a_reference_and_finite_candidate() -> None:
    item = fs_pb.ValidationItem(candidate=[m_pb.DimensionValue(name="tempo_bpm", value=math.nan)])
    with pytest.raises(InvalidInputError) as info:
        convert.validation_job(item, LIMITS)
    assert _fields(info.value) == {"reference", "candidate[0].value"}
    media_item = fs_pb.ValidationItem(media=m_pb.MediaSource(data=b"x"))
    with pytest.raises(InvalidInputError, match="candidate"):
        convert.validation_job(media_item, LIMITS)
    job = convert.validation_job(fs_pb.ValidationItem(session_id="abc"), LIMITS)
    assert job.session_id == "abc" and job.candidate is None


def test_fingerprint_to_proto_in_registry_order() -> None:
    fp = Fingerprint(
        "audio-13d/1",
        {"tempo_bpm": 120.0, "spectral_centroid": 1000.0},
        {"tempo_bpm": 0.5, "spectral_centroid": 0.9},
        3,
        2.5,
        False,
    )
    msg = convert.fingerprint(fp)
    assert [d.name for d in msg.dimensions] == ["spectral_centroid", "tempo_bpm"]
    assert msg.dimensions[1].confidence == 0.5 and msg.revision == 3 and not msg.final


def test_server_info_reports_every_limit_and_the_video_model() -> None:
    import dataclasses

    from streamprint.config import ServerConfig
    from streamprint.dataplane.types import ModelDescription, ServerInfo

    config = ServerConfig(max_streams_per_token=3, max_chunk_rate=25.0, session_store_max_bytes=1 << 20)
    info = ServerInfo(
        server_version="0", component_versions={},
        models=(ModelDescription("spectral", "1", "numpy", "fp32"),
                ModelDescription("video-openvino-fp32", "1", "openvino", "fp32", "CPU", "because",
                                 dims.Modality.VIDEO)),
        container_formats=("wav",), config=config, min_update_interval_s=0.1, max_update_interval_s=60.0,
        min_sample_rate=8000, max_sample_rate=384000, max_channels=8, max_video_frame_side=8192,
    )
    msg = convert.server_info(info, {})
    limits = msg.limits
    assert limits.max_streams_per_token == 3
    assert limits.max_chunk_rate == 25.0 and limits.max_chunk_burst == 50.0  # 2 s of the rate
    assert limits.max_retained_bytes_total == 1 << 20 and limits.max_video_frame_side == 8192
    assert limits.max_session_media_seconds == config.max_media_s
    assert limits.max_message_bytes == config.max_message_bytes
    # no rate limit: no burst either
    off = convert.server_info(dataclasses.replace(info, config=ServerConfig()), {}).limits
    assert (off.max_chunk_rate, off.max_chunk_burst, off.max_streams_per_token) == (0.0, 0.0, 0)
    audio, video = msg.models
    assert audio.modality == m_pb.MODALITY_AUDIO and video.modality == m_pb.MODALITY_VIDEO
    assert (video.name, video.backend, video.device, video.selection_reason) == (
        "video-openvino-fp32", "openvino", "CPU", "because")


def test_fingerprint_response_reuses_the_message_of_the_same_fingerprint_only() -> None:
    from streamprint.dataplane import FingerprintResult

    def fp(value: float) -> Fingerprint:
        return Fingerprint(
            "audio-25d/1", {n: value for n in dims.AUDIO_25D},
            {n: 0.5 for n in dims.AUDIO_25D}, 1, 180.0, True,
        )

    a = fp(0.25)
    first = convert.fingerprint_response(FingerprintResult(a, False, "0" * 64))
    again = convert.fingerprint_response(FingerprintResult(a, True, "0" * 64))
    assert again.fingerprint == first.fingerprint == convert.fingerprint(a)
    assert again.cached and not first.cached
    again.fingerprint.dimensions[0].value = 99.0  # a response is a copy: the memo is unharmed
    assert convert.fingerprint_response(FingerprintResult(a, True, "")).fingerprint == first.fingerprint
    for _ in range(convert._MESSAGES_MAX + 1):  # bounded; other fingerprints get their own values
        b = fp(0.75)
        got = convert.fingerprint_response(FingerprintResult(b, False, ""))
        assert got.fingerprint.dimensions[0].value == 0.75
    assert len(convert._MESSAGES) <= convert._MESSAGES_MAX
