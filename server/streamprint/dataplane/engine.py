"""The engine port: what the data plane needs from the audio engine, and the real adapter.

Everything here is synchronous and CPU-bound; the data plane runs it on worker threads.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from concurrent.futures import Executor
from typing import TYPE_CHECKING, Any, Protocol

import numpy as np
from numpy.typing import NDArray

from streamprint.dataplane.types import MediaFormat, ModelDescription
from streamprint.engine.fingerprint import (
    REFERENCE_MODEL_VERSION,
    AudioBlocks,
    Fingerprint,
    Pcm16Blocks,
)
from streamprint.engine.validation import ValidationReport

if TYPE_CHECKING:
    from streamprint.engine.analysis import FrameAnalyzer
    from streamprint.runtime.batching import BatchingAnalyzer
    from streamprint.runtime.select import Selection

Samples = NDArray[np.float32]
#: 16-bit PCM samples ``[n, channels]`` int16; ``k`` means the float ``k / 32768``.
Pcm16 = NDArray[np.int16]


class StreamDecoder(Protocol):
    """Incremental decoder: bytes in, float32 ``[n, channels]`` native-rate samples out."""

    @property
    def sample_rate(self) -> int | None:
        """Sample rate in Hz once known."""
        ...

    @property
    def channels(self) -> int | None:
        """Channel count once known."""
        ...

    def feed(self, data: bytes) -> Samples:
        """Decode a chunk (non-empty)."""
        ...

    def finish(self) -> Samples:
        """End of media: the remaining samples."""
        ...


class EngineSession(Protocol):
    """A streaming fingerprint session.

    A session may also offer ``analysis_due(samples: int) -> bool`` (see
    :meth:`~streamprint.engine.session.AudioSession.analysis_due`) and a decoder
    ``samples_in(size: int) -> int``: together they let the data plane run pushes that only
    queue media on the event loop instead of a worker thread. A decoder whose samples are
    all ``k / 32768`` (16-bit PCM) may say so with ``exact_int16 = True``: its media is then
    kept as int16 without the check :func:`~streamprint.cache.keys.as_int16` makes. Such a
    decoder may also offer ``feed_int16(data: bytes) -> Pcm16`` and a session
    ``push_int16(pcm: Pcm16)`` (the same results as ``push`` of ``pcm / 32768``): the data
    plane then keeps and analyses raw 16-bit chunks without converting them to float32 and
    back (:meth:`~streamprint.engine.session.AudioSession.push_int16`).
    """

    def push(self, samples: Samples) -> list[Fingerprint]:
        """Feed native-rate samples; the updates that fell due."""
        ...

    def finish(self) -> Fingerprint:
        """The final fingerprint."""
        ...


class Engine(Protocol):
    """What the data plane needs from the engine."""

    def models(self) -> tuple[ModelDescription, ...]:
        """Models in use; the first one is part of every cache key."""
        ...

    def container_formats(self) -> tuple[str, ...]:
        """Container formats a stream may carry."""
        ...

    def new_decoder(self, fmt: MediaFormat, *, max_seconds: float) -> StreamDecoder:
        """A decoder for a stream's chunks."""
        ...

    def decode(
        self, data: bytes | memoryview, fmt: MediaFormat, *, max_seconds: float
    ) -> AudioBlocks:
        """Decode whole media, delivered in blocks as they are consumed. Errors about the
        media as a whole (its format, a partial sample frame, its length) are raised by this
        call; errors in the samples themselves (NaN in float PCM) may come from consuming
        the blocks."""
        ...

    def new_session(
        self,
        *,
        sample_rate: int,
        channels: int,
        dimensions: tuple[str, ...],
        update_interval_s: float,
        max_seconds: float,
    ) -> EngineSession:
        """A streaming session for audio of this rate and channel count."""
        ...

    def fingerprint(self, media: AudioBlocks | Pcm16Blocks, dimensions: tuple[str, ...]) -> Fingerprint:
        """Whole-media fingerprint of ``media`` (consumes its blocks)."""
        ...

    def validate(
        self,
        reference: Mapping[str, float],
        candidate: Mapping[str, float],
        *,
        names: Sequence[str],
        similarity_threshold: float,
    ) -> ValidationReport:
        """Compare ``candidate`` with ``reference`` on ``names``."""
        ...


class _PcmStreamDecoder:
    """:class:`~streamprint.engine.decode.PcmDecoder` behind the :class:`StreamDecoder` port."""

    def __init__(self, fmt: MediaFormat) -> None:
        from streamprint.engine.decode import PcmDecoder, PcmFormat

        self._fmt = fmt
        self._decoder = PcmDecoder(
            PcmFormat(fmt.encoding.value, fmt.sample_rate, fmt.channels), field="chunk.data"
        )

    @property
    def sample_rate(self) -> int | None:
        return self._fmt.sample_rate

    @property
    def exact_int16(self) -> bool:
        """Whether every decoded sample is ``k / 32768`` for an int16 ``k`` (s16le PCM)."""
        return self._decoder.format.encoding == "s16le"

    def samples_in(self, size: int) -> int:
        """Sample frames that feeding ``size`` more bytes decodes (PCM: known in advance)."""
        return (self._decoder.pending_bytes + size) // self._decoder.format.frame_bytes

    @property
    def channels(self) -> int | None:
        return self._fmt.channels

    def feed(self, data: bytes) -> Samples:
        return self._decoder.decode(data)

    def feed_int16(self, data: bytes) -> Pcm16:
        """:meth:`feed` of an ``s16le`` stream as its int16 samples (see :attr:`exact_int16`)."""
        return self._decoder.decode_int16(data)

    def finish(self) -> Samples:
        self._decoder.finish()
        return np.zeros((0, self._fmt.channels), np.float32)


class NumpyEngine:
    """The real engine behind the :class:`Engine` port (numpy DSP plus a frame analyzer)."""

    def __init__(self, selection: Selection | None = None) -> None:
        #: How the frame analyzer was chosen (``None``: the numpy reference, unselected).
        self.selection = selection
        #: The frame analyzer sessions use (``None``: the process-wide reference); the
        #: metrics replace it with an instrumented wrapper (:mod:`streamprint.metrics`).
        self.analyzer: FrameAnalyzer | None = None if selection is None else selection.analyzer
        #: The dynamic batcher live sessions share (``None``: each session calls
        #: :attr:`analyzer` itself); the data plane sets it. Whole-media work never uses it.
        self.batcher: BatchingAnalyzer | None = None
        #: Worker threads whole-media passes spread their frame analysis over
        #: (``--whole-media-threads``; ``None``: one thread per pass); the data plane sets it.
        self.whole_media_pool: Executor | None = None

    def models(self) -> tuple[ModelDescription, ...]:
        if self.selection is None:
            from streamprint.engine.session import default_analyzer

            return (
                ModelDescription(
                    name=default_analyzer().name,
                    version=REFERENCE_MODEL_VERSION,
                    backend="numpy",
                    precision="fp32",
                    device="CPU",
                ),
            )
        chosen = self.selection.analyzer
        return (
            ModelDescription(
                name=chosen.name,
                version=chosen.version,
                backend=self.selection.backend,
                precision=self.selection.precision,
                device=self.selection.device,
                selection_reason=self.selection.reason,
            ),
            ModelDescription(
                name="dsp" if self.selection.heads == "dsp" else "heads",
                version=self._heads_version(),
                backend=self._heads_backend(),
                precision="fp32",
                device="CPU",
                selection_reason=self.selection.heads_reason,
            ),
        )

    def _heads_version(self) -> str:
        from streamprint.runtime.heads import HEADS_VERSION

        return HEADS_VERSION if self.selection is not None and self.selection.heads != "dsp" else "1"

    def _heads_backend(self) -> str:
        from streamprint.runtime.heads import HeadsAnalyzer

        chosen = None if self.selection is None else self.selection.analyzer
        return chosen.runner.name if isinstance(chosen, HeadsAnalyzer) else "numpy"

    def container_formats(self) -> tuple[str, ...]:
        return ("wav", "flac", "ogg", "opus", "mp3")

    def new_decoder(self, fmt: MediaFormat, *, max_seconds: float) -> StreamDecoder:
        from streamprint.engine.decode import StreamingContainerDecoder

        if fmt.is_pcm:
            return _PcmStreamDecoder(fmt)
        decoder: StreamDecoder = StreamingContainerDecoder(
            max_seconds=max_seconds, field="chunk.data"
        )
        return decoder

    def decode(
        self, data: bytes | memoryview, fmt: MediaFormat, *, max_seconds: float
    ) -> AudioBlocks:
        from streamprint.engine.decode import PcmDecoder, PcmFormat, decode_bytes_blocks
        from streamprint.engine.session import batch_block_frames, batch_block_seconds
        from streamprint.errors import InvalidInputError, ResourceLimitError

        if not fmt.is_pcm:
            # 16-bit WAV / AIFF: converted block by block while the pass runs
            return decode_bytes_blocks(
                data, block_seconds=batch_block_seconds(), max_seconds=max_seconds
            )
        if not data:
            raise InvalidInputError.for_field(
                "media.data", "empty media", "at least one sample frame"
            )
        decoder = PcmDecoder(
            PcmFormat(fmt.encoding.value, fmt.sample_rate, fmt.channels), field="media.data"
        )
        frame_bytes = decoder.format.frame_bytes
        stray = len(data) % frame_bytes
        if stray:  # the error a decode of the whole body and its finish() give
            decoder.decode(data[:stray])
            decoder.finish()
        frames = len(data) // frame_bytes
        if frames > max_seconds * fmt.sample_rate:
            raise ResourceLimitError(
                f"media is longer than the {max_seconds:g} s limit", limit="max_media_seconds"
            )
        step = batch_block_frames(fmt.sample_rate) * frame_bytes

        def blocks() -> Iterator[Samples]:
            # whole frames per block: each decodes on its own, with the same checks and bits
            view = memoryview(data)
            for start in range(0, len(data), step):
                yield decoder.decode(view[start : start + step])

        return AudioBlocks(fmt.sample_rate, fmt.channels, frames, blocks())

    def new_session(
        self,
        *,
        sample_rate: int,
        channels: int,
        dimensions: tuple[str, ...],
        update_interval_s: float,
        max_seconds: float,
    ) -> EngineSession:
        from streamprint.engine.session import AudioSession, SessionConfig

        return AudioSession(
            SessionConfig(
                sample_rate=sample_rate,
                channels=channels,
                dimensions=dimensions,
                update_interval_s=update_interval_s,
                max_media_seconds=max_seconds,
            ),
            analyzer=self.analyzer if self.batcher is None else self.batcher.bind(),
        )

    def fingerprint(self, media: AudioBlocks | Pcm16Blocks, dimensions: tuple[str, ...]) -> Fingerprint:
        from streamprint.engine.session import batch_block_frames, fingerprint_blocks

        # in the batch block size, whatever the source's: the same bits as the whole buffer
        media = media.rechunked(batch_block_frames(media.sample_rate))
        return fingerprint_blocks(
            media, dimensions, analyzer=self.analyzer, analysis_executor=self.whole_media_pool
        )

    def validate(
        self,
        reference: Mapping[str, float],
        candidate: Mapping[str, float],
        *,
        names: Sequence[str],
        similarity_threshold: float,
    ) -> ValidationReport:
        from streamprint.engine.validation import validate

        return validate(
            reference, candidate, names=names, similarity_threshold=similarity_threshold
        )


def engine_for(
    backend: str, precision: str, heads: str = "dsp", *, chosen: Mapping[str, Any] | None = None
) -> Engine:
    """The engine for ``--backend`` / ``--precision`` (see :mod:`streamprint.runtime.select`).

    ``auto`` picks the fastest backend and precision that pass the accuracy gate on this
    machine; an explicit request that cannot run raises :class:`ModelError` instead of
    silently using another backend. ``heads`` (``auto``, ``learned``, ``dsp``) says whether
    learned heads replace HPSS and YIN (:mod:`streamprint.runtime.heads`).

    With ``--backend auto`` the candidates are loaded and timed in a child process
    (:mod:`streamprint.auto_backend`), and only the winner is loaded here; ``chosen`` is a
    record such a child already made (a worker gets its supervisor's). If the child fails,
    the selection runs here (and raises what it raises).
    """
    from streamprint.runtime import LoadOptions, select_analyzer
    from streamprint.runtime.memo import with_record

    options = LoadOptions(threads=1)
    if backend == "auto":
        if chosen is None:
            from streamprint.auto_backend import select_in_child

            chosen = select_in_child(backend, precision)
        if chosen is not None:
            selection = select_analyzer(
                str(chosen["backend"]), str(chosen["precision"]), options, heads=heads
            )
            return NumpyEngine(with_record(selection, chosen, backend, precision))
    return NumpyEngine(select_analyzer(backend, precision, options, heads=heads))
