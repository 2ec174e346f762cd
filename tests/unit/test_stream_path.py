"""The cheap path of a live stream: queued analysis, inline PCM chunks, grouped ratios."""

from __future__ import annotations

import asyncio
import itertools
import sys
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from child import python_stdout

from streamprint.config import ServerConfig
from streamprint.dataplane import DataPlane, StreamSpec
from streamprint.dataplane.engine import NumpyEngine
from streamprint.dataplane.types import Encoding, MediaFormat
from streamprint.engine import dims
from streamprint.engine.decode import PcmDecoder, PcmFormat
from streamprint.engine.session import AudioSession, SessionConfig
from streamprint.engine.stats import RatioGroup, RatioOfSums

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "scripts"))
from make_demo_clip import demo_mix

RATE = 44_100
CHUNK = RATE // 10  # 100 ms


def _pcm(seconds: float) -> bytes:
    stereo = demo_mix(seconds=seconds, rate=RATE)
    return (np.clip(stereo, -1.0, 1.0) * 32767.0).astype("<i2").tobytes()


def test_analysis_runs_only_when_an_update_falls_due() -> None:
    samples = PcmDecoder(PcmFormat("s16le", RATE, 2)).decode(_pcm(3.05))
    session = AudioSession(SessionConfig(RATE, 2, dims.AUDIO_13D, update_interval_s=1.0))
    due_at = []
    for k, start in enumerate(range(0, samples.shape[0], CHUNK)):
        part = samples[start : start + CHUNK]
        due = session.analysis_due(part.shape[0])
        frames_before = session._features.frames
        updates = session.push(part)
        assert bool(updates) == due  # every due chunk brings its update, no other does
        if not due:
            assert session._features.frames == frames_before  # queued, not analysed
        else:
            due_at.append(k)
    assert due_at == [9, 19, 29]
    # 25D needs the native-rate accumulators on every push
    wide = AudioSession(SessionConfig(RATE, 2, dims.AUDIO_25D, update_interval_s=1.0))
    assert wide.analysis_due(1)


def test_queued_analysis_equals_unqueued_bit_for_bit() -> None:
    """Tiny chunks (queued) and one big block per update (never queued) give the same bits
    (13D; the native-rate 25D accumulators agree to float64 rounding, see engine/native.py)."""
    samples = PcmDecoder(PcmFormat("s16le", RATE, 2)).decode(_pcm(4.3))
    small = AudioSession(SessionConfig(RATE, 2, dims.AUDIO_13D, update_interval_s=1.0))
    big = AudioSession(SessionConfig(RATE, 2, dims.AUDIO_13D, update_interval_s=1.0))
    a = [u for s in range(0, samples.shape[0], 301) for u in small.push(samples[s : s + 301])]
    b = [u for s in range(0, samples.shape[0], RATE) for u in big.push(samples[s : s + RATE])]
    a.append(small.finish())
    b.append(big.finish())
    assert [(u.values, u.confidence, u.revision) for u in a] == [
        (u.values, u.confidence, u.revision) for u in b
    ]


def _counting_plane(config: ServerConfig) -> tuple[DataPlane, list[int]]:
    """A real data plane whose hand-offs to the stream worker pool are counted (``[count,
    deferred count]``)."""
    plane = DataPlane(config, NumpyEngine())
    pooled = [0, 0]
    original = plane.run_stream_work

    async def counting(fn: Any, *args: object, deferred: bool = False) -> Any:
        pooled[0] += 1
        pooled[1] += deferred
        return await original(fn, *args, deferred=deferred)

    plane.run_stream_work = counting  # type: ignore[method-assign]
    return plane, pooled


def test_plane_runs_non_due_pcm_chunks_inline() -> None:
    pcm = _pcm(3.0)
    spec = StreamSpec(MediaFormat(Encoding.PCM_S16LE, RATE, 2), dims.AUDIO_13D, 1.0)

    async def run() -> tuple[list[Any], list[int], int]:
        # (the kept media's memory bound sends chunks to the pool too: not tested here)
        plane, pooled = _counting_plane(ServerConfig(workers=1, session_spool_after_bytes=1 << 30))
        updates: list[Any] = []
        step = CHUNK * 4
        chunks = 0
        async with plane.open_stream(spec) as stream:
            for seq, start in enumerate(range(0, len(pcm), step)):
                data = pcm[start : start + step]
                stream.accept_chunk(seq, len(data))
                updates += await stream.push(data)
                chunks += 1
            tail, final = await stream.finish()
        plane.close()
        return [*updates, *tail, final], pooled, chunks

    got, pooled, chunks = asyncio.run(run())
    # the first chunk creates the session (pool); then only the update chunks and finish,
    # the finish as deferred work (it yields to other streams' live chunks)
    assert chunks == 30 and pooled == [1 + 3 + 1, 1]
    samples = PcmDecoder(PcmFormat("s16le", RATE, 2)).decode(pcm)
    direct = AudioSession(SessionConfig(RATE, 2, dims.AUDIO_13D, update_interval_s=1.0))
    want = [u for s in range(0, samples.shape[0], CHUNK) for u in direct.push(samples[s : s + CHUNK])]
    want.append(direct.finish())
    assert [(u.values, u.confidence, u.revision, u.final) for u in got] == [
        (u.values, u.confidence, u.revision, u.final) for u in want
    ]


@pytest.mark.parametrize("spool_after", [192 * 1024, 30_000])
def test_kept_media_in_memory_stays_within_the_spool_bound(spool_after: int) -> None:
    """Chunks on the event loop keep their media unhashed; one that would take the media
    held in memory past --session-spool-after-bytes goes to the worker, which hashes and
    spills, so the bound holds after every chunk, and the stream's media hash is exact."""
    from streamprint.cache.keys import samples_sha256
    from streamprint.engine.fingerprint import AudioBuffer

    pcm = _pcm(3.0)
    spec = StreamSpec(MediaFormat(Encoding.PCM_S16LE, RATE, 2), dims.AUDIO_13D, 1.0)
    step = CHUNK * 4  # 17,640 bytes: 100 ms of stereo 16-bit

    async def run() -> tuple[int, int, str | None]:
        plane, pooled = _counting_plane(ServerConfig(workers=1, session_spool_after_bytes=spool_after))
        async with plane.open_stream(spec) as stream:
            for seq, start in enumerate(range(0, len(pcm), step)):
                data = pcm[start : start + step]
                stream.accept_chunk(seq, len(data))
                await stream.push(data)
                kept = stream._kept
                assert kept is not None and kept.memory_bytes <= spool_after
            _, _ = await stream.finish()
            kept = stream._kept
            digest = kept.sha256() if kept is not None else None
        plane.close()
        return pooled[0], len(range(0, len(pcm), step)), digest

    pooled, chunks, digest = asyncio.run(run())
    samples = PcmDecoder(PcmFormat("s16le", RATE, 2)).decode(pcm)
    assert digest == samples_sha256(AudioBuffer(samples, RATE))
    if spool_after >= RATE * 4:
        # a second (176,400 bytes) fits: the first chunk, the three updates, finish, and the
        # one chunk (the 12th) that passes the bound and opens the file; from then on every
        # update's settle empties the memory
        assert pooled == 1 + 3 + 1 + 1
    else:  # one chunk fits in 30,000 bytes: every second chunk goes to the pool
        assert pooled >= chunks // 2


@pytest.mark.parametrize("seed", range(5))
def test_ratio_group_equals_separate_ratios_bit_for_bit(seed: int) -> None:
    rng = np.random.default_rng(seed)
    k, n = 5, int(rng.integers(50, 400))
    num = rng.random((k, n)) * rng.random((k, 1)) * 1e3
    den = (rng.random((k, n)) < 0.8) * rng.random((k, n))
    group = RatioGroup(k, empty_values=(0.5,) * k)
    single = [RatioOfSums(empty_value=0.5) for _ in range(k)]
    start = 0
    while start < n:
        stop = min(n, start + int(rng.integers(1, 90)))
        group.add(num[:, start:stop], den[:, start:stop])
        for i, ratio in enumerate(single):
            ratio.add(num[i, start:stop], den[i, start:stop])
        start = stop
    for i, ratio in enumerate(single):
        member = group.member(i)
        assert (member.num, member.den, member.value, member.std_error()) == (
            ratio.num, ratio.den, ratio.value, ratio.std_error()
        )
        assert member.num == pytest.approx(float(np.sum(num[i])), rel=1e-12)


def test_auto_backend_loads_only_the_chosen_runtime() -> None:
    """``--backend auto`` times the candidates in a child process; the server process then
    holds only the winner's runtime (and states the child's reason and candidates)."""
    import json

    code = (
        "import json, sys\n"
        "from streamprint.dataplane.engine import engine_for\n"
        "s = engine_for('auto', 'auto').selection\n"
        "loaded = [m for m in ('onnxruntime', 'openvino') if m in sys.modules]\n"
        "print(json.dumps({'backend': s.backend, 'reason': s.reason, 'loaded': loaded,\n"
        "                  'requested': s.requested_backend,\n"
        "                  'candidates': [c.backend for c in s.candidates]}))\n"
    )
    got = json.loads(python_stdout(code).strip().splitlines()[-1])
    assert got["requested"] == "auto" and "--backend auto" in got["reason"]
    assert "numpy" in got["candidates"]
    want = [] if got["backend"] == "numpy" else [got["backend"]]
    assert got["loaded"] == want


def test_an_audio_only_server_process_does_not_load_pyav() -> None:
    """PyAV (about 16 MB resident) is loaded by the first video request, not at start-up,
    when the video selection is the numpy reference (no start-up check runs)."""
    code = (
        "import sys\n"
        "import streamprint.api.server\n"
        "from streamprint.config import ServerConfig\n"
        "from streamprint.dataplane import DataPlane\n"
        "plane = DataPlane(ServerConfig(workers=1, backend='numpy'))\n"
        "print(plane.video.backend, 'av' in sys.modules)\n"
        "from streamprint.engine.video import VideoSession\n"
        "print('av' in sys.modules)\n"
        "plane.close()\n"
    )
    assert python_stdout(code).split() == ["numpy", "False", "True"]


def _random_cuts(n: int, max_size: int, seed: int) -> list[int]:
    """Cut positions ``0 = c_0 < c_1 < ... = n`` with random piece sizes of 1..``max_size - 1``."""
    sizes = np.random.default_rng(seed).integers(1, max_size, size=n)
    cuts = np.concatenate(([0], np.cumsum(sizes)))
    return [*cuts[cuts < n].tolist(), n]


def _pcm16_with_extremes(seconds: float, channels: int, seed: int) -> np.ndarray:
    """int16 ``[n, channels]``: music-like media with full-scale samples, silence and
    opposite channels (``l + r`` of 0 from ``-k`` and ``k``)."""
    rng = np.random.default_rng(seed)
    mono = demo_mix(seconds=seconds, rate=RATE).mean(axis=1)
    pcm = np.stack([np.roll(mono, 37 * c) for c in range(channels)], axis=1)
    pcm = (np.clip(pcm, -1.0, 1.0) * 32767.0).astype(np.int16)
    pcm[1000:1400] = 0
    pcm[2000:2010] = np.iinfo(np.int16).min
    pcm[3000:3010] = np.iinfo(np.int16).max
    if channels >= 2:
        pcm[4000:4100, 1] = -pcm[4000:4100, 0]
    pcm[rng.integers(0, pcm.shape[0], 50)] = rng.integers(-32768, 32768, (50, channels), dtype=np.int16)
    return pcm


@pytest.mark.parametrize(
    ("channels", "dimensions"),
    [(1, dims.AUDIO_13D), (2, dims.AUDIO_13D), (2, dims.AUDIO_25D), (3, dims.AUDIO_13D)],
)
def test_push_int16_equals_the_float_push_bit_for_bit(channels: int, dimensions: tuple[str, ...]) -> None:
    """16-bit samples pushed as int16 (mono downmixed from the integers; 25D and more than
    two channels convert) give every update and the final fingerprint of pushing the same
    samples as floats, whatever the chunking."""
    pcm = _pcm16_with_extremes(3.3, channels, seed=channels)
    floats = pcm.astype(np.float32) * np.float32(2.0**-15)
    for seed in range(3):
        cuts = _random_cuts(pcm.shape[0], 9000, seed)
        as_int = AudioSession(SessionConfig(RATE, channels, dimensions, update_interval_s=0.5))
        as_float = AudioSession(SessionConfig(RATE, channels, dimensions, update_interval_s=0.5))
        got = [u for a, b in itertools.pairwise(cuts) for u in as_int.push_int16(pcm[a:b])]
        want = [u for a, b in itertools.pairwise(cuts) for u in as_float.push(floats[a:b])]
        got.append(as_int.finish())
        want.append(as_float.finish())
        assert len(got) == 7
        assert [(u.values, u.confidence, u.revision, u.final) for u in got] == [
            (u.values, u.confidence, u.revision, u.final) for u in want
        ]


def test_int16_and_float_pushes_mixed_in_one_session_give_the_float_bits() -> None:
    """A session fed int16 and float32 pieces in turn (its queue then holds both kinds) gives
    the updates and final fingerprint of the same samples pushed as floats."""
    pcm = _pcm16_with_extremes(2.6, 2, seed=7)
    floats = pcm.astype(np.float32) * np.float32(2.0**-15)
    cuts = _random_cuts(pcm.shape[0], 7000, 11)
    mixed = AudioSession(SessionConfig(RATE, 2, dims.AUDIO_13D, update_interval_s=0.5))
    as_float = AudioSession(SessionConfig(RATE, 2, dims.AUDIO_13D, update_interval_s=0.5))
    got, want = [], []
    for i, (a, b) in enumerate(itertools.pairwise(cuts)):
        got += mixed.push_int16(pcm[a:b]) if i % 3 else mixed.push(floats[a:b])
        want += as_float.push(floats[a:b])
    got.append(mixed.finish())
    want.append(as_float.finish())
    assert [(u.values, u.confidence) for u in got] == [(u.values, u.confidence) for u in want]


def test_queued_int16_audio_costs_no_copy() -> None:
    """Between two analyses a session queues int16 pieces as they are: the caller's arrays
    (a live stream's kept media holds the same ones), not a float32 mono copy of each."""
    import tracemalloc

    pcm = _pcm16_with_extremes(2.0, 2, seed=3)
    chunks = [pcm[i : i + 4410].copy() for i in range(RATE, RATE + 8 * 4410, 4410)]
    session = AudioSession(SessionConfig(RATE, 2, dims.AUDIO_13D, update_interval_s=1.0))
    session.push_int16(pcm[:RATE])  # the first update: state allocated, queue empty
    tracemalloc.start()
    try:
        for chunk in chunks:  # 0.8 s: no update, no analysis
            assert session.push_int16(chunk) == []
        queued_bytes, _ = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    copies = 8 * 4410 * 4  # what float32 mono pieces of them would take
    assert queued_bytes < copies / 8, queued_bytes


def test_push_int16_checks_its_input_and_the_media_limit() -> None:
    from streamprint.errors import InvalidInputError, ResourceLimitError

    session = AudioSession(SessionConfig(RATE, 2, dims.AUDIO_13D, max_media_seconds=0.5))
    for bad in (np.zeros((10, 1), np.int16), np.zeros(10, np.int16), np.zeros((10, 2), np.int32)):
        with pytest.raises(InvalidInputError) as raised:
            session.push_int16(bad)
        assert raised.value.violations[0].field == "chunk.data"
    session.push_int16(np.zeros((RATE // 2, 2), np.int16))
    with pytest.raises(ResourceLimitError):
        session.push_int16(np.zeros((1, 2), np.int16))


def test_decode_int16_is_decode_without_the_conversion_in_any_chunking() -> None:
    pcm = _pcm(0.7)
    whole = PcmDecoder(PcmFormat("s16le", RATE, 2)).decode(pcm)
    for seed in range(3):
        decoder = PcmDecoder(PcmFormat("s16le", RATE, 2))
        parts = [decoder.decode_int16(pcm[a:b]) for a, b in itertools.pairwise(_random_cuts(len(pcm), 5000, seed))]
        decoder.finish()
        got = np.concatenate(parts)
        assert got.dtype == np.int16 and got.shape == whole.shape
        assert np.array_equal((got.astype(np.float32) * np.float32(2.0**-15)).view(np.uint32), whole.view(np.uint32))
    with pytest.raises(ValueError, match="s16le"):
        PcmDecoder(PcmFormat("f32le", RATE, 2)).decode_int16(b"\0" * 8)


def test_decode_int16_reads_bytes_in_place_and_copies_anything_mutable() -> None:
    """A bytes chunk of whole frames is shared (immutable); a bytearray, a memoryview or a
    chunk completing a carried partial frame gives an array later writes cannot change."""
    pcm = _pcm(0.1)
    shared = PcmDecoder(PcmFormat("s16le", RATE, 2)).decode_int16(pcm)
    assert np.shares_memory(shared, np.frombuffer(pcm, np.uint8)) and not shared.flags.writeable
    for mutable in (bytearray(pcm), memoryview(bytearray(pcm))):
        got = PcmDecoder(PcmFormat("s16le", RATE, 2)).decode_int16(mutable)
        before = got.copy()
        mutable[:8] = b"\x7f" * 8
        assert np.array_equal(got, before)
    carried = PcmDecoder(PcmFormat("s16le", RATE, 2))
    head = carried.decode_int16(pcm[:6])
    tail = carried.decode_int16(pcm[6:])
    assert np.array_equal(np.concatenate((head, tail)), shared)


@pytest.mark.parametrize("channels", [1, 2])
def test_an_s16le_stream_equals_the_same_samples_sent_as_f32le(channels: int) -> None:
    """Through the data plane: the int16 path (raw s16le) and the float path (f32le of the
    same values) give the same updates, final fingerprint and kept media; the kept media's
    hash is the int16 form's (the PCM bytes as sent plus the trailer)."""
    import hashlib

    pcm = _pcm16_with_extremes(2.4, channels, seed=7)
    floats = pcm.astype(np.float32) * np.float32(2.0**-15)

    async def run(encoding: Encoding, data: bytes) -> tuple[list[Any], str, np.ndarray]:
        plane = DataPlane(ServerConfig(workers=1), NumpyEngine())
        spec = StreamSpec(MediaFormat(encoding, RATE, channels), dims.AUDIO_13D, 1.0)
        step = 4410 * channels * (2 if encoding is Encoding.PCM_S16LE else 4) + 3  # cuts frames
        updates: list[Any] = []
        async with plane.open_stream(spec) as stream:
            for seq, start in enumerate(range(0, len(data), step)):
                stream.accept_chunk(seq, len(data[start : start + step]))
                updates += await stream.push(data[start : start + step])
            tail, final = await stream.finish()
            finished = plane.sessions.get(stream.session_id)
        plane.close()
        return [*updates, *tail, final], finished.media_sha256, finished.media.samples

    ints, int_hash, int_media = asyncio.run(run(Encoding.PCM_S16LE, pcm.astype("<i2").tobytes()))
    flts, flt_hash, flt_media = asyncio.run(run(Encoding.PCM_F32LE, floats.astype("<f4").tobytes()))
    assert len(ints) == 3
    assert [(u.values, u.confidence, u.revision) for u in ints] == [(u.values, u.confidence, u.revision) for u in flts]
    assert np.array_equal(int_media.view(np.uint32), flt_media.view(np.uint32))
    trailer = f"pcm:s16:{RATE}:{pcm.shape[0]}x{channels};".encode()
    assert int_hash == flt_hash == hashlib.sha256(pcm.astype("<i2").tobytes() + trailer).hexdigest()
