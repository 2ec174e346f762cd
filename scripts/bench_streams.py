"""Load benchmark: N concurrent realtime streams against a streamprint server.

Usage::

    python scripts/bench_streams.py --streams N --duration S [--modality audio|video]
        [--server ADDR] [--json]
    python scripts/bench_streams.py --sweep 8,16,32,64 --duration 20 [--naive-sweep 1,2,4]
        [--workers 1,2] [--plot docs/bench_streams.png] [--write-docs] [--json]

Without ``--server`` the script starts ``python -m streamprint serve`` on a free loopback
port (``--naive`` starts ``scripts/naive_server.py`` instead: a server that recomputes the
fingerprint from scratch on every chunk) and stops it at the end; ``--workers N`` starts it as ``serve --workers N`` (N processes on the
one port; a comma-separated list sweeps each, side by side per stream count). The load comes from
``--client-procs`` client processes (never the server's process), each running one asyncio
loop with its share of the streams over a few gRPC channels.

Every stream sends a config (PCM s16le, ``--sample-rate`` / ``--channels``, 13D, one update
per ``--interval`` s of media), then ``--chunk-ms`` chunks of generated music-like audio
(``make_demo_clip.demo_mix``; each stream starts at another offset of the clip) paced at real
time, then half-closes and reads the final update. Stream starts are spread evenly over the
first update interval, so updates do not all fall due at once. ``--modality video`` sends raw
GRAY8 frames (``--width`` x ``--height`` at ``--fps``) of a moving pattern instead.

Measured:

* per-update latency: from the moment the chunk that completes an update's media interval
  (the first chunk whose end reaches the update's ``media_seconds``) is handed to gRPC, to
  the update's arrival at the client (non-final updates only);
* time to first fingerprint: from the first chunk's send to the first update's arrival
  (``ttff_p50_ms``), and the media seconds it covered (``ttff_media_p50_s``);
* final latency: from the last chunk's send to the final update's arrival (``final_p50_ms``,
  ``final_p99_ms``; the server runs a stream's end after the live chunks queued beside it);
* streams that kept real time: ended without error, received every update that fell due,
  each within one update interval, and the sender never fell more than ``--lag-limit-ms``
  behind its schedule (gRPC flow control pushing back);
* errors by gRPC status code (``errors`` is the total, ``errors_by_code`` the breakdown);
* with ``--workers N``: how many streams each worker served (``streams_per_worker``, from the
  session ids; the kernel spreads connections, not streams);
* server peak RSS (MB, the process and its children) and CPU (% of one core, averaged over
  the paced part of the run; 200 = both cores of a 2-core machine), via psutil or /proc;
  the client processes' CPU likewise (``client_cpu_percent``). Also the peak PSS
  (``pss_mb``, sampled once a second from ``/proc/PID/smaps_rollup``): RSS counts the
  shared libraries' pages once per process, PSS splits them among the processes that map
  them, so with ``--workers`` it is nearer what the machine actually spends.

With ``--json`` the last line printed is one JSON object with the keys ``streams``,
``streams_realtime``, ``p50_update_latency_ms``, ``p95_update_latency_ms``,
``p99_update_latency_ms``, ``ttff_p50_ms``, ``errors``, ``rss_mb``, ``cpu_percent`` (and
more). ``--sweep`` runs one fresh server per N, reports the largest N whose p99 update
latency is at or under ``--p99-limit-ms`` with no error, and plots the latency percentiles
against streams (``--plot``, PNG; needs matplotlib). Its last JSON line is the passing point's
object plus ``sweep`` (every point) and ``max_streams_within_limit``.
"""

from __future__ import annotations

import argparse
import asyncio
import bisect
import dataclasses
import json
import math
import multiprocessing as mp
import os
import shlex
import socket
import subprocess
import sys
import tempfile
import threading
import time
from collections import Counter
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Protocol

REPO = Path(__file__).resolve().parents[1]
SCRIPTS = REPO / "scripts"
DOCS_PLOT = REPO / "docs" / "bench_streams.png"
DOC_SECTION = "concurrent-streams"
#: Where ``--repeat`` writes its table (unless ``--doc-section`` names another).
REPEAT_DOC_SECTION = "concurrent-streams-repeat"
STREAMS_PER_CHANNEL = 32
#: With ``--workers N``: one connection per stream, as live clients (one device each) connect;
#: the kernel spreads connections, not streams, over the workers, and with 4 streams per
#: connection 112 streams split 68 / 44 where one per stream gave 62 / 50 and 50 / 62.
STREAMS_PER_CHANNEL_WORKERS = 1
_EPS = 1e-6

for _p in (REPO / "clients" / "python", REPO / "server", SCRIPTS):
    if str(_p) not in sys.path:
        sys.path.insert(0, str(_p))


# --------------------------------------------------------------------------- accounting


@dataclass
class StreamRecord:
    """What one stream saw, in ``time.monotonic()`` seconds (one clock per machine)."""

    index: int
    #: When each chunk was handed to gRPC.
    send_times: list[float] = field(default_factory=list)
    #: Media seconds at the end of each chunk (cumulative).
    chunk_ends: list[float] = field(default_factory=list)
    #: (arrival time, media_seconds, final) of each update.
    updates: list[tuple[float, float, bool]] = field(default_factory=list)
    #: gRPC status code name of a failed stream (``None``: ended OK).
    error: str | None = None
    error_message: str = ""
    #: Largest delay of a send behind its schedule, seconds.
    max_send_lag_s: float = 0.0
    #: The server's session id (``w<i>-…``: served by worker i of ``serve --workers N``).
    session_id: str = ""


def update_latencies(record: StreamRecord) -> list[float]:
    """Latency (s) of each non-final update: arrival minus the send of the chunk completing it.

    The completing chunk is the first whose cumulative media end reaches the update's
    ``media_seconds``; an update covering more media than was sent is skipped.
    """
    out: list[float] = []
    for arrival, media_s, final in record.updates:
        if final:
            continue
        k = bisect.bisect_left(record.chunk_ends, media_s - _EPS)
        if k >= len(record.chunk_ends) or k >= len(record.send_times):
            continue
        out.append(arrival - record.send_times[k])
    return out


def time_to_first(record: StreamRecord) -> tuple[float, float] | None:
    """(wall s from the first chunk's send to the first update, media s of that update)."""
    if not record.send_times or not record.updates:
        return None
    arrival, media_s, _ = record.updates[0]
    return arrival - record.send_times[0], media_s


def final_latency(record: StreamRecord) -> float | None:
    """Wall s from the last chunk's send to the final update's arrival (``None``: no final)."""
    finals = [arrival for arrival, _, final in record.updates if final]
    if not finals or not record.send_times:
        return None
    return finals[-1] - record.send_times[-1]


def expected_updates(media_s: float, interval_s: float) -> int:
    """Non-final updates that fall due within ``media_s`` seconds of media."""
    if interval_s <= 0:
        return 0
    return math.floor(media_s / interval_s + _EPS)


def kept_realtime(record: StreamRecord, *, interval_s: float, lag_limit_s: float) -> bool:
    """Ended OK, got every due update, each within one interval, sender never fell behind."""
    if record.error is not None or record.max_send_lag_s > lag_limit_s:
        return False
    media_s = record.chunk_ends[-1] if record.chunk_ends else 0.0
    latencies = update_latencies(record)
    # an update at exactly the end of the media may come as the final one instead
    if len(latencies) < expected_updates(media_s - 1e-3, interval_s):
        return False
    return all(lat <= interval_s for lat in latencies)


def percentile(values: Sequence[float], q: float) -> float | None:
    """The q-th percentile (linear interpolation) or ``None`` for no values."""
    if not values:
        return None
    ordered = sorted(values)
    pos = (len(ordered) - 1) * q / 100.0
    lo = math.floor(pos)
    hi = min(lo + 1, len(ordered) - 1)
    return ordered[lo] + (ordered[hi] - ordered[lo]) * (pos - lo)


def _ms(value: float | None) -> float | None:
    return None if value is None else round(value * 1000.0, 2)


def summarize(
    records: Sequence[StreamRecord], *, streams: int, interval_s: float, lag_limit_s: float
) -> dict[str, Any]:
    """The contract's numbers (latencies in ms) from every stream's record."""
    latencies = [lat for r in records for lat in update_latencies(r)]
    firsts = [t for t in (time_to_first(r) for r in records) if t is not None]
    finals = [t for t in (final_latency(r) for r in records) if t is not None]
    errors = Counter(r.error for r in records if r.error is not None)
    missing = max(0, streams - len(records))
    if missing:
        errors["CLIENT_LOST"] += missing
    return {
        "streams": streams,
        "streams_realtime": sum(
            kept_realtime(r, interval_s=interval_s, lag_limit_s=lag_limit_s) for r in records
        ),
        "p50_update_latency_ms": _ms(percentile(latencies, 50)),
        "p95_update_latency_ms": _ms(percentile(latencies, 95)),
        "p99_update_latency_ms": _ms(percentile(latencies, 99)),
        "max_update_latency_ms": _ms(max(latencies) if latencies else None),
        "ttff_p50_ms": _ms(percentile([w for w, _ in firsts], 50)),
        "ttff_media_p50_s": percentile([m for _, m in firsts], 50),
        "final_p50_ms": _ms(percentile(finals, 50)),
        "final_p99_ms": _ms(percentile(finals, 99)),
        "errors": sum(errors.values()),
        "errors_by_code": dict(sorted(errors.items())),
        "updates": len(latencies),
        "max_send_lag_ms": _ms(max((r.max_send_lag_s for r in records), default=0.0)),
    }


def streams_per_worker(records: Sequence[StreamRecord]) -> dict[str, int]:
    """How many streams each worker of ``serve --workers N`` served (from the session ids,
    ``w<i>-…``); empty for a single-process server."""
    counts = Counter(
        r.session_id.split("-", 1)[0].removeprefix("w")
        for r in records
        if r.session_id.startswith("w") and "-" in r.session_id
    )
    return dict(sorted(counts.items()))


def largest_within(points: Sequence[dict[str, Any]], limit_ms: float) -> int | None:
    """Largest ``streams`` whose p99 latency is at or under ``limit_ms`` with no error."""
    ok = [
        p["streams"]
        for p in points
        if p.get("p99_update_latency_ms") is not None
        and p["p99_update_latency_ms"] <= limit_ms
        and p.get("errors", 1) == 0
    ]
    return max(ok) if ok else None


def repeat_summary(results: Sequence[dict[str, Any]], limit_ms: float) -> dict[str, Any]:
    """``--repeat``: the run with the median p99 (a run that fell behind counts as the worst),
    plus ``repeat``: how many of the runs met the target (every stream realtime, no error,
    p99 at or under ``limit_ms``) and each run's p99, RSS and server CPU."""
    def met(r: dict[str, Any]) -> bool:
        p99 = r.get("p99_update_latency_ms")
        return (
            r.get("errors") == 0
            and r.get("streams_realtime") == r.get("streams")
            and p99 is not None
            and p99 <= limit_ms
        )

    def rank(r: dict[str, Any]) -> float:
        p99 = r.get("p99_update_latency_ms")
        return math.inf if p99 is None or r.get("errors") else float(p99)

    ordered = sorted(results, key=rank)
    summary = dict(ordered[(len(ordered) - 1) // 2])
    summary["repeat"] = {
        "runs": len(results),
        "met": sum(met(r) for r in results),
        "limit_ms": limit_ms,
        "p99_update_latency_ms": [r.get("p99_update_latency_ms") for r in results],
        "streams_realtime": [r.get("streams_realtime") for r in results],
        "rss_mb": [r.get("rss_mb") for r in results],
        "cpu_percent": [r.get("cpu_percent") for r in results],
    }
    return summary


# --------------------------------------------------------------------------- media


@dataclass(frozen=True)
class LoadSpec:
    """What every stream sends (pickled to the client processes)."""

    modality: str = "audio"
    duration_s: float = 10.0
    chunk_ms: int = 100
    interval_s: float = 1.0
    sample_rate: int = 44_100
    channels: int = 2
    width: int = 160
    height: int = 90
    fps: int = 30
    call_timeout_s: float = 120.0
    #: Streams multiplexed on one HTTP/2 connection (with ``--workers N`` the kernel spreads
    #: connections, not streams, over the workers: more connections, a more even spread).
    streams_per_channel: int = STREAMS_PER_CHANNEL
    #: ``python`` (grpc.aio client processes) or ``cpp`` (clients/cpp/src/loadgen.cc).
    client: str = "python"


def audio_clip(spec: LoadSpec, seconds: float = 12.0) -> bytes:
    """A music-like clip, PCM s16le interleaved (looped by the streams)."""
    import numpy as np
    from make_demo_clip import demo_mix

    stereo = demo_mix(seconds=seconds, rate=spec.sample_rate)
    if spec.channels == 1:
        samples = stereo.mean(axis=1, keepdims=True)
    else:
        samples = np.repeat(stereo, (spec.channels + 1) // 2, axis=1)[:, : spec.channels]
    pcm: bytes = (np.clip(samples, -1.0, 1.0) * 32767.0).astype("<i2").tobytes()
    return pcm


def video_clip(spec: LoadSpec, seconds: float = 4.0) -> bytes:
    """Raw GRAY8 frames of a moving gradient with a beat-like flash (looped by the streams)."""
    import numpy as np

    n = int(seconds * spec.fps)
    y, x = np.mgrid[0 : spec.height, 0 : spec.width]
    frames = np.empty((n, spec.height, spec.width), np.uint8)
    for i in range(n):
        t = i / spec.fps
        flash = 60.0 if (t * 2.0) % 1.0 < 0.1 else 0.0
        frames[i] = np.clip(128 + 60 * np.sin(x / 9.0 + 3 * t) * np.cos(y / 7.0 - t) + flash, 0, 255)
    return frames.tobytes()


def stream_chunks(spec: LoadSpec, clip: bytes, index: int) -> tuple[list[bytes], list[float]]:
    """The chunks stream ``index`` sends and the cumulative media seconds at each one's end."""
    if spec.modality == "video":
        unit = spec.width * spec.height  # one GRAY8 frame
        per_chunk = max(1, round(spec.fps * spec.chunk_ms / 1000.0))
        unit_s = 1.0 / spec.fps
    else:
        unit = 2 * spec.channels  # one s16 sample frame
        per_chunk = max(1, round(spec.sample_rate * spec.chunk_ms / 1000.0))
        unit_s = 1.0 / spec.sample_rate
    units_total = round(spec.duration_s / unit_s)
    clip_units = len(clip) // unit
    start = (index * 7919) % clip_units  # another offset of the clip per stream
    chunks: list[bytes] = []
    ends: list[float] = []
    sent = 0
    while sent < units_total:
        take = min(per_chunk, units_total - sent)
        parts = []
        pos = (start + sent) % clip_units
        need = take
        while need:
            step = min(need, clip_units - pos)
            parts.append(clip[pos * unit : (pos + step) * unit])
            need -= step
            pos = 0
        chunks.append(b"".join(parts))
        sent += take
        ends.append(sent * unit_s)
    return chunks, ends


# --------------------------------------------------------------------------- client side


async def _run_stream(
    channel: Any,
    index: int,
    spec: LoadSpec,
    clip: bytes,
    start: float,
    offset_s: float,
    *,
    paced: bool = True,
) -> StreamRecord:
    import grpc

    from streamprint_client._generated import fingerprint_service_pb2 as fs_pb
    from streamprint_client._generated import fingerprint_service_pb2_grpc as fs_grpc
    from streamprint_client._generated import media_pb2 as m_pb

    record = StreamRecord(index)
    chunks, ends = stream_chunks(spec, clip, index)
    if spec.modality == "video":
        config = fs_pb.StreamConfig(
            modality=m_pb.MODALITY_VIDEO,
            video_format=m_pb.VideoFormat(
                pixel_format=m_pb.PIXEL_FORMAT_GRAY8,
                width=spec.width,
                height=spec.height,
                frame_rate=float(spec.fps),
            ),
            update_interval_seconds=spec.interval_s,
            client_stream_id=f"bench-{index}",
        )
    else:
        config = fs_pb.StreamConfig(
            modality=m_pb.MODALITY_AUDIO,
            audio_format=m_pb.AudioFormat(
                encoding=m_pb.AUDIO_ENCODING_PCM_S16LE,
                sample_rate_hz=spec.sample_rate,
                channels=spec.channels,
            ),
            update_interval_seconds=spec.interval_s,
            client_stream_id=f"bench-{index}",
        )
    requests = [
        fs_pb.StreamFingerprintRequest(chunk=fs_pb.MediaChunk(data=c, seq=k))
        for k, c in enumerate(chunks)
    ]
    stub = fs_grpc.FingerprintServiceStub(channel)
    chunk_s = spec.chunk_ms / 1000.0
    t0 = start + offset_s
    await asyncio.sleep(max(0.0, t0 - time.monotonic()))
    call = stub.StreamFingerprint(timeout=spec.call_timeout_s + spec.duration_s)

    async def reader() -> None:
        while True:
            response = await call.read()
            if response is grpc.aio.EOF:
                return
            fp = response.fingerprint
            record.updates.append((time.monotonic(), fp.media_seconds, fp.final))
            record.session_id = record.session_id or response.session_id

    read_task = asyncio.ensure_future(reader())
    try:
        await call.write(fs_pb.StreamFingerprintRequest(config=config))
        for k, request in enumerate(requests):
            due = t0 + k * chunk_s
            delay = due - time.monotonic()
            if paced and delay > 0:
                await asyncio.sleep(delay)
            sent = time.monotonic()
            if paced:
                record.max_send_lag_s = max(record.max_send_lag_s, sent - due)
            await call.write(request)
            record.send_times.append(sent)
            record.chunk_ends.append(ends[k])
        await call.done_writing()
        await read_task
        code = await call.code()
        if code != grpc.StatusCode.OK:
            record.error = code.name
    except grpc.aio.AioRpcError as exc:
        record.error = exc.code().name
        record.error_message = exc.details() or ""
    except asyncio.InvalidStateError:
        code = await call.code()
        record.error = code.name if code is not None else "UNKNOWN"
    finally:
        if not read_task.done():
            try:
                await asyncio.wait_for(read_task, timeout=5.0)
            except (TimeoutError, grpc.aio.AioRpcError):
                record.error = record.error or "DEADLINE_EXCEEDED"
        elif not read_task.cancelled():
            failure = read_task.exception()
            if isinstance(failure, grpc.aio.AioRpcError):
                record.error = record.error or failure.code().name
                record.error_message = record.error_message or (failure.details() or "")
    return record


async def _client_main(
    addresses: Sequence[str],
    indices: Sequence[int],
    streams: int,
    spec: LoadSpec,
    clip: bytes,
    start: float,
) -> list[StreamRecord]:
    """Stream ``i`` goes to ``addresses[i % len(addresses)]`` (client-side balancing)."""
    import grpc

    by_address: dict[str, list[Any]] = {}
    for address in addresses:
        mine = sum(1 for i in indices if addresses[i % len(addresses)] == address)
        n_channels = max(1, math.ceil(mine / max(1, spec.streams_per_channel)))
        # a local subchannel pool gives every channel its own HTTP/2 connection
        by_address[address] = [
            grpc.aio.insecure_channel(address, options=[("grpc.use_local_subchannel_pool", 1)])
            for _ in range(n_channels)
        ]
    channels = [ch for group in by_address.values() for ch in group]
    try:
        for ch in channels:
            await asyncio.wait_for(ch.channel_ready(), timeout=10.0)
        tasks = []
        for j, i in enumerate(indices):
            group = by_address[addresses[i % len(addresses)]]
            offset = spec.interval_s * i / max(1, streams)
            tasks.append(_run_stream(group[j % len(group)], i, spec, clip, start, offset))
        return list(await asyncio.gather(*tasks))
    finally:
        for ch in channels:
            await ch.close()


def client_process(
    addresses: list[str],
    indices: list[int],
    streams: int,
    spec: LoadSpec,
    clip_path: str,
    ready: Any,
    go: Any,
    start_at: Any,
    out: Any,
) -> None:
    """One client process: wait for the common start, run its streams, send the records back."""
    clip = Path(clip_path).read_bytes()
    ready.put(os.getpid())
    go.wait()
    try:
        records = asyncio.run(_client_main(addresses, indices, streams, spec, clip, start_at.value))
        out.put([asdict(r) for r in records])
    except Exception as exc:  # reported as lost streams, with the reason
        out.put({"error": f"{type(exc).__name__}: {exc}"})


class ClientLauncher(Protocol):
    """Client processes that run a load's streams (never in the server's process)."""

    def start(self, lead_s: float) -> tuple[list[int], float]:
        """Start the processes; once they are ready, the first chunks go ``lead_s`` seconds
        later. Returns their PIDs (CPU and RSS are sampled over them) and that start
        (``time.monotonic()`` seconds)."""
        ...

    def collect(self, deadline: float) -> tuple[list[StreamRecord], list[str]]:
        """Every stream's record, and the failures of processes that returned none."""
        ...

    def stop(self) -> None:
        """End whatever still runs."""
        ...


class PythonClients:
    """``procs`` spawned Python processes (:func:`client_process`: grpc.aio)."""

    def __init__(
        self, addresses: list[str], streams: int, procs: int, spec: LoadSpec, clip_path: Path
    ) -> None:
        ctx = mp.get_context("spawn")
        self._ready, self._out, self._go = ctx.Queue(), ctx.Queue(), ctx.Event()
        self._start_at = ctx.Value("d", 0.0)
        shares = [list(range(i, streams, procs)) for i in range(procs)]
        self._procs = [
            ctx.Process(
                target=client_process,
                args=(addresses, share, streams, spec, str(clip_path), self._ready, self._go,
                      self._start_at, self._out),
                daemon=True,
            )
            for share in shares
        ]  # fmt: skip

    def start(self, lead_s: float) -> tuple[list[int], float]:
        for w in self._procs:
            w.start()
        for _ in self._procs:
            self._ready.get(timeout=120)
        start_at = time.monotonic() + lead_s  # after the imports: every process is waiting
        self._start_at.value = start_at
        self._go.set()
        return [w.pid for w in self._procs if w.pid is not None], start_at

    def collect(self, deadline: float) -> tuple[list[StreamRecord], list[str]]:
        records: list[StreamRecord] = []
        failures: list[str] = []
        for _ in self._procs:
            got = self._out.get(timeout=max(1.0, deadline - time.monotonic()))
            if isinstance(got, dict):
                failures.append(str(got.get("error")))
            else:
                records.extend(StreamRecord(**r) for r in got)
        for w in self._procs:
            w.join(timeout=10)
        return records, failures

    def stop(self) -> None:
        for w in self._procs:
            if w.is_alive():
                w.terminate()


#: The C++ load generator (clients/cpp/src/loadgen.cc), built by ``make cpp-client``.
LOADGEN = REPO / "build" / "cpp" / "streamprint_loadgen"


def build_loadgen() -> Path:
    """Build (or bring up to date) the C++ load generator with cmake; its path."""
    build = LOADGEN.parent
    subprocess.run(
        ["cmake", "-S", str(REPO / "clients" / "cpp"), "-B", str(build), "-DCMAKE_BUILD_TYPE=Release"],
        check=True, stdout=subprocess.DEVNULL,
    )  # fmt: skip
    subprocess.run(
        ["cmake", "--build", str(build), "-j2", "--target", "streamprint_loadgen"],
        check=True, stdout=subprocess.DEVNULL,
    )  # fmt: skip
    return LOADGEN


def loadgen_command(
    binary: Path, addresses: Sequence[str], streams: int, first: int, step: int, spec: LoadSpec,
    clip_path: Path, start_at: float,
) -> list[str]:
    """The command line of one C++ client process: streams ``first, first + step, ...``."""
    if spec.modality != "audio":
        raise ValueError("the C++ load generator sends audio only (--client python for video)")
    return [
        str(binary), "--address", ",".join(addresses), "--clip", str(clip_path),
        "--streams", str(streams), "--first", str(first), "--step", str(step),
        "--start-at", repr(start_at), "--duration", repr(spec.duration_s),
        "--chunk-ms", str(spec.chunk_ms), "--interval", repr(spec.interval_s),
        "--sample-rate", str(spec.sample_rate), "--channels", str(spec.channels),
        "--streams-per-channel", str(spec.streams_per_channel),
        "--call-timeout", repr(spec.call_timeout_s),
    ]  # fmt: skip


def parse_loadgen_output(text: str) -> list[StreamRecord]:
    """The records of a C++ client process: one JSON object per line."""
    records = []
    for line in text.splitlines():
        if line.strip():
            raw = json.loads(line)
            raw["updates"] = [(float(t), float(m), bool(f)) for t, m, f in raw["updates"]]
            records.append(StreamRecord(**raw))
    return records


class CppClients:
    """``procs`` C++ load generator processes (``build/cpp/streamprint_loadgen``)."""

    def __init__(
        self, addresses: list[str], streams: int, procs: int, spec: LoadSpec, clip_path: Path
    ) -> None:
        self._args = (addresses, streams, procs, spec, clip_path)
        self._procs: list[subprocess.Popen[str]] = []

    def start(self, lead_s: float) -> tuple[list[int], float]:
        addresses, streams, procs, spec, clip_path = self._args
        binary = build_loadgen()
        start_at = time.monotonic() + lead_s  # a C++ process is ready in milliseconds
        for i in range(procs):
            command = loadgen_command(binary, addresses, streams, i, procs, spec, clip_path, start_at)
            self._procs.append(
                subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
            )
        return [p.pid for p in self._procs], start_at

    def collect(self, deadline: float) -> tuple[list[StreamRecord], list[str]]:
        records: list[StreamRecord] = []
        failures: list[str] = []
        for proc in self._procs:
            try:
                out, err = proc.communicate(timeout=max(1.0, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                proc.kill()
                out, err = proc.communicate()
                failures.append("the C++ load generator did not finish in time")
            if proc.returncode != 0:
                failures.append(f"streamprint_loadgen exited {proc.returncode}: {err.strip()[-300:]}")
            try:
                records.extend(parse_loadgen_output(out))
            except (ValueError, KeyError, TypeError) as exc:  # a process killed mid-print
                failures.append(f"unreadable streamprint_loadgen output: {exc}")
        return records, failures

    def stop(self) -> None:
        for proc in self._procs:
            if proc.poll() is None:
                proc.kill()
                proc.wait()


# --------------------------------------------------------------------------- server side


class ProcessSampler:
    """Samples a process tree's RSS and PSS (peaks) and CPU seconds, with psutil or /proc.

    RSS every ``period_s``; PSS every ``pss_every`` RSS samples (reading ``smaps_rollup``
    walks the page tables, about a millisecond per process).
    """

    def __init__(self, pids: Sequence[int], period_s: float = 0.25, pss_every: int = 4) -> None:
        self.roots = list(pids)
        self.period_s = period_s
        self.pss_every = pss_every
        self.peak_rss = 0
        self.peak_pss = 0
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def _pids(self) -> list[int]:
        try:
            import psutil
        except ImportError:
            return list(self.roots)
        pids: list[int] = []
        for root in self.roots:
            try:
                children = psutil.Process(root).children(recursive=True)
            except Exception:
                continue
            pids += [root, *(c.pid for c in children)]
        return pids

    def rss(self) -> int:
        """Bytes: the tree's resident set size."""
        return self._kib_total("status", "VmRSS:")

    def pss(self) -> int:
        """Bytes: the tree's proportional set size (0 where ``smaps_rollup`` is unreadable)."""
        return self._kib_total("smaps_rollup", "Pss:")

    def _kib_total(self, name: str, key: str) -> int:
        """Bytes: the ``key`` line (in kB) of ``/proc/PID/name`` summed over the tree."""
        total = 0
        for pid in self._pids():
            try:
                for line in Path(f"/proc/{pid}/{name}").read_text().splitlines():
                    if line.startswith(key):
                        total += int(line.split()[1]) * 1024
                        break
            except (OSError, ValueError):
                pass
        return total

    def reset_peak_rss(self) -> bool:
        """Restart the tree's ``VmHWM`` (peak RSS) from its current RSS (``clear_refs``, Linux);
        ``False`` when that is not possible here, and then :meth:`peak_rss_since_reset` means
        nothing."""
        pids = self._pids()
        try:
            for pid in pids:
                Path(f"/proc/{pid}/clear_refs").write_text("5")
        except OSError:
            return False
        return bool(pids)

    def peak_rss_since_reset(self) -> int:
        """Bytes: the tree's ``VmHWM`` summed (each process's peak since
        :meth:`reset_peak_rss`)."""
        return self._kib_total("status", "VmHWM:")

    def cpu_seconds(self) -> float:
        ticks = os.sysconf("SC_CLK_TCK")
        total = 0.0
        for pid in self._pids():
            try:
                fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
                total += (int(fields[11]) + int(fields[12])) / ticks  # utime, stime
            except (OSError, ValueError, IndexError):
                pass
        return total

    def _loop(self) -> None:
        ticks = 0
        while not self._stop.wait(self.period_s):
            self.peak_rss = max(self.peak_rss, self.rss())
            ticks += 1
            if ticks % self.pss_every == 0:
                self.peak_pss = max(self.peak_pss, self.pss())

    def __enter__(self) -> ProcessSampler:
        self.peak_rss = self.rss()
        self.peak_pss = self.pss()
        self._thread = threading.Thread(target=self._loop, daemon=True)
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join()
        self.peak_rss = max(self.peak_rss, self.rss())
        self.peak_pss = max(self.peak_pss, self.pss())


def machine_busy_seconds() -> float:
    """CPU seconds all processes of this machine have spent busy (``/proc/stat``)."""
    try:
        fields = Path("/proc/stat").read_text().splitlines()[0].split()[1:]
        user, nice, system, _idle, _iowait, irq, softirq, steal = (int(x) for x in fields[:8])
    except (OSError, ValueError, IndexError):
        return 0.0
    return (user + nice + system + irq + softirq + steal) / os.sysconf("SC_CLK_TCK")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def wait_serving(address: str, timeout_s: float = 30.0) -> None:
    """Block until gRPC health says SERVING (or raise)."""
    import grpc
    from grpc_health.v1 import health_pb2, health_pb2_grpc

    deadline = time.monotonic() + timeout_s
    last: Exception | None = None
    while time.monotonic() < deadline:
        try:
            with grpc.insecure_channel(address) as channel:
                stub = health_pb2_grpc.HealthStub(channel)
                reply = stub.Check(health_pb2.HealthCheckRequest(), timeout=2.0)
                if reply.status == health_pb2.HealthCheckResponse.SERVING:
                    return
        except grpc.RpcError as exc:
            last = exc
        time.sleep(0.2)
    raise RuntimeError(f"server at {address} not SERVING within {timeout_s:g} s: {last}")


def start_server(
    *, naive: bool, streams: int, extra: Sequence[str], log_path: Path
) -> tuple[subprocess.Popen[bytes], str]:
    """Start a streamprint (or naive) server on a free loopback port."""
    port = free_port()
    if naive:
        cmd = [sys.executable, str(SCRIPTS / "naive_server.py"), "--port", str(port)]
    else:
        cmd = [
            sys.executable, "-m", "streamprint", "serve",
            "--host", "127.0.0.1", "--port", str(port),
            "--max-streams", str(max(512, 2 * streams)),
            "--log-level", "warning",
        ]
    cmd += list(extra)
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(
        [str(REPO / "server"), str(REPO / "clients" / "python"), env.get("PYTHONPATH", "")]
    )
    log = log_path.open("wb")
    proc = subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT, env=env)
    address = f"127.0.0.1:{port}"
    try:
        wait_serving(address)
    except Exception:
        stop_server(proc)
        raise
    return proc, address


def stop_server(proc: subprocess.Popen[bytes]) -> None:
    if proc.poll() is None:
        proc.terminate()
        try:
            proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def warm_up(
    address: str,
    spec: LoadSpec,
    clip: bytes,
    *,
    streams: int = 2,
    seconds: float = 3.0,
    workers: int = 1,
    max_rounds: int = 20,
) -> None:
    """Unpaced short streams first, so lazy imports and first-call costs stay out of the numbers.

    With ``workers`` > 1 (``serve --workers N``) rounds of ``streams`` streams, each on its own
    connection, are repeated until every worker has served ``streams`` of them (the kernel
    picks the worker per connection), at most ``max_rounds`` rounds.
    """
    import grpc

    short = LoadSpec(**{**asdict(spec), "duration_s": seconds})
    served: Counter[str] = Counter()

    async def one(channel: Any, index: int) -> None:
        record = await _run_stream(channel, index, short, clip, time.monotonic(), 0.0, paced=False)
        if record.error is not None:
            raise RuntimeError(f"warm-up stream failed: {record.error} {record.error_message}")
        served.update(streams_per_worker([record]))

    async def run() -> None:
        # one connection per stream: with several workers on the port, each may land on any
        channels = [
            grpc.aio.insecure_channel(address, options=[("grpc.use_local_subchannel_pool", 1)])
            for _ in range(streams)
        ]
        try:
            await asyncio.gather(*(one(ch, i) for i, ch in enumerate(channels)))
        finally:
            for ch in channels:
                await ch.close()

    for _ in range(max_rounds if workers > 1 else 1):
        asyncio.run(run())
        if len(served) >= workers and min(served.values()) >= streams:
            break
    if workers > 1 and len(served) < workers:
        print(f"warm-up: only workers {sorted(served)} of {workers} were reached", file=sys.stderr)


def pid_listening_on(address: str) -> int | None:
    """The PID listening on ``address``'s port on this machine (psutil), if it can be found."""
    try:
        import psutil

        port = int(address.rsplit(":", 1)[1])
        for conn in psutil.net_connections(kind="tcp"):
            if conn.status == "LISTEN" and conn.laddr and conn.laddr.port == port and conn.pid:
                return int(conn.pid)
    except Exception:
        return None
    return None


# --------------------------------------------------------------------------- one run


def run_load(
    *,
    streams: int,
    spec: LoadSpec,
    server: str | None = None,
    server_pid: int | None = None,
    naive: bool = False,
    client_procs: int = 0,
    server_args: Sequence[str] = (),
    lag_limit_s: float = 0.5,
    warmup_streams: int = 2,
    server_procs: int = 1,
    server_workers: int = 1,
) -> dict[str, Any]:
    """One measurement: start a server (unless given), run the streams, summarize.

    ``server_workers`` > 1 starts streamprint as ``serve --workers N``: N processes on one port.

    ``server_procs`` > 1 starts that many independent server processes on their own ports
    and spreads the streams over them round-robin from the client (a stream stays on one
    process, so its session is correct).
    """
    # one C++ process drives hundreds of streams on gRPC's own threads; Python needs two past 32
    procs = client_procs or (1 if streams <= 32 or spec.client == "cpp" else 2)
    procs = max(1, min(procs, streams))
    tmp = Path(tempfile.mkdtemp(prefix="bench-streams-"))
    clip_path = tmp / "clip.raw"
    clip_path.write_bytes(video_clip(spec) if spec.modality == "video" else audio_clip(spec))
    servers: list[subprocess.Popen[bytes]] = []
    addresses: list[str] = []
    pids: list[int] = []
    try:
        if server is None:
            for k in range(max(1, server_procs)):
                extra = list(server_args)
                if not naive and server_workers != 1:
                    extra += ["--workers", str(server_workers)]
                proc, address = start_server(
                    naive=naive, streams=streams, extra=extra,
                    log_path=tmp / f"server-{k}.log",
                )
                servers.append(proc)
                addresses.append(address)
                pids.append(proc.pid)
        else:
            addresses = [a.strip() for a in server.split(",") if a.strip()]
            found = [server_pid] if server_pid else [pid_listening_on(a) for a in addresses]
            pids = [p for p in found if p is not None]
        for address in addresses:
            if warmup_streams > 0:
                warm_up(
                    address,
                    spec,
                    clip_path.read_bytes(),
                    streams=warmup_streams,
                    workers=1 if naive else server_workers,
                )
    except Exception:
        for proc in servers:
            stop_server(proc)
        raise
    launcher: ClientLauncher = (
        CppClients(addresses, streams, procs, spec, clip_path)
        if spec.client == "cpp"
        else PythonClients(addresses, streams, procs, spec, clip_path)
    )
    records: list[StreamRecord] = []
    failures: list[str] = []
    try:
        client_pids, start_at = launcher.start(1.0 + 0.02 * streams)
        sampler = ProcessSampler(pids)
        client_sampler = ProcessSampler(client_pids)
        with sampler, client_sampler:
            time.sleep(max(0.0, start_at - time.monotonic()))
            cpu0, ccpu0, t_0 = sampler.cpu_seconds(), client_sampler.cpu_seconds(), time.monotonic()
            busy0 = machine_busy_seconds()
            # CPU over the paced part only: all streams running (stagger + duration)
            time.sleep(max(0.1, spec.duration_s))
            cpu1, ccpu1, t_1 = sampler.cpu_seconds(), client_sampler.cpu_seconds(), time.monotonic()
            busy1 = machine_busy_seconds()
            deadline = time.monotonic() + spec.duration_s + spec.call_timeout_s + 30
            records, failures = launcher.collect(deadline)
    finally:
        launcher.stop()
        for proc in servers:
            stop_server(proc)
    result = summarize(records, streams=streams, interval_s=spec.interval_s, lag_limit_s=lag_limit_s)
    wall = max(1e-9, t_1 - t_0)
    result.update(
        rss_mb=round(sampler.peak_rss / 1e6, 1) if pids else None,
        pss_mb=round(sampler.peak_pss / 1e6, 1) if pids and sampler.peak_pss else None,
        cpu_percent=round(100.0 * (cpu1 - cpu0) / wall, 1) if pids else None,
        client_cpu_percent=round(100.0 * (ccpu1 - ccpu0) / wall, 1),
        # CPU of everything else on the machine meanwhile (noise: other jobs)
        other_cpu_percent=round(
            max(0.0, 100.0 * ((busy1 - busy0) - (cpu1 - cpu0) - (ccpu1 - ccpu0)) / wall), 1
        ),
        client_procs=procs,
        client=spec.client,
        modality=spec.modality,
        duration_s=spec.duration_s,
        server="naive" if naive else (
            ("streamprint" if server_workers == 1 else f"streamprint --workers {server_workers}")
            if server is None
            else server
        ),
        server_procs=len(addresses),
        server_workers=1 if naive or server is not None else server_workers,
        streams_per_worker=streams_per_worker(records),
        streams_per_channel=spec.streams_per_channel,
        chunk_ms=spec.chunk_ms,
        media=(
            f"raw GRAY8 {spec.width}x{spec.height} at {spec.fps} fps"
            if spec.modality == "video"
            else f"PCM s16le {spec.sample_rate} Hz, {spec.channels} ch"
        ),
    )
    messages = sorted({r.error_message for r in records if r.error_message})
    if messages or failures:
        result["error_messages"] = (failures + messages)[:5]
    return result


# --------------------------------------------------------------------------- sweep, plot, docs


def plot_sweep(
    points: Sequence[dict[str, Any]],
    naive: Sequence[dict[str, Any]],
    path: Path,
    *,
    limit_ms: float,
    title: str,
) -> bool:
    """Latency percentiles against streams (log-log), PNG, one line style per server
    (``--workers`` counts apart). False without matplotlib."""
    groups = by_server(points)
    styles = iter(("-", "-.", ":", (0, (5, 1)), (0, (3, 1, 1, 1))))
    series = [(group, next(styles, "-"), name) for name, group in groups.items()]
    return _plot(
        [*series, (list(naive), "--", "naive server")], path, limit_ms=limit_ms, title=title
    )


def by_server(points: Sequence[dict[str, Any]]) -> dict[str, list[dict[str, Any]]]:
    """Sweep points grouped by their ``server`` label, in first-seen order."""
    groups: dict[str, list[dict[str, Any]]] = {}
    for p in points:
        groups.setdefault(str(p.get("server", "streamprint")), []).append(p)
    return groups


def _plot(
    series_list: Sequence[tuple[Sequence[dict[str, Any]], Any, str]],
    path: Path,
    *,
    limit_ms: float,
    title: str,
) -> bool:
    """Latency percentiles against streams (log-log), PNG. False without matplotlib."""
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
        import matplotlib.ticker
    except ImportError:
        print("matplotlib is not installed: no plot written", file=sys.stderr)
        return False
    fig, ax = plt.subplots(figsize=(7.5, 4.5), dpi=110)
    for series, style, label in series_list:
        if not series:
            continue
        xs = [p["streams"] for p in series]
        for key, color in (("p50", "tab:blue"), ("p95", "tab:orange"), ("p99", "tab:red")):
            ys = [p.get(f"{key}_update_latency_ms") or float("nan") for p in series]
            ax.plot(xs, ys, style, marker="o", color=color, label=f"{label} {key}")
    ax.axhline(limit_ms, color="gray", linestyle=":", label=f"{limit_ms:g} ms target")
    ax.set_xscale("log", base=2)
    ax.xaxis.set_major_formatter(matplotlib.ticker.ScalarFormatter())
    ax.set_yscale("log")
    ax.set_xlabel("concurrent realtime streams")
    ax.set_ylabel("update latency (ms)")
    ax.set_title(title, fontsize=10)
    ax.grid(True, which="both", alpha=0.3)
    ax.legend(fontsize=7, ncol=2)
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path)
    plt.close(fig)
    return True


def _fmt(value: Any) -> str:
    if value is None:
        return "-"
    if isinstance(value, float):
        return f"{value:.1f}"
    if isinstance(value, dict):
        return ", ".join(f"{k} {v}" for k, v in value.items()) or "0"
    return str(value)


def _per_worker(point: dict[str, Any]) -> str:
    counts = point.get("streams_per_worker") or {}
    return " / ".join(f"w{k}: {v}" for k, v in counts.items()) or "-"


def table(points: Sequence[dict[str, Any]]) -> str:
    """A Markdown table of sweep points."""
    cols = [
        ("server", "server"),
        ("streams", "streams"),
        ("streams_realtime", "kept realtime"),
        ("p50_update_latency_ms", "p50 ms"),
        ("p95_update_latency_ms", "p95 ms"),
        ("p99_update_latency_ms", "p99 ms"),
        ("ttff_p50_ms", "TTFF p50 ms"),
        ("ttff_media_p50_s", "TTFF media s"),
        ("errors_by_code", "errors"),
        ("rss_mb", "server RSS MB"),
        ("cpu_percent", "server CPU %"),
        ("client_cpu_percent", "client CPU %"),
        ("other_cpu_percent", "other CPU %"),
        ("speed_probe_ms", "speed probe ms"),
    ]
    if any(p.get("streams_per_worker") for p in points):
        cols.insert(2, ("streams_per_worker", "streams per worker"))
    lines = [
        "| " + " | ".join(h for _, h in cols) + " |",
        "|" + "|".join("---" if k == "server" else "---:" for k, _ in cols) + "|",
    ]
    for p in points:
        lines.append("| " + " | ".join(_per_worker(p) if k == "streams_per_worker"
                                        else _fmt(p.get(k)) for k, _ in cols) + " |")
    return "\n".join(lines)


def repeat_docs_body(runs: Sequence[dict[str, Any]], summary: dict[str, Any], *, command: str) -> str:
    """The ``--repeat`` section: the command, the machine, how many runs met the target, and
    every run's row (in the order run)."""
    from bench_engine import machine_info, machine_line

    repeat = summary["repeat"]
    first = runs[0]
    return "\n".join([
        f"Command: `{command}`",
        "",
        machine_line(machine_info())
        + f" The same load, {repeat['runs']} times in a row, each on a fresh server: "
        f"{first.get('streams')} streams of {first.get('media')} in {first.get('chunk_ms')} ms "
        f"chunks for {first.get('duration_s'):g} s, load from {first.get('client_procs')} "
        f"{first.get('client', 'python')} client process(es). A run meets the target when every "
        f"stream kept real time with no error and p99 ≤ {repeat['limit_ms']:g} ms.",
        "",
        f"Runs that met the target: **{repeat['met']} of {repeat['runs']}**.",
        "",
        table(runs),
    ])


def docs_body(
    points: Sequence[dict[str, Any]],
    naive: Sequence[dict[str, Any]],
    *,
    command: str,
    limit_ms: float,
    best: int | None,
    best_naive: int | None,
    plot: Path | None,
    server_desc: str = "",
    nice: int = 0,
    best_by_server: dict[str, int | None] | None = None,
) -> str:
    from bench_engine import machine_info, machine_line

    info = machine_info()
    p0 = points[0] if points else {}
    chunk_sizes = " or ".join(str(c) for c in dict.fromkeys(p.get("chunk_ms") for p in points) if c)
    per = p0.get("streams_per_channel")
    connections = f" Clients open one HTTP/2 connection per {'stream' if per == 1 else f'{per} streams'}."
    clients = {p.get("client", "python") for p in points}
    connections += (
        f" The load: {p0.get('client_procs')} C++ client process(es) (`--client cpp`,"
        " clients/cpp/src/loadgen.cc, gRPC's C++ callback API), the same streams as the"
        " Python client's at about half its CPU."
        if clients == {"cpp"}
        else f" The load: {p0.get('client_procs')} Python client process(es) (grpc.aio)."
        if clients == {"python"}
        else ""
    )
    lines = [
        f"Command: `{command}`",
        "",
        machine_line(info)
        + " Server and client processes share the machine's cores; the table gives the client's"
        " CPU and that of everything else running meanwhile (other CPU %: other jobs on the"
        " machine, a source of noise). Speed probe: the milliseconds of a fixed one-thread"
        " workload (`bench_engine.speed_probe_ms`, best of 7) run just before each row; this"
        " virtual machine's speed drifts, so compare rows and runs alongside it (lower is"
        " faster).",
        "",
        f"Each stream: {p0.get('modality', 'audio')} ({p0.get('media', '?')}) in"
        f" {chunk_sizes or '?'} ms chunks"
        f"{' (the server column says which)' if ' or ' in chunk_sizes else ''}"
        f" paced at real time for {p0.get('duration_s', '?')} s, 13D, one update per second of"
        " media; stream starts spread over the first second. Latency: from sending the chunk"
        " that completes an update's interval to the update's arrival. Kept realtime: no error,"
        " every due update within 1 s, sender never more than 500 ms behind schedule."
        + (connections if per else ""),
        "",
        *([server_desc, ""] if server_desc else []),
        *(["Run with `--nice`: the server and clients got a higher CPU priority than other"
           " jobs on the machine.", ""] if nice else []),
        f"Largest N with p99 <= {limit_ms:g} ms and no error: "
        + (
            ", ".join(f"{name} **{_fmt(b)}**" for name, b in best_by_server.items())
            if best_by_server
            else f"streamprint **{_fmt(best)}**"
        )
        + (f", naive server **{_fmt(best_naive)}**" if naive else "")
        + ". Target (issue 7): 256.",
        "",
        table([*points, *naive]),
    ]
    if plot is not None:
        lines += ["", f"![update latency against concurrent streams]({plot.name})"]
    return "\n".join(lines)


def _parse_list(text: str) -> list[int]:
    return [int(x) for x in text.split(",") if x.strip()]


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__.split("\n\n")[0], formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--streams", type=int, default=8, help="concurrent streams")
    parser.add_argument("--duration", type=float, default=10.0, help="media seconds per stream")
    parser.add_argument("--modality", choices=("audio", "video"), default="audio")
    parser.add_argument("--server", help="address of a running server (default: start one); "
                        "several, comma-separated, share the streams round-robin")
    parser.add_argument("--server-pid", type=int, help="PID of --server for RSS/CPU (default: "
                        "the process listening on its port, when it can be found)")
    parser.add_argument("--naive", action="store_true",
                        help="start scripts/naive_server.py instead of streamprint")
    parser.add_argument("--server-arg", action="append", default=[],
                        help="extra argument for the started server (repeatable), e.g. "
                        "--server-arg=--engine-threads=2")
    parser.add_argument("--workers", type=_parse_list, default=[1],
                        help="start streamprint as `serve --workers N` (N processes on one "
                        "port); a comma-separated list (e.g. 1,2) sweeps each, side by side "
                        "per stream count")
    parser.add_argument("--server-procs", type=int, default=1,
                        help="server processes to start, each on its own port; the clients "
                        "spread the streams over them round-robin")
    parser.add_argument("--client-procs", type=int, default=0,
                        help="client processes (0: 1 up to 32 streams or with --client cpp, else 2)")
    parser.add_argument("--streams-per-channel", type=int, default=None,
                        help=f"streams per client connection (default {STREAMS_PER_CHANNEL}; "
                        f"{STREAMS_PER_CHANNEL_WORKERS} when a --workers count is above 1: the "
                        "kernel spreads connections, not streams, over the workers, so more "
                        "connections spread more evenly)")
    parser.add_argument("--client", choices=("python", "cpp"), default="python",
                        help="the load's client processes: python (grpc.aio) or cpp (the C++ "
                        "load generator, clients/cpp/src/loadgen.cc, built with cmake on first "
                        "use; audio only): the same streams, at a fraction of the CPU")
    parser.add_argument("--chunk-ms", type=_parse_list, default=[100],
                        help="media per message, ms; with --sweep a comma list is run side by "
                        "side at every N (e.g. 100,250)")
    parser.add_argument("--interval", type=float, default=1.0, help="update interval, s of media")
    parser.add_argument("--sample-rate", type=int, default=44_100)
    parser.add_argument("--channels", type=int, default=2)
    parser.add_argument("--lag-limit-ms", type=float, default=500.0,
                        help="a stream whose sender fell further behind did not keep real time")
    parser.add_argument("--warmup-streams", type=int, default=2,
                        help="unpaced 3 s streams sent before measuring (0: none)")
    parser.add_argument("--repeat", type=int, default=1,
                        help="without --sweep: run the same load this many times, each on a fresh "
                        "server, and report how many met the target (the last JSON line: the "
                        "median run plus a 'repeat' object); with --write-docs, a table of the "
                        "runs in docs/benchmarks.md")
    parser.add_argument("--sweep", type=_parse_list,
                        help="comma-separated stream counts: run each on a fresh server")
    parser.add_argument("--naive-sweep", type=_parse_list, default=[],
                        help="with --sweep: also run the naive server at these counts")
    parser.add_argument("--sweep-all", action="store_true",
                        help="keep sweeping past the first count over the limit")
    parser.add_argument("--p99-limit-ms", type=float, default=100.0)
    parser.add_argument("--plot", type=Path, default=DOCS_PLOT, help="sweep plot (PNG)")
    parser.add_argument("--write-docs", action="store_true",
                        help="with --sweep: rewrite the concurrent-streams section of "
                        "docs/benchmarks.md")
    parser.add_argument("--nice", type=int, default=0,
                        help="change this process's niceness first (e.g. -10 as root: the "
                        "server and clients then win the CPU over other jobs on a shared box)")
    parser.add_argument("--doc-section", default=DOC_SECTION,
                        help="marker name of the docs/benchmarks.md section --write-docs rewrites")
    parser.add_argument("--json", action="store_true", help="last line: one JSON object")
    args = parser.parse_args(argv)
    if args.client == "cpp" and args.modality != "audio":
        parser.error("--client cpp sends audio only (use --client python for video)")

    from bench_engine import apply_nice, speed_probe_ms

    apply_nice(args.nice)
    spec = LoadSpec(
        modality=args.modality,
        duration_s=args.duration,
        chunk_ms=args.chunk_ms[0],
        interval_s=args.interval,
        sample_rate=args.sample_rate,
        channels=args.channels,
        streams_per_channel=args.streams_per_channel
        or (STREAMS_PER_CHANNEL if max(args.workers) <= 1 else STREAMS_PER_CHANNEL_WORKERS),
        client=args.client,
    )

    def one(n: int, naive: bool, workers: int = args.workers[0], chunk_ms: int = args.chunk_ms[0]) -> dict[str, Any]:
        probe = speed_probe_ms()
        result = run_load(
            streams=n,
            spec=dataclasses.replace(spec, chunk_ms=chunk_ms),
            server=args.server,
            server_pid=args.server_pid,
            naive=naive,
            client_procs=args.client_procs,
            server_args=args.server_arg,
            lag_limit_s=args.lag_limit_ms / 1000.0,
            warmup_streams=args.warmup_streams,
            server_procs=args.server_procs,
            server_workers=workers,
        )
        result["speed_probe_ms"] = probe
        if len(args.chunk_ms) > 1:
            result["server"] = f"{result['server']}, {chunk_ms} ms chunks"
        print(json.dumps(result) if args.json else _human(result), flush=True)
        return result

    if not args.sweep:
        if len(args.chunk_ms) > 1:
            parser.error("a --chunk-ms list needs --sweep (one run sends one chunk size)")
        if args.repeat <= 1:
            result = one(args.streams, args.naive)
            return 0 if result["errors"] == 0 else 1
        runs = [one(args.streams, args.naive) for _ in range(args.repeat)]
        summary = repeat_summary(runs, args.p99_limit_ms)
        print(json.dumps(summary) if args.json else _human(summary), flush=True)
        if args.write_docs:
            from bench_engine import write_doc_section

            command = "python scripts/bench_streams.py " + " ".join(
                shlex.quote(a) for a in (sys.argv[1:] if argv is None else argv)
            )
            section = REPEAT_DOC_SECTION if args.doc_section == DOC_SECTION else args.doc_section
            write_doc_section(section, repeat_docs_body(runs, summary, command=command))
        return 0 if all(r["errors"] == 0 for r in runs) else 1

    points: list[dict[str, Any]] = []
    mine: dict[tuple[int, int], list[dict[str, Any]]] = {
        (w, c): [] for w in args.workers for c in args.chunk_ms
    }
    for n in args.sweep:  # every --workers x --chunk-ms at this N before the next N: side by side
        for (w, c), own in mine.items():
            if own and not args.sweep_all and largest_within(own[-2:], args.p99_limit_ms) is None:
                continue  # two counts in a row over the limit (or the first count)
            own.append(one(n, args.naive, w, c))
            points.append(own[-1])
    best_by_server = {
        name: largest_within(group, args.p99_limit_ms) for name, group in by_server(points).items()
    }
    naive_points: list[dict[str, Any]] = []
    for n in args.naive_sweep:  # a few small counts, each run (no early stop)
        naive_points.append(one(n, True))
    best = largest_within(points, args.p99_limit_ms)
    best_naive = largest_within(naive_points, args.p99_limit_ms) if naive_points else None
    title = f"{args.modality} streams, {args.duration:g} s each, {os.cpu_count()} cores"
    plotted = plot_sweep(points, naive_points, args.plot, limit_ms=args.p99_limit_ms, title=title)
    if args.write_docs:
        from bench_engine import write_doc_section

        command = "python scripts/bench_streams.py " + " ".join(
            shlex.quote(a) for a in (sys.argv[1:] if argv is None else argv)
        )
        write_doc_section(
            args.doc_section,
            docs_body(
                points,
                naive_points,
                command=command,
                limit_ms=args.p99_limit_ms,
                best=best,
                best_naive=best_naive,
                plot=args.plot if plotted else None,
                nice=args.nice,
                best_by_server=best_by_server if len(mine) > 1 else None,
                server_desc=(
                    f"Server: {args.server_procs} x `python -m streamprint serve`"
                    + "".join(f" `{a}`" for a in args.server_arg)
                    + (
                        f" with `--workers` {', '.join(str(w) for w in args.workers)} (N server"
                        " processes on one port, connections spread by the kernel; RSS and CPU"
                        " are the supervisor's and its workers')"
                        if args.workers != [1]
                        else ""
                    )
                    + (" (streams spread round-robin over the processes by the client)"
                       if args.server_procs > 1 else "")
                    + (
                        "; naive server: `scripts/naive_server.py` (batch fingerprint of all the"
                        " media so far, recomputed on every chunk)."
                        if args.naive_sweep
                        else "."
                    )
                    if args.server is None
                    else f"Server: running at {args.server}."
                ),
            ),
        )
    chosen = next((p for p in points if p["streams"] == best), points[-1] if points else {})
    summary = {
        **chosen,
        "max_streams_within_limit": best,
        "max_streams_within_limit_by_server": best_by_server,
        "naive_max_streams_within_limit": best_naive,
        "sweep": points,
        "naive_sweep": naive_points,
    }
    if args.json:
        print(json.dumps(summary), flush=True)
    else:
        print(f"largest N with p99 <= {args.p99_limit_ms:g} ms: {best}"
              + (f" (naive: {best_naive})" if naive_points else ""))
    return 0


def _human(r: dict[str, Any]) -> str:
    return (
        f"[{r['server']}] streams {r['streams']}: realtime {r['streams_realtime']}, "
        f"update latency p50/p95/p99 {_fmt(r['p50_update_latency_ms'])}/"
        f"{_fmt(r['p95_update_latency_ms'])}/{_fmt(r['p99_update_latency_ms'])} ms, "
        f"TTFF p50 {_fmt(r['ttff_p50_ms'])} ms, errors {_fmt(r['errors_by_code'])}, "
        f"server RSS {_fmt(r['rss_mb'])} MB (PSS {_fmt(r.get('pss_mb'))} MB), "
        f"server CPU {_fmt(r['cpu_percent'])} %, "
        f"client CPU {_fmt(r['client_cpu_percent'])} %, other CPU {_fmt(r['other_cpu_percent'])} %"
    )


if __name__ == "__main__":
    sys.exit(main())
