"""Streaming Ogg (RFC 3533) pages and packets; Vorbis / Opus decoded by FFmpeg."""

from __future__ import annotations

import struct
from typing import Final

from streamprint.engine.decode.common import (
    MAX_PENDING_BYTES,
    PROBE_BYTES,
    ByteData,
    Samples,
    _media_error,
    _unsupported,
)
from streamprint.engine.decode.demux import _AvDecoder, _Buffer, _Output


def _xiph_lace(size: int) -> bytes:
    return b"\xff" * (size // 255) + bytes((size % 255,))


#: Vorbis comment header with no vendor string and no comments (FFmpeg ignores it anyway).
_EMPTY_VORBIS_COMMENT: Final = b"\x03vorbis" + b"\x00" * 8 + b"\x01"


class _OggLink:
    """One logical Vorbis or Opus bitstream (one link of a possibly chained Ogg file)."""

    def __init__(self, serial: int, codec: str, out: _Output) -> None:
        self.serial = serial
        self.codec = codec
        self.ended = False
        self._out = out
        self._packets = 0
        self._partial: bytearray | None = None
        self._headers: list[bytes] = []
        self._decoder: _AvDecoder | None = None
        self._preskip = 0
        self._emitted = 0

    def page(self, flags: int, granule: int, lacing: bytes, body: bytes) -> None:
        """Process one page: assemble packets, decode, trim at end-of-stream."""
        skipping = bool(flags & 1) and self._partial is None  # tail of a lost packet
        if not flags & 1:
            self._partial = None  # a packet cut short by a lost page is dropped
        blocks: list[Samples] = []
        offset = 0
        for lace in lacing:
            segment = body[offset : offset + lace]
            offset += lace
            if skipping:
                skipping = lace == 255
                continue
            blocks += self._segment(segment, complete=lace < 255)
        if flags & 4:
            blocks = self._end(blocks, granule)
        for block in blocks:
            self._emitted += block.shape[0]
            self._out.add(block)

    def _segment(self, segment: bytes, *, complete: bool) -> list[Samples]:
        if self._partial is None:
            self._partial = bytearray()
        if self._packets != 1:  # the comment header is not kept (it may hold cover art)
            self._partial += segment
            if len(self._partial) > MAX_PENDING_BYTES:
                raise _media_error(self._out.field, "Ogg packet too large")
        if not complete:
            return []
        packet, self._partial = bytes(self._partial), None
        return self._packet(packet)

    def _packet(self, packet: bytes) -> list[Samples]:
        index = self._packets
        self._packets += 1
        if self._decoder is not None:
            return self._decoder.decode(packet) if packet else []
        if index == 0:
            self._id_header(packet)
        if self.codec == "opus" and index == 1:
            self._decoder = _AvDecoder("opus", self._out.field, extradata=self._headers[0])
        elif self.codec == "vorbis" and index == 2:
            head = self._headers[0]
            extradata = b"\x02" + _xiph_lace(len(head)) + _xiph_lace(len(_EMPTY_VORBIS_COMMENT))
            extradata += head + _EMPTY_VORBIS_COMMENT + packet
            self._decoder = _AvDecoder("vorbis", self._out.field, extradata=extradata)
        return []

    def _id_header(self, packet: bytes) -> None:
        self._headers.append(packet)
        if self.codec == "opus":
            if len(packet) < 19:
                raise _media_error(self._out.field, "bad OpusHead")
            channels, self._preskip = packet[9], struct.unpack_from("<H", packet, 10)[0]
            self._out.set_format(48000, channels)
        else:
            if len(packet) < 30:
                raise _media_error(self._out.field, "bad Vorbis identification header")
            channels, rate = packet[11], struct.unpack_from("<I", packet, 12)[0]
            self._out.set_format(rate, channels)

    def _end(self, blocks: list[Samples], granule: int) -> list[Samples]:
        """End of stream: flush, then cut to the sample count the last granule gives."""
        self.ended = True
        if self._decoder is not None:
            blocks = blocks + self._decoder.decode(None)
        if granule < 0:
            return blocks
        allowed = max(granule - self._preskip - self._emitted, 0)
        kept: list[Samples] = []
        for block in blocks:
            kept.append(block[:allowed])
            allowed -= kept[-1].shape[0]
        return kept


def _ogg_codec(first_packet: bytes) -> str | None:
    head = first_packet[:8]
    if head.startswith(b"\x01vorbis"):
        return "vorbis"
    return "opus" if head == b"OpusHead" else None


class _OggDemuxer:
    """Ogg pages parsed here (RFC 3533); Vorbis / Opus packets decoded by FFmpeg.

    Decodes the first Vorbis or Opus logical stream; other multiplexed streams (video,
    skeleton) are ignored. Chained streams (one link after another, as internet radio
    sends) continue with the next link, provided its rate and channels are the same.
    Granule positions trim the decoder's output at end-of-stream exactly as libogg-based
    players do. Page CRCs are not checked (corrupt data fails in the decoder).
    """

    def __init__(self, out: _Output) -> None:
        self._out = out
        self._buf = _Buffer()
        self._link: _OggLink | None = None
        self._junk = 0
        self._pages = 0

    def push(self, data: ByteData) -> None:
        self._buf.append(data)
        while self._next_page():
            pass

    def close(self) -> None:
        if not self._pages:
            raise _media_error(self._out.field, "truncated Ogg stream (no complete page)")
        if self._link is None:
            raise _unsupported(self._out.field, "Ogg stream without Vorbis or Opus audio")

    def _next_page(self) -> bool:
        data = self._buf.data
        if len(data) < 27:
            return False
        if data[:4] != b"OggS" or data[4] != 0:
            return self._resync()
        nseg = data[26]
        if len(data) < 27 + nseg:
            return False
        lacing = bytes(data[27 : 27 + nseg])
        size = 27 + nseg + sum(lacing)
        if len(data) < size:
            return False
        flags, granule, serial = struct.unpack_from("<BqI", data, 5)
        body = bytes(data[27 + nseg : size])
        self._buf.drop(size)
        self._pages += 1
        self._page(flags, granule, serial, lacing, body)
        self._junk = 0
        return True

    def _resync(self) -> bool:
        data = self._buf.data
        found = data.find(b"OggS", 1)
        skipped = found if found >= 0 else len(data) - 3
        self._junk += skipped
        if self._junk > PROBE_BYTES:
            raise _media_error(self._out.field, "lost Ogg page sync")
        self._buf.drop(skipped)
        return found >= 0

    def _page(self, flags: int, granule: int, serial: int, lacing: bytes, body: bytes) -> None:
        link = self._link
        if flags & 2:  # beginning of a logical stream
            codec = _ogg_codec(body)
            if codec and (link is None or link.ended):
                self._link = _OggLink(serial, codec, self._out)
                self._link.page(flags, granule, lacing, body)
            return
        if link is None:
            raise _unsupported(self._out.field, "Ogg stream without Vorbis or Opus audio")
        if serial == link.serial and not link.ended:
            link.page(flags, granule, lacing, body)
