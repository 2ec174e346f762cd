"""Format probe: recognise the container from the first bytes of a stream."""

from __future__ import annotations

from typing import Final

from streamprint.engine.decode.common import PROBE_BYTES
from streamprint.engine.decode.mp3 import _mp3_find_sync

_OTHER_MAGIC: Final = (b"FORM", b".snd", b"caff", b"wvpk", b"MAC ", b"#!AMR", b"\x1aE\xdf\xa3")


def _detect(data: bytearray | bytes, start: int, final: bool) -> tuple[str, int]:
    """Identify the media format at the start of ``data``.

    Returns (kind, n): ``("id3", size)`` skip an ID3v2 tag of ``size`` bytes and look
    again; ``("wav"|"flac"|"ogg", 0)``; ``("mp3", offset)`` with the first confirmed frame
    at ``offset``; ``("unknown", 0)``; ``("more", scan_pos)`` when more bytes are needed
    (an MP3 sync scan resumes at ``scan_pos``).
    """
    if len(data) < 12 and not final:
        return "more", start
    head = bytes(data[:12])
    if head.startswith(b"ID3") and len(head) >= 10:
        size = 0
        for byte in head[6:10]:
            size = (size << 7) | (byte & 0x7F)
        return "id3", 10 + size + (10 if head[5] & 0x10 else 0)
    if head[:4] in (b"RIFF", b"RF64"):
        return ("wav", 0) if head[8:12] == b"WAVE" else ("unknown", 0)
    if head.startswith(b"fLaC"):
        return "flac", 0
    if head.startswith(b"OggS"):
        return "ogg", 0
    if head[:4] in _OTHER_MAGIC or head[:5] in _OTHER_MAGIC or head[4:8] == b"ftyp":
        return "unknown", 0
    window = data if len(data) <= PROBE_BYTES else data[:PROBE_BYTES]
    status, pos = _mp3_find_sync(window, start, final)
    if status == "found":
        return "mp3", pos
    if not final and len(data) < PROBE_BYTES:
        return "more", pos
    return "unknown", 0


def is_audio_only(head: bytes) -> bool:
    """Whether a file starting with ``head`` (up to :data:`PROBE_BYTES`) is in a container
    that cannot hold a video stream: RIFF WAVE or FLAC (whose pictures are cover art)."""
    kind, _ = _detect(head, 0, final=True)
    return kind in ("wav", "flac")
