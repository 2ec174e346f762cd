"""Unary fingerprint requests read with their media bytes left where they arrived.

The standard deserializer copies a unary request's media bytes twice on top of the buffer gRPC
hands over: upb copies the whole wire message into its arena, and every read of the ``bytes``
field copies them again. For a 3-minute stereo WAV (32 MB) each copy is a fresh 32 MB
allocation whose first touch costs 15-20 ms of page faults here, on the cold path of a call
whose budget is 500 ms, and the two extra copies raise the server's peak memory by 64 MB.

:func:`parse_fingerprint_request` finds ``media.data`` in the wire bytes, parses everything
else as usual (the request without that one field, a few bytes) and returns the media bytes
as a ``memoryview`` of the received buffer. Any message it does not recognise as the one plain
shape (one ``media`` field holding one ``data`` field and no ``server_path``) goes to the
standard parser whole, so malformed input gets the standard parser's errors and protobuf's
merge rules are never re-implemented here. :func:`parse_batch_fingerprint_request` does the
same for each item of a BatchFingerprintRequest.

Streams: :func:`stream_request_parser` reads just enough of a StreamFingerprintRequest's
wire bytes to refuse a chunk over ``--max-chunk-bytes`` without parsing it; there protobuf's
merge rules for the payload, the data and the seq are followed (see :func:`_oversized_chunk`),
and a message so refused is refused for its size even if another part of it is malformed.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import NamedTuple, TypeVar

from google.protobuf.message import DecodeError

from streamprint.api._generated import fingerprint_service_pb2 as fs_pb
from streamprint.errors import InvalidInputError

Parsed = TypeVar("Parsed")

# media bytes shorter than this are parsed the standard way: their copies are cheap
SPLIT_MIN_BYTES = 64 * 1024
# The most fields scanned here for one request, and for one batch in all (its items, their
# fields, their media sources' fields); past that the rest goes to the standard parser, in C.
# Requests are deserialized on the event loop (about 1 us per field scanned here), so a
# message of millions of tiny fields must not be scanned in Python. Real requests have a
# few fields (up to 25 dimension names), batches at most --max-batch-items (default 64) items.
REQUEST_FIELD_BUDGET = 256
BATCH_FIELD_BUDGET = 2048

_VARINT, _I64, _LEN, _I32 = 0, 1, 2, 5
_MAX_FIELD_NUMBER = 1 << 29  # field numbers are 1 .. 2**29 - 1; the parsers refuse others
_BATCH_ITEMS = 1  # BatchFingerprintRequest.items
_REQUEST_MEDIA = 1  # FingerprintRequest.media
_SOURCE_DATA, _SOURCE_SERVER_PATH = 1, 2  # MediaSource.data, MediaSource.server_path
_STREAM_CONFIG, _STREAM_CHUNK = 1, 2  # StreamFingerprintRequest.config, .chunk (a oneof)
_CHUNK_DATA, _CHUNK_SEQ = 1, 2  # MediaChunk.data, MediaChunk.seq


@dataclass(frozen=True)
class FingerprintRequestParts:
    """A FingerprintRequest as received: ``message`` with ``media.data`` left out when
    ``data`` holds it (a view of the received buffer), else the whole message and None."""

    message: fs_pb.FingerprintRequest
    data: memoryview | None = None


@dataclass(frozen=True)
class BatchFingerprintRequestParts:
    """A BatchFingerprintRequest as received: ``count`` items, each as
    :func:`parse_fingerprint_request` reads one (:meth:`items`).

    A batch past the scan budget is kept as the parsed message and its items are wrapped
    only when read, so a call with a million empty items is refused by its count
    (``--max-batch-items``) without a million objects made first.
    """

    count: int
    _parsed: tuple[FingerprintRequestParts, ...] | fs_pb.BatchFingerprintRequest

    def items(self) -> Iterator[FingerprintRequestParts]:
        """The items, in order."""
        if isinstance(self._parsed, tuple):
            yield from self._parsed
        else:
            yield from (FingerprintRequestParts(m) for m in self._parsed.items)


@dataclass(frozen=True)
class MalformedRequest:
    """What a deserializer of :func:`tolerant` returns for bytes that are not a valid message
    of its type (truncated, a wrong wire type, a string that is not UTF-8): gRPC would end
    the call UNKNOWN, naming a Python exception, and log a traceback. The handler raises
    :meth:`error` instead (INVALID_ARGUMENT with the usual details)."""

    type_name: str
    detail: str

    def error(self) -> InvalidInputError:
        """The error the call ends with."""
        return InvalidInputError.for_field(
            "(request)",
            f"not a valid {self.type_name} protobuf message ({self.detail})",
            f"a serialized {self.type_name}; string fields must be UTF-8",
        )


@dataclass(frozen=True)
class OversizedChunk:
    """What :func:`stream_request_parser` returns for a chunk whose data is over the chunk
    size limit: its ``seq`` and data ``size`` (bytes), the message itself left unparsed."""

    seq: int
    size: int


def stream_request_parser(
    max_chunk_bytes: int,
) -> Callable[[bytes], fs_pb.StreamFingerprintRequest | OversizedChunk]:
    """The deserializer of StreamFingerprint's requests: the standard parse, except that a
    chunk whose data is over ``max_chunk_bytes`` comes back as :class:`OversizedChunk`.

    A stream message may be as large as ``--max-message-bytes`` (64 MiB, for unary media),
    its chunk only ``--max-chunk-bytes`` (4 MiB). Parsing a refused 60 MiB chunk copied it
    twice more on the event loop (about 2.4 times its size resident per stream at once, and
    the other streams' updates waited); the refusal needs only its size and sequence number,
    read from the wire here.
    """

    def parse(raw: bytes) -> fs_pb.StreamFingerprintRequest | OversizedChunk:
        if len(raw) > max_chunk_bytes:
            oversized = _oversized_chunk(raw, max_chunk_bytes)
            if oversized is not None:
                return oversized
        return fs_pb.StreamFingerprintRequest.FromString(raw)

    return parse


def _oversized_chunk(raw: bytes, max_chunk_bytes: int) -> OversizedChunk | None:
    """The chunk in ``raw`` when the message is a chunk (as the standard parser reads it) whose
    data is over ``max_chunk_bytes``; None for anything else (the standard parser decides).

    Protobuf's rules are followed where they decide the payload, the data or the seq: of the
    oneof's fields the last one wins, chunk fields after it merge, and of repeated scalar
    fields the last one wins; unknown fields are skipped. A message past the field budget,
    or with a field the scan cannot read (a group, a wrong wire type for data or seq) goes to
    the standard parser. The refusal does not check the rest of the message (e.g. a
    malformed ``timestamps_seconds``): such a message is refused for its size rather than
    as malformed.
    """
    scanner = _Scanner(raw, REQUEST_FIELD_BUDGET)
    try:
        payload = [f for f in scanner.fields(0, len(raw)) if f.number in (_STREAM_CONFIG, _STREAM_CHUNK)]
        if not payload or payload[-1].number != _STREAM_CHUNK or any(f.wire_type != _LEN for f in payload):
            return None
        last_config = max((i for i, f in enumerate(payload) if f.number == _STREAM_CONFIG), default=-1)
        data: _Field | None = None
        seq = 0
        for chunk in payload[last_config + 1 :]:
            for f in scanner.fields(chunk.value_start, chunk.value_end):
                if f.number == _CHUNK_DATA:
                    if f.wire_type != _LEN:
                        return None
                    data = f
                elif f.number == _CHUNK_SEQ:
                    if f.wire_type != _VARINT:
                        return None
                    seq, _ = _varint(raw, f.value_start, f.value_end)
    except _Unscanned:
        return None
    if data is None or data.value_end - data.value_start <= max_chunk_bytes:
        return None
    return OversizedChunk(seq & (2**64 - 1), data.value_end - data.value_start)


def tolerant(
    parse: Callable[[bytes], Parsed], type_name: str
) -> Callable[[bytes], Parsed | MalformedRequest]:
    """``parse`` (a request deserializer) returning :class:`MalformedRequest` instead of
    raising protobuf's ``DecodeError``."""

    def parse_or_mark(raw: bytes) -> Parsed | MalformedRequest:
        try:
            return parse(raw)
        except DecodeError as exc:
            return MalformedRequest(type_name, str(exc) or "undecodable bytes")

    return parse_or_mark


class _Field(NamedTuple):
    """One field of a wire message: byte offsets of its tag and value (``[start, end)``)."""

    number: int
    wire_type: int
    tag_start: int
    value_start: int
    value_end: int


class _Unscanned(Exception):
    """The bytes are not a well-formed message, or have more fields than are scanned here:
    the standard parser decides."""


class _Scanner:
    """Reads the fields of messages in one buffer, at most ``budget`` fields in all."""

    def __init__(self, buf: bytes, budget: int) -> None:
        self.buf = buf
        self.remaining = budget

    def fields(self, start: int, end: int) -> list[_Field]:
        """The fields of the message in ``buf[start:end]``, in wire order; :class:`_Unscanned`
        for malformed bytes, groups, or a spent budget."""
        buf, fields, pos = self.buf, [], start
        while pos < end:
            if self.remaining == 0:
                raise _Unscanned
            self.remaining -= 1
            tag_start = pos
            tag, pos = _varint(buf, pos, end)
            number, wire_type = tag >> 3, tag & 7
            if number == 0 or number >= _MAX_FIELD_NUMBER:
                raise _Unscanned
            value_start = pos
            if wire_type == _VARINT:
                _, pos = _varint(buf, pos, end)
            elif wire_type == _I64:
                pos += 8
            elif wire_type == _I32:
                pos += 4
            elif wire_type == _LEN:
                size, value_start = _varint(buf, pos, end)
                pos = value_start + size
            else:
                raise _Unscanned
            if pos > end:
                raise _Unscanned
            fields.append(_Field(number, wire_type, tag_start, value_start, pos))
        return fields


def parse_fingerprint_request(raw: bytes) -> FingerprintRequestParts:
    """The request in ``raw`` (a gRPC request deserializer): ``media.data`` as a view of
    ``raw`` when it is at least :data:`SPLIT_MIN_BYTES` long, else the standard parse."""
    return _request_parts(_Scanner(raw, REQUEST_FIELD_BUDGET), 0, len(raw))


def parse_batch_fingerprint_request(raw: bytes) -> BatchFingerprintRequestParts:
    """The batch in ``raw`` (a gRPC request deserializer): every item as
    :func:`parse_fingerprint_request` reads it; a batch with fields other than its items (none
    are defined) or malformed bytes take the standard parse."""
    scanner = _Scanner(raw, BATCH_FIELD_BUDGET)
    try:
        fields = scanner.fields(0, len(raw))
    except _Unscanned:
        fields = None
    if fields is None or any(f.number != _BATCH_ITEMS or f.wire_type != _LEN for f in fields):
        batch = fs_pb.BatchFingerprintRequest.FromString(raw)
        return BatchFingerprintRequestParts(len(batch.items), batch)
    items = tuple(_request_parts(scanner, f.value_start, f.value_end) for f in fields)
    return BatchFingerprintRequestParts(len(items), items)


def _request_parts(scanner: _Scanner, start: int, end: int) -> FingerprintRequestParts:
    """The FingerprintRequest in ``buf[start:end]``, its large media bytes as a view of the
    scanner's buffer."""
    split = _split_media_data(scanner, start, end)
    if split is None:
        return FingerprintRequestParts(fs_pb.FingerprintRequest.FromString(scanner.buf[start:end]))
    outer, media_rest, data = split
    message = fs_pb.FingerprintRequest.FromString(outer)
    message.media.SetInParent()
    message.media.MergeFromString(media_rest)
    return FingerprintRequestParts(message, data)


def _split_media_data(
    scanner: _Scanner, start: int, end: int
) -> tuple[bytes, bytes, memoryview] | None:
    """For the request in ``buf[start:end]``: (the request without its media field, the media
    field without its data field, the data), or None when the request is not one media field
    holding one large data field."""
    raw = scanner.buf
    try:
        media = _only(scanner.fields(start, end), _REQUEST_MEDIA)
        if media is None:
            return None
        inner = scanner.fields(media.value_start, media.value_end)
    except _Unscanned:
        return None
    data = _only(inner, _SOURCE_DATA)
    if data is None or any(f.number == _SOURCE_SERVER_PATH for f in inner):
        return None
    if data.value_end - data.value_start < SPLIT_MIN_BYTES:
        return None
    outer = raw[start : media.tag_start] + raw[media.value_end : end]
    media_rest = raw[media.value_start : data.tag_start] + raw[data.value_end : media.value_end]
    return outer, media_rest, memoryview(raw)[data.value_start : data.value_end]


def _only(fields: list[_Field], number: int) -> _Field | None:
    """The one length-delimited field ``number``, or None if it is absent, repeated or not
    length-delimited (shapes left to the standard parser)."""
    found = [f for f in fields if f.number == number]
    if len(found) != 1 or found[0].wire_type != _LEN:
        return None
    return found[0]


def _varint(buf: bytes, pos: int, end: int) -> tuple[int, int]:
    """The base-128 varint at ``pos`` and the offset after it."""
    value = shift = 0
    while pos < end and shift < 64:
        byte = buf[pos]
        pos += 1
        value |= (byte & 0x7F) << shift
        if byte < 0x80:
            return value, pos
        shift += 7
    raise _Unscanned
