"""Kept media for validation: compact (int16 when exact), spilled to a file, read back exactly."""

from __future__ import annotations

import asyncio
import sys
from pathlib import Path

import numpy as np
import pytest

from streamprint.cache import KeptMedia, samples_sha256
from streamprint.cache.keys import as_int16
from streamprint.config import ServerConfig
from streamprint.dataplane import DataPlane, StreamSpec, ValidationJob
from streamprint.dataplane.engine import NumpyEngine
from streamprint.dataplane.types import Encoding, MediaFormat
from streamprint.engine import dims
from streamprint.engine.decode import PcmDecoder, PcmFormat
from streamprint.engine.fingerprint import AudioBuffer

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "scripts"))
from make_demo_clip import demo_mix


def _s16(seconds: float, rate: int = 22_050) -> bytes:
    stereo = demo_mix(seconds=seconds, rate=rate)
    return (np.clip(stereo, -1.0, 1.0) * 32767.0).astype("<i2").tobytes()


def _decoded(pcm: bytes, rate: int = 22_050) -> np.ndarray:
    return PcmDecoder(PcmFormat("s16le", rate, 2)).decode(pcm)


def _bits(a: np.ndarray) -> np.ndarray:
    return np.ascontiguousarray(a, dtype=np.float32).view(np.uint32)


def test_int16_exactness_check() -> None:
    grid = np.array([[0.0, -1.0], [0.5, 32767 / 32768]], np.float32)
    assert as_int16(grid) is not None
    assert as_int16(np.array([[1.0, 0.0]], np.float32)) is None  # +1.0 is off the int16 range
    assert as_int16(np.array([[-0.0, 0.0]], np.float32)) is None  # -0.0 would come back +0.0
    assert as_int16(np.array([[1e-6, 0.0]], np.float32)) is None  # between grid points
    assert as_int16(np.array([[np.nan, 0.0]], np.float32)) is None


def test_pcm_s16_is_kept_as_int16_spilled_and_read_back_exactly() -> None:
    samples = _decoded(_s16(3.0))
    kept = KeptMedia(22_050, 2, ram_bytes=10_000)
    for start in range(0, samples.shape[0], 2205):
        kept.append(kept.compact(samples[start : start + 2205]))
    assert kept.dtype == "int16" and kept.spooled
    assert kept.nbytes == samples.nbytes // 2 and kept.frames == samples.shape[0]
    loaded = kept.load()
    assert loaded.sample_rate == 22_050
    assert np.array_equal(_bits(loaded.samples), _bits(samples))
    assert kept.sha256() == samples_sha256(AudioBuffer(samples, 22_050))
    kept.close()
    assert kept.load().samples.shape == (0, 2)


@pytest.mark.parametrize("settle_every", [1, 4, 0])
def test_deferred_settling_gives_the_same_media_hash_and_spill(settle_every: int) -> None:
    """Blocks appended with settle=False are hashed (in order) and spilled when they settle,
    before a dtype switch, and by sha256(): the hash and the media are the eager ones."""
    rng = np.random.default_rng(7)
    samples = _decoded(_s16(3.0))
    off = rng.uniform(-0.9, 0.9, size=(300, 2)).astype(np.float32)  # forces the float32 switch
    parts = [samples[i : i + 2205] for i in range(0, samples.shape[0], 2205)]
    parts.insert(len(parts) // 2, off)
    kept = KeptMedia(22_050, 2, ram_bytes=10_000)
    for i, part in enumerate(parts, 1):
        before = kept.spooled
        kept.append(kept.compact(part), settle=False)
        if part is not off:  # the switch to float32 settles what was kept; other appends wait
            assert kept.spooled == before
        if settle_every and i % settle_every == 0:
            kept.settle()
            assert kept.spooled == (kept.nbytes > 10_000)  # past ram_bytes: in the file
    whole = np.concatenate(parts)
    assert kept.sha256() == samples_sha256(AudioBuffer(whole, 22_050))
    assert kept.spooled and kept.dtype == "float32"
    assert np.array_equal(_bits(kept.load().samples), _bits(whole))


@pytest.mark.parametrize("ram_bytes", [10_000, 1 << 30, 0])
@pytest.mark.parametrize("off_grid", [False, True])
def test_blocks_read_the_kept_media_back_as_load_does(ram_bytes: int, off_grid: bool) -> None:
    """blocks(): the values load() gives, from the file (read as consumed) then memory, int16
    or float32 storage; two readers at once do not share a file position."""
    samples = _decoded(_s16(7.0))
    if off_grid:
        samples = samples * np.float32(0.7)
    kept = KeptMedia(22_050, 2, ram_bytes=ram_bytes)
    for start in range(0, samples.shape[0], 4410):
        kept.append(kept.compact(samples[start : start + 4410]))
    kept.append(kept.compact(samples[:100]), settle=False)  # one block left in memory
    whole = np.concatenate([samples, samples[:100]])
    assert kept.spooled == (ram_bytes < 1 << 30)
    first, second = kept.blocks(), kept.blocks()
    assert (first.sample_rate, first.channels, first.frames) == (22_050, 2, whole.shape[0])
    pieces_a, pieces_b = [], []
    for a, b in zip(first.blocks, second.blocks, strict=True):  # interleaved reads
        pieces_a.append(a)
        pieces_b.append(b)
    assert all(p.dtype == np.float32 and p.shape[1] == 2 for p in pieces_a)
    if kept.spooled:
        assert len(pieces_a) > 2  # read in pieces, not whole
    for pieces in (pieces_a, pieces_b):
        assert np.array_equal(_bits(np.concatenate(pieces)), _bits(whole))
    assert np.array_equal(_bits(kept.load().samples), _bits(whole))


def test_blocks_of_closed_media_raise_instead_of_ending_short() -> None:
    samples = _decoded(_s16(7.0))
    kept = KeptMedia(22_050, 2, ram_bytes=0)
    kept.append(kept.compact(samples))
    media = kept.blocks()
    next(media.blocks)
    kept.close()
    with pytest.raises(RuntimeError, match="closed"):
        list(media.blocks)


def test_finished_session_blocks_give_its_media() -> None:
    from streamprint.cache.sessions import FinishedSession
    from streamprint.engine.session import fingerprint_buffer

    samples = _decoded(_s16(1.0))
    final = fingerprint_buffer(AudioBuffer(samples, 22_050), dims.AUDIO_13D)
    kept = KeptMedia(22_050, 2, ram_bytes=0)
    kept.append(kept.compact(samples))
    for stored in (AudioBuffer(samples, 22_050), kept):
        finished = FinishedSession("s", stored, "digest", final, 0.0)
        media = finished.blocks()
        assert media.frames == samples.shape[0]
        assert np.array_equal(_bits(np.concatenate(list(media.blocks))), _bits(samples))



@pytest.mark.parametrize("ram_bytes", [0, 10_000, 1 << 30])
def test_int16_analysis_blocks_give_the_float_fingerprint_bits(ram_bytes: int) -> None:
    """A finished session's analysis_blocks(): 16-bit kept media read as its int16 samples
    (from the file, then memory) gives the fingerprint of the float32 samples bit for bit,
    13D (blocks as read) and 25D (rechunked, native-rate sums), on the engine the validation
    reference runs on; float32 storage falls back to float blocks."""
    from streamprint.cache.sessions import FinishedSession
    from streamprint.engine.fingerprint import AudioBlocks, Pcm16Blocks
    from streamprint.engine.session import fingerprint_buffer

    samples = _decoded(_s16(4.0))
    kept = KeptMedia(22_050, 2, ram_bytes=ram_bytes)
    for start in range(0, samples.shape[0], 4410):
        kept.append(kept.compact(samples[start : start + 4410]))
    kept.append(kept.compact(samples[:100]), settle=False)  # one block left in memory
    whole = AudioBuffer(np.concatenate([samples, samples[:100]]), 22_050)
    final = fingerprint_buffer(whole, dims.AUDIO_13D)
    finished = FinishedSession("s", kept, kept.sha256(), final, 0.0)
    engine = NumpyEngine()
    for dimensions in (dims.AUDIO_13D, dims.AUDIO_25D):
        media = finished.analysis_blocks()
        assert isinstance(media, Pcm16Blocks) and media.frames == whole.samples.shape[0]
        got = engine.fingerprint(media, dimensions)
        assert got.values == engine.fingerprint(finished.blocks(), dimensions).values
        assert got.values == fingerprint_buffer(whole, dimensions).values
    pieces = list(finished.analysis_blocks().blocks)
    assert all(p.dtype == np.int16 for p in pieces)
    assert np.array_equal(_bits(np.concatenate(pieces) / np.float32(32768)), _bits(whole.samples))
    off_grid = KeptMedia(22_050, 2, ram_bytes=ram_bytes)
    off_grid.append(off_grid.compact(samples * np.float32(0.7)))
    assert isinstance(FinishedSession("t", off_grid, "d", final, 0.0).analysis_blocks(), AudioBlocks)



def test_spills_in_one_vectored_write_and_survive_short_writes(monkeypatch: pytest.MonkeyPatch) -> None:
    """A settle writes its blocks with one pwritev at the file's end (in groups of at most
    IOV_MAX buffers), and a short write carries on where it stopped: the media reads back
    exactly."""
    import os

    from streamprint.cache import media as media_module

    samples = _decoded(_s16(2.0))
    calls: list[int] = []
    real = os.pwritev

    def short_pwritev(fd: int, buffers: list[memoryview], offset: int) -> int:
        calls.append(len(buffers))
        total = sum(b.nbytes for b in buffers)
        cut = max(1, total // 2 - 7)  # half, ending inside a buffer
        head: list[memoryview] = []
        for b in buffers:
            take = min(b.nbytes, cut - sum(h.nbytes for h in head))
            if take <= 0:
                break
            head.append(b[:take])
        return real(fd, head, offset)

    monkeypatch.setattr(media_module, "_IOV_MAX", 3)
    monkeypatch.setattr(media_module.os, "pwritev", short_pwritev)
    kept = KeptMedia(22_050, 2, ram_bytes=0)
    for start in range(0, samples.shape[0], 2205):
        kept.append(kept.compact(samples[start : start + 2205]), settle=False)
    kept.settle()
    assert calls and max(calls) <= 3 and len(calls) > 20 // 3
    kept.append(kept.compact(samples[:100]))  # appended after the file exists
    assert np.array_equal(_bits(kept.load().samples), _bits(np.concatenate([samples, samples[:100]])))
    assert kept.nbytes == (samples.shape[0] + 100) * 2 * 2


def test_decoded_s16le_skips_the_check_with_the_same_int16() -> None:
    pcm = _s16(2.0) + np.array([[-32768, 32767], [0, -1]], "<i2").tobytes()  # the extremes
    samples = _decoded(pcm)
    kept = KeptMedia(22_050, 2)
    fast = kept.compact(samples, exact_int16=True)
    assert fast.dtype == np.int16
    assert np.array_equal(fast, as_int16(samples))
    assert np.array_equal(fast, np.frombuffer(pcm, "<i2").reshape(-1, 2))


def test_the_pcm_stream_decoder_says_which_encodings_are_exact_int16() -> None:
    from streamprint.dataplane.engine import _PcmStreamDecoder

    exact = {
        encoding: _PcmStreamDecoder(MediaFormat(encoding=encoding, sample_rate=8_000, channels=1)).exact_int16
        for encoding in (Encoding.PCM_S16LE, Encoding.PCM_F32LE)
    }
    assert exact == {Encoding.PCM_S16LE: True, Encoding.PCM_F32LE: False}


@pytest.mark.parametrize("ram_bytes", [0, 1 << 30])
def test_off_grid_media_switches_to_float32_and_stays_exact(ram_bytes: int) -> None:
    rng = np.random.default_rng(3)
    grid = _decoded(_s16(1.0))
    off = rng.uniform(-0.9, 0.9, size=(700, 2)).astype(np.float32)
    off[0, 0] = -0.0
    parts = [grid[:5000], grid[5000:9000], off, grid[9000:]]
    kept = KeptMedia(22_050, 2, ram_bytes=ram_bytes)
    expected_bytes = 0
    for part in parts:
        block = kept.compact(part)
        expected_bytes += kept.added_bytes(block)
        kept.append(block)
        assert kept.nbytes == expected_bytes
    assert kept.dtype == "float32" and kept.spooled == (ram_bytes == 0)
    whole = np.concatenate(parts)
    assert np.array_equal(_bits(kept.load().samples), _bits(whole))
    assert kept.sha256() == samples_sha256(AudioBuffer(whole, 22_050))


def test_honest_stream_validates_from_spooled_int16_media() -> None:
    """A real engine, a raw PCM stream kept as int16 in a temporary file: validation passes
    and matches the fingerprint of the decoded media."""
    rate = 22_050
    pcm = _s16(6.0, rate)
    config = ServerConfig(workers=1, session_spool_after_bytes=4096)
    spec = StreamSpec(MediaFormat(Encoding.PCM_S16LE, rate, 2), dims.AUDIO_13D, 1.0)

    async def run() -> None:
        plane = DataPlane(config, NumpyEngine())
        chunk = rate * 4 // 10  # 100 ms of s16le stereo
        async with plane.open_stream(spec) as stream:
            for seq, start in enumerate(range(0, len(pcm), chunk)):
                data = pcm[start : start + chunk]
                stream.accept_chunk(seq, len(data))
                await stream.push(data)
            _, final = await stream.finish()
        finished = plane.sessions.get(stream.session_id)
        assert isinstance(finished.stored, KeptMedia)
        assert finished.stored.dtype == "int16" and finished.stored.spooled
        assert np.array_equal(_bits(finished.media.samples), _bits(_decoded(pcm, rate)))
        assert final.values == finished.final.values
        (outcome,) = await plane.validate([ValidationJob(session_id=stream.session_id)], None)
        assert not isinstance(outcome, BaseException)
        assert outcome.report.passed
        plane.close()

    asyncio.run(run())


def test_the_hash_is_kept_up_to_date_without_reading_the_media_back(monkeypatch: pytest.MonkeyPatch) -> None:
    import hashlib

    samples = _decoded(_s16(2.0))
    kept = KeptMedia(22_050, 2, ram_bytes=10_000)
    for start in range(0, samples.shape[0], 3000):
        kept.append(kept.compact(samples[start : start + 3000]))

    def no_read_back(*args: object) -> None:
        raise AssertionError("sha256 read the kept media back")

    monkeypatch.setattr(KeptMedia, "_chunks", no_read_back)
    # 16-bit media hashes as the int16 PCM bytes a raw s16le client sent, plus the trailer
    trailer = f"pcm:s16:22050:{samples.shape[0]}x2;".encode()
    assert kept.sha256() == hashlib.sha256(_s16(2.0) + trailer).hexdigest()
    assert kept.sha256() == samples_sha256(AudioBuffer(samples, 22_050))


def test_media_off_the_16_bit_grid_hashes_as_float32() -> None:
    import hashlib

    grid = _decoded(_s16(0.5))
    off = grid.copy()
    off[100, 1] += np.float32(1e-6)
    f32_trailer = f"pcm:f32:22050:{off.shape[0]}x2;".encode()
    assert samples_sha256(AudioBuffer(off, 22_050)) == hashlib.sha256(off.tobytes() + f32_trailer).hexdigest()
    negative_zero = np.zeros((10, 1), np.float32)
    negative_zero[3, 0] = -0.0
    assert samples_sha256(AudioBuffer(negative_zero, 8000)) != samples_sha256(
        AudioBuffer(np.zeros((10, 1), np.float32), 8000)
    )
    assert samples_sha256(AudioBuffer(negative_zero, 8000)) == (
        hashlib.sha256(negative_zero.tobytes() + b"pcm:f32:8000:10x1;").hexdigest()
    )
