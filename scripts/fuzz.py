#!/usr/bin/env python3
"""Fuzz the decoders, the request conversion, the config and the token-file parsing.

Targets (each takes raw bytes and may only raise streamprint's own errors):

``decode_bytes``       whole-media decoding (soundfile, the streaming pipeline, PyAV fallback)
``streaming``          :class:`StreamingContainerDecoder` fed in chunk splits derived from the input
``pcm``                :class:`PcmDecoder` with a format and chunk splits derived from the input
``convert``            protobuf bytes → StreamFingerprintRequest / FingerprintRequest /
                       ValidationItem → ``api.convert`` (stream spec, jobs)
``config``             ``flag=value`` lines → :meth:`ServerConfig.from_sources`
``tokens``             text → the ``--auth-tokens`` parser

Seeds: a corpus of small valid WAV, FLAC, Ogg Vorbis, MP4 (AAC) and MPEG-TS (AAC) files made
here (nothing downloaded) plus valid requests, then mutated: truncation, bit flips, byte
runs, duplicated and zeroed ranges, header swaps. Every case runs under a wall-clock limit
(SIGALRM) and decoded output is bounded by ``max_seconds``; peak RSS is reported.

Run::

    python scripts/fuzz.py                       # atheris if installed, else hypothesis; 10 min
    python scripts/fuzz.py --engine hypothesis --examples 20000 --target decode_bytes
    python scripts/fuzz.py --engine atheris --seconds 600

The test suite runs a short hypothesis pass over the same targets (tests/unit/test_fuzz.py).
"""

from __future__ import annotations

import argparse
import contextlib
import hashlib
import io
import random
import resource
import signal
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from types import FrameType
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
for extra in (ROOT / "server", ROOT / "clients" / "python"):
    if str(extra) not in sys.path:
        sys.path.insert(0, str(extra))

import numpy as np  # noqa: E402

from streamprint.errors import StreamprintError  # noqa: E402

#: Most decoded media a fuzz case may produce (bounds memory).
MAX_SECONDS = 20.0
#: Wall-clock limit of one case.
CASE_LIMIT_S = 5.0


class CaseTimeoutError(Exception):
    """A fuzz case ran past its time limit (a hang)."""


@contextlib.contextmanager
def time_limit(seconds: float) -> Iterator[None]:
    """Raise :class:`CaseTimeoutError` in the main thread after ``seconds``."""

    def expired(signum: int, frame: FrameType | None) -> None:
        raise CaseTimeoutError(f"case ran longer than {seconds:g} s")

    previous = signal.signal(signal.SIGALRM, expired)
    signal.setitimer(signal.ITIMER_REAL, seconds)
    try:
        yield
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)


# ------------------------------------------------------------------------------ corpus


def _tone(seconds: float, rate: int) -> np.ndarray:
    t = np.arange(int(seconds * rate)) / rate
    return (0.3 * np.sin(2 * np.pi * 440.0 * t)).astype(np.float32)


def _soundfile(fmt: str, subtype: str, rate: int = 16000) -> bytes:
    import soundfile as sf

    buf = io.BytesIO()
    sf.write(buf, _tone(0.5, rate), rate, format=fmt, subtype=subtype)
    return buf.getvalue()


def _pyav(fmt: str, codec: str, rate: int = 16000) -> bytes:
    import av

    buf = io.BytesIO()
    options = {"movflags": "frag_keyframe+empty_moov"} if fmt == "mp4" else {}
    with av.open(buf, "w", format=fmt, options=options) as container:
        stream: Any = container.add_stream(codec, rate=rate)
        stream.layout = "mono"
        x = _tone(0.5, rate)[None, :]
        for i in range(0, x.shape[1], 1024):
            frame = av.AudioFrame.from_ndarray(
                np.ascontiguousarray(x[:, i : i + 1024]), format="flt", layout="mono"
            )
            frame.sample_rate = rate
            for packet in stream.encode(frame):
                container.mux(packet)
        for packet in stream.encode(None):
            container.mux(packet)
    return buf.getvalue()


def media_corpus() -> dict[str, bytes]:
    """Small valid media files: the seeds the mutations start from."""
    corpus = {
        "wav16": _soundfile("WAV", "PCM_16"),
        "wavf32": _soundfile("WAV", "FLOAT", 8000),
        "flac": _soundfile("FLAC", "PCM_16"),
        "ogg": _soundfile("OGG", "VORBIS", 22050),
    }
    for name, fmt, codec in (("mp4", "mp4", "aac"), ("ts", "mpegts", "aac")):
        with contextlib.suppress(Exception):  # a PyAV build without the encoder: skip it
            corpus[name] = _pyav(fmt, codec)
    return corpus


def request_corpus() -> list[bytes]:
    """Serialized valid requests (tagged with their message kind in the first byte)."""
    from streamprint.api._generated import fingerprint_service_pb2 as fs_pb
    from streamprint.api._generated import media_pb2 as m_pb

    config = fs_pb.StreamConfig(
        modality=m_pb.MODALITY_AUDIO,
        audio_format=m_pb.AudioFormat(
            encoding=m_pb.AUDIO_ENCODING_PCM_S16LE, sample_rate_hz=16000, channels=1
        ),
        update_interval_seconds=1.0,
        dimensions=["tempo_bpm", "spectral_centroid"],
        client_stream_id="seed",
    )
    stream = fs_pb.StreamFingerprintRequest(config=config).SerializeToString()
    unary = fs_pb.FingerprintRequest(
        media=m_pb.MediaSource(data=b"RIFF....WAVE"), dimensions=["band_bass"]
    ).SerializeToString()
    item = fs_pb.ValidationItem(
        session_id="abc", candidate=[m_pb.DimensionValue(name="tempo_bpm", value=120.0)]
    ).SerializeToString()
    return [b"\x00" + stream, b"\x01" + unary, b"\x02" + item]


def mutate(data: bytes, rng: random.Random, n: int | None = None) -> bytes:
    """Apply 1-4 random mutations: truncate, flip bits, overwrite, insert, duplicate, zero."""
    buf = bytearray(data)
    for _ in range(n if n is not None else rng.randint(1, 4)):
        if not buf:
            buf += bytes(rng.getrandbits(8) for _ in range(rng.randint(1, 64)))
            continue
        op = rng.randrange(7)
        i = rng.randrange(len(buf))
        if op == 0:
            del buf[rng.randrange(len(buf)) :]
        elif op == 1:
            for _ in range(rng.randint(1, 16)):
                j = rng.randrange(len(buf))
                buf[j] ^= 1 << rng.randrange(8)
        elif op == 2:
            run = bytes([rng.choice((0, 0xFF, 0x7F, 0x80))]) * rng.randint(1, 32)
            buf[i : i + len(run)] = run
        elif op == 3:
            buf[i:i] = bytes(rng.getrandbits(8) for _ in range(rng.randint(1, 64)))
        elif op == 4:
            j = min(len(buf), i + rng.randint(1, 512))
            buf[i:i] = buf[i:j] * rng.randint(1, 8)
        elif op == 5:
            j = min(len(buf), i + rng.randint(1, 256))
            buf[i:j] = bytes(j - i)
        else:  # header field fuzz: a random 32-bit value in the first 64 bytes
            j = rng.randrange(min(len(buf), 64))
            buf[j : j + 4] = rng.getrandbits(32).to_bytes(4, "little")
    return bytes(buf)


# ------------------------------------------------------------------------------ targets


def _splits(data: bytes) -> list[bytes]:
    """Chunk the input at positions derived from its hash (deterministic per input)."""
    rng = random.Random(hashlib.sha256(data).digest())
    chunks, i = [], 0
    while i < len(data):
        n = rng.choice((1, 7, 64, 333, 4096, 1 << 16))
        chunks.append(data[i : i + n])
        i += n
    return chunks


def _check_samples(samples: np.ndarray, rate: int | None) -> None:
    assert samples.dtype == np.float32, samples.dtype
    assert samples.ndim == 2, samples.shape
    if samples.size:
        assert np.isfinite(samples).all(), "non-finite samples"
        assert float(np.abs(samples).max()) <= 1.0 + 1e-6, "samples outside [-1, 1]"
    if rate:
        assert samples.shape[0] <= (MAX_SECONDS + 1.0) * rate, "more than max_seconds decoded"


def target_decode_bytes(data: bytes) -> None:
    from streamprint.engine.decode import decode_bytes

    audio = decode_bytes(data, max_seconds=MAX_SECONDS)
    samples = np.asarray(audio.samples)
    _check_samples(samples, int(audio.sample_rate))


def target_streaming(data: bytes) -> None:
    from streamprint.engine.decode import StreamingContainerDecoder

    decoder = StreamingContainerDecoder(max_seconds=MAX_SECONDS)
    total = 0
    for chunk in _splits(data):
        out = decoder.feed(chunk)
        _check_samples(out, decoder.sample_rate)
        total += out.shape[0]
    out = decoder.finish()
    _check_samples(out, decoder.sample_rate)
    total += out.shape[0]
    if decoder.sample_rate:
        assert total <= (MAX_SECONDS + 1.0) * decoder.sample_rate


def target_pcm(data: bytes) -> None:
    from streamprint.engine.decode import PcmDecoder, PcmFormat

    if len(data) < 3:
        return
    encoding = ("s16le", "f32le", "bogus")[data[0] % 3]
    rate = (8000, 16000, 44100, 0, 7, 10**7)[data[1] % 6]
    channels = data[2] % 10
    body = data[3:]
    fmt = PcmFormat(encoding, rate, channels)  # may raise InvalidInputError: allowed
    decoder = PcmDecoder(fmt)
    total = 0
    for chunk in _splits(body):
        out = decoder.decode(chunk)
        assert out.dtype == np.float32 and out.ndim == 2 and out.shape[1] == channels
        if out.size:
            assert np.isfinite(out).all() and float(np.abs(out).max()) <= 1.0 + 1e-6
        total += out.shape[0]
    assert total == len(body) // fmt.frame_bytes, (total, len(body), fmt.frame_bytes)


_LIMITS: object | None = None


def _limits() -> object:
    global _LIMITS
    if _LIMITS is None:
        from streamprint.api import convert
        from streamprint.engine.decode import MAX_CHANNELS, MAX_SAMPLE_RATE, MIN_SAMPLE_RATE
        from streamprint.engine.requests import MAX_UPDATE_INTERVAL_S, MIN_UPDATE_INTERVAL_S

        _LIMITS = convert.Limits(
            rate_range=(MIN_SAMPLE_RATE, MAX_SAMPLE_RATE),
            max_channels=MAX_CHANNELS,
            interval_range=(MIN_UPDATE_INTERVAL_S, MAX_UPDATE_INTERVAL_S),
        )
    return _LIMITS


def target_convert(data: bytes) -> None:
    from google.protobuf.message import DecodeError

    from streamprint.api import convert
    from streamprint.api._generated import fingerprint_service_pb2 as fs_pb

    if not data:
        return
    kind, body = data[0] % 3, data[1:]
    limits = _limits()
    try:
        if kind == 0:
            request = fs_pb.StreamFingerprintRequest.FromString(body)
            if request.HasField("config"):
                convert.stream_spec(request.config, limits)  # type: ignore[arg-type]
        elif kind == 1:
            convert.fingerprint_job(fs_pb.FingerprintRequest.FromString(body), limits)  # type: ignore[arg-type]
        else:
            convert.validation_job(fs_pb.ValidationItem.FromString(body), limits)  # type: ignore[arg-type]
    except DecodeError:
        return  # not a protobuf message: grpc would have refused it before conversion


def target_config(data: bytes) -> None:
    from streamprint.config import ServerConfig

    flags: dict[str, object] = {}
    for line in data.decode("utf-8", "replace").splitlines():
        name, _, value = line.partition("=")
        flags[name.strip().replace("-", "_")] = value
    known = {f for f in ServerConfig.__dataclass_fields__}
    config = ServerConfig.from_sources({k: v for k, v in flags.items() if k in known}, environ={})
    config.security_problems()


def target_tokens(data: bytes) -> None:
    from streamprint.api.auth import TokenFileError, TokenTable

    text = data.decode("utf-8", "replace")
    try:
        table = TokenTable.parse(text)
    except TokenFileError as exc:
        for word in text.split():
            if len(word) >= 12 and word not in ("user", "admin"):
                assert word not in str(exc), "a token leaked into an error message"
        return
    for line in text.splitlines():
        parts = line.split()
        if len(parts) == 2 and not line.strip().startswith("#"):
            assert table.lookup(parts[0]) is not None


TARGETS: dict[str, Callable[[bytes], None]] = {
    "decode_bytes": target_decode_bytes,
    "streaming": target_streaming,
    "pcm": target_pcm,
    "convert": target_convert,
    "config": target_config,
    "tokens": target_tokens,
}


def seeds(target: str) -> list[bytes]:
    """Seed inputs of a target."""
    if target in ("decode_bytes", "streaming"):
        return list(media_corpus().values())
    if target == "pcm":
        return [b"\x00\x01\x01" + _soundfile("RAW", "PCM_16")[:4000]]
    if target == "convert":
        return request_corpus()
    if target == "config":
        return [b"port=0\nmax_streams=4\nhost=0.0.0.0\ninsecure=yes\nmax_chunk_rate=10"]
    return [b"# tokens\nabcdefghijklmnop user\nqrstuvwxyz012345 admin\n"]


def run_case(target: str, data: bytes, limit_s: float = CASE_LIMIT_S) -> None:
    """Run one case: streamprint errors are fine, anything else (or a hang) is a finding."""
    with time_limit(limit_s), contextlib.suppress(StreamprintError):
        TARGETS[target](data)


# ------------------------------------------------------------------------------ engines


def peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0


def run_hypothesis(targets: list[str], examples: int) -> None:
    from hypothesis import HealthCheck, given, settings
    from hypothesis import strategies as st

    def make_check(name: str) -> Callable[[], None]:
        pool = seeds(name)

        @st.composite
        def inputs(draw: st.DrawFn) -> bytes:
            if draw(st.booleans()):
                return bytes(draw(st.binary(max_size=2048)))
            seed = draw(st.sampled_from(pool))
            return mutate(seed, random.Random(draw(st.integers(0, 2**32))))

        @settings(
            max_examples=examples,
            deadline=None,
            database=None,
            suppress_health_check=list(HealthCheck),
        )
        @given(inputs())
        def check(data: bytes) -> None:
            run_case(name, data)

        return check

    for name in targets:
        check = make_check(name)
        started = time.monotonic()
        check()
        print(
            f"{name}: {examples} examples in {time.monotonic() - started:.1f} s, "
            f"peak RSS {peak_rss_mb():.0f} MB",
            flush=True,
        )


def run_atheris(targets: list[str], seconds: float) -> None:
    import atheris

    rng = random.Random(0)
    pools = {name: seeds(name) for name in targets}

    def one(data: bytes) -> None:
        if not data:
            return
        name = targets[data[0] % len(targets)]
        body = data[1:]
        if body[:1] == b"\x00":  # half of the cases start from a mutated seed
            body = mutate(rng.choice(pools[name]), random.Random(body[1:9]))
        run_case(name, body)

    for name in targets:  # import every target's modules, then instrument them for coverage
        with contextlib.suppress(Exception):
            run_case(name, pools[name][0])
    atheris.instrument_all()
    atheris.Setup(
        [sys.argv[0], f"-max_total_time={int(seconds)}", "-rss_limit_mb=2048", "-timeout=10"],
        one,
    )
    atheris.Fuzz()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--engine", choices=("auto", "atheris", "hypothesis"), default="auto")
    parser.add_argument("--target", action="append", choices=sorted(TARGETS), default=None)
    parser.add_argument("--examples", type=int, default=5000, help="hypothesis examples per target")
    parser.add_argument("--seconds", type=float, default=600.0, help="atheris run time")
    args = parser.parse_args(argv)
    targets = args.target or list(TARGETS)
    engine = args.engine
    if engine == "auto":
        try:
            import atheris  # noqa: F401

            engine = "atheris"
        except ImportError:
            engine = "hypothesis"
    print(f"fuzzing {', '.join(targets)} with {engine}", flush=True)
    if engine == "atheris":
        run_atheris(targets, args.seconds)
    else:
        run_hypothesis(targets, args.examples)
    print(f"no findings; peak RSS {peak_rss_mb():.0f} MB", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
