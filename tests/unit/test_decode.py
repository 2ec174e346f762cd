"""Audio decoding: format round trips, raw PCM chunk carry, streaming container decoding,
and rejection of bad input with the right error class and field."""

from __future__ import annotations

import io
import itertools
import struct
from functools import cache
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
from hypothesis import given, settings
from hypothesis import strategies as st
from media import (
    encode,
    encode_aac,
    noise,
    pcm_bytes,
    peak_frequency,
    random_split,
    sine,
    split_at,
    tones,
)
from numpy.typing import NDArray

from streamprint.engine.decode import (
    PROBE_BYTES,
    PcmDecoder,
    PcmFormat,
    StreamingContainerDecoder,
    decode_bytes,
    decode_bytes_blocks,
    decode_file,
    decode_file_blocks,
)
from streamprint.errors import (
    InvalidInputError,
    MediaDecodeError,
    ResourceLimitError,
    SessionStateError,
)

LOSSLESS = {"wav", "flac"}
LOSSY = {"vorbis", "opus", "mp3"}
STREAM_FORMATS = [
    *("wav", "wav_u8", "wav24", "wav_float", "rf64"),
    *("flac", "flac24", "vorbis", "opus", "mp3"),
]


@cache
def media(fmt: str, seconds: float = 0.5, rate: int = 44100, channels: int = 2) -> bytes:
    """Encoded test file: a 440 Hz (left) / 660 Hz (right) tone plus a little noise."""
    x = tones([440, 660][:channels], seconds, rate, 0.4) + noise(
        seconds, rate, channels, amplitude=0.05
    )
    return encode(x, rate, fmt)


def stream_decode(
    data: bytes, pieces: list[bytes]
) -> tuple[NDArray[np.float32], StreamingContainerDecoder]:
    """Feed ``pieces`` (which concatenate to ``data``) and return all samples + the decoder."""
    assert b"".join(pieces) == data
    dec = StreamingContainerDecoder()
    outs = [dec.feed(p) for p in pieces] + [dec.finish()]
    channels = dec.channels or 0
    return np.concatenate([o.reshape(-1, channels) for o in outs]), dec


def field_of(err: InvalidInputError) -> str:
    assert len(err.violations) == 1
    return err.violations[0].field


# --------------------------------------------------------------------------- round trips


@pytest.mark.parametrize("channels", [1, 2])
@pytest.mark.parametrize("rate", [8000, 22050, 44100, 48000])
@pytest.mark.parametrize("fmt", ["wav", "flac", "vorbis", "opus", "mp3"])
def test_round_trip(fmt: str, rate: int, channels: int) -> None:
    """Rate, channel count, duration and pitch survive encode -> decode_bytes."""
    freqs = [440.0, 660.0][:channels]
    x = tones(freqs, 1.0, rate)
    buf = decode_bytes(encode(x, rate, fmt))
    out_rate = 48000 if fmt == "opus" else rate
    assert buf.sample_rate == out_rate
    assert buf.channels == channels
    assert buf.samples.dtype == np.float32 and buf.samples.flags.c_contiguous
    assert np.abs(buf.samples).max() <= 1.0
    if fmt in LOSSLESS:
        assert buf.samples.shape[0] == len(x)
        np.testing.assert_allclose(buf.samples, x, atol=1.0 / 32768)
    else:  # gapless trimming (LAME tag, Ogg granules, Opus pre-skip) keeps the length
        assert buf.seconds == pytest.approx(1.0, abs=0.002)
    for ch, freq in enumerate(freqs):
        assert peak_frequency(buf.samples[:, ch], out_rate) == pytest.approx(freq, abs=1.0)


@pytest.mark.parametrize(
    "fmt", ["wav", "wav_u8", "wav24", "wav32", "wav_float", "wav_double", "flac24", "aiff"]
)
def test_lossless_variants_match_soundfile(fmt: str) -> None:
    data = media(fmt)
    ref, rate = sf.read(io.BytesIO(data), dtype="float32", always_2d=True)
    buf = decode_bytes(data)
    assert buf.sample_rate == rate
    np.testing.assert_array_equal(buf.samples, ref)


@pytest.mark.parametrize("fmt", sorted(LOSSY))
def test_lossy_match_reference_decoders(fmt: str) -> None:
    """FFmpeg's decoders in our packet pipeline agree with libsndfile's (libvorbis,
    libopus, mpg123) sample for sample, to float rounding: same trimming, same timing."""
    data = media(fmt, rate=48000)
    ref, _ = sf.read(io.BytesIO(data), dtype="float32", always_2d=True)
    buf = decode_bytes(data)
    assert buf.samples.shape == ref.shape
    np.testing.assert_allclose(buf.samples, np.clip(ref, -1, 1), atol=1e-4)


@pytest.mark.parametrize("container", ["mp4", "adts"])
def test_other_formats_fall_back_to_pyav(container: str) -> None:
    buf = decode_bytes(encode_aac(tones([440, 660], 1.0, 44100), 44100, container))
    assert (buf.sample_rate, buf.channels) == (44100, 2)
    assert buf.seconds == pytest.approx(1.0, abs=0.05)
    assert peak_frequency(buf.samples[:, 1], 44100) == pytest.approx(660, abs=1.0)


@pytest.mark.parametrize("fmt", ["wav", "flac", "vorbis", "opus", "mp3"])
def test_decode_file_equals_decode_bytes(fmt: str, tmp_path: Path) -> None:
    data = media(fmt)
    path = tmp_path / f"x.{fmt}"
    path.write_bytes(data)
    from_file, from_bytes = decode_file(path), decode_bytes(data)
    assert from_file.sample_rate == from_bytes.sample_rate
    np.testing.assert_array_equal(from_file.samples, from_bytes.samples)


def test_pcm16_file_read_as_int16_is_libsndfile_float_bit_for_bit(tmp_path: Path) -> None:
    """16-bit files are read as int16 and scaled in numpy, in blocks: the same bits as
    libsndfile's float read, extremes included, across block boundaries."""
    rng = np.random.default_rng(5)
    frames = (1 << 18) * 2 + 12_345  # more than two read blocks
    ints = rng.integers(-32768, 32768, size=(frames, 3), dtype=np.int16)
    ints[:4] = [[-32768, 32767, 0], [32767, -32768, -1], [1, -1, 0], [0, 0, 0]]
    path = tmp_path / "pcm16.wav"
    sf.write(path, ints, 16_000, subtype="PCM_16")
    ref, _ = sf.read(path, dtype="float32", always_2d=True)
    buf = decode_file(path)
    assert buf.samples.dtype == np.float32 and buf.samples.flags.c_contiguous
    assert np.array_equal(buf.samples.view(np.uint32), ref.view(np.uint32))
    with pytest.raises(ResourceLimitError):
        decode_file(path, max_seconds=frames / 16_000 - 1.0)


@pytest.mark.parametrize("fmt", ["wav", "aiff", "rf64", "flac", "wav24", "mp3"])
def test_file_blocks_are_the_file_decoded_whole(tmp_path: Path, fmt: str) -> None:
    """decode_file_blocks: the same samples as decode_file, in blocks of the asked length,
    each a fresh array (16-bit sized formats read lazily, the others decoded and sliced)."""
    rate = 16_000
    path = tmp_path / f"x.{fmt}"
    path.write_bytes(encode(noise(2.3, rate, channels=2, seed=3), rate, fmt))
    whole = decode_file(path)
    media = decode_file_blocks(path, block_seconds=0.5)
    assert (media.sample_rate, media.channels, media.frames) == (whole.sample_rate, 2, whole.samples.shape[0])
    blocks = list(media.blocks)
    assert [b.shape[0] for b in blocks[:-1]] == [round(0.5 * whole.sample_rate)] * (len(blocks) - 1)
    joined = np.concatenate(blocks)
    assert joined.dtype == np.float32
    assert np.array_equal(joined.view(np.uint32), whole.samples.view(np.uint32))
    if fmt in ("wav", "aiff", "rf64"):  # read lazily: no block shares another's memory
        assert not any(np.shares_memory(a, b) for a, b in itertools.pairwise(blocks))


@pytest.mark.parametrize("as_view", [False, True], ids=["bytes", "view"])
@pytest.mark.parametrize("fmt", ["wav", "aiff", "rf64", "flac", "wav24", "mp3"])
def test_bytes_blocks_are_the_bytes_decoded_whole(fmt: str, as_view: bool) -> None:
    """decode_bytes_blocks: decode_bytes' samples in blocks of the asked length, each a fresh
    array (16-bit sized formats converted lazily, the others decoded and sliced), from
    ``bytes`` or from a view into a larger buffer (a received request's media bytes)."""
    rate = 16_000
    data = encode(noise(2.3, rate, channels=2, seed=4), rate, fmt)
    whole = decode_bytes(data)
    source = memoryview(b"head" + data + b"tail")[4:-4] if as_view else data
    media = decode_bytes_blocks(source, block_seconds=0.5)
    assert (media.sample_rate, media.channels, media.frames) == (whole.sample_rate, 2, whole.samples.shape[0])
    blocks = list(media.blocks)
    assert [b.shape[0] for b in blocks[:-1]] == [round(0.5 * whole.sample_rate)] * (len(blocks) - 1)
    assert np.array_equal(np.concatenate(blocks).view(np.uint32), whole.samples.view(np.uint32))
    if fmt in ("wav", "aiff", "rf64"):
        assert not any(np.shares_memory(a, b) for a, b in itertools.pairwise(blocks))


def test_bytes_blocks_check_before_converting() -> None:
    """decode_bytes' errors, from the call: empty, undecodable, too long."""
    with pytest.raises(InvalidInputError):
        decode_bytes_blocks(b"", block_seconds=1.0)
    with pytest.raises(MediaDecodeError):
        decode_bytes_blocks(b"RIFF" + bytes(200), block_seconds=1.0)
    long = encode(np.zeros((16_000 * 3, 1), np.float32), 16_000, "wav")
    with pytest.raises(ResourceLimitError):
        decode_bytes_blocks(long, block_seconds=1.0, max_seconds=2.0)


def test_file_blocks_check_before_reading(tmp_path: Path) -> None:
    """Errors come from the call, before any block: duration limit, missing or empty file,
    undecodable bytes; a partly consumed iterator closes the file when closed."""
    path = tmp_path / "long.wav"
    sf.write(path, np.zeros((16_000 * 3, 1), np.int16), 16_000, subtype="PCM_16")
    with pytest.raises(ResourceLimitError):
        decode_file_blocks(path, block_seconds=1.0, max_seconds=2.0)
    with pytest.raises(InvalidInputError) as missing:
        decode_file_blocks(tmp_path / "nope.wav", block_seconds=1.0)
    assert missing.value.violations[0].field == "path"
    (tmp_path / "empty.wav").write_bytes(b"")
    with pytest.raises(InvalidInputError):
        decode_file_blocks(tmp_path / "empty.wav", block_seconds=1.0)
    (tmp_path / "junk.wav").write_bytes(b"RIFF" + bytes(200))
    with pytest.raises(MediaDecodeError):
        decode_file_blocks(tmp_path / "junk.wav", block_seconds=1.0)
    media = decode_file_blocks(path, block_seconds=1.0)
    first = next(media.blocks)
    assert first.shape == (16_000, 1)
    media.blocks.close()  # type: ignore[attr-defined]
    assert list(media.blocks) == []


def test_file_blocks_of_a_file_cut_while_read_end_in_a_decode_error(tmp_path: Path) -> None:
    """A file that shrinks after the header was read (another process truncating it) is a
    MediaDecodeError once the blocks run short, never fewer samples without a word."""
    path = tmp_path / "cut.wav"
    sf.write(path, np.zeros((16_000 * 4, 2), np.int16), 16_000, subtype="PCM_16")
    media = decode_file_blocks(path, block_seconds=1.0)
    first = next(media.blocks)
    assert first.shape == (16_000, 2)
    with path.open("r+b") as fh:
        fh.truncate(path.stat().st_size // 2)
    with pytest.raises(MediaDecodeError):
        list(media.blocks)


def test_truncated_16_bit_flac_is_not_counted_by_its_header() -> None:
    """A FLAC header's frame count is not checked against the data, so 16-bit FLAC does not
    take the fast path that counts it up front: cut in half, it is a decode error (as any
    truncated FLAC), not a duration-limit error for frames it does not hold."""
    data = encode(tones([440.0], 4.0, 16_000, 0.4), 16_000, "flac")
    assert sf.info(io.BytesIO(data)).subtype == "PCM_16"
    with pytest.raises(MediaDecodeError):
        decode_bytes(data[: len(data) // 2], max_seconds=3.0)


def test_multichannel_wav() -> None:
    x = tones([220, 330, 440, 550, 660, 770], 0.5, 48000)
    buf = decode_bytes(encode(x, 48000, "wav"))
    assert buf.channels == 6
    assert peak_frequency(buf.samples[:, 5], 48000) == pytest.approx(770, abs=2)


# --------------------------------------------------------------------------- raw PCM


def test_pcm_s16_values() -> None:
    raw = struct.pack("<4h", 0, 16384, -32768, 32767)
    out = PcmDecoder(PcmFormat("s16le", 8000, 2)).decode(raw)
    assert out.dtype == np.float32 and out.shape == (2, 2)
    np.testing.assert_array_equal(out, [[0.0, 0.5], [-1.0, 32767 / 32768]])


def test_pcm_f32_round_trip_and_clip() -> None:
    x = np.array([[0.25, -0.5], [1.5, -3.0]], np.float32)
    out = PcmDecoder(PcmFormat("f32le", 48000, 2)).decode(pcm_bytes(x, "f32le"))
    np.testing.assert_array_equal(out, [[0.25, -0.5], [1.0, -1.0]])


@pytest.mark.parametrize("value", [np.nan, np.inf, -np.inf])
def test_pcm_f32_rejects_non_finite(value: float) -> None:
    raw = pcm_bytes(np.array([0.1, value, 0.2]), "f32le")
    with pytest.raises(InvalidInputError) as info:
        PcmDecoder(PcmFormat("f32le", 16000, 1)).decode(raw)
    assert field_of(info.value) == "chunk.data"


def test_pcm_empty_chunk() -> None:
    with pytest.raises(InvalidInputError) as info:
        PcmDecoder(PcmFormat("s16le", 16000, 1)).decode(b"")
    assert field_of(info.value) == "chunk.data"
    assert info.value.violations[0].description == "empty chunk"


def test_pcm_partial_frame_carry_and_finish() -> None:
    dec = PcmDecoder(PcmFormat("s16le", 16000, 2))  # 4-byte frames
    assert dec.decode(b"\x00\x40\x00").shape == (0, 2)
    assert dec.pending_bytes == 3
    np.testing.assert_array_equal(dec.decode(b"\xc0\x01"), [[0.5, -0.5]])
    assert dec.pending_bytes == 1
    with pytest.raises(InvalidInputError) as info:
        dec.finish()
    assert field_of(info.value) == "chunk.data"
    dec.decode(b"\x00\x00\x00")
    dec.finish()  # whole frames only: fine


@pytest.mark.parametrize(
    ("kwargs", "field"),
    [
        ({"encoding": "s24le"}, "encoding"),
        ({"encoding": "mulaw"}, "encoding"),
        ({"sample_rate": 1}, "sample_rate"),
        ({"sample_rate": 7999}, "sample_rate"),
        ({"sample_rate": 384001}, "sample_rate"),
        ({"sample_rate": 0}, "sample_rate"),
        ({"sample_rate": 44100.5}, "sample_rate"),
        ({"sample_rate": True}, "sample_rate"),
        ({"channels": 0}, "channels"),
        ({"channels": 9}, "channels"),
        ({"channels": -1}, "channels"),
    ],
)
def test_pcm_format_validation(kwargs: dict[str, object], field: str) -> None:
    args: dict[str, object] = {"encoding": "s16le", "sample_rate": 44100, "channels": 2} | kwargs
    with pytest.raises(InvalidInputError) as info:
        PcmFormat(**args)  # type: ignore[arg-type]
    assert field_of(info.value) == field
    assert info.value.violations[0].allowed


def test_pcm_format_limits_accepted() -> None:
    assert PcmFormat("f32le", 8000, 1).frame_bytes == 4
    assert PcmFormat("s16le", 384000, 8).frame_bytes == 16


@settings(max_examples=80, deadline=None)
@given(
    encoding=st.sampled_from(["s16le", "f32le"]),
    channels=st.integers(1, 3),
    n=st.integers(1, 300),
    cuts=st.lists(st.integers(0, 4000), max_size=25),
    seed=st.integers(0, 2**16),
)
def test_pcm_any_chunking_same_samples(
    encoding: str, channels: int, n: int, cuts: list[int], seed: int
) -> None:
    x = np.random.default_rng(seed).uniform(-1, 1, (n, channels))
    raw = pcm_bytes(x, encoding)
    fmt = PcmFormat(encoding, 22050, channels)
    whole = PcmDecoder(fmt).decode(raw)
    dec = PcmDecoder(fmt)
    outs = []
    for piece in split_at(raw, cuts):
        if piece:  # empty chunks are an error, tested above
            outs.append(dec.decode(piece))
            assert dec.pending_bytes < fmt.frame_bytes
    dec.finish()
    assert whole.shape == (n, channels)
    np.testing.assert_array_equal(np.concatenate(outs), whole)


# --------------------------------------------------------------------------- bad media


def test_empty_media() -> None:
    with pytest.raises(InvalidInputError) as info:
        decode_bytes(b"")
    assert field_of(info.value) == "media"


@pytest.mark.parametrize(
    "data",
    [
        np.random.default_rng(1).bytes(50_000),
        b"\x00" * 10_000,
        b"hello world, this is not audio\n" * 200,
        b"RIFF\x10\x00\x00\x00WAVEjunk",
        b"OggS" + bytes(200),
        b"fLaC" + bytes(100),
        b"\xff\xfb\x90\x64" + bytes(50),
        b"ID3\x03\x00\x00\x00\x00\x00\x10" + bytes(16),
    ],
    ids=[
        "random",
        "zeros",
        "text",
        "riff-junk",
        "ogg-junk",
        "flac-junk",
        "mp3-one-header",
        "id3-only",
    ],
)
def test_garbage_is_media_decode_error(data: bytes) -> None:
    with pytest.raises(MediaDecodeError):
        decode_bytes(data)
    with pytest.raises(MediaDecodeError):
        stream_decode(data, [data])


def test_streaming_garbage_detected_within_probe_window() -> None:
    garbage = np.random.default_rng(2).bytes(4 * PROBE_BYTES)
    dec = StreamingContainerDecoder()
    fed = 0
    with pytest.raises(MediaDecodeError):
        for piece in split_at(garbage, list(range(1024, len(garbage), 1024))):
            fed += len(piece)
            dec.feed(piece)
    assert fed <= PROBE_BYTES + 1024
    with pytest.raises(SessionStateError):  # the decoder is finished after an error
        dec.feed(b"x")


@pytest.mark.parametrize("fmt", ["wav", "flac", "vorbis", "opus", "mp3"])
def test_truncated_inside_header(fmt: str) -> None:
    data = media(fmt)[:40]
    with pytest.raises(MediaDecodeError):
        decode_bytes(data)
    with pytest.raises(MediaDecodeError):
        stream_decode(data, [data])


def test_truncated_flac_frame_is_an_error() -> None:
    data = media("flac")
    cut = data[: len(data) - 100]
    with pytest.raises(MediaDecodeError):
        decode_bytes(cut)
    with pytest.raises(MediaDecodeError):
        stream_decode(cut, random_split(cut, 10, 0))


@pytest.mark.parametrize("fmt", ["wav", "vorbis", "opus", "mp3"])
def test_truncated_body_decodes_the_complete_part(fmt: str) -> None:
    """WAV / Ogg / MP3 cut mid-stream decode whatever is whole (as libsndfile does)."""
    data = media(fmt, seconds=1.0)
    cut = data[: len(data) * 2 // 3]
    buf = decode_bytes(cut)
    assert 0.3 < buf.seconds < 0.9
    streamed, _ = stream_decode(cut, random_split(cut, 7, 1))
    np.testing.assert_array_equal(streamed, buf.samples)


def _wav_with(rate: int | None = None, channels: int | None = None) -> bytes:
    """A 16-bit PCM WAV file whose header fields are patched."""
    wav = bytearray(media("wav", seconds=0.1))
    fmt_at = wav.find(b"fmt ") + 8
    if channels is not None:
        wav[fmt_at + 2 : fmt_at + 4] = struct.pack("<H", channels)
        wav[fmt_at + 12 : fmt_at + 14] = struct.pack("<H", 2 * channels)  # block align
    if rate is not None:
        wav[fmt_at + 4 : fmt_at + 8] = struct.pack("<I", rate)
    return bytes(wav)


@pytest.mark.parametrize(
    ("rate", "channels", "declared"),
    [
        (1, None, "sample rate the media declares, 1 Hz,"),
        (7000, None, "sample rate the media declares, 7000 Hz,"),
        (10_000_000, None, "sample rate the media declares, 10000000 Hz,"),
        (None, 16, "channel count the media declares, 16,"),
    ],
)
def test_absurd_container_header(rate: int | None, channels: int | None, declared: str) -> None:
    """The error is on the media's field (``media`` as for every whole-file media error, or
    ``chunk.data`` in a stream), saying what the header declares."""
    data = _wav_with(rate=rate, channels=channels)
    with pytest.raises(MediaDecodeError) as info:
        decode_bytes(data)
    assert field_of(info.value) == "media"
    assert declared in info.value.message
    with pytest.raises(MediaDecodeError) as info:
        StreamingContainerDecoder(field="chunk.data").feed(data)
    assert field_of(info.value) == "chunk.data"


def test_nan_in_float_wav() -> None:
    x = np.zeros((1000, 1), np.float32)
    x[500] = np.nan
    buf = io.BytesIO()
    sf.write(buf, x, 16000, format="WAV", subtype="FLOAT")
    data = buf.getvalue()
    with pytest.raises(MediaDecodeError) as info:
        decode_bytes(data)
    assert field_of(info.value) == "media"
    with pytest.raises(MediaDecodeError) as info:
        stream_decode(data, random_split(data, 5, 0))
    assert field_of(info.value) == "chunk.data"


@pytest.mark.parametrize("fmt", ["wav", "flac", "vorbis", "mp3"])
def test_max_seconds_bomb(fmt: str) -> None:
    """A long, highly compressible file stops at max_seconds with ResourceLimitError."""
    data = encode(np.zeros((8000 * 30, 1), np.float32), 8000, fmt)
    assert decode_bytes(data, max_seconds=31).seconds == pytest.approx(30, abs=0.01)
    with pytest.raises(ResourceLimitError) as info:
        decode_bytes(data, max_seconds=10)
    assert info.value.limit == "max_media_seconds"
    dec = StreamingContainerDecoder(max_seconds=10)
    with pytest.raises(ResourceLimitError):
        for piece in random_split(data, 5, 0):
            dec.feed(piece)
        dec.finish()


def test_decode_file_missing(tmp_path: Path) -> None:
    with pytest.raises(InvalidInputError) as info:
        decode_file(tmp_path / "nope.wav")
    assert field_of(info.value) == "path"
    with pytest.raises(InvalidInputError):
        decode_file(tmp_path)


def test_streaming_api_misuse() -> None:
    dec = StreamingContainerDecoder()
    assert dec.sample_rate is None and dec.channels is None
    with pytest.raises(InvalidInputError) as info:
        dec.feed(b"")
    assert field_of(info.value) == "chunk.data"
    data = media("wav")
    dec.feed(data)
    dec.finish()
    with pytest.raises(SessionStateError):
        dec.feed(data)
    with pytest.raises(SessionStateError):
        dec.finish()


def test_streaming_rejects_non_streamable_format() -> None:
    data = media("aiff")
    assert decode_bytes(data).channels == 2  # fine as a whole file
    with pytest.raises(MediaDecodeError):
        stream_decode(data, [data])


# --------------------------------------------------------------------------- streaming


@pytest.mark.parametrize("fmt", STREAM_FORMATS)
def test_streaming_equals_batch_one_chunk_and_bytewise(fmt: str) -> None:
    data = media(fmt, seconds=0.15)
    batch = decode_bytes(data)
    whole, dec = stream_decode(data, [data])
    np.testing.assert_array_equal(whole, batch.samples)
    assert (dec.sample_rate, dec.channels) == (batch.sample_rate, batch.channels)
    bytewise, _ = stream_decode(data, [data[i : i + 1] for i in range(len(data))])
    np.testing.assert_array_equal(bytewise, batch.samples)


@pytest.mark.parametrize("fmt", STREAM_FORMATS)
@settings(max_examples=12, deadline=None)
@given(cuts=st.lists(st.integers(0, 1 << 20), max_size=40), ones_at=st.integers(0, 1 << 20))
def test_streaming_equals_batch_any_chunking(fmt: str, cuts: list[int], ones_at: int) -> None:
    data = media(fmt)
    size = len(data)
    positions = [c % size for c in cuts] + [(ones_at + k) % size for k in range(64)]
    pieces = [p for p in split_at(data, positions) if p]
    streamed, dec = stream_decode(data, pieces)
    np.testing.assert_array_equal(streamed, decode_bytes(data).samples)
    assert dec.samples_decoded == streamed.shape[0]


@pytest.mark.parametrize("fmt", ["wav", "flac", "vorbis", "opus", "mp3"])
def test_streaming_output_arrives_early_and_memory_is_bounded(fmt: str) -> None:
    """Samples come out while bytes are still arriving, and only a bounded tail is kept."""
    data = media(fmt, seconds=3.0)
    dec = StreamingContainerDecoder()
    got = 0
    for i, piece in enumerate(split_at(data, list(range(4096, len(data), 4096)))):
        got += dec.feed(piece).shape[0]
        demuxer = dec._demuxer
        held = len(demuxer._buf) if demuxer is not None else len(dec._probe)  # type: ignore[attr-defined]
        assert held < 32 * 1024
        if i == len(data) // 4096 // 2:
            assert got > 0.3 * 3.0 * (dec.sample_rate or 0)
    got += dec.finish().shape[0]
    assert got == decode_bytes(data).samples.shape[0]


def test_mp3_with_id3_junk_and_trailer() -> None:
    """ID3v2 tags (skipped without being stored), junk before the first frame and an
    ID3v1 trailer do not change the decoded samples."""
    clean = media("mp3")
    big_tag = b"ID3\x04\x00\x00" + bytes((0, 0x0C, 0, 0)) + bytes(0xC * 128 * 128)  # 196 KiB
    junk = b"\x00" * 100 + b"\xff\xfb" + b"\x00" * 50
    data = big_tag + junk + clean + b"TAG" + bytes(125)
    expected = decode_bytes(clean).samples
    np.testing.assert_array_equal(decode_bytes(data).samples, expected)
    streamed, dec = stream_decode(data, random_split(data, 30, 3))
    assert dec.format == "mp3"
    np.testing.assert_array_equal(streamed, expected)


def test_chained_ogg() -> None:
    """Concatenated Ogg links (as internet radio sends) decode back to back."""
    a, b = media("opus", seconds=0.5, rate=48000), media("opus", seconds=0.3, rate=48000)
    streamed, _ = stream_decode(a + b, random_split(a + b, 9, 4))
    assert streamed.shape[0] == 48000 * 0.8
    np.testing.assert_array_equal(streamed[: 48000 // 2], decode_bytes(a).samples)


def test_wav_with_unknown_data_size() -> None:
    """Live WAV streams write 0xFFFFFFFF as the data size: read to the end."""
    data = bytearray(media("wav"))
    at = data.find(b"data") + 4
    data[at : at + 4] = b"\xff\xff\xff\xff"
    streamed, _ = stream_decode(bytes(data), random_split(bytes(data), 6, 0))
    np.testing.assert_array_equal(streamed, decode_bytes(media("wav")).samples)


def test_wav_with_odd_chunks_before_and_after_data() -> None:
    """Unknown chunks (odd sizes are padded) are skipped; bytes after the data chunk ignored."""
    wav = media("wav")
    at = wav.find(b"data")
    extra = b"LIST" + struct.pack("<I", 5) + b"abcde\x00" + b"junk" + struct.pack("<I", 0)
    data = wav[:at] + extra + wav[at:] + b"id3 " + struct.pack("<I", 3) + b"xyz\x00"
    expected = decode_bytes(wav).samples
    np.testing.assert_array_equal(decode_bytes(data).samples, expected)
    for seed in range(3):
        streamed, _ = stream_decode(data, random_split(data, 12, seed))
        np.testing.assert_array_equal(streamed, expected)


def test_streaming_lossy_matches_file_sample_count() -> None:
    for fmt in sorted(LOSSY):
        data = media(fmt, rate=48000)
        n = sf.info(io.BytesIO(data)).frames
        streamed, _ = stream_decode(data, random_split(data, 11, 5))
        assert streamed.shape[0] == n, fmt


def test_sine_pitch_after_streaming_mono_mp3() -> None:
    data = encode(sine(440, 1.0, 22050), 22050, "mp3")
    streamed, dec = stream_decode(data, random_split(data, 20, 6))
    assert dec.channels == 1
    assert peak_frequency(streamed[:, 0], 22050) == pytest.approx(440, abs=1.0)
