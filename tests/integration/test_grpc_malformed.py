"""Requests that do not parse, and batches past their item limit, against a real server.

Bytes that are not a valid message of the method's request type (truncated, a string that
is not UTF-8) end INVALID_ARGUMENT with the usual rich details, on every service: gRPC
itself would end them UNKNOWN, naming a Python exception, and log a traceback. A batch with
more items than ``--max-batch-items`` is refused by its count, before any item is read.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterator
from pathlib import Path

import grpc
import pytest
from grpc_harness import ServerThread

from streamprint_client import StreamprintClient, StreamprintRpcError
from streamprint_client._generated import fingerprint_service_pb2 as fs_pb
from streamprint_client._generated import media_pb2 as m_pb

# A length-delimited field 1 announcing 100 bytes that never come (any message type).
TRUNCATED = b"\x0a\x64abc"
# FingerprintRequest.media (field 1) whose server_path (field 2) is not UTF-8.
BAD_UTF8_PATH = b"\x0a\x04\x12\x02\xff\xfe"

UNARY_METHODS = [
    "/streamprint.v1.FingerprintService/Fingerprint",
    "/streamprint.v1.FingerprintService/BatchFingerprint",
    "/streamprint.v1.FingerprintService/ValidateFingerprints",
    "/streamprint.v1.FingerprintService/GetServerInfo",
    "/streamprint.v1.AdminService/GetCacheStats",
    "/streamprint.v1.AdminService/ClearCache",
    "/grpc.health.v1.Health/Check",
]


@pytest.fixture
def channel(server: ServerThread) -> Iterator[grpc.Channel]:
    with grpc.insecure_channel(server.address) as ch:
        yield ch


def _raw_unary(channel: grpc.Channel, method: str, payload: bytes) -> StreamprintRpcError:
    call: Callable[..., bytes] = channel.unary_unary(method)  # bytes in, bytes out
    with pytest.raises(grpc.RpcError) as info:
        call(payload, timeout=10)
    return StreamprintRpcError.from_rpc_error(info.value)


@pytest.mark.parametrize("method", UNARY_METHODS)
def test_bytes_that_do_not_parse_are_invalid_argument(
    channel: grpc.Channel, method: str, caplog: pytest.LogCaptureFixture
) -> None:
    with caplog.at_level(logging.ERROR):
        error = _raw_unary(channel, method, TRUNCATED)
    assert error.code is grpc.StatusCode.INVALID_ARGUMENT, (error.code, error.message)
    assert error.reason == "INVALID_INPUT"
    [violation] = error.field_violations
    assert violation.field == "(request)"
    assert "not a valid" in violation.description and "protobuf message" in violation.description
    assert "DecodeError" not in error.message
    assert not [r for r in caplog.records if r.levelno >= logging.ERROR], caplog.text


def test_a_string_that_is_not_utf8_is_invalid_argument(channel: grpc.Channel) -> None:
    error = _raw_unary(channel, "/streamprint.v1.FingerprintService/Fingerprint", BAD_UTF8_PATH)
    assert error.code is grpc.StatusCode.INVALID_ARGUMENT
    assert "UTF-8" in error.message and error.field_violations[0].field == "(request)"


def _raw_stream(channel: grpc.Channel, payloads: list[bytes]) -> StreamprintRpcError:
    call = channel.stream_stream("/streamprint.v1.FingerprintService/StreamFingerprint")
    with pytest.raises(grpc.RpcError) as info:
        list(call(iter(payloads), timeout=10))
    return StreamprintRpcError.from_rpc_error(info.value)


def test_a_stream_message_that_does_not_parse_is_invalid_argument(
    channel: grpc.Channel, caplog: pytest.LogCaptureFixture
) -> None:
    config = fs_pb.StreamFingerprintRequest(
        config=fs_pb.StreamConfig(
            audio_format=m_pb.AudioFormat(
                encoding=m_pb.AUDIO_ENCODING_PCM_S16LE, sample_rate_hz=16_000, channels=1
            )
        )
    ).SerializeToString()
    chunk = fs_pb.StreamFingerprintRequest(
        chunk=fs_pb.MediaChunk(data=b"\0\0" * 1600, seq=0)
    ).SerializeToString()
    with caplog.at_level(logging.ERROR):
        for payloads in ([TRUNCATED], [config, TRUNCATED], [config, chunk, TRUNCATED]):
            error = _raw_stream(channel, payloads)
            assert error.code is grpc.StatusCode.INVALID_ARGUMENT, (len(payloads), error.message)
            assert [v.field for v in error.field_violations] == ["(request)"]
    assert not [r for r in caplog.records if r.levelno >= logging.ERROR], caplog.text


@pytest.mark.parametrize(
    "method, request_type, converter",
    [
        ("/streamprint.v1.FingerprintService/BatchFingerprint", fs_pb.BatchFingerprintRequest, "fingerprint_job"),
        ("/streamprint.v1.FingerprintService/ValidateFingerprints", fs_pb.ValidateFingerprintsRequest, "validation_job"),
    ],
)
def test_a_batch_past_its_item_limit_is_refused_by_its_count(
    channel: grpc.Channel,
    server: ServerThread,
    monkeypatch: pytest.MonkeyPatch,
    method: str,
    request_type: type,
    converter: str,
) -> None:
    """200,000 empty items (600 kB) are refused without converting one of them. Converting
    them first (a formatted error per empty item, on the event loop) held every other call
    of the process for tens of seconds and left gigabytes of heap behind at a million."""
    from streamprint.api import convert

    converted: list[object] = []
    real = getattr(convert, converter)

    def counting(*args: object, **kwargs: object) -> object:
        converted.append(args[0])
        return real(*args, **kwargs)

    monkeypatch.setattr(convert, converter, counting)
    limit = server.plane.config.max_batch_items
    many = request_type()
    for _ in range(200_000):
        many.items.add()
    error = _raw_unary(channel, method, many.SerializeToString())
    assert error.code is grpc.StatusCode.RESOURCE_EXHAUSTED
    assert f"the limit is {limit}" in error.message
    assert converted == []
    empty = _raw_unary(channel, method, b"")
    assert empty.code is grpc.StatusCode.INVALID_ARGUMENT
    assert [v.field for v in empty.field_violations] == ["items"]
    assert converted == []
    # within the limit the items are converted (the spy sees them)
    few = request_type()
    for _ in range(3):
        few.items.add()
    channel.unary_unary(method)(few.SerializeToString(), timeout=30)
    assert len(converted) == 3


def test_server_paths_the_file_system_refuses_are_not_internal(
    make_server: Callable[..., ServerThread], media_dir: Path, tmp_path: Path
) -> None:
    """A path through a file, a NUL byte, an over-long name, a symlink loop and a missing
    symlink target: NOT_FOUND naming the path the client sent, or INVALID_ARGUMENT on
    media.server_path; never INTERNAL. The same in a batch item."""
    root = tmp_path / "root"
    root.mkdir()
    (root / "clip.wav").write_bytes((media_dir / "short.wav").read_bytes())
    (root / "loop").symlink_to(root / "loop")
    (root / "dangling.wav").symlink_to(root / "gone.wav")
    srv = make_server(media_root=str(root))
    expected = {
        "clip.wav/x": grpc.StatusCode.NOT_FOUND,
        "loop": grpc.StatusCode.NOT_FOUND,
        "dangling.wav": grpc.StatusCode.NOT_FOUND,
        "a\0b.wav": grpc.StatusCode.INVALID_ARGUMENT,
        "x" * 300 + ".wav": grpc.StatusCode.INVALID_ARGUMENT,
    }
    with StreamprintClient(srv.address) as client:
        for path, code in expected.items():
            with pytest.raises(StreamprintRpcError) as info:
                client.fingerprint(server_path=path)
            assert info.value.code is code, (path, info.value.code, info.value.message)
            if code is grpc.StatusCode.NOT_FOUND:
                assert repr(path) in info.value.message  # the client's path, not the resolved one
            else:
                assert [v.field for v in info.value.field_violations] == ["media.server_path"]
    request = fs_pb.BatchFingerprintRequest(
        items=[fs_pb.FingerprintRequest(media=m_pb.MediaSource(server_path=p)) for p in expected]
    )
    with grpc.insecure_channel(srv.address) as channel:
        call = channel.unary_unary(
            "/streamprint.v1.FingerprintService/BatchFingerprint",
            request_serializer=fs_pb.BatchFingerprintRequest.SerializeToString,
            response_deserializer=fs_pb.BatchFingerprintResponse.FromString,
        )
        response = call(request, timeout=30)
    assert [r.status.code for r in response.results] == [c.value[0] for c in expected.values()]
