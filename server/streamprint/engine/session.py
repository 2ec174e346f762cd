"""The audio session: one engine for streaming and batch.

A session is fed native-rate float32 samples ``[n, channels]`` in any chunking. It keeps
the native-rate accumulators (loudness, stereo, crest), downmixes to mono, resamples to the
analysis rate with a stateful resampler, frames, runs the frame analyzer and feeds the
frame-level accumulators. Every ``update_interval_s`` of media it emits a fingerprint
snapshot; :meth:`AudioSession.finish` completes the lagged accumulators and returns the
final fingerprint. Batch (:func:`fingerprint_buffer`) is one session fed everything, so
streaming and batch agree by construction (to float rounding: a batch session cuts its
analyzer calls every 384 frames, a live one every 48, and the float32 matmuls round
slightly differently by batch size).

Small pushes are cheap: the mono samples are queued and resampled, framed and analysed in
one go when a snapshot falls due (or a second of media waits), which gives the same bits as
analysing every chunk as it comes (every stage is chunking-independent);
:meth:`AudioSession.analysis_due` tells a caller in advance whether a push will do that work.

Given an ``analysis_executor``, a session runs the frame analyzer (a pure function of the
frames: FFT, model, YIN) on the executor's threads and feeds the accumulators in frame order
when the results are needed: at the next analysis step, a snapshot or the end; the
native-rate accumulators' pushes (K-weighting filter and the like) run there too, one at a
time and in order. The analysis of one block then overlaps the native-rate work,
resampling and accumulation of the next (the heavy parts release the GIL), and the results
are the same bits.
"""

from __future__ import annotations

import math
from collections import deque
from collections.abc import Callable, Sequence
from concurrent.futures import Executor, Future, ThreadPoolExecutor
from contextlib import nullcontext
from dataclasses import dataclass
from typing import TypeVar, cast

import numpy as np
from numpy.typing import NDArray

from streamprint.engine import dims
from streamprint.engine.analysis import FrameAnalyzer, FrameDescriptors, NumpyFrameAnalyzer
from streamprint.engine.features import AudioFeatures
from streamprint.engine.fingerprint import (
    REFERENCE_MODEL_VERSION,
    AudioBlocks,
    AudioBuffer,
    Fingerprint,
    Pcm16Blocks,
    pcm16_to_float,
)
from streamprint.engine.grid import Framer
from streamprint.engine.native import NativeAccumulator, native_accumulators
from streamprint.engine.requests import check_dimensions, check_update_interval
from streamprint.engine.resample import StreamingResampler, to_mono
from streamprint.errors import InvalidInputError, ResourceLimitError, SessionStateError

MIN_SAMPLE_RATE = 8_000
MAX_SAMPLE_RATE = 384_000
MAX_CHANNELS = 8
_NATIVE_NAMES = frozenset({"integrated_lufs", "crest_db", "stereo_width", "phase_correlation"})
#: Frames are analysed in micro-batches of up to this many (a little over one second of
#: media), counted from the last update (which drains every pending frame): the cuts depend
#: only on the media and the update interval, never on the chunking. At one update per
#: second an interval holds 42 to 44 frames (43.07 on average), so every update is one
#: analyzer call; cut every 43 frames from the first frame, it was two calls nearly every time.
_ANALYSIS_BATCH_FRAMES = 48
#: Batch sessions (:func:`fingerprint_blocks`) cut their micro-batches every this many frames
#: (about 8.9 s of media) instead: each analyzer call and accumulator step has a fixed cost
#: of about 2 ms (Python, the model call, numpy dispatch), paid 8 times less often; a 3-minute
#: track then takes about 25 % less CPU (docs/benchmarks.md, "Unary and validation"). Live
#: sessions keep 48, so a stream's pending frames stay small.
_WHOLE_MEDIA_BATCH_FRAMES = 384
#: Batch sessions are fed in blocks of this many seconds to bound temporary memory.
_BATCH_BLOCK_SECONDS = 30.0
#: Mono native-rate samples are queued until a snapshot falls due or this much media is
#: waiting, then resampled, framed and analysed in one go: the per-chunk cost of a live
#: stream is then a downmix and a copy, and the fixed per-call costs of the resampler,
#: framer and accumulators are paid about once per second instead of once per chunk.
_QUEUE_SECONDS = 1.0

_default_analyzer: FrameAnalyzer | None = None
#: A block of native-rate samples ``[n, channels]``: float32, or int16 meaning ``k / 32768``.
_Block = TypeVar("_Block", NDArray[np.float32], NDArray[np.int16])


def default_analyzer() -> FrameAnalyzer:
    """The process-wide reference analyzer (stateless, so shared)."""
    global _default_analyzer
    if _default_analyzer is None:
        _default_analyzer = NumpyFrameAnalyzer()
    return _default_analyzer


@dataclass(frozen=True)
class SessionConfig:
    """What a session analyses.

    ``sample_rate`` (Hz) and ``channels`` describe the native input; ``dimensions`` are the
    registry names to report; ``update_interval_s`` is the media time between snapshots
    (``None``: no intermediate snapshots, as in batch); ``max_media_seconds`` bounds the
    media one session accepts (``None``: unbounded).
    """

    sample_rate: int
    channels: int
    dimensions: tuple[str, ...] = dims.AUDIO_13D
    update_interval_s: float | None = 1.0
    max_media_seconds: float | None = None

    def validate(self) -> None:
        """Raise :class:`InvalidInputError` naming the first bad field."""
        if not MIN_SAMPLE_RATE <= self.sample_rate <= MAX_SAMPLE_RATE:
            raise InvalidInputError.for_field(
                "sample_rate", f"{self.sample_rate} Hz is out of range",
                f"{MIN_SAMPLE_RATE}..{MAX_SAMPLE_RATE} Hz",
            )
        if not 1 <= self.channels <= MAX_CHANNELS:
            raise InvalidInputError.for_field(
                "channels", f"{self.channels} channels is out of range", f"1..{MAX_CHANNELS}"
            )
        check_dimensions(self.dimensions, dims.AUDIO_25D, "audio")
        check_update_interval(self.update_interval_s)


class AudioSession:
    """Streaming fingerprint of one audio stream (see module docstring)."""

    def __init__(
        self,
        config: SessionConfig,
        *,
        analyzer: FrameAnalyzer | None = None,
        analysis_executor: Executor | None = None,
        analysis_batch_frames: int = _ANALYSIS_BATCH_FRAMES,
    ) -> None:
        config.validate()
        if analysis_batch_frames < 1:
            raise ValueError(f"analysis_batch_frames must be at least 1, got {analysis_batch_frames}")
        #: Frames per analyzer call at most (cut at fixed positions: see :meth:`_drain`).
        self._batch_frames = analysis_batch_frames
        self.config = config
        self._analyzer = analyzer or default_analyzer()
        self._executor = analysis_executor
        #: Analyses submitted to the executor, oldest first, not fed to the accumulators yet.
        self._in_flight: deque[Future[FrameDescriptors]] = deque()
        #: The native-rate accumulators' push running on the executor (at most one).
        self._native_in_flight: Future[None] | None = None
        self._native: list[NativeAccumulator] = native_accumulators(
            config.sample_rate, config.channels, _NATIVE_NAMES.intersection(config.dimensions)
        )
        self._resampler = StreamingResampler(config.sample_rate)
        self._framer = Framer()
        #: Native-rate blocks not analysed yet: float32 mono ``[n]``, or int16 ``[n, 1 | 2]``
        #: as pushed (downmixed when the analysis takes them, see :meth:`push_int16`).
        self._queued: list[NDArray[np.float32] | NDArray[np.int16]] = []
        self._queued_samples = 0
        self._queue_limit = max(1, int(_QUEUE_SECONDS * config.sample_rate))
        self._pending: list[NDArray[np.float32]] = []
        self._frames_analysed = 0
        #: Frame index the batch cuts count from: the frames analysed at the last update.
        self._batch_origin = 0
        self._features = AudioFeatures()
        self._samples_seen = 0
        self._revision = 0
        self._finished = False
        self._updates_scheduled = 1
        self._next_update = self._update_position(1)
        self._max_samples = (
            None if config.max_media_seconds is None
            else int(config.max_media_seconds * config.sample_rate)
        )

    def _update_position(self, k: int) -> int | None:
        """Native sample index at which update ``k`` (1-based) falls due; no rounding drift."""
        interval = self.config.update_interval_s
        if interval is None:
            return None
        return max(k, round(k * interval * self.config.sample_rate))

    @property
    def media_seconds(self) -> float:
        """Native-rate media seen so far, in seconds."""
        return self._samples_seen / self.config.sample_rate

    @property
    def revision(self) -> int:
        """Revision of the last snapshot (0 before the first)."""
        return self._revision

    @property
    def finished(self) -> bool:
        """Whether :meth:`finish` has run."""
        return self._finished

    def push(self, samples: NDArray[np.float32]) -> list[Fingerprint]:
        """Feed native-rate samples ``[n, channels]`` (full scale [-1, 1]; larger values are
        clipped to it, as the decoders clip; NaN or infinity is an
        :class:`~streamprint.errors.InvalidInputError`); return the snapshots that fell due."""
        if self._finished:
            raise SessionStateError("the session has finished; no more media is accepted")
        return self._push_in_pieces(self._check_samples(samples), self._process)

    def push_int16(self, pcm: NDArray[np.int16]) -> list[Fingerprint]:
        """Feed 16-bit samples ``[n, channels]`` int16, sample ``k`` meaning ``k / 32768``
        (raw ``s16le`` PCM): the same snapshots, bit for bit, as :meth:`push` of those floats.

        Cheaper for one or two channels without native-rate accumulators (13D): the samples
        are queued as they are and downmixed from the integers when the analysis takes them,
        ``(l + r) * 2**-16`` (exact in float32, so the same bits as ``(l / 32768 + r / 32768)
        * 0.5``), and 16-bit samples need no finiteness check. Otherwise the samples are
        converted and pushed as floats.

        The session keeps ``pcm`` (or views of it) until its next analysis, so the caller must
        not modify it afterwards. A live stream's kept media holds the same arrays until then,
        so queued audio costs no memory of its own (a float32 mono copy would be as large as
        the 16-bit stereo).
        """
        if self._finished:
            raise SessionStateError("the session has finished; no more media is accepted")
        if pcm.ndim != 2 or pcm.shape[1] != self.config.channels or pcm.dtype != np.int16:
            raise InvalidInputError.for_field(
                "chunk.data",
                f"expected int16 samples shaped [n, {self.config.channels}], got {pcm.dtype} {pcm.shape}",
                "interleaved 16-bit samples with the configured channel count",
            )
        if self._native or self.config.channels > 2:
            return self.push(pcm16_to_float(pcm))
        self._check_media_limit(pcm.shape[0])
        return self._push_in_pieces(pcm, self._process_int16)

    def _push_in_pieces(self, block: _Block, process: Callable[[_Block], None]) -> list[Fingerprint]:
        """``process`` the rows of ``block`` cut at the update positions; the snapshots."""
        updates: list[Fingerprint] = []
        pos, n = 0, block.shape[0]
        while pos < n:
            take = n - pos
            if self._next_update is not None:
                take = min(take, self._next_update - self._samples_seen)
            process(block[pos : pos + take])
            pos += take
            if self._next_update is not None and self._samples_seen >= self._next_update:
                updates.append(self._snapshot(final=False))
                # Batches count from here: an update's position is fixed by the media time
                # (a public snapshot() or tempo_evidence() at an arbitrary point is not).
                self._batch_origin = self._frames_analysed
                self._updates_scheduled += 1
                self._next_update = self._update_position(self._updates_scheduled)
        return updates

    def analysis_due(self, samples: int) -> bool:
        """Whether pushing ``samples`` more native samples runs the analysis.

        That is the expensive part of :meth:`push` (resampling, frame analysis, a snapshot):
        it runs when a snapshot falls due, when a second of media is queued, or on every push
        when native-rate accumulators are in use (25D). Otherwise a push only checks,
        downmixes and queues the samples (tens of microseconds for 100 ms of audio).
        """
        if self._native:
            return True
        if self._next_update is not None and self._samples_seen + samples >= self._next_update:
            return True
        return self._queued_samples + samples >= self._queue_limit

    def tempo_evidence(self) -> tuple[float, float, float]:
        """``(bpm, strength, beats)`` behind the current tempo and its confidence."""
        self._analyse_queued()
        self._drain()
        return self._features.tempo_evidence()

    def snapshot(self) -> Fingerprint:
        """A snapshot of everything seen so far (counts as a revision)."""
        return self._snapshot(final=self._finished)

    def finish(self) -> Fingerprint:
        """End the media: flush the resampler and lagged accumulators; the final fingerprint."""
        if self._finished:
            raise SessionStateError("the session has already finished")
        self._analyse_queued()
        tail = self._resampler.flush()
        self._process_analysis(tail)
        self._drain()
        self._features.finish()
        self._finished = True
        return self._snapshot(final=True)

    # -- internals -----------------------------------------------------------------------

    def _check_samples(self, samples: NDArray[np.float32]) -> NDArray[np.float32]:
        if samples.ndim != 2 or samples.shape[1] != self.config.channels:
            raise InvalidInputError.for_field(
                "chunk.data", f"expected samples shaped [n, {self.config.channels}], got {samples.shape}",
                "interleaved samples with the configured channel count",
            )
        block = np.asarray(samples, dtype=np.float32)
        if block.size:
            low, high = float(block.min()), float(block.max())  # NaN propagates to both
            if not (math.isfinite(low) and math.isfinite(high)):
                raise InvalidInputError.for_field("chunk.data", "samples contain NaN or infinity", "finite samples")
            if low < -1.0 or high > 1.0:  # clipped as the decoders do (a new array: the caller's stays)
                block = np.clip(block, -1.0, 1.0)
        self._check_media_limit(block.shape[0])
        return block

    def _check_media_limit(self, samples: int) -> None:
        if self._max_samples is not None and self._samples_seen + samples > self._max_samples:
            raise ResourceLimitError(
                f"the session exceeds its media limit of {self.config.max_media_seconds} s",
                limit="max_media_seconds",
            )

    def _process(self, block: NDArray[np.float32]) -> None:
        if self._native:
            if self._executor is None:
                self._push_native(block)
            else:  # one push at a time, in order; the block is copied as the caller may reuse it
                self._settle_native()
                self._native_in_flight = self._executor.submit(self._push_native, block.copy())
        self._queue_mono(_downmix(block))

    def _process_int16(self, pcm: NDArray[np.int16]) -> None:
        """:meth:`_process` of 16-bit samples (one or two channels, no native accumulators):
        queued as they are (see :meth:`push_int16`)."""
        self._queue(pcm)

    def _queue_mono(self, mono: NDArray[np.float32]) -> None:
        """Queue native-rate mono samples ``[n]`` for the analysis (a view is queued as a
        copy: the caller may reuse its buffer)."""
        self._queue(mono, copy_views=True)

    def _queue(
        self, block: NDArray[np.float32] | NDArray[np.int16], *, copy_views: bool = False
    ) -> None:
        """Count a native-rate block (float32 mono ``[n]`` or int16 ``[n, 1 | 2]``) and queue it
        for the analysis (a block of a second or more, with nothing queued, is analysed now)."""
        self._samples_seen += block.shape[0]
        if not self._queued and block.shape[0] >= self._queue_limit:
            self._process_analysis(self._resampler.push(_mono_of([block])))
            return
        self._queued.append(block.copy() if copy_views and block.base is not None else block)
        self._queued_samples += block.shape[0]
        if self._queued_samples >= self._queue_limit:
            self._analyse_queued()

    def _push_native(self, block: NDArray[np.float32]) -> None:
        for accumulator in self._native:
            accumulator.push(block)

    def _settle_native(self) -> None:
        """Wait for the native-rate push on the executor (its error is raised here)."""
        running, self._native_in_flight = self._native_in_flight, None
        if running is not None:
            running.result()

    def _analyse_queued(self) -> None:
        """Resample, frame and analyse the queued mono samples (the resampler, framer and
        accumulators are chunking-independent, so this equals feeding them chunk by chunk)."""
        if not self._queued:
            return
        queued = self._queued
        self._queued = []
        self._queued_samples = 0
        self._process_analysis(self._resampler.push(_mono_of(queued)))

    def _process_analysis(self, mono: NDArray[np.float32]) -> None:
        if mono.shape[0] == 0:
            return
        self._features.add_samples(mono)
        frames = self._framer.push(mono)
        if frames.shape[0]:
            self._pending.append(frames)
            self._drain(complete_batches_only=True)

    def _drain(self, *, complete_batches_only: bool = False) -> None:
        """Analyse pending frames and feed the accumulators.

        Batches are cut at fixed frame positions (multiples of ``analysis_batch_frames``
        from the last update's frame, a position fixed by the media time), so the same
        frames are analysed together whatever the chunking; ``complete_batches_only`` keeps a
        trailing partial batch pending.
        """
        if not self._pending:
            if not complete_batches_only:
                self._collect(len(self._in_flight))
            return
        frames = self._pending[0] if len(self._pending) == 1 else np.concatenate(self._pending)
        first = self._frames_analysed - self._batch_origin
        stop = frames.shape[0]
        if complete_batches_only:
            boundary = (first + stop) // self._batch_frames * self._batch_frames
            stop = max(0, boundary - first)
        earlier = len(self._in_flight)
        start = 0
        while start < stop:
            end = min(stop, start + self._batch_frames - (first + start) % self._batch_frames)
            if self._executor is None:
                self._features.add_frames(self._analyzer.analyze(frames[start:end]))
            else:
                self._in_flight.append(self._executor.submit(self._analyzer.analyze, frames[start:end]))
            start = end
        self._frames_analysed += stop
        rest = frames[stop:]
        self._pending = [rest] if rest.shape[0] else []
        # Within a push, leave this step's analyses running; a snapshot or the end collects all.
        self._collect(earlier if complete_batches_only else len(self._in_flight))

    def _collect(self, count: int) -> None:
        """Feed the ``count`` oldest in-flight analyses to the accumulators, in frame order."""
        for _ in range(min(count, len(self._in_flight))):
            self._features.add_frames(self._in_flight.popleft().result())

    def _snapshot(self, *, final: bool) -> Fingerprint:
        self._analyse_queued()
        self._drain()
        self._settle_native()
        self._revision += 1
        values = self._features.values(self.media_seconds)
        confidence = self._features.confidences(values)
        for accumulator in self._native:
            values.update(accumulator.values())
            confidence.update(accumulator.confidences())
        wanted = self.config.dimensions
        return Fingerprint(
            algorithm=dims.algorithm_for(wanted),
            values={n: float(values[n]) for n in wanted},
            confidence={n: min(max(float(confidence[n]), 0.0), 1.0) for n in wanted},
            revision=self._revision,
            media_seconds=self.media_seconds,
            final=final,
            model=getattr(self._analyzer, "name", "numpy"),
            model_version=str(getattr(self._analyzer, "version", REFERENCE_MODEL_VERSION)),
        )


def _mono_of(blocks: list[NDArray[np.float32] | NDArray[np.int16]]) -> NDArray[np.float32]:
    """The queued blocks as one float32 mono ``[n]``: float32 mono blocks as they are, int16
    ``[n, 1 | 2]`` ones downmixed from the integers (one conversion for a run of them)."""
    if all(b.dtype == np.int16 for b in blocks):
        pcm = blocks[0] if len(blocks) == 1 else np.concatenate(blocks)
        return _downmix_int16(cast("NDArray[np.int16]", pcm))
    pieces = [
        _downmix_int16(cast("NDArray[np.int16]", b))
        if b.dtype == np.int16
        else cast("NDArray[np.float32]", b)
        for b in blocks
    ]
    mono: NDArray[np.float32] = pieces[0] if len(pieces) == 1 else np.concatenate(pieces)
    return mono


def _downmix_int16(pcm: NDArray[np.int16]) -> NDArray[np.float32]:
    """Mono ``[n]`` float32 of int16 ``[n, 1 | 2]`` meaning ``k / 32768``: ``(l + r) * 2**-16``
    (exact, so the same bits as :func:`_downmix` of the floats), or ``k * 2**-15``."""
    if pcm.shape[1] == 2:
        floats = pcm.astype(np.float32)  # contiguous, then one strided add: the cheapest here
        mono: NDArray[np.float32] = floats[:, 0] + floats[:, 1]
        mono *= np.float32(2.0**-16)
        return mono
    return pcm16_to_float(pcm[:, 0])


def _downmix(block: NDArray[np.float32]) -> NDArray[np.float32]:
    """Mono ``[n]`` float32 of ``[n, channels]``: :func:`to_mono`, with stereo done as
    ``(l + r) * 0.5`` (the same bits as the float32 channel mean, about ten times faster)."""
    if block.shape[1] == 2:
        mono: NDArray[np.float32] = block[:, 0] + block[:, 1]
        mono *= np.float32(0.5)
        return mono
    return to_mono(block)


def fingerprint_buffer(
    buffer: AudioBuffer,
    dimensions: Sequence[str] = dims.AUDIO_25D,
    *,
    analyzer: FrameAnalyzer | None = None,
    analysis_threads: int = 0,
    analysis_executor: Executor | None = None,
) -> Fingerprint:
    """Batch fingerprint of decoded audio: one session fed everything, then finished.

    ``analysis_threads > 0`` runs the frame analysis and the native-rate accumulators on
    that many worker threads, overlapped with the rest of the work (same result bits; see
    the module docstring); ``analysis_executor`` runs them on an existing executor instead
    (e.g. one a server shares between requests).
    """
    return fingerprint_blocks(
        AudioBlocks.of(buffer, batch_block_frames(buffer.sample_rate)), dimensions, analyzer=analyzer,
        analysis_threads=analysis_threads, analysis_executor=analysis_executor,
    )


def batch_block_seconds() -> float:
    """Seconds of media per block a batch session is fed (bounds its temporary memory)."""
    return _BATCH_BLOCK_SECONDS


def batch_block_frames(sample_rate: int) -> int:
    """Frames per block a batch session is fed: :func:`batch_block_seconds` of media."""
    return max(1, int(_BATCH_BLOCK_SECONDS * sample_rate))


def fingerprint_blocks(
    media: AudioBlocks | Pcm16Blocks,
    dimensions: Sequence[str] = dims.AUDIO_25D,
    *,
    analyzer: FrameAnalyzer | None = None,
    analysis_threads: int = 0,
    analysis_executor: Executor | None = None,
) -> Fingerprint:
    """:func:`fingerprint_buffer` of media delivered block by block: each block is pushed as
    it comes, so producing the next one (e.g. reading it from disk) overlaps the analysis of
    this one on the executor's threads. Blocks of :func:`batch_block_frames` give exactly
    :func:`fingerprint_buffer`'s bits; other sizes the same analysis-grid dimensions, and
    native-rate sums (loudness, crest, stereo) and batched statistics that follow the block
    boundaries (~1 ulp). :class:`Pcm16Blocks` give the bits of the float32 samples they mean."""
    config = SessionConfig(media.sample_rate, media.channels, tuple(dimensions), update_interval_s=None)
    own_pool = analysis_executor is None and analysis_threads > 0
    with ThreadPoolExecutor(analysis_threads, "analysis") if own_pool else nullcontext(analysis_executor) as pool:
        session = AudioSession(
            config, analyzer=analyzer, analysis_executor=pool, analysis_batch_frames=_WHOLE_MEDIA_BATCH_FRAMES
        )
        if isinstance(media, Pcm16Blocks):
            for pcm in media.blocks:
                session.push_int16(pcm)
        else:
            for block in media.blocks:
                session.push(block)
        return session.finish()
