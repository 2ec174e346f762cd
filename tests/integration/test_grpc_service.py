"""The gRPC service end to end: a real grpc.aio server on 127.0.0.1:0 and the Python client."""

from __future__ import annotations

import asyncio
import gc
import json
import logging
import math
import subprocess
import sys
import threading
import time
import urllib.request
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import grpc
import numpy as np
import pytest
from grpc_harness import ServerThread, encode, music

from streamprint.engine import dims
from streamprint_client import (
    AsyncStreamprintClient,
    AudioFormat,
    Encoding,
    StreamprintClient,
    StreamprintRpcError,
    StreamUpdate,
    validation_item,
)
from streamprint_client._generated import fingerprint_service_pb2 as fs_pb
from streamprint_client._generated import fingerprint_service_pb2_grpc as fs_grpc
from streamprint_client._generated import media_pb2 as m_pb


@pytest.fixture
def client(server: ServerThread) -> Iterator[StreamprintClient]:
    with StreamprintClient(server.address, timeout_s=60) as c:
        yield c


def _wait_for(predicate: Callable[[], bool], timeout: float = 5.0) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(0.02)
    return predicate()


# ---------------------------------------------------------------------------- streaming


def test_stream_updates_then_final(client: StreamprintClient, media_dir: Path) -> None:
    updates = list(client.stream_file(media_dir / "clip.wav", chunk_ms=100, client_stream_id="t1"))
    assert len(updates) >= 3
    revisions = [u.revision for u in updates]
    assert revisions == sorted(set(revisions)), "revisions strictly increase"
    assert [u.final for u in updates] == [False] * (len(updates) - 1) + [True]
    assert len({u.session_id for u in updates}) == 1 and updates[0].client_stream_id == "t1"
    final = updates[-1].fingerprint
    assert (
        list(final.values) == list(dims.AUDIO_13D) and final.algorithm == dims.ALGORITHM_AUDIO_13D
    )
    assert final.media_seconds == pytest.approx(4.0, abs=0.01)
    assert updates[0].fingerprint.media_seconds <= 1.5, "first update within 1.5 s of media"
    assert all(0.0 <= c <= 1.0 for c in final.confidence.values())


def test_stream_final_equals_offline_cli(client: StreamprintClient, media_dir: Path) -> None:
    path = media_dir / "clip.flac"
    streamed = list(client.stream_file(path, chunk_ms=37))[-1].fingerprint
    offline = subprocess.run(
        [sys.executable, "-m", "streamprint", "fingerprint", str(path), "--stream", "--json"],
        capture_output=True,
        text=True,
        check=True,
        timeout=120,
    )
    final = json.loads(offline.stdout.strip().splitlines()[-1])
    assert final["final"] is True
    assert set(final["values"]) == set(streamed.values)
    for name, value in final["values"].items():
        assert streamed.values[name] == pytest.approx(value, rel=1e-6, abs=1e-9), name


def test_stream_raw_pcm(client: StreamprintClient) -> None:
    samples = music(2.0, rate=16000, channels=1)
    pcm = (samples[:, 0] * 32767).astype("<i2").tobytes()
    chunks = [pcm[i : i + 3001] for i in range(0, len(pcm), 3001)]  # cut inside sample frames
    updates = list(
        client.stream(
            chunks,
            fmt=AudioFormat(Encoding.PCM_S16LE, 16000, 1),
            update_interval_s=0.5,
            dimensions=["tempo_bpm"],
        )
    )
    assert updates[-1].final and list(updates[-1].fingerprint.values) == ["tempo_bpm"]
    assert updates[-1].fingerprint.media_seconds == pytest.approx(2.0)
    assert len(updates) >= 4


def test_fifty_concurrent_streams(server: ServerThread, media_dir: Path) -> None:
    async def one(client: AsyncStreamprintClient, i: int) -> list[StreamUpdate]:
        return [
            u
            async for u in client.stream_file(
                media_dir / "short.wav", chunk_ms=50, client_stream_id=str(i)
            )
        ]

    async def run() -> list[list[StreamUpdate]]:
        async with AsyncStreamprintClient(server.address) as client:
            return await asyncio.gather(*(one(client, i) for i in range(50)))

    started = time.monotonic()
    results = asyncio.run(run())
    elapsed = time.monotonic() - started
    finals = [r[-1] for r in results]
    assert all(f.final for f in finals)
    assert len({f.session_id for f in finals}) == 50
    assert {f.client_stream_id for f in finals} == {str(i) for i in range(50)}
    first = finals[0].fingerprint.values
    for f in finals[1:]:
        assert f.fingerprint.values == first, "same media, same fingerprint"
    assert elapsed < 60
    assert _wait_for(lambda: server.plane.active_streams == 0)


def test_client_cancellation_frees_the_session(server: ServerThread, media_dir: Path) -> None:
    with StreamprintClient(server.address) as client:
        stream = client.stream_file(media_dir / "clip.wav", chunk_ms=100, realtime=True)
        first = next(stream)
        assert not first.final
        assert server.plane.active_streams >= 1
        stream.cancel()
        with pytest.raises(StreamprintRpcError) as info:
            list(stream)
        assert info.value.code is grpc.StatusCode.CANCELLED
    assert _wait_for(lambda: server.plane.active_streams == 0)
    assert server.plane.live_media_bytes == 0


def test_leaving_a_stream_early_ends_it(
    server: ServerThread, tmp_path: Path
) -> None:
    """Breaking out of the loop left the call uploading, and the server holding the stream
    slot, while the stream object lived (always, for the async client). ``with`` / ``async
    with`` (or close / aclose) end it, and so does dropping the stream object."""
    from streamprint_client import AsyncStreamprintClient

    long = tmp_path / "long.wav"  # 30 s: it would still be streaming when the checks run
    long.write_bytes(encode(music(30.0), 22050))

    def ended() -> bool:
        return _wait_for(lambda: server.plane.active_streams == 0, 3.0)

    with StreamprintClient(server.address) as client:
        with client.stream_file(long, chunk_ms=100, realtime=True) as updates:
            assert not next(updates).final
            assert server.plane.active_streams == 1
        assert ended()

    async def leave_async_streams() -> None:
        async with AsyncStreamprintClient(server.address) as client:
            async with client.stream_file(long, chunk_ms=100, realtime=True) as updates:
                async for update in updates:
                    assert not update.final
                    break
            assert await asyncio.to_thread(ended)
            # no with, no reference kept: the dropped stream object cancels its call
            async for update in client.stream_file(long, chunk_ms=100, realtime=True):
                assert not update.final
                break
            assert await asyncio.to_thread(ended)

    asyncio.run(leave_async_streams())


def test_a_cancel_that_meets_a_write_ends_the_session_cancelled_not_internal(
    server: ServerThread, caplog: pytest.LogCaptureFixture
) -> None:
    """Updates sent back to back (0.1 s interval, unpaced) and a cancel right after the first:
    the cancel often lands while the server writes, whose write then fails before the handler
    is cancelled. That ended the session INTERNAL with a logged incident."""
    pcm = (np.sin(np.arange(16_000 * 20) * 0.05) * 8_000).astype("<i2").tobytes()
    config = fs_pb.StreamConfig(
        audio_format=m_pb.AudioFormat(
            encoding=m_pb.AUDIO_ENCODING_PCM_S16LE, sample_rate_hz=16_000, channels=1
        ),
        update_interval_seconds=0.1,
    )

    def requests() -> Iterator[fs_pb.StreamFingerprintRequest]:
        yield fs_pb.StreamFingerprintRequest(config=config)
        for seq, start in enumerate(range(0, len(pcm), 3_200)):
            yield fs_pb.StreamFingerprintRequest(chunk=fs_pb.MediaChunk(data=pcm[start : start + 3_200], seq=seq))

    with caplog.at_level(logging.INFO, logger="streamprint"), grpc.insecure_channel(server.address) as channel:
        stub = fs_grpc.FingerprintServiceStub(channel)
        for _ in range(12):
            call = stub.StreamFingerprint(requests())
            next(call)
            call.cancel()
    assert _wait_for(lambda: server.plane.active_streams == 0)
    assert not [r for r in caplog.records if "internal error" in r.getMessage()], caplog.text
    ended = [r.getMessage() for r in caplog.records if " ended " in r.getMessage()]
    assert not [m for m in ended if "ended INTERNAL" in m], ended


def test_vanished_client_frees_the_session(server: ServerThread, media_dir: Path) -> None:
    channel = grpc.insecure_channel(server.address)
    stub = fs_grpc.FingerprintServiceStub(channel)
    gate = threading.Event()

    def requests() -> Iterator[fs_pb.StreamFingerprintRequest]:
        yield fs_pb.StreamFingerprintRequest(config=fs_pb.StreamConfig())
        yield fs_pb.StreamFingerprintRequest(
            chunk=fs_pb.MediaChunk(data=(media_dir / "clip.wav").read_bytes()[:50000], seq=0)
        )
        gate.wait(10)

    call = stub.StreamFingerprint(requests())
    assert _wait_for(lambda: server.plane.active_streams >= 1)
    channel.close()  # the client goes away without half-closing
    gate.set()
    assert _wait_for(lambda: server.plane.active_streams == 0)
    del call


# ---------------------------------------------------------------------------- errors and limits


def _raw_stream(
    address: str, messages: list[fs_pb.StreamFingerprintRequest]
) -> StreamprintRpcError:
    with StreamprintClient(address) as client:
        stub = fs_grpc.FingerprintServiceStub(client._channel)
        with pytest.raises(grpc.RpcError) as info:
            list(stub.StreamFingerprint(iter(messages)))
    return StreamprintRpcError.from_rpc_error(info.value)


def test_bad_config_is_invalid_argument_with_field_violations(server: ServerThread) -> None:
    config = fs_pb.StreamConfig(
        audio_format=m_pb.AudioFormat(
            encoding=m_pb.AUDIO_ENCODING_PCM_S16LE, sample_rate_hz=5, channels=99
        ),
        dimensions=["band_bass"],
    )
    error = _raw_stream(server.address, [fs_pb.StreamFingerprintRequest(config=config)])
    assert error.code is grpc.StatusCode.INVALID_ARGUMENT
    assert {v.field for v in error.field_violations} == {
        "config.audio_format.sample_rate_hz",
        "config.audio_format.channels",
        "config.dimensions[0]",
    }
    assert error.reason == "INVALID_INPUT"


def test_first_message_must_be_config(server: ServerThread) -> None:
    error = _raw_stream(
        server.address, [fs_pb.StreamFingerprintRequest(chunk=fs_pb.MediaChunk(data=b"x"))]
    )
    assert error.code is grpc.StatusCode.INVALID_ARGUMENT
    assert [v.field for v in error.field_violations] == ["config"]


def test_sequence_gap_is_invalid_argument(server: ServerThread, media_dir: Path) -> None:
    data = (media_dir / "clip.wav").read_bytes()
    error = _raw_stream(
        server.address,
        [
            fs_pb.StreamFingerprintRequest(config=fs_pb.StreamConfig()),
            fs_pb.StreamFingerprintRequest(chunk=fs_pb.MediaChunk(data=data[:1000], seq=0)),
            fs_pb.StreamFingerprintRequest(chunk=fs_pb.MediaChunk(data=data[1000:2000], seq=2)),
        ],
    )
    assert error.code is grpc.StatusCode.INVALID_ARGUMENT
    assert [v.field for v in error.field_violations] == ["chunk.seq"]


def test_garbage_media_is_invalid_argument(client: StreamprintClient, media_dir: Path) -> None:
    with pytest.raises(StreamprintRpcError) as info:
        list(client.stream_file(media_dir / "garbage.bin"))
    assert info.value.code is grpc.StatusCode.INVALID_ARGUMENT
    assert info.value.reason == "MEDIA_UNDECODABLE"
    assert [v.field for v in info.value.field_violations] == ["chunk.data"]
    with pytest.raises(StreamprintRpcError) as unary:
        client.fingerprint_file(media_dir / "garbage.bin")
    assert unary.value.code is grpc.StatusCode.INVALID_ARGUMENT
    assert unary.value.field_violations


def test_oversize_message_is_resource_exhausted(make_server: Callable[..., ServerThread]) -> None:
    srv = make_server(max_message_bytes=64 * 1024)
    with StreamprintClient(srv.address) as client, pytest.raises(StreamprintRpcError) as info:
        client.fingerprint(b"\0" * 200_000)
    assert info.value.code is grpc.StatusCode.RESOURCE_EXHAUSTED


def test_oversize_chunk_is_resource_exhausted(
    make_server: Callable[..., ServerThread], media_dir: Path
) -> None:
    srv = make_server(max_chunk_bytes=1000)
    with StreamprintClient(srv.address) as client, pytest.raises(StreamprintRpcError) as info:
        list(client.stream([(media_dir / "clip.wav").read_bytes()[:5000]]))
    assert info.value.code is grpc.StatusCode.RESOURCE_EXHAUSTED
    assert info.value.error_info_metadata["limit"] == "chunk_bytes"


def test_an_oversized_chunk_is_refused_by_its_size_and_seq_as_any_chunk(
    make_server: Callable[..., ServerThread],
) -> None:
    """The stream's deserializer leaves a chunk over the limit unparsed (wire.OversizedChunk);
    the stream still answers as for any chunk: its seq first, then its size."""
    srv = make_server(max_chunk_bytes=1000)
    config = fs_pb.StreamFingerprintRequest(config=fs_pb.StreamConfig())

    def chunk(seq: int, size: int) -> fs_pb.StreamFingerprintRequest:
        return fs_pb.StreamFingerprintRequest(chunk=fs_pb.MediaChunk(data=b"\x01" * size, seq=seq))

    too_big = _raw_stream(srv.address, [config, chunk(0, 5000)])
    assert too_big.code is grpc.StatusCode.RESOURCE_EXHAUSTED
    assert too_big.error_info_metadata["limit"] == "chunk_bytes"
    assert "chunk 0 holds 5000 bytes; the limit is 1000 bytes" in too_big.message
    wrong_seq = _raw_stream(srv.address, [config, chunk(4, 5000)])
    assert wrong_seq.code is grpc.StatusCode.INVALID_ARGUMENT
    assert [v.field for v in wrong_seq.field_violations] == ["chunk.seq"]
    first = _raw_stream(srv.address, [chunk(0, 5000)])
    assert first.code is grpc.StatusCode.INVALID_ARGUMENT
    assert [v.field for v in first.field_violations] == ["config"]
    assert _wait_for(lambda: srv.plane.active_streams == 0)


def test_an_aborted_call_keeps_nothing_of_its_request_or_stream(
    make_server: Callable[..., ServerThread], media_dir: Path
) -> None:
    """grpc.aio keeps the error of ``context.abort`` with the call, and its traceback held the
    handler's frames: the refused chunk and the live stream with its session stayed resident
    (about 2 GB after sixteen refused 60 MiB chunks). The server thread runs in this process,
    so what outlives the calls is counted here, after unary calls and after streams."""
    from streamprint.api.wire import FingerprintRequestParts, OversizedChunk
    from streamprint.dataplane.plane import LiveStream

    def alive() -> dict[str, int]:
        time.sleep(0.2)  # the server thread finishes the calls' bookkeeping
        gc.collect()
        kinds = (LiveStream, fs_pb.StreamFingerprintRequest, OversizedChunk, FingerprintRequestParts)
        objects = gc.get_objects()
        return {kind.__name__: sum(isinstance(o, kind) for o in objects) for kind in kinds}

    srv = make_server(max_chunk_bytes=50_000)
    wav = (media_dir / "clip.wav").read_bytes()  # 176 kB: one chunk over the limit
    before = alive()
    with StreamprintClient(srv.address) as client:
        for _ in range(6):
            with pytest.raises(StreamprintRpcError) as undecodable:
                client.fingerprint(b"\x01" * 100_000)
            assert undecodable.value.code is grpc.StatusCode.INVALID_ARGUMENT
        assert alive() == before
        for _ in range(6):
            with pytest.raises(StreamprintRpcError) as refused:
                list(client.stream([wav]))
            assert refused.value.error_info_metadata["limit"] == "chunk_bytes"
        assert alive() == before


def test_too_many_streams_is_resource_exhausted_with_retry_info(
    make_server: Callable[..., ServerThread], media_dir: Path
) -> None:
    srv = make_server(max_streams=1, retry_after_s=2.0)
    with StreamprintClient(srv.address) as client:
        first = client.stream_file(media_dir / "clip.wav", realtime=True)
        next(first)
        with pytest.raises(StreamprintRpcError) as info:
            list(client.stream_file(media_dir / "short.wav"))
        first.cancel()
    assert info.value.code is grpc.StatusCode.RESOURCE_EXHAUSTED
    assert info.value.retry_after_s == pytest.approx(2.0)
    assert info.value.error_info_metadata["limit"] == "concurrent_streams"


def test_idle_timeout_ends_the_stream(
    make_server: Callable[..., ServerThread], media_dir: Path
) -> None:
    srv = make_server(idle_timeout_s=0.3)
    data = (media_dir / "clip.wav").read_bytes()

    def slow() -> Iterator[bytes]:
        yield data[:20000]
        time.sleep(1.5)
        yield data[20000:40000]

    started = time.monotonic()
    with StreamprintClient(srv.address) as client, pytest.raises(StreamprintRpcError) as info:
        list(client.stream(slow()))
    assert info.value.code is grpc.StatusCode.DEADLINE_EXCEEDED
    assert info.value.error_info_metadata["limit"] == "idle_timeout"
    assert "idle" in info.value.message
    assert time.monotonic() - started < 5
    assert _wait_for(lambda: srv.plane.active_streams == 0)


def test_empty_chunks_do_not_hold_a_stream_open(
    make_server: Callable[..., ServerThread], media_dir: Path
) -> None:
    """Each message restarted the idle timer, so a client sending an empty chunk now and
    then held a stream slot for the whole session duration with no media at all."""
    srv = make_server(idle_timeout_s=0.5)
    wav = (media_dir / "clip.wav").read_bytes()[:20000]

    def requests() -> Iterator[fs_pb.StreamFingerprintRequest]:
        yield fs_pb.StreamFingerprintRequest(config=fs_pb.StreamConfig())
        yield fs_pb.StreamFingerprintRequest(chunk=fs_pb.MediaChunk(data=wav, seq=0))
        for seq in range(1, 40):  # 4 s of empty chunks, ten a second
            time.sleep(0.1)
            yield fs_pb.StreamFingerprintRequest(chunk=fs_pb.MediaChunk(seq=seq))

    started = time.monotonic()
    with grpc.insecure_channel(srv.address) as channel, pytest.raises(grpc.RpcError) as info:
        list(fs_grpc.FingerprintServiceStub(channel).StreamFingerprint(requests(), timeout=20))
    error = StreamprintRpcError.from_rpc_error(info.value)
    assert error.code is grpc.StatusCode.DEADLINE_EXCEEDED
    assert error.error_info_metadata["limit"] == "idle_timeout"
    assert "no media for 0.5 s" in error.message
    assert time.monotonic() - started < 2.5
    assert _wait_for(lambda: srv.plane.active_streams == 0)


def test_buffered_media_limit(make_server: Callable[..., ServerThread]) -> None:
    srv = make_server(max_buffered_bytes=30_000)
    # a WAV header announcing a huge fmt chunk: valid-looking bytes that never decode
    head = b"RIFF\xff\xff\xff\xffWAVE" + b"LIST" + (10**6).to_bytes(4, "little")
    chunks = [head] + [b"\0" * 10_000] * 5
    with StreamprintClient(srv.address) as client, pytest.raises(StreamprintRpcError) as info:
        list(client.stream(chunks))
    assert info.value.code is grpc.StatusCode.RESOURCE_EXHAUSTED
    assert info.value.error_info_metadata["limit"] == "session_buffered_bytes"


def test_session_length_limit(make_server: Callable[..., ServerThread], media_dir: Path) -> None:
    srv = make_server(max_media_s=1.0)
    with StreamprintClient(srv.address) as client, pytest.raises(StreamprintRpcError) as info:
        list(client.stream_file(media_dir / "clip.wav"))
    assert info.value.code is grpc.StatusCode.RESOURCE_EXHAUSTED
    assert info.value.error_info_metadata["limit"] == "max_media_seconds"


# ---------------------------------------------------------------------------- unary, batch, cache


def test_fingerprint_is_25d_and_second_call_hits_the_cache(
    server: ServerThread, media_dir: Path
) -> None:
    data = (media_dir / "short.wav").read_bytes()
    with StreamprintClient(server.address) as client:
        client.clear_cache()
        before = client.cache_stats()["fingerprints"]
        first = client.fingerprint(data)
        second = client.fingerprint(data)
        after = client.cache_stats()["fingerprints"]
    assert (first.cached, second.cached) == (False, True)
    assert list(first.fingerprint.values) == list(dims.AUDIO_25D)
    assert first.fingerprint == second.fingerprint and first.fingerprint.final
    assert after.hits == before.hits + 1 and after.misses == before.misses + 1
    assert after.size >= 1 and 0 < after.hit_rate <= 1


def test_unary_raw_pcm_equals_the_wav_of_the_same_samples(client: StreamprintClient) -> None:
    """A raw s16le body (decoded in blocks) and a 16-bit WAV of the same samples (converted
    in blocks) give the same 25D fingerprint; a body ending inside a sample frame is
    INVALID_ARGUMENT on media.data."""
    samples = music(3.0, rate=22050, channels=2)
    pcm = np.round(np.clip(samples, -1.0, 1.0) * 32767).astype("<i2")
    raw = client.fingerprint(pcm.tobytes(), fmt=AudioFormat(Encoding.PCM_S16LE, 22050, 2))
    wav = client.fingerprint(encode(pcm.astype(np.float32) / 32768.0, 22050))
    assert raw.fingerprint.values == wav.fingerprint.values
    assert raw.fingerprint.confidence == wav.fingerprint.confidence
    assert raw.media_sha256 != wav.media_sha256  # different bytes, different cache entries
    with pytest.raises(StreamprintRpcError) as stray:
        client.fingerprint(pcm.tobytes() + b"\x01", fmt=AudioFormat(Encoding.PCM_S16LE, 22050, 2))
    assert stray.value.code is grpc.StatusCode.INVALID_ARGUMENT
    assert [v.field for v in stray.value.field_violations] == ["media.data"]


def test_unary_media_read_in_place_means_what_the_standard_parse_reads(
    server: ServerThread, client: StreamprintClient
) -> None:
    """Fingerprint and BatchFingerprint requests are read with their media bytes left in
    gRPC's buffer (api.wire); a batch with an unknown field takes the standard parser. The
    same bytes give the same fingerprint and cache key either way, and a request whose oneof
    a later server_path overrides is read as the standard parser reads it (here: no media
    root, INVALID_ARGUMENT on the path)."""
    pcm = np.round(np.clip(music(2.0, rate=22050, channels=2), -1.0, 1.0) * 32767).astype("<i2")
    wav = encode(pcm.astype(np.float32) / 32768.0, 22050)
    assert len(wav) > 64 * 1024  # large enough to be read in place

    def raw_call(method: str, response: Any) -> Any:
        return client._channel.unary_unary(
            f"/streamprint.v1.FingerprintService/{method}",
            request_serializer=lambda payload: payload,
            response_deserializer=response.FromString,
        )

    def field(number: int, payload: bytes) -> bytes:
        size, length = len(payload), bytearray()
        while size >= 0x80:
            length.append(size & 0x7F | 0x80)
            size >>= 7
        return bytes([number << 3 | 2]) + bytes(length) + bytes([size]) + payload

    client.clear_cache()
    unary = client.fingerprint(wav)
    (in_place,) = client.batch([wav])
    item = fs_pb.FingerprintRequest(media=m_pb.MediaSource(data=wav)).SerializeToString()
    standard = raw_call("BatchFingerprint", fs_pb.BatchFingerprintResponse)(
        field(1, item) + field(9, b"unknown"), timeout=30
    )
    assert in_place.result is not None and in_place.result.cached
    assert in_place.result.media_sha256 == unary.media_sha256
    assert in_place.result.fingerprint.values == unary.fingerprint.values
    (result,) = standard.results
    assert result.result.cached and result.result.media_sha256 == unary.media_sha256
    assert [(d.name, d.value) for d in result.result.fingerprint.dimensions] == list(
        unary.fingerprint.values.items()
    )

    # one media field whose data a later server_path overrides (the wire merges the two)
    media = (
        m_pb.MediaSource(data=wav).SerializeToString()
        + m_pb.MediaSource(server_path="x.wav").SerializeToString()
    )
    raw = field(1, media)
    assert fs_pb.FingerprintRequest.FromString(raw).media.server_path == "x.wav"
    with pytest.raises(grpc.RpcError) as overridden:
        raw_call("Fingerprint", fs_pb.FingerprintResponse)(raw, timeout=30)
    assert overridden.value.code() is grpc.StatusCode.INVALID_ARGUMENT
    assert "server_path" in (overridden.value.details() or "")


def test_stream_final_matches_unary_on_streamed_dimensions(
    client: StreamprintClient, media_dir: Path
) -> None:
    path = media_dir / "clip.wav"
    streamed = list(client.stream_file(path))[-1].fingerprint.values
    whole = client.fingerprint_file(path).fingerprint.values
    for name, value in streamed.items():
        assert whole[name] == pytest.approx(value, rel=1e-6, abs=1e-9), name


def test_batch_gives_a_status_per_item(client: StreamprintClient, media_dir: Path) -> None:
    items = client.batch(
        [
            (media_dir / "short.wav").read_bytes(),
            b"garbage" * 100,
            (media_dir / "clip.flac").read_bytes(),
        ]
    )
    assert [i.index for i in items] == [0, 1, 2]
    assert items[0].result is not None and items[2].result is not None
    assert items[1].error is not None and items[1].error.code is grpc.StatusCode.INVALID_ARGUMENT
    assert [v.field for v in items[1].error.field_violations] == ["items[1].media"]
    assert items[1].to_json_dict()["error"]["code"] == "INVALID_ARGUMENT"  # type: ignore[index]


def test_server_path_needs_a_media_root(
    make_server: Callable[..., ServerThread], media_dir: Path
) -> None:
    srv = make_server(media_root=str(media_dir))
    with StreamprintClient(srv.address) as client:
        result = client.fingerprint(server_path="short.wav")
        assert result.fingerprint.final
        with pytest.raises(StreamprintRpcError) as escape:
            client.fingerprint(server_path="../../etc/passwd")
        assert escape.value.code is grpc.StatusCode.INVALID_ARGUMENT
        with pytest.raises(StreamprintRpcError) as missing:
            client.fingerprint(server_path="nope.wav")
        assert missing.value.code is grpc.StatusCode.NOT_FOUND


# ---------------------------------------------------------------------------- validation


def test_validation_passes_on_an_honest_session_and_names_tampered_dimensions(
    client: StreamprintClient, media_dir: Path
) -> None:
    updates = list(client.stream_file(media_dir / "clip.wav"))
    session_id = updates[-1].session_id
    honest = client.validate_session(session_id)
    assert honest.passed and honest.failed_dimensions == []
    assert [d.name for d in honest.dimensions] == list(dims.AUDIO_13D)
    assert all(d.within_tolerance for d in honest.dimensions)

    tampered = dict(updates[-1].fingerprint.values)
    tampered["spectral_centroid"] *= 1.5
    tampered["silence_ratio"] = min(1.0, tampered["silence_ratio"] + 0.5)
    (result,) = client.validate([validation_item(session_id=session_id, candidate=tampered)])
    assert result.report is not None and not result.passed
    assert set(result.report.failed_dimensions) == {"spectral_centroid", "silence_ratio"}
    verdicts = {d.name: d for d in result.report.dimensions}
    assert (
        verdicts["spectral_centroid"].verdict == "FAIL"
        and not verdicts["spectral_centroid"].within_tolerance
    )
    assert verdicts["spectral_centroid"].error_tolerance_units is not None
    assert verdicts["spectral_centroid"].error_tolerance_units > 1
    line = result.to_json_dict()
    assert line["passed"] is False and line["session_id"] == session_id


def test_validation_with_media_bytes_and_unknown_session(
    client: StreamprintClient, media_dir: Path
) -> None:
    data = (media_dir / "short.wav").read_bytes()
    reference = client.fingerprint(data).fingerprint.values
    from streamprint_client._common import media_source

    results = client.validate(
        [
            validation_item(source=media_source(data), candidate=reference),
            validation_item(session_id="no-such-session"),
            validation_item(
                source=media_source(data), candidate={"tempo_bpm": reference["tempo_bpm"] * 2}
            ),
        ]
    )
    assert results[0].passed
    assert results[1].error is not None and results[1].error.code is grpc.StatusCode.NOT_FOUND
    assert "no-such-session" in results[1].error.message
    assert results[2].report is not None and results[2].report.octave_errors == ["tempo_bpm"]


def test_validation_of_expired_session_is_not_found(
    make_server: Callable[..., ServerThread], media_dir: Path
) -> None:
    srv = make_server(session_store_ttl_s=0.3)
    with StreamprintClient(srv.address) as client:
        session_id = list(client.stream_file(media_dir / "short.wav"))[-1].session_id
        time.sleep(0.5)
        with pytest.raises(StreamprintRpcError) as info:
            client.validate_session(session_id)
    assert info.value.code is grpc.StatusCode.NOT_FOUND
    assert "expired" in info.value.message


def test_an_idle_server_lets_expired_sessions_go_without_being_asked(
    make_server: Callable[..., ServerThread], media_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The stores expire lazily (at their next access): an idle server kept expired media
    and its spill files until some call touched the store. A periodic purge lets them go."""
    from streamprint.dataplane import plane as plane_module

    monkeypatch.setattr(plane_module, "PURGE_EVERY_S", 0.1)
    srv = make_server(session_store_ttl_s=0.3)
    with StreamprintClient(srv.address) as client:
        session_id = list(client.stream_file(media_dir / "short.wav"))[-1].session_id
    store = srv.plane.sessions._store  # read its counter only: any store call would expire
    assert session_id
    assert _wait_for(lambda: store._expirations == 1, 3.0)


# ---------------------------------------------------------------------------- info, health, metrics


def test_server_info(client: StreamprintClient) -> None:
    info = client.server_info()
    assert info.api_version == "streamprint.v1"
    assert [d.name for d in info.dimensions] == [*dims.AUDIO_25D, *dims.VIDEO_13D]
    assert info.models and info.models[0]["backend"]
    # the second model says whether learned heads replace HPSS / YIN, and why (--heads)
    # ("heads" when any head runs, as the analyzer's name says with its "+heads" suffix)
    heads = info.models[1]
    assert heads["name"] in ("heads", "dsp") and heads["selection_reason"].startswith("--heads ")
    assert (heads["name"] == "heads") == ("+heads" in info.models[0]["name"]), info.models
    # the video model comes last
    assert info.models[-1]["modality"] == "video" and len(info.models) == 3
    assert int(info.limits["max_concurrent_streams"]) == 512
    assert "grpcio" in info.component_versions


def test_health_check_and_watch(server: ServerThread) -> None:
    from grpc_health.v1 import health_pb2, health_pb2_grpc

    with grpc.insecure_channel(server.address) as channel:
        stub = health_pb2_grpc.HealthStub(channel)
        for service in ("", "streamprint.v1.FingerprintService", "streamprint.v1.AdminService"):
            assert (
                stub.Check(health_pb2.HealthCheckRequest(service=service)).status
                == health_pb2.HealthCheckResponse.SERVING
            )
        with pytest.raises(grpc.RpcError) as info:
            stub.Check(health_pb2.HealthCheckRequest(service="nope"))
        assert info.value.code() is grpc.StatusCode.NOT_FOUND
        assert StreamprintRpcError.from_rpc_error(info.value).reason == "NOT_FOUND"
        watch = stub.Watch(health_pb2.HealthCheckRequest(service=""))
        assert next(watch).status == health_pb2.HealthCheckResponse.SERVING
        watch.cancel()


def test_metrics_gauge_follows_streams(
    make_server: Callable[..., ServerThread], media_dir: Path
) -> None:
    srv = make_server(metrics_port=0)
    url = f"http://127.0.0.1:{srv.server.metrics.port}/metrics"

    def gauge() -> float:
        text = urllib.request.urlopen(url, timeout=5).read().decode()
        (line,) = [ln for ln in text.splitlines() if ln.startswith("streamprint_active_streams ")]
        return float(line.split()[1])

    assert gauge() == 0
    with StreamprintClient(srv.address) as client:
        stream = client.stream_file(media_dir / "clip.wav", realtime=True)
        next(stream)
        assert _wait_for(lambda: gauge() == 1, 1.0)
        stream.cancel()
    assert _wait_for(lambda: gauge() == 0, 1.0)


def test_json_values_are_finite(client: StreamprintClient, media_dir: Path) -> None:
    result = client.fingerprint_file(media_dir / "clip.flac")
    assert all(math.isfinite(v) for v in result.fingerprint.values.values())
    json.dumps(result.to_json_dict(), allow_nan=False)


def test_silent_audio_streams(client: StreamprintClient) -> None:
    data = encode(np.zeros((22050, 1), np.float32), 22050)
    final = list(client.stream([data]))[-1]
    assert final.final and final.fingerprint.values["silence_ratio"] == pytest.approx(1.0)


def test_client_that_never_reads_is_cut_off(make_server: Callable[..., ServerThread]) -> None:
    srv = make_server(idle_timeout_s=0.5)
    pcm = (music(60.0, rate=8000, channels=1)[:, 0] * 32767).astype("<i2").tobytes()
    config = fs_pb.StreamConfig(
        audio_format=m_pb.AudioFormat(
            encoding=m_pb.AUDIO_ENCODING_PCM_S16LE, sample_rate_hz=8000, channels=1
        ),
        update_interval_seconds=0.1,
    )
    messages = [fs_pb.StreamFingerprintRequest(config=config)] + [
        fs_pb.StreamFingerprintRequest(chunk=fs_pb.MediaChunk(data=pcm[i : i + 16000], seq=k))
        for k, i in enumerate(range(0, len(pcm), 16000))
    ]
    channel = grpc.insecure_channel(srv.address, options=[("grpc.http2.bdp_probe", 0)])
    call = fs_grpc.FingerprintServiceStub(channel).StreamFingerprint(iter(messages))
    assert _wait_for(lambda: srv.plane.counters.updates_sent > 0)
    # ~600 updates are due, but nobody reads them: flow control stalls the writes, and the
    # idle timeout ends the session instead of letting it hold memory.
    assert _wait_for(lambda: srv.plane.active_streams == 0, 10.0)
    assert srv.plane.counters.streams_failed == 1
    assert srv.plane.counters.updates_sent < 600
    call.cancel()
    channel.close()
