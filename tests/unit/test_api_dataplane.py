"""The data plane with a fake engine: limits, kept media budget, single flight, draining."""

from __future__ import annotations

import asyncio
import dataclasses
import os
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from numpy.typing import NDArray
from test_file_digests import back_date, later_clock

from streamprint.cache import FileDigests, media_sha256
from streamprint.config import ServerConfig
from streamprint.dataplane import (
    DataPlane,
    FingerprintJob,
    MediaFormat,
    MediaInput,
    ModelDescription,
    StreamSpec,
    ValidationJob,
)
from streamprint.dataplane.types import Encoding
from streamprint.engine import dims
from streamprint.engine.fingerprint import AudioBlocks, AudioBuffer, Fingerprint
from streamprint.engine.validation import validate
from streamprint.errors import InvalidInputError, ResourceLimitError, SessionStateError

RATE = 1000  # fake engine: one byte = one sample at 1 kHz, mono


class FakeDecoder:
    def __init__(self, header: int) -> None:
        self._header = header  # bytes swallowed before any sample comes out
        self.sample_rate: int | None = None
        self.channels: int | None = None

    def feed(self, data: bytes) -> NDArray[np.float32]:
        if self._header:
            taken = min(self._header, len(data))
            self._header -= taken
            data = data[taken:]
            if self._header:
                return np.zeros((0, 0), np.float32)
        self.sample_rate, self.channels = RATE, 1
        return (np.frombuffer(data, np.uint8).astype(np.float32) / 255.0)[:, None]

    def finish(self) -> NDArray[np.float32]:
        return np.zeros((0, 1), np.float32)


class FakeSession:
    def __init__(self, dimensions: tuple[str, ...], interval: float) -> None:
        self._dims = dimensions
        self._every = int(interval * RATE)
        self._seen = 0
        self._revision = 0
        self._sum = 0.0

    def _fp(self, final: bool) -> Fingerprint:
        self._revision += 1
        mean = self._sum / max(1, self._seen)
        return Fingerprint(
            dims.algorithm_for(self._dims),
            dict.fromkeys(self._dims, mean),
            dict.fromkeys(self._dims, 1.0),
            self._revision,
            self._seen / RATE,
            final,
        )

    def push(self, samples: NDArray[np.float32]) -> list[Fingerprint]:
        updates = []
        for value in samples[:, 0]:
            self._seen += 1
            self._sum += float(value)
            if self._seen % self._every == 0:
                updates.append(self._fp(False))
        return updates

    def finish(self) -> Fingerprint:
        return self._fp(True)


class FakeEngine:
    def __init__(self, header: int = 0, compute_delay: float = 0.0) -> None:
        self.header = header
        self.compute_delay = compute_delay
        self.fingerprints = 0
        #: The dimensions of every whole-media fingerprint computed, in order.
        self.computed: list[tuple[str, ...]] = []
        self._lock = threading.Lock()

    def models(self) -> tuple[ModelDescription, ...]:
        return (ModelDescription("fake", "1", "none", "fp32"),)

    def container_formats(self) -> tuple[str, ...]:
        return ("fake",)

    def new_decoder(self, fmt: MediaFormat, *, max_seconds: float) -> FakeDecoder:
        return FakeDecoder(self.header)

    def decode(self, data: bytes, fmt: MediaFormat, *, max_seconds: float) -> AudioBlocks:
        samples = (np.frombuffer(data, np.uint8).astype(np.float32) / 255.0)[:, None]
        return AudioBlocks.of(AudioBuffer(samples, RATE), 7)

    def new_session(
        self,
        *,
        sample_rate: int,
        channels: int,
        dimensions: tuple[str, ...],
        update_interval_s: float,
        max_seconds: float,
    ) -> FakeSession:
        return FakeSession(dimensions, update_interval_s)

    def fingerprint(self, media: AudioBlocks, dimensions: tuple[str, ...]) -> Fingerprint:
        with self._lock:
            self.fingerprints += 1
            self.computed.append(dimensions)
        time.sleep(self.compute_delay)
        session = FakeSession(dimensions, 1e9)
        for block in media.blocks:
            session.push(block)
        return session.finish()

    def validate(
        self,
        reference: Mapping[str, float],
        candidate: Mapping[str, float],
        *,
        names: Sequence[str],
        similarity_threshold: float,
    ) -> Any:
        return validate(
            reference, candidate, names=names, similarity_threshold=similarity_threshold
        )


CONFIG = ServerConfig(engine_threads=2, max_streams=2, max_requests=1, session_retain_max_bytes=10**6)
SPEC = StreamSpec(MediaFormat(), dims.AUDIO_13D, 0.5)


def _plane(engine: FakeEngine | None = None, **overrides: Any) -> DataPlane:
    return DataPlane(dataclasses.replace(CONFIG, **overrides), engine or FakeEngine())  # type: ignore[arg-type]


def test_stream_updates_final_and_kept_media() -> None:
    async def run() -> None:
        plane = _plane()
        async with plane.open_stream(SPEC) as stream:
            stream.accept_chunk(0, 800)
            updates = await stream.push(bytes(range(200)) * 4)
            stream.accept_chunk(1, 400)
            updates += await stream.push(b"\x10" * 400)
            tail, final = await stream.finish()
        assert [u.revision for u in updates] == [1, 2] and tail == []
        assert final.final and final.revision == 3 and final.media_seconds == pytest.approx(1.2)
        kept = plane.sessions.get(stream.session_id)
        assert kept.media.samples.shape == (1200, 1) and kept.final == final
        assert plane.live_media_bytes == 0 and plane.active_streams == 0
        outcome = (await plane.validate([ValidationJob(session_id=stream.session_id)], None))[0]
        assert not isinstance(outcome, BaseException) and outcome.report.passed
        plane.close()

    asyncio.run(run())


def test_chunk_checks() -> None:
    async def run() -> None:
        plane = _plane(max_chunk_bytes=10)
        async with plane.open_stream(SPEC) as stream:
            with pytest.raises(InvalidInputError) as seq:
                stream.accept_chunk(1, 5)
            assert seq.value.violations[0].field == "chunk.seq"
            with pytest.raises(ResourceLimitError) as size:
                stream.accept_chunk(0, 11)
            assert size.value.limit == "chunk_bytes"
        plane.close()

    asyncio.run(run())


def test_stream_admission_and_draining() -> None:
    async def run() -> None:
        plane = _plane()
        async with plane.open_stream(SPEC), plane.open_stream(SPEC):
            with pytest.raises(ResourceLimitError) as full:
                async with plane.open_stream(SPEC):
                    pass
            assert full.value.limit == "concurrent_streams" and full.value.retry_after_s == 1.0
        plane.start_draining()
        with pytest.raises(ResourceLimitError) as draining:
            async with plane.open_stream(SPEC):
                pass
        assert draining.value.limit == "draining"
        assert plane.counters.streams_rejected == 1
        plane.close()

    asyncio.run(run())


def test_undecodable_input_is_bounded() -> None:
    async def run() -> None:
        plane = _plane(FakeEngine(header=10**9), max_buffered_bytes=1000)
        async with plane.open_stream(SPEC) as stream:
            await stream.push(b"\0" * 600)
            with pytest.raises(ResourceLimitError) as info:
                await stream.push(b"\0" * 600)
        assert info.value.limit == "session_buffered_bytes"
        plane.close()

    asyncio.run(run())


def test_media_over_the_keep_cap_is_not_kept() -> None:
    async def run() -> None:
        plane = _plane(session_retain_max_bytes=2000)  # 500 float32 samples
        async with plane.open_stream(SPEC) as stream:
            await stream.push(b"\1" * 400)
            assert plane.live_media_bytes == 1600
            await stream.push(b"\1" * 400)
            assert plane.live_media_bytes == 0
            await stream.finish()
        with pytest.raises(SessionStateError, match="retain"):
            plane.sessions.get(stream.session_id)
        plane.close()

    asyncio.run(run())


def test_live_media_budget_is_shared() -> None:
    async def run() -> None:
        plane = _plane(session_store_max_bytes=3000, session_retain_max_bytes=3000)
        async with plane.open_stream(SPEC) as a, plane.open_stream(SPEC) as b:
            await a.push(b"\1" * 500)  # 2000 bytes kept
            await b.push(b"\1" * 500)  # would exceed 3000: b stops keeping
            assert plane.live_media_bytes == 2000
            await b.finish()
            with pytest.raises(SessionStateError, match="budget"):
                plane.sessions.get(b.session_id)
        assert plane.live_media_bytes == 0
        plane.close()

    asyncio.run(run())


def test_still_streaming_session_cannot_be_validated() -> None:
    async def run() -> None:
        plane = _plane()
        async with plane.open_stream(SPEC) as stream:
            (result,) = await plane.validate([ValidationJob(session_id=stream.session_id)], None)
        assert isinstance(result, SessionStateError)
        plane.close()

    asyncio.run(run())


def test_identical_concurrent_requests_compute_once_then_hit_the_cache() -> None:
    async def run() -> None:
        engine = FakeEngine(compute_delay=0.2)
        plane = _plane(engine, max_requests=4)
        job = FingerprintJob(MediaInput(data=b"\5" * 100), dims.AUDIO_25D)
        a, b = await asyncio.gather(plane.fingerprint(job), plane.fingerprint(job))
        assert engine.fingerprints == 1 and a.fingerprint == b.fingerprint
        c = await plane.fingerprint(job)
        assert c.cached and engine.fingerprints == 1
        assert plane.cache.stats().hits == 1
        plane.close()

    asyncio.run(run())


def test_work_whose_callers_went_away_still_counts_against_max_requests() -> None:
    """Two calls time out (cancelled) while their computations run on: the slots used to
    come back at once, so a client could pile up unbounded work behind --max-requests."""

    async def run() -> None:
        engine = FakeEngine(compute_delay=0.4)
        plane = _plane(engine, max_requests=2)
        jobs = [FingerprintJob(MediaInput(data=bytes([i]) * 100), dims.AUDIO_25D) for i in range(3)]
        for job in jobs[:2]:
            with pytest.raises(TimeoutError):
                await asyncio.wait_for(plane.fingerprint(job), 0.05)
        assert plane._active_requests == 0
        with pytest.raises(ResourceLimitError) as busy:
            await plane.fingerprint(jobs[2])
        assert busy.value.limit == "concurrent_requests"
        assert await _until(lambda: not plane._inflight)  # the orphans finish (into the cache)
        assert not (await plane.fingerprint(jobs[2])).cached
        assert (await plane.fingerprint(jobs[0])).cached  # the orphan's result was kept
        plane.close()

    asyncio.run(run())


def test_a_running_prefetch_does_not_take_a_request_slot() -> None:
    async def run() -> None:
        engine = FakeEngine(compute_delay=0.3)
        plane = _plane(engine, validation_prefetch=True, max_requests=1)
        await stream_one(plane)
        assert await _until(lambda: plane._prefetch_running == 1)
        other = FingerprintJob(MediaInput(data=b"\7" * 100), dims.AUDIO_25D)
        assert not (await plane.fingerprint(other)).cached  # admitted beside the prefetch
        plane.close()

    asyncio.run(run())


def test_request_admission_and_batch_limits() -> None:
    async def run() -> None:
        plane = _plane(FakeEngine(compute_delay=0.3), max_batch_items=2)
        job = FingerprintJob(MediaInput(data=b"\5" * 100), dims.AUDIO_25D)
        slow = asyncio.ensure_future(plane.fingerprint(job))
        await asyncio.sleep(0.05)
        with pytest.raises(ResourceLimitError) as busy:
            await plane.fingerprint(FingerprintJob(MediaInput(data=b"\6" * 10), dims.AUDIO_25D))
        assert busy.value.limit == "concurrent_requests"
        await slow
        with pytest.raises(ResourceLimitError, match="limit is 2"):
            await plane.fingerprint_batch([job, job, job])
        bad = InvalidInputError("bad item")
        results = await plane.fingerprint_batch([bad, job])
        assert results[0] is bad and not isinstance(results[1], BaseException)
        plane.close()

    asyncio.run(run())


def test_server_path_hit_skips_the_read_and_a_changed_file_is_recomputed(tmp_path: Path) -> None:
    async def run() -> None:
        path = tmp_path / "clip.raw"
        path.write_bytes(b"\5" * 100)
        back_date(path)
        plane = _plane(media_root=str(tmp_path), max_requests=4)
        plane.file_digests = FileDigests(clock=lambda: later_clock(path))
        engine = plane.engine
        assert isinstance(engine, FakeEngine)
        job = FingerprintJob(MediaInput(server_path="clip.raw"), dims.AUDIO_25D)
        first = await plane.fingerprint(job)
        assert not first.cached and first.media_sha256 == media_sha256(b"\5" * 100)
        reads: list[Path] = []
        read_file = plane._read_file

        def counting(p: Path, requested: str) -> tuple[bytes, os.stat_result]:
            reads.append(p)
            return read_file(p, requested)

        plane._read_file = counting  # type: ignore[method-assign,assignment]
        second = await plane.fingerprint(job)
        assert second.cached and second.media_sha256 == first.media_sha256 and reads == []
        assert second.fingerprint == first.fingerprint
        stats = plane.cache.stats()
        assert (stats.hits, stats.misses) == (1, 1)
        # the same bytes sent inline hit the same entry (the key is the content, not the path)
        inline = await plane.fingerprint(FingerprintJob(MediaInput(data=b"\5" * 100), dims.AUDIO_25D))
        assert inline.cached
        # new content under the same path: read, hashed and computed again
        path.write_bytes(b"\7" * 100)
        back_date(path)
        third = await plane.fingerprint(job)
        assert not third.cached and third.media_sha256 == media_sha256(b"\7" * 100)
        assert len(reads) == 1 and engine.fingerprints == 2
        # ClearCache forgets the digests too
        plane.clear_cache(include_sessions=False)
        assert len(plane.file_digests) == 0
        plane.close()

    asyncio.run(run())


async def _until(predicate: Callable[[], bool], timeout_s: float = 2.0) -> bool:
    """Poll ``predicate`` on the event loop until it holds (``True``) or ``timeout_s`` passes."""
    deadline = time.monotonic() + timeout_s
    while not predicate():
        if time.monotonic() > deadline:
            return False
        await asyncio.sleep(0.005)
    return True


async def stream_one(plane: DataPlane, data: bytes = bytes(range(200)) * 4) -> str:
    """Stream ``data`` as one chunk to its end; the finished session's id."""
    async with plane.open_stream(SPEC) as stream:
        stream.accept_chunk(0, len(data))
        await stream.push(data)
        await stream.finish()
    return stream.session_id


def test_validation_prefetch_skips_sessions_the_store_dropped_while_it_waited() -> None:
    """One prefetch runs at a time; sessions evicted while theirs waited are not computed
    (their validation would be NOT_FOUND anyway), and a waiting prefetch holds no media."""

    async def run() -> None:
        engine = FakeEngine(compute_delay=0.05)
        plane = _plane(engine, validation_prefetch=True, max_requests=8, session_store_max_entries=2)
        ids = [await stream_one(plane, bytes([i]) * 800) for i in range(6)]
        assert await _until(lambda: not plane._prefetching)
        kept = [i for i in ids if plane.sessions.peek(i) is not None]
        assert kept == ids[-2:]
        # the first prefetch started at once; of the waiting ones only the kept sessions ran
        assert engine.fingerprints <= 1 + len(kept), engine.fingerprints
        plane.close()

    asyncio.run(run())


def test_validation_prefetch_computes_the_reference_once_in_the_background() -> None:
    async def run() -> None:
        engine = FakeEngine(compute_delay=0.05)
        plane = _plane(engine, validation_prefetch=True, max_requests=4)
        session_id = await stream_one(plane)
        # the prefetch runs on the request pool
        await _until(lambda: bool(engine.fingerprints) and not plane._prefetching)
        assert engine.fingerprints == 1
        (outcome,) = await plane.validate([ValidationJob(session_id=session_id)], None)
        assert not isinstance(outcome, BaseException) and outcome.report.passed
        assert engine.fingerprints == 1 and plane.cache.stats().hits == 1
        # the same report as a server without prefetch computes on demand
        lazy_engine = FakeEngine()
        lazy = _plane(lazy_engine)
        lazy_id = await stream_one(lazy)
        await asyncio.sleep(0.1)
        assert lazy_engine.fingerprints == 0
        (on_demand,) = await lazy.validate([ValidationJob(session_id=lazy_id)], None)
        assert not isinstance(on_demand, BaseException)
        assert on_demand.report == outcome.report and lazy_engine.fingerprints == 1
        plane.close()
        lazy.close()

    asyncio.run(run())


def test_session_validation_recomputes_the_dimensions_the_candidate_needs() -> None:
    """A 13D stream's own values are checked against a 13D reference (no native-rate pass);
    a candidate with a 25D-only name needs the 25D reference, which then serves 13D too."""

    async def run() -> None:
        engine = FakeEngine()
        plane = _plane(engine, max_requests=4)
        session_id = await stream_one(plane)
        (own,) = await plane.validate([ValidationJob(session_id=session_id)], None)
        assert not isinstance(own, BaseException) and own.report.passed
        assert engine.computed == [dims.AUDIO_13D]
        assert own.reference_algorithm == dims.algorithm_for(dims.AUDIO_13D)
        wider = {"integrated_lufs": -20.0, "tempo_bpm": 120.0}
        (loud,) = await plane.validate([ValidationJob(session_id=session_id, candidate=wider)], None)
        assert not isinstance(loud, BaseException)
        assert engine.computed == [dims.AUDIO_13D, dims.AUDIO_25D]
        assert loud.reference_algorithm == dims.algorithm_for(dims.AUDIO_25D)
        assert {d.name for d in loud.report.dimensions} == set(wider)
        # other media, validated the other way round: its 25D reference serves the 13D check
        other = await stream_one(plane, bytes(range(50, 250)) * 4)
        (first,) = await plane.validate([ValidationJob(session_id=other, candidate=wider)], None)
        assert not isinstance(first, BaseException) and engine.computed[2:] == [dims.AUDIO_25D]
        hits = plane.cache.stats().hits
        (then,) = await plane.validate([ValidationJob(session_id=other)], None)
        assert not isinstance(then, BaseException) and then.report.passed
        assert len(engine.computed) == 3 and plane.cache.stats().hits == hits + 1
        assert then.reference_algorithm == dims.algorithm_for(dims.AUDIO_25D)
        plane.close()

    asyncio.run(run())


def test_a_13d_validation_waits_for_a_covering_25d_pass_in_flight() -> None:
    async def run() -> None:
        engine = FakeEngine(compute_delay=0.2)
        plane = _plane(engine, max_requests=4)
        session_id = await stream_one(plane)
        wide = ValidationJob(session_id=session_id, candidate={"integrated_lufs": -20.0})
        wide_task = asyncio.ensure_future(plane.validate([wide], None))
        await asyncio.sleep(0.05)  # the 25D pass is running
        (own,) = await plane.validate([ValidationJob(session_id=session_id)], None)
        (loud,) = await wide_task
        assert not isinstance(own, BaseException) and not isinstance(loud, BaseException)
        assert engine.computed == [dims.AUDIO_25D]
        assert own.report.passed and own.reference_algorithm == dims.algorithm_for(dims.AUDIO_25D)
        plane.close()

    asyncio.run(run())


@pytest.mark.parametrize("encoding", [Encoding.PCM_S16LE, Encoding.PCM_F32LE])
def test_raw_pcm_bodies_decode_in_blocks_with_the_whole_body_checks(
    encoding: Encoding, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A raw PCM body reaches the engine in batch blocks: the samples and fingerprint of the
    whole body decoded at once; a partial frame and the length limit fail at decode, a NaN
    (float PCM) when its block is consumed, each with the field media.data."""
    from signals import music_like

    from streamprint.dataplane.engine import NumpyEngine
    from streamprint.engine import session as session_module
    from streamprint.engine.decode import PcmDecoder, PcmFormat
    from streamprint.engine.session import fingerprint_buffer

    monkeypatch.setattr(session_module, "_BATCH_BLOCK_SECONDS", 0.7)
    rate = 22_050
    floats = np.clip(music_like(3.0, bpm=100.0, rate=rate, channels=2, seed=3), -1.0, 1.0)
    body = (
        (floats * 32767).astype("<i2").tobytes()
        if encoding is Encoding.PCM_S16LE
        else floats.astype("<f4").tobytes()
    )
    fmt = MediaFormat(encoding=encoding, sample_rate=rate, channels=2)
    engine = NumpyEngine()
    media = engine.decode(body, fmt, max_seconds=60.0)
    blocks = list(media.blocks)
    whole = PcmDecoder(PcmFormat(encoding.value, rate, 2)).decode(body)
    assert (media.sample_rate, media.channels, media.frames) == (rate, 2, whole.shape[0])
    step = session_module.batch_block_frames(rate)
    assert [b.shape[0] for b in blocks[:-1]] == [step] * (len(blocks) - 1)
    assert np.array_equal(np.concatenate(blocks).view(np.uint32), whole.view(np.uint32))
    got = engine.fingerprint(engine.decode(body, fmt, max_seconds=60.0), dims.AUDIO_13D)
    assert got == fingerprint_buffer(AudioBuffer(whole, rate), dims.AUDIO_13D)
    with pytest.raises(InvalidInputError) as stray:
        engine.decode(body + b"\x01", fmt, max_seconds=60.0)
    assert stray.value.violations[0].field == "media.data"
    with pytest.raises(ResourceLimitError):
        engine.decode(body, fmt, max_seconds=2.0)
    if encoding is Encoding.PCM_F32LE:
        poisoned = bytearray(body)
        poisoned[-8:-4] = np.array([np.nan], "<f4").tobytes()
        late = engine.decode(bytes(poisoned), fmt, max_seconds=60.0)  # found when consumed
        with pytest.raises(InvalidInputError) as nan:
            engine.fingerprint(late, dims.AUDIO_13D)
        assert nan.value.violations[0].field == "media.data"


def test_whole_media_threads_give_the_engine_a_shared_pool_and_the_same_results() -> None:
    from concurrent.futures import ThreadPoolExecutor

    from signals import music_like

    from streamprint.dataplane.engine import NumpyEngine
    from streamprint.engine.session import fingerprint_buffer

    media = AudioBuffer(music_like(4.0, bpm=100.0, rate=44_100, channels=2, seed=5), 44_100)
    inline = NumpyEngine()  # not wired to a plane: the pass runs on the calling thread
    assert inline.whole_media_pool is None
    results = [fingerprint_buffer(media, dims.AUDIO_25D)]
    results.append(inline.fingerprint(AudioBlocks.of(media, 44_100), dims.AUDIO_25D))
    for threads, block_frames in ((0, 1_000), (1, 70_001), (3, 10**6)):  # 0: one per CPU
        engine = NumpyEngine()
        plane = DataPlane(dataclasses.replace(CONFIG, whole_media_threads=threads), engine)
        assert isinstance(engine.whole_media_pool, ThreadPoolExecutor)
        # whatever blocks the media comes in, the engine passes it in its batch block size
        results.append(engine.fingerprint(AudioBlocks.of(media, block_frames), dims.AUDIO_25D))
        plane.close()
    assert all(r == results[0] for r in results)


def test_the_first_stream_imports_nothing() -> None:
    """A data plane on the real engine imports the modules a stream needs when it starts, so
    the first stream does not stall the process on imports (about 35 ms, GIL held)."""
    from child import python_stdout

    out = python_stdout(
        """
import asyncio, sys
import numpy as np
from streamprint.config import ServerConfig
from streamprint.dataplane import DataPlane, StreamSpec
from streamprint.dataplane.engine import engine_for
from streamprint.dataplane.types import Encoding, MediaFormat
from streamprint.engine import dims

async def main():
    plane = DataPlane(ServerConfig(engine_threads=1), engine_for("numpy", "auto", "dsp"))
    before = set(sys.modules)
    spec = StreamSpec(MediaFormat(Encoding.PCM_S16LE, 44100, 2), dims.AUDIO_13D, 1.0)
    tone = (np.sin(np.arange(44100 * 2) / 10.0) * 8000).astype("<i2")
    pcm = np.repeat(tone[:, None], 2, axis=1).tobytes()
    async with plane.open_stream(spec) as stream:
        for seq, start in enumerate(range(0, len(pcm), 17640)):
            stream.accept_chunk(seq, 17640)
            await stream.push(pcm[start : start + 17640])
        _, final = await stream.finish()
    print(final.revision, sorted(set(sys.modules) - before))
    plane.close()

asyncio.run(main())
"""
    )
    assert out.strip() == "3 []", out
