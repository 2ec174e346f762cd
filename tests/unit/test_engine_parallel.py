"""Frame analysis on executor threads: the same bits as inline analysis.

:class:`~streamprint.engine.session.AudioSession` with an ``analysis_executor`` (and
``fingerprint_buffer(analysis_threads=...)``) defers feeding the accumulators until the
analysis results are needed; values, confidences and update times must not change, and
an analyzer's exception must reach the caller.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from functools import cache

import numpy as np
import pytest
from numpy.typing import NDArray
from signals import F32, buffer, music_like

from streamprint.engine import dims
from streamprint.engine import session as session_module
from streamprint.engine.analysis import FrameDescriptors, NumpyFrameAnalyzer
from streamprint.engine.fingerprint import AudioBlocks, Fingerprint
from streamprint.engine.session import (
    AudioSession,
    SessionConfig,
    fingerprint_blocks,
    fingerprint_buffer,
)

RATE = 44_100


@cache
def clip() -> F32:
    """5 s of stereo music-like audio, ``[220500, 2]``."""
    return music_like(5.0, bpm=110.0, rate=RATE, channels=2, seed=21)


def as_tuple(fp: Fingerprint) -> tuple[object, ...]:
    return (fp.values, fp.confidence, fp.revision, fp.media_seconds, fp.final)


@pytest.mark.parametrize("threads", [1, 2, 3])
def test_batch_with_analysis_threads_is_bit_identical(threads: int, monkeypatch: pytest.MonkeyPatch) -> None:
    # 0.7 s blocks: several pushes, so analyses stay in flight across pushes
    monkeypatch.setattr(session_module, "_BATCH_BLOCK_SECONDS", 0.7)
    inline = fingerprint_buffer(buffer(clip(), RATE), dims.AUDIO_25D)
    threaded = fingerprint_buffer(buffer(clip(), RATE), dims.AUDIO_25D, analysis_threads=threads)
    assert as_tuple(threaded) == as_tuple(inline)


def test_batch_of_blocks_is_the_batch_of_the_buffer(monkeypatch: pytest.MonkeyPatch) -> None:
    """fingerprint_blocks fed the batch block size (what the CLI reads a file in), threaded:
    the same bits as fingerprint_buffer inline."""
    monkeypatch.setattr(session_module, "_BATCH_BLOCK_SECONDS", 0.7)
    step = session_module.batch_block_frames(RATE)
    blocks = [clip()[start : start + step].copy() for start in range(0, clip().shape[0], step)]
    media = AudioBlocks(RATE, 2, clip().shape[0], iter(blocks))
    threaded = fingerprint_blocks(media, dims.AUDIO_25D, analysis_threads=2)
    assert as_tuple(threaded) == as_tuple(fingerprint_buffer(buffer(clip(), RATE), dims.AUDIO_25D))


@pytest.mark.parametrize("seed", range(3))
def test_batch_of_random_blocks(seed: int) -> None:
    """Any block sizes: the analysis-grid dimensions are the same bits; the native-rate sums
    (loudness, crest, stereo) follow block boundaries in float64, equal to ~1 ulp."""
    rng = np.random.default_rng(seed)
    blocks = np.split(clip(), np.sort(rng.integers(1, clip().shape[0], size=5)))
    got = fingerprint_blocks(AudioBlocks(RATE, 2, clip().shape[0], iter(blocks)), dims.AUDIO_25D, analysis_threads=2)
    ref = fingerprint_buffer(buffer(clip(), RATE), dims.AUDIO_25D)
    native = {"integrated_lufs", "crest_db", "stereo_width", "phase_correlation"}
    for name, value in ref.values.items():
        assert got.values[name] == (pytest.approx(value, rel=1e-12, abs=1e-15) if name in native else value), name
        assert got.confidence[name] == pytest.approx(ref.confidence[name], rel=1e-12, abs=1e-15), name


@pytest.mark.parametrize("seed", range(4))
def test_rechunked_blocks_are_exact_size_and_the_same_samples(seed: int) -> None:
    """AudioBlocks.rechunked: random block sizes in, blocks of exactly the step out (the last
    shorter), the same samples; blocks already of the step pass through as the same arrays,
    and random blocks rechunked to the batch size give fingerprint_buffer's bits."""
    rng = np.random.default_rng(seed)
    frames = clip().shape[0]
    blocks = np.split(clip(), np.sort(rng.integers(1, frames, size=int(rng.integers(1, 40)))))
    step = int(rng.integers(1, 30_000))
    out = list(AudioBlocks(RATE, 2, frames, iter(blocks)).rechunked(step).blocks)
    assert [b.shape[0] for b in out] == [step] * (frames // step) + ([frames % step] if frames % step else [])
    assert np.array_equal(np.concatenate(out), clip())
    exact = [clip()[i : i + step] for i in range(0, frames, step)]
    passed = list(AudioBlocks(RATE, 2, frames, iter(exact)).rechunked(step).blocks)
    assert all(a is b for a, b in zip(passed, exact, strict=True))
    batch = session_module.batch_block_frames(RATE)
    media = AudioBlocks(RATE, 2, frames, iter(blocks)).rechunked(batch)
    got = fingerprint_blocks(media, dims.AUDIO_25D)
    assert as_tuple(got) == as_tuple(fingerprint_buffer(buffer(clip(), RATE), dims.AUDIO_25D))


def test_closing_rechunked_blocks_closes_the_source() -> None:
    closed = []

    def source() -> Iterator[NDArray[np.float32]]:
        try:
            while True:
                yield np.zeros((10, 1), np.float32)
        finally:
            closed.append(True)

    media = AudioBlocks(RATE, 1, 10**9, source()).rechunked(25)
    assert next(media.blocks).shape == (25, 1)
    media.blocks.close()  # type: ignore[attr-defined]
    assert closed == [True]


def _stream(sizes: Sequence[int], pool: ThreadPoolExecutor | None) -> list[Fingerprint]:
    session = AudioSession(
        SessionConfig(RATE, 2, dims.AUDIO_25D, update_interval_s=0.5), analysis_executor=pool
    )
    samples = clip()
    updates: list[Fingerprint] = []
    start = 0
    for size in sizes:
        updates += session.push(samples[start : start + size])
        start += size
    updates += session.push(samples[start:])
    updates.append(session.finish())
    return updates


@pytest.mark.parametrize("seed", range(4))
def test_streaming_with_executor_is_bit_identical_in_random_chunkings(seed: int) -> None:
    rng = np.random.default_rng(seed)
    sizes = [int(s) for s in rng.integers(1, 40_000, size=12)]
    inline = _stream(sizes, None)
    with ThreadPoolExecutor(2) as pool:
        threaded = _stream(sizes, pool)
    assert [as_tuple(u) for u in threaded] == [as_tuple(u) for u in inline]
    assert len(inline) == 11  # ten half-second updates and the final


class _FailingAnalyzer(NumpyFrameAnalyzer):
    def __init__(self, fail_after: int) -> None:
        super().__init__()
        self.calls = 0
        self.fail_after = fail_after

    def analyze(self, frames: NDArray[np.float32]) -> FrameDescriptors:
        self.calls += 1
        if self.calls > self.fail_after:
            raise RuntimeError("analyzer broke")
        return super().analyze(frames)


def test_an_analyzer_error_reaches_the_caller() -> None:
    with ThreadPoolExecutor(2) as pool:
        session = AudioSession(
            SessionConfig(RATE, 2, dims.AUDIO_13D, update_interval_s=None),
            analyzer=_FailingAnalyzer(fail_after=3),
            analysis_executor=pool,
        )
        with pytest.raises(RuntimeError, match="analyzer broke"):
            session.push(clip())
            session.finish()


class _RecordingAnalyzer(NumpyFrameAnalyzer):
    """The reference analyzer, remembering how many frames each call got."""

    def __init__(self) -> None:
        super().__init__()
        self.sizes: list[int] = []

    def analyze(self, frames: NDArray[np.float32]) -> FrameDescriptors:
        self.sizes.append(int(frames.shape[0]))
        return super().analyze(frames)


def test_batch_cuts_whole_media_batches_and_agrees_with_live_cuts() -> None:
    """A batch session calls the analyzer with 384-frame batches (the last one shorter); a
    session cut like a live one (48 frames) gives the same fingerprint to rounding (the
    float32 chroma and mel matmuls block differently by batch size: ~1e-7 per frame)."""
    samples = music_like(20.0, bpm=110.0, rate=RATE, channels=2, seed=5)
    recording = _RecordingAnalyzer()
    whole = fingerprint_buffer(buffer(samples, RATE), dims.AUDIO_25D, analyzer=recording)
    frames = sum(recording.sizes)
    assert recording.sizes == [384] * (frames // 384) + ([frames % 384] if frames % 384 else [])
    live_cut = _RecordingAnalyzer()
    session = AudioSession(SessionConfig(RATE, 2, dims.AUDIO_25D, update_interval_s=None), analyzer=live_cut)
    session.push(samples)
    ref = session.finish()
    assert max(live_cut.sizes) == 48 and sum(live_cut.sizes) == frames
    for name, value in ref.values.items():
        assert whole.values[name] == pytest.approx(value, rel=1e-6, abs=1e-12), name
        assert whole.confidence[name] == pytest.approx(ref.confidence[name], rel=1e-6, abs=1e-12), name


def test_analysis_batch_frames_must_be_positive() -> None:
    with pytest.raises(ValueError, match="at least 1"):
        AudioSession(SessionConfig(RATE, 2), analysis_batch_frames=0)


def test_the_13d_batch_is_the_13d_part_of_the_25d_batch() -> None:
    """Validation recomputes only 13D for a 13D candidate: the same values and confidences
    as those dimensions of the 25D pass (the native-rate accumulators feed none of them)."""
    media = buffer(clip(), RATE)
    small = fingerprint_buffer(media, dims.AUDIO_13D)
    full = fingerprint_buffer(media, dims.AUDIO_25D)
    assert small.values == {n: full.values[n] for n in dims.AUDIO_13D}
    assert small.confidence == {n: full.confidence[n] for n in dims.AUDIO_13D}
