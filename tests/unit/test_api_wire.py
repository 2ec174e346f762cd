"""api.wire: a FingerprintRequest read with its media bytes left in the received buffer must
mean exactly what the standard parser reads from the same wire bytes."""

from __future__ import annotations

import random

import pytest
from google.protobuf.message import DecodeError
from hypothesis import given, settings
from hypothesis import strategies as st

from streamprint.api._generated import fingerprint_service_pb2 as fs_pb
from streamprint.api._generated import media_pb2 as m_pb
from streamprint.api.wire import (
    BATCH_FIELD_BUDGET,
    REQUEST_FIELD_BUDGET,
    SPLIT_MIN_BYTES,
    FingerprintRequestParts,
    OversizedChunk,
    parse_batch_fingerprint_request,
    parse_fingerprint_request,
    stream_request_parser,
)

BIG = SPLIT_MIN_BYTES


def _as_standard(parts: FingerprintRequestParts) -> fs_pb.FingerprintRequest:
    """The message with its split-out data put back (what the standard parser gives)."""
    message = fs_pb.FingerprintRequest()
    message.CopyFrom(parts.message)
    if parts.data is not None:
        message.media.data = bytes(parts.data)
    return message


def _varint_bytes(v: int) -> bytes:
    """``v`` as a base-128 varint."""
    out = bytearray()
    while True:
        byte, v = v & 0x7F, v >> 7
        out.append(byte | (0x80 if v else 0))
        if not v:
            return bytes(out)


def _field(number: int, payload: bytes) -> bytes:
    """A length-delimited field."""
    return _varint_bytes(number << 3 | 2) + _varint_bytes(len(payload)) + payload


def test_large_data_is_a_view_of_the_received_bytes_and_the_rest_is_parsed() -> None:
    data = random.Random(0).randbytes(BIG + 17)
    request = fs_pb.FingerprintRequest(
        media=m_pb.MediaSource(
            data=data,
            format=m_pb.AudioFormat(
                encoding=m_pb.AUDIO_ENCODING_PCM_S16LE, sample_rate_hz=8000, channels=2
            ),
        ),
        modality=m_pb.MODALITY_AUDIO,
        dimensions=["tempo", "loudness_lufs"],
    )
    raw = request.SerializeToString()
    parts = parse_fingerprint_request(raw)
    assert parts.data is not None and parts.data.obj is raw  # no copy
    assert bytes(parts.data) == data
    assert parts.message.media.WhichOneof("source") is None  # left out of the message
    assert parts.message.HasField("media") and parts.message.media.format.sample_rate_hz == 8000
    assert list(parts.message.dimensions) == ["tempo", "loudness_lufs"]
    assert _as_standard(parts) == request


def test_small_data_takes_the_standard_parse() -> None:
    request = fs_pb.FingerprintRequest(media=m_pb.MediaSource(data=b"x" * (BIG - 1)))
    parts = parse_fingerprint_request(request.SerializeToString())
    assert parts.data is None and parts.message == request


def test_fields_in_any_order_and_unknown_fields_are_kept() -> None:
    data = bytes(range(256)) * (BIG // 256 + 1)
    fmt = m_pb.AudioFormat(sample_rate_hz=44100, channels=1).SerializeToString()
    unknown = _field(15, b"future")
    media = _field(3, fmt) + unknown + _field(1, data) + _field(4, b"")
    raw = _field(3, b"tempo") + _field(1, media) + unknown + _field(3, b"key")
    parts = parse_fingerprint_request(raw)
    assert parts.data is not None and bytes(parts.data) == data
    standard = fs_pb.FingerprintRequest.FromString(raw)
    assert _as_standard(parts) == standard
    assert _as_standard(parts).SerializeToString(deterministic=True) == standard.SerializeToString(
        deterministic=True
    )


@pytest.mark.parametrize(
    "media_fields",
    [
        # a server_path after the data wins the oneof; one before it loses: both are left whole
        lambda data: [_field(1, _field(1, data) + _field(2, b"a.wav"))],
        lambda data: [_field(1, _field(2, b"a.wav") + _field(1, data))],
        # two data fields (the last wins) and two media fields (merged)
        lambda data: [_field(1, _field(1, b"first" * BIG) + _field(1, data))],
        lambda data: [_field(1, _field(1, data)), _field(1, _field(3, b"\x10\x02"))],
    ],
)
def test_shapes_with_merge_rules_are_left_to_the_standard_parser(media_fields: object) -> None:
    data = b"\x07" * BIG
    raw = b"".join(media_fields(data))  # type: ignore[operator]
    parts = parse_fingerprint_request(raw)
    assert parts.data is None
    assert parts.message == fs_pb.FingerprintRequest.FromString(raw)


@pytest.mark.parametrize(
    "raw",
    [
        _field(1, _field(1, b"\x00" * BIG))[:-1],  # truncated inside the data
        b"\x0a\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff",  # a length varint that never ends
        b"\x00\x01",  # field number 0
    ],
)
def test_malformed_bytes_get_the_standard_parsers_error(raw: bytes) -> None:
    with pytest.raises(DecodeError):
        fs_pb.FingerprintRequest.FromString(raw)
    with pytest.raises(DecodeError):
        parse_fingerprint_request(raw)


_MEDIA_PARTS = st.lists(
    st.sampled_from(["data", "small_data", "path", "format", "unknown_varint", "unknown_i64"]),
    max_size=5,
)


@settings(max_examples=150, deadline=None)
@given(
    before=st.lists(st.sampled_from(["dims", "modality", "unknown"]), max_size=3),
    media=st.lists(_MEDIA_PARTS, max_size=3),
    after=st.lists(st.sampled_from(["dims", "modality", "unknown"]), max_size=3),
)
def test_any_mix_of_fields_means_what_the_standard_parser_reads(
    before: list[str], media: list[list[str]], after: list[str]
) -> None:
    outer = {
        "dims": _field(3, b"tempo"),
        "modality": b"\x10\x01",
        "unknown": _field(20, b"?"),
    }
    inner = {
        "data": _field(1, b"\x01\x02" * BIG),
        "small_data": _field(1, b"tiny"),
        "path": _field(2, b"x.wav"),
        "format": _field(3, b"\x10\x80\x7d"),
        "unknown_varint": b"\xa0\x01\x05",
        "unknown_i64": b"\xa1\x01" + b"\x00" * 8,
    }
    raw = (
        b"".join(outer[k] for k in before)
        + b"".join(_field(1, b"".join(inner[k] for k in m)) for m in media)
        + b"".join(outer[k] for k in after)
    )
    standard = fs_pb.FingerprintRequest.FromString(raw)
    parts = parse_fingerprint_request(raw)
    assert _as_standard(parts) == standard
    if parts.data is not None:
        assert parts.data.obj is raw and len(parts.data) >= BIG


@settings(max_examples=60, deadline=None)
@given(
    items=st.lists(st.sampled_from(["big", "small", "path", "big_then_path", "empty"]), max_size=5),
    trailing_unknown=st.booleans(),
)
def test_batch_items_mean_what_the_standard_parser_reads(
    items: list[str], trailing_unknown: bool
) -> None:
    """Every item of a batch is read as parse_fingerprint_request reads one request, its large
    media bytes as views of the batch's buffer; a batch with any other field is parsed whole."""
    media = {
        "big": _field(1, b"\x03" * BIG),
        "small": _field(1, b"abc"),
        "path": _field(2, b"p.wav"),
        "big_then_path": _field(1, b"\x04" * BIG) + _field(2, b"q.wav"),
        "empty": b"",
    }
    raw = b"".join(_field(1, _field(1, media[k]) + _field(3, b"tempo")) for k in items)
    if trailing_unknown:
        raw += _field(9, b"?")
    standard = fs_pb.BatchFingerprintRequest.FromString(raw)
    batch = parse_batch_fingerprint_request(raw)
    assert [_as_standard(parts) for parts in batch.items()] == list(standard.items)
    views = [parts.data for parts in batch.items() if parts.data is not None]
    if trailing_unknown:
        assert not views
    else:
        assert len(views) == items.count("big")
        assert all(view.obj is raw for view in views)


def test_malformed_batch_gets_the_standard_parsers_error() -> None:
    raw = _field(1, _field(1, _field(1, b"\x00" * BIG)))[:-3]
    with pytest.raises(DecodeError):
        fs_pb.BatchFingerprintRequest.FromString(raw)
    with pytest.raises(DecodeError):
        parse_batch_fingerprint_request(raw)


def test_past_the_field_budget_the_standard_parser_reads_the_rest() -> None:
    """Requests are deserialized on the event loop: a request with more fields than the scan
    budget (here dimension names; a flood of tiny fields in an attack) is parsed in C whole,
    and a batch whose budget runs out has its remaining items parsed in C, each still right."""
    data = b"\x05" * BIG
    names = b"".join(_field(3, b"tempo") for _ in range(REQUEST_FIELD_BUDGET))
    crowded = _field(1, _field(1, data)) + names
    parts = parse_fingerprint_request(crowded)
    assert parts.data is None
    assert parts.message == fs_pb.FingerprintRequest.FromString(crowded)
    # the media field, its data field and 254 names: exactly the budget
    assert parse_fingerprint_request(_field(1, _field(1, data)) + names[:-14]).data is not None

    item = _field(1, _field(1, data)) + b"".join(_field(3, b"key") for _ in range(98))
    count = BATCH_FIELD_BUDGET // 100 + 3  # items of 100 fields each: the budget runs out
    raw = b"".join(_field(1, item) for _ in range(count))
    batch = parse_batch_fingerprint_request(raw)
    standard = fs_pb.BatchFingerprintRequest.FromString(raw)
    assert [_as_standard(parts) for parts in batch.items()] == list(standard.items)
    in_place = [parts.data is not None for parts in batch.items()]
    assert in_place == sorted(in_place, reverse=True) and 0 < sum(in_place) < count


# ------------------------------------------------------------------ stream chunks over the limit

LIMIT = 1000


_CHUNK_PARTS = {
    "big_data": _field(1, b"\x01" * (LIMIT + 1)),
    "huge_data": _field(1, b"\x02" * (5 * LIMIT)),
    "small_data": _field(1, b"\x03" * 10),
    "limit_data": _field(1, b"\x04" * LIMIT),
    "seq_7": b"\x10\x07",
    "seq_max": b"\x10" + _varint_bytes(2**64 - 1),
    "seq_ten_bytes_wrapping": b"\x10" + b"\xff" * 9 + b"\x7f",  # more than 64 bits: kept mod 2**64
    "timestamps": _field(3, b"\x00" * 16),
    "unknown": _field(20, b"?"),
}
_OUTER_PARTS = ["config", "chunk", "chunk", "unknown"]


@settings(max_examples=300, deadline=None)
@given(
    outer=st.lists(
        st.tuples(st.sampled_from(_OUTER_PARTS), st.lists(st.sampled_from(sorted(_CHUNK_PARTS)), max_size=4)),
        min_size=1,
        max_size=4,
    )
)
def test_a_stream_chunk_over_the_limit_is_what_the_standard_parser_reads(
    outer: list[tuple[str, list[str]]],
) -> None:
    """Any mix of config, chunk and unknown fields, each chunk any mix of data, seq,
    timestamps and unknown fields: a message is left unparsed exactly when the standard
    parser reads a chunk whose data is over the limit, with the seq it reads."""
    raw = b""
    for kind, parts in outer:
        if kind == "config":
            raw += _field(1, b"")
        elif kind == "chunk":
            raw += _field(2, b"".join(_CHUNK_PARTS[p] for p in parts))
        else:
            raw += _field(21, b"x")
    standard = fs_pb.StreamFingerprintRequest.FromString(raw)
    parsed = stream_request_parser(LIMIT)(raw)
    if standard.WhichOneof("payload") == "chunk" and len(standard.chunk.data) > LIMIT:
        assert parsed == OversizedChunk(standard.chunk.seq, len(standard.chunk.data))
    else:
        assert parsed == standard


def test_a_stream_message_past_the_field_budget_or_malformed_takes_the_standard_parse() -> None:
    data = _field(1, b"\x01" * (2 * LIMIT))
    many = _field(2, data + b"\x10\x01" * REQUEST_FIELD_BUDGET)  # seq repeated past the budget
    assert stream_request_parser(LIMIT)(many) == fs_pb.StreamFingerprintRequest.FromString(many)
    for malformed in (
        _field(2, data)[:-5],  # truncated
        _field(2, data + b"\x10" + b"\xff" * 10 + b"\x01"),  # an 11-byte varint
        _field(2, data + _varint_bytes(1 << 29 << 3) + b"\x00"),  # field number 2**29
    ):
        with pytest.raises(DecodeError):
            stream_request_parser(LIMIT)(malformed)
