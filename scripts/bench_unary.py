"""Unary, cache-hit and validation latency of a streamprint server (issue 7's unary targets).

Usage::

    python scripts/bench_unary.py [--server ADDR] [--repeat N] [--hits N] [--minutes 3]
        [--batch-items 4] [--server-arg=--backend=numpy ...] [--json] [--write-docs]

Without ``--server`` the script starts ``python -m streamprint serve`` on a free loopback
port (``scripts/bench_streams.py``'s start-up, with ``--media-root`` set to the directory
of the track, so ``server_path`` requests can be measured too) and stops it at the end.
This process is the client: the server always runs in another process.

The media is the ``scripts/bench_engine.py`` benchmark file (music-like, 44.1 kHz stereo
16-bit WAV made from ``make_corpus.music_mix``), ``--minutes`` long (default 3). Measured,
wall-clock from the call to its response, on one gRPC channel:

* ``unary_cold_s``: ``Fingerprint`` of the WAV bytes, all 25 dimensions, with the
  fingerprint cache cleared (admin ``ClearCache``) before each of ``--repeat`` calls (median;
  every run in ``unary_cold_runs_s``, the server's CPU seconds per call in
  ``unary_cold_server_cpu_s``, how far the server's peak RSS rose above its RSS before the
  call in ``unary_cold_peak_rss_growth_mb``: Linux ``VmHWM`` restarted through
  ``/proc/PID/clear_refs``, of one more cold call made ``--settle-s`` seconds after the
  cache was cleared, so the server's periodic ``malloc_trim`` has returned what earlier
  calls freed);
* ``cache_hit_p50_ms`` / ``p95`` / ``p99``: ``--hits`` calls of the same request once the
  result is cached (``cached`` must come back true). The request carries the whole 3-minute
  file (about 32 MB), so this includes the upload and the content hash;
  ``cache_hit_path_*`` is the same by ``server_path`` (the file under ``--media-root``);
  ``cache_hit_small_*`` the same with a ``--small-seconds`` excerpt sent as bytes;
* ``validate_first_ms``, ``validate_ms`` (cold) / ``validate_warm_ms``: the track streamed
  as a live session (PCM s16le, 13D, unpaced, 1 s chunks), then ``ValidateFingerprints`` of
  its session id: first right after the stream ended; then ``--repeat`` times with the
  fingerprint cache cleared first (sessions kept), so the server recomputes the reference
  (the 13 dimensions the session streamed) from the media it kept, each followed by a warm
  call (the reference then cached); ``validate_peak_rss_growth_mb`` as for the unary call;
* ``validate_prefetch_ms``: the same first call against a second server started with
  ``--validation-prefetch`` (the reference is computed in the background when the stream
  ends), made once the reference is cached: ``validate_prefetch_ready_s`` after the final
  update (``--no-prefetch``: skipped);
* ``batch_s``: ``BatchFingerprint`` of ``--batch-items`` distinct excerpts of the track
  (``--batch-seconds`` each), cache cleared first (0 items: skipped).

With ``--json`` the last line printed is one JSON object (the keys above, plus
``targets_met`` and the run's settings). ``--write-docs`` rewrites the "unary and
validation" section of docs/benchmarks.md (between ``<!-- unary-validation:begin/end -->``)
with the table, the targets, the command and the machine line.
"""

from __future__ import annotations

import argparse
import json
import os
import shlex
import statistics
import sys
import tempfile
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
SCRIPTS = REPO / "scripts"
DOC_SECTION = "unary-validation"
MAX_MESSAGE_BYTES = 256 * 1024 * 1024
#: Default wait before the extra cold calls that measure the server's peak RSS: one period
#: of its ``malloc_trim`` and a second.
SETTLE_S = 11.0

for _p in (REPO / "clients" / "python", REPO / "server", SCRIPTS):
    if str(_p) not in sys.path:
        sys.path.insert(0, str(_p))

from bench_streams import ProcessSampler, percentile, start_server, stop_server  # noqa: E402

#: Issue 7's targets on the 2-core machine: key, limit, unit, what.
TARGETS: tuple[tuple[str, float, str, str], ...] = (
    ("unary_cold_s", 0.5, "s", "Unary 25D `Fingerprint` of a 3-minute track, cold"),
    ("cache_hit_p50_ms", 2.0, "ms", "Cache-hit unary p50"),
    ("validate_ms", 150.0, "ms", "`ValidateFingerprints` of a 3-minute streamed item"),
)

#: Other ways to the same target, measured alongside: target key -> (key, what).
ALTERNATIVES: dict[str, tuple[tuple[str, str], ...]] = {
    "cache_hit_p50_ms": (
        ("cache_hit_path_p50_ms", "the same track by `server_path`"),
        ("cache_hit_small_p50_ms", "a short excerpt sent as bytes"),
    ),
    "validate_ms": (
        ("validate_prefetch_ms", "with `--validation-prefetch`, once the reference is cached"),
    ),
}


# --------------------------------------------------------------------------- accounting


def latency_summary(seconds: Sequence[float], prefix: str) -> dict[str, float | int | None]:
    """``{prefix}_p50_ms``, ``_p95_ms``, ``_p99_ms``, ``_max_ms`` and ``_calls`` of call times (s)."""

    def ms(value: float | None) -> float | None:
        return None if value is None else round(value * 1000.0, 3)

    return {
        f"{prefix}_p50_ms": ms(percentile(seconds, 50)),
        f"{prefix}_p95_ms": ms(percentile(seconds, 95)),
        f"{prefix}_p99_ms": ms(percentile(seconds, 99)),
        f"{prefix}_max_ms": ms(max(seconds) if seconds else None),
        f"{prefix}_calls": len(seconds),
    }


def median_or_none(values: Sequence[float], digits: int = 4) -> float | None:
    """The median rounded to ``digits``, ``None`` for no values."""
    return round(statistics.median(values), digits) if values else None


def targets_met(result: dict[str, Any]) -> dict[str, bool | None]:
    """For each target key: met (``True``), missed (``False``) or not measured (``None``)."""
    out: dict[str, bool | None] = {}
    for key, limit, _unit, _what in TARGETS:
        for k in (key, *(alt for alt, _ in ALTERNATIVES.get(key, ()))):
            value = result.get(k)
            if k == key or value is not None:
                out[k] = None if value is None else bool(value <= limit)
    return out


@dataclass
class Timed:
    """One timed call: wall seconds and the server's CPU seconds meanwhile (``None``: unknown)."""

    wall_s: float
    server_cpu_s: float | None
    response: Any
    #: MB the server's peak RSS rose above its RSS before the call (``None``: unknown).
    server_peak_rss_growth_mb: float | None = None


def timed(call: Callable[[], Any], sampler: ProcessSampler | None) -> Timed:
    """Run ``call`` and time it (wall clock; with a sampler, the server's CPU and how far its
    peak RSS rose above its RSS before the call)."""
    cpu0 = sampler.cpu_seconds() if sampler is not None else None
    rss0 = sampler.rss() if sampler is not None else 0
    peak_known = sampler is not None and sampler.reset_peak_rss()
    t0 = time.perf_counter()
    response = call()
    wall = time.perf_counter() - t0
    cpu = (
        None
        if sampler is None or cpu0 is None
        else round(sampler.cpu_seconds() - cpu0, 3)
    )
    growth = None
    if sampler is not None and peak_known:
        growth = round(max(0, sampler.peak_rss_since_reset() - rss0) / 2**20, 1)
    return Timed(wall, cpu, response, growth)


# --------------------------------------------------------------------------- media


@dataclass(frozen=True)
class Track:
    """The benchmark track: the WAV file, its bytes, and its samples as PCM s16le."""

    path: Path
    wav: bytes
    pcm: bytes
    sample_rate: int
    channels: int

    @property
    def seconds(self) -> float:
        return len(self.pcm) / (2 * self.channels * self.sample_rate)

    def excerpt_wav(self, start_s: float, seconds: float) -> bytes:
        """WAV bytes of ``seconds`` of the track from ``start_s`` (16-bit, same rate)."""
        import io

        import numpy as np
        import soundfile as sf

        frame = 2 * self.channels
        a = round(start_s * self.sample_rate) * frame
        b = a + round(seconds * self.sample_rate) * frame
        samples = np.frombuffer(self.pcm[a:b], "<i2").reshape(-1, self.channels)
        out = io.BytesIO()
        sf.write(out, samples, self.sample_rate, format="WAV", subtype="PCM_16")
        return out.getvalue()


def load_track(minutes: float, path: Path | None = None) -> Track:
    """The ``bench_engine.py`` music-like WAV of ``minutes`` minutes (made once, cached)."""
    import numpy as np
    import soundfile as sf
    from bench_engine import bench_file

    path = path or bench_file(minutes)
    samples, rate = sf.read(path, dtype="int16", always_2d=True)
    pcm = np.ascontiguousarray(samples, dtype="<i2").tobytes()
    return Track(path, path.read_bytes(), pcm, int(rate), int(samples.shape[1]))


# --------------------------------------------------------------------------- client calls


class Client:
    """Sync stubs on one channel, with the requests this benchmark sends."""

    def __init__(self, address: str) -> None:
        import grpc

        from streamprint_client._generated import admin_service_pb2_grpc as admin_grpc
        from streamprint_client._generated import fingerprint_service_pb2_grpc as fs_grpc

        self.channel = grpc.insecure_channel(
            address,
            options=[
                ("grpc.max_send_message_length", MAX_MESSAGE_BYTES),
                ("grpc.max_receive_message_length", MAX_MESSAGE_BYTES),
            ],
        )
        grpc.channel_ready_future(self.channel).result(timeout=30)
        self.fs = fs_grpc.FingerprintServiceStub(self.channel)  # type: ignore[no-untyped-call]
        self.admin = admin_grpc.AdminServiceStub(self.channel)  # type: ignore[no-untyped-call]

    def close(self) -> None:
        self.channel.close()

    @staticmethod
    def fingerprint_request(*, data: bytes | None = None, server_path: str | None = None) -> Any:
        """A 25D ``FingerprintRequest`` of container bytes or a server path."""
        from streamprint_client._generated import fingerprint_service_pb2 as fs_pb
        from streamprint_client._generated import media_pb2 as m_pb

        media = (
            m_pb.MediaSource(server_path=server_path)
            if server_path is not None
            else m_pb.MediaSource(data=data)
        )
        return fs_pb.FingerprintRequest(media=media, modality=m_pb.MODALITY_AUDIO)

    def fingerprint(self, request: Any) -> Any:
        return self.fs.Fingerprint(request, timeout=600)

    def batch(self, items: Sequence[bytes]) -> Any:
        from streamprint_client._generated import fingerprint_service_pb2 as fs_pb

        request = fs_pb.BatchFingerprintRequest(
            items=[self.fingerprint_request(data=d) for d in items]
        )
        return self.fs.BatchFingerprint(request, timeout=600)

    def cached_fingerprints(self) -> int:
        """Entries in the server's fingerprint cache (admin ``GetCacheStats``)."""
        from streamprint_client._generated import admin_service_pb2 as admin_pb

        stats = self.admin.GetCacheStats(admin_pb.GetCacheStatsRequest(), timeout=30)
        return int(stats.fingerprints.size)

    def clear_cache(self, *, include_sessions: bool = False) -> None:
        from streamprint_client._generated import admin_service_pb2 as admin_pb

        self.admin.ClearCache(admin_pb.ClearCacheRequest(include_sessions=include_sessions))

    def stream(self, track: Track, chunk_s: float = 1.0) -> tuple[str, Any]:
        """Stream the track (PCM s16le, 13D, unpaced); (session id, final fingerprint)."""
        from streamprint_client._generated import fingerprint_service_pb2 as fs_pb
        from streamprint_client._generated import media_pb2 as m_pb

        config = fs_pb.StreamConfig(
            modality=m_pb.MODALITY_AUDIO,
            audio_format=m_pb.AudioFormat(
                encoding=m_pb.AUDIO_ENCODING_PCM_S16LE,
                sample_rate_hz=track.sample_rate,
                channels=track.channels,
            ),
            update_interval_seconds=1.0,
            client_stream_id="bench-unary",
        )
        step = round(chunk_s * track.sample_rate) * 2 * track.channels

        def requests() -> Iterator[Any]:
            yield fs_pb.StreamFingerprintRequest(config=config)
            for seq, start in enumerate(range(0, len(track.pcm), step)):
                chunk = fs_pb.MediaChunk(data=track.pcm[start : start + step], seq=seq)
                yield fs_pb.StreamFingerprintRequest(chunk=chunk)

        session_id, final = "", None
        for response in self.fs.StreamFingerprint(requests(), timeout=600):
            session_id = session_id or response.session_id
            if response.fingerprint.final:
                final = response.fingerprint
        if not session_id or final is None:
            raise RuntimeError("the stream ended without a final fingerprint")
        return session_id, final

    def validate(self, session_id: str) -> Any:
        from streamprint_client._generated import fingerprint_service_pb2 as fs_pb

        request = fs_pb.ValidateFingerprintsRequest(
            items=[fs_pb.ValidationItem(session_id=session_id)]
        )
        response = self.fs.ValidateFingerprints(request, timeout=600)
        item = response.results[0]
        if item.status.code != 0:
            raise RuntimeError(f"validation failed: {item.status}")
        return response


# --------------------------------------------------------------------------- one run


def peak_rss_growth(
    runs: Sequence[Timed],
    call: Callable[[], Any],
    client: Client,
    sampler: ProcessSampler | None,
    settle_s: float,
) -> float | None:
    """MB the server's peak RSS rose over its RSS before a cold call: with ``settle_s > 0``,
    of one more cold call made that long after the cache was cleared (the server's periodic
    ``malloc_trim`` has then returned what earlier calls freed, so the growth counts from an
    idle server's RSS; the timed ``runs`` stay back to back, comparable with earlier runs),
    else the median over ``runs``."""
    if settle_s <= 0:
        growths = [r.server_peak_rss_growth_mb for r in runs if r.server_peak_rss_growth_mb is not None]
        return median_or_none(growths, 1)
    client.clear_cache()
    time.sleep(settle_s)
    return timed(call, sampler).server_peak_rss_growth_mb


def measure_validation(
    client: Client,
    track: Track,
    *,
    sampler: ProcessSampler | None,
    repeat: int,
    wait: Callable[[], float] | None = None,
    settle_s: float = 0.0,
) -> dict[str, Any]:
    """Stream the track, then time ``ValidateFingerprints`` of the session.

    ``validate_first_ms``: the first call, right after the stream ended, or once ``wait()``
    returned (its result, seconds, is ``validate_first_after_s``; nothing is cleared).
    ``validate_ms``: ``repeat`` calls each after ``ClearCache`` (sessions kept), so the
    server recomputes the reference; ``validate_warm_ms``: the call right after each.
    """
    result: dict[str, Any] = {}
    t0 = time.perf_counter()
    session_id, final = client.stream(track)
    result["stream_s"] = round(time.perf_counter() - t0, 3)
    result["streamed_final_dimensions"] = len(final.dimensions)
    waited = wait() if wait is not None else 0.0
    first = timed(lambda: client.validate(session_id), sampler)
    result["validate_first_ms"] = round(1000.0 * first.wall_s, 2)
    result["validate_first_after_s"] = round(waited, 3)
    validate_cold: list[Timed] = []
    validate_warm: list[float] = []
    for _ in range(max(0, repeat)):
        client.clear_cache()  # the references go, the session's media stays
        run = timed(lambda: client.validate(session_id), sampler)
        validate_cold.append(run)
        validate_warm.append(timed(lambda: client.validate(session_id), None).wall_s)
    report = first.response.results[0].report
    result["validate_passed"] = bool(report.passed)
    result["validate_dimensions"] = len(report.dimensions)
    if validate_cold:
        result["validate_ms"] = median_or_none([1000.0 * v.wall_s for v in validate_cold], 2)
        result["validate_runs_ms"] = [round(1000.0 * v.wall_s, 2) for v in validate_cold]
        vcpus = [v.server_cpu_s for v in validate_cold if v.server_cpu_s is not None]
        result["validate_server_cpu_s"] = median_or_none(vcpus, 3)
        result["validate_peak_rss_growth_mb"] = peak_rss_growth(
            validate_cold, lambda: client.validate(session_id), client, sampler, settle_s
        )
        result["validate_warm_ms"] = median_or_none([1000.0 * w for w in validate_warm], 2)
    return result


def measure(
    client: Client,
    track: Track,
    *,
    sampler: ProcessSampler | None,
    repeat: int,
    hits: int,
    server_path: str | None,
    small_seconds: float,
    batch_items: int,
    batch_seconds: float,
    settle_s: float = 0.0,
) -> dict[str, Any]:
    """Every measurement of this benchmark against a running server (see the module doc)."""
    result: dict[str, Any] = {
        "media_seconds": round(track.seconds, 3),
        "media_bytes": len(track.wav),
    }
    request = client.fingerprint_request(data=track.wav)

    # warm-up: first-call costs (imports, model loads) stay out of the numbers
    client.fingerprint(client.fingerprint_request(data=track.excerpt_wav(0.0, 3.0)))

    cold: list[Timed] = []
    for _ in range(max(1, repeat)):
        client.clear_cache()
        run = timed(lambda: client.fingerprint(request), sampler)
        if run.response.cached:
            raise RuntimeError("a cold call came back cached: ClearCache did not clear")
        cold.append(run)
    result["unary_cold_s"] = median_or_none([c.wall_s for c in cold])
    result["unary_cold_runs_s"] = [round(c.wall_s, 4) for c in cold]
    cpus = [c.server_cpu_s for c in cold if c.server_cpu_s is not None]
    result["unary_cold_server_cpu_s"] = median_or_none(cpus, 3)
    result["unary_cold_peak_rss_growth_mb"] = peak_rss_growth(
        cold, lambda: client.fingerprint(request), client, sampler, settle_s
    )

    def hit_times(req: Any) -> list[float]:
        first = client.fingerprint(req)  # computed if not cached yet
        times = []
        for _ in range(max(1, hits)):
            run = timed(lambda: client.fingerprint(req), None)
            if not run.response.cached or run.response.media_sha256 != first.media_sha256:
                raise RuntimeError("a cache-hit call was not served from the cache")
            times.append(run.wall_s)
        return times

    result.update(latency_summary(hit_times(request), "cache_hit"))
    if server_path is not None:
        result.update(
            latency_summary(
                hit_times(client.fingerprint_request(server_path=server_path)), "cache_hit_path"
            )
        )
    if small_seconds > 0:
        small = client.fingerprint_request(data=track.excerpt_wav(0.0, small_seconds))
        result.update(latency_summary(hit_times(small), "cache_hit_small"))
        result["small_seconds"] = small_seconds

    result.update(
        measure_validation(client, track, sampler=sampler, repeat=repeat, settle_s=settle_s)
    )

    if batch_items > 0:
        span = max(0.0, track.seconds - batch_seconds)
        items = [
            track.excerpt_wav(span * k / max(1, batch_items - 1) if batch_items > 1 else 0.0,
                              min(batch_seconds, track.seconds))
            for k in range(batch_items)
        ]
        client.clear_cache()
        run = timed(lambda: client.batch(items), sampler)
        failed = [r.status.code for r in run.response.results if r.status.code != 0]
        if failed:
            raise RuntimeError(f"batch items failed with codes {failed}")
        result["batch_s"] = round(run.wall_s, 4)
        result["batch_server_cpu_s"] = run.server_cpu_s
        result["batch_items"] = batch_items
        result["batch_item_seconds"] = batch_seconds
    return result


def measure_prefetch(
    track: Track, server_args: Sequence[str], tmp: Path, *, timeout_s: float = 300.0
) -> dict[str, Any]:
    """A second server with ``--validation-prefetch``: the track streamed; the time until the
    reference is in the server's cache (``validate_prefetch_ready_s``, polled with
    ``GetCacheStats`` every 50 ms), then one ``ValidateFingerprints`` (``validate_prefetch_ms``)."""
    proc, address = start_server(
        naive=False,
        streams=1,
        extra=["--validation-prefetch", *server_args],
        log_path=tmp / "server-prefetch.log",
    )
    try:
        client = Client(address)
        try:
            # warm-up as for the other server (first-call costs)
            client.fingerprint(client.fingerprint_request(data=track.excerpt_wav(0.0, 3.0)))
            baseline = client.cached_fingerprints()

            def until_prefetched() -> float:
                t0 = time.perf_counter()
                while client.cached_fingerprints() <= baseline:
                    if time.perf_counter() - t0 > timeout_s:
                        raise RuntimeError("the prefetched reference never reached the cache")
                    time.sleep(0.05)
                return time.perf_counter() - t0

            got = measure_validation(
                client, track, sampler=ProcessSampler([proc.pid]), repeat=0, wait=until_prefetched
            )
        finally:
            client.close()
    finally:
        stop_server(proc)
    return {
        "validate_prefetch_ms": got["validate_first_ms"],
        "validate_prefetch_ready_s": got["validate_first_after_s"],
    }


def run(
    *,
    server: str | None,
    server_pid: int | None = None,
    server_args: Sequence[str] = (),
    minutes: float = 3.0,
    track_path: Path | None = None,
    repeat: int = 3,
    hits: int = 200,
    small_seconds: float = 10.0,
    batch_items: int = 4,
    batch_seconds: float = 30.0,
    prefetch: bool = True,
    server_media_root: Path | None = None,
    settle_s: float = SETTLE_S,
) -> dict[str, Any]:
    """Start a server (unless ``server`` is given), measure, stop it; the result dict."""
    track = load_track(minutes, track_path)
    load_before = round(os.getloadavg()[0], 2)
    from bench_engine import speed_probe_ms

    probe_before = speed_probe_ms()
    proc = None
    tmp = Path(tempfile.mkdtemp(prefix="bench-unary-"))
    media_root = track.path.parent if server is None else server_media_root
    try:
        if server is None:
            proc, address = start_server(
                naive=False,
                streams=1,
                extra=["--media-root", str(track.path.parent), *server_args],
                log_path=tmp / "server.log",
            )
            pid: int | None = proc.pid
        else:
            from bench_streams import pid_listening_on

            address = server
            pid = server_pid or pid_listening_on(address)
        client = Client(address)
        try:
            result = measure(
                client,
                track,
                sampler=ProcessSampler([pid]) if pid is not None else None,
                repeat=repeat,
                hits=hits,
                server_path=(
                    str(track.path.resolve().relative_to(media_root.resolve()))
                    if media_root is not None
                    else None
                ),
                small_seconds=small_seconds,
                batch_items=batch_items,
                batch_seconds=batch_seconds,
                settle_s=settle_s,
            )
        finally:
            client.close()
    finally:
        if proc is not None:
            stop_server(proc)
    if server is None and prefetch:
        result.update(measure_prefetch(track, server_args, tmp))
    result["load_average_after"] = round(os.getloadavg()[0], 2)
    result["speed_probe_after_ms"] = speed_probe_ms()
    result.update(
        speed_probe_before_ms=probe_before,
        load_average_before=load_before,
        server="streamprint" if server is None else server,
        server_args=list(server_args),
        repeat=repeat,
        hits=hits,
        settle_s=settle_s,
        track=track.path.name,
    )
    result["targets_met"] = targets_met(result)
    return result


# --------------------------------------------------------------------------- report


def _fmt(value: Any, digits: int = 2) -> str:
    if value is None:
        return "-"
    if isinstance(value, float):
        return f"{value:.{digits}f}"
    return str(value)


def _unit(value: Any, unit: str, digits: int = 2) -> str:
    return "-" if value is None else f"{_fmt(value, digits)} {unit}"


def _settle_text(settle_s: Any) -> str:
    if not settle_s:
        return " Server peak RSS: the median growth of the timed calls."
    return (
        f" Server peak RSS: one more cold call of each kind, made {_fmt(settle_s, 0)} s after"
        " the cache was cleared (the server's periodic `malloc_trim` has then returned what"
        " earlier calls freed), its peak (Linux `VmHWM`, restarted through"
        " `/proc/PID/clear_refs`) over its RSS just before."
    )


def _peak_growth(mb: Any) -> str:
    return "" if mb is None else f"; server peak RSS +{_fmt(mb, 1)} MB over its RSS before the call"


def table(result: dict[str, Any]) -> str:
    """A Markdown table of one run."""
    seconds = result.get("media_seconds", 0.0)
    rows: list[tuple[str, str, str, str]] = [
        (
            f"`Fingerprint` 25D, {seconds:g} s WAV ({result.get('media_bytes', 0) / 1e6:.1f} MB)"
            ", cold (cache cleared)",
            _unit(result.get("unary_cold_s"), "s", 3),
            _unit(result.get("unary_cold_server_cpu_s"), "s", 2),
            "runs: " + ", ".join(f"{v:.3f}" for v in result.get("unary_cold_runs_s", [])) + " s"
            + _peak_growth(result.get("unary_cold_peak_rss_growth_mb")),
        ),
    ]
    for prefix, what in (
        ("cache_hit", "same request, cache hit (bytes uploaded)"),
        ("cache_hit_path", "same track by `server_path`, cache hit"),
        ("cache_hit_small", f"{_fmt(result.get('small_seconds'), 0)} s excerpt as bytes, cache hit"),
    ):
        if result.get(f"{prefix}_p50_ms") is None:
            continue
        rows.append(
            (
                what,
                f"p50 {_fmt(result.get(f'{prefix}_p50_ms'))} ms",
                "",
                f"p95 {_fmt(result.get(f'{prefix}_p95_ms'))}, p99 "
                f"{_fmt(result.get(f'{prefix}_p99_ms'))}, max {_fmt(result.get(f'{prefix}_max_ms'))}"
                f" ms over {result.get(f'{prefix}_calls')} calls",
            )
        )
    rows.append(
        (
            f"`ValidateFingerprints` of the streamed session ({seconds:g} s), right after the"
            " stream ended",
            _unit(result.get("validate_first_ms"), "ms"),
            "",
            f"{result.get('validate_dimensions')} dimensions checked, passed"
            f" {result.get('validate_passed')}; streaming the track (unpaced, 1 s chunks) took"
            f" {_unit(result.get('stream_s'), 's')}",
        )
    )
    if result.get("validate_ms") is not None:
        rows.append(
            (
                "the same, cold (fingerprint cache cleared: the reference is recomputed)",
                _unit(result.get("validate_ms"), "ms"),
                _unit(result.get("validate_server_cpu_s"), "s", 2),
                "runs: " + ", ".join(f"{v:.1f}" for v in result.get("validate_runs_ms", []))
                + " ms" + _peak_growth(result.get("validate_peak_rss_growth_mb")),
            )
        )
        rows.append(
            (
                "the same again (reference cached)",
                _unit(result.get("validate_warm_ms"), "ms"),
                "",
                "",
            )
        )
    if result.get("validate_prefetch_ms") is not None:
        rows.append(
            (
                "server with `--validation-prefetch`: the same validation once the reference"
                " is cached",
                _unit(result.get("validate_prefetch_ms"), "ms"),
                "",
                "the reference was computed in the background from the end of the stream;"
                f" it was cached {_unit(result.get('validate_prefetch_ready_s'), 's')} after"
                " the final update",
            )
        )
    if result.get("batch_s") is not None:
        rows.append(
            (
                f"`BatchFingerprint` of {result.get('batch_items')} distinct"
                f" {_fmt(result.get('batch_item_seconds'), 0)} s excerpts, cold",
                _unit(result.get("batch_s"), "s", 3),
                _unit(result.get("batch_server_cpu_s"), "s", 2),
                "",
            )
        )
    lines = [
        "| what | wall (median) | server CPU | detail |",
        "|---|---:|---:|---|",
        *(f"| {a} | {b} | {c} | {d} |" for a, b, c, d in rows),
    ]
    return "\n".join(lines)


def targets_text(result: dict[str, Any]) -> str:
    """One line per issue 7 target: the number and whether it is met."""
    met = result.get("targets_met") or targets_met(result)
    lines = []
    words = {True: "**met**", False: "**not met**", None: "not measured"}
    for key, limit, unit, what in TARGETS:
        value = result.get(key)
        line = f"- {what}: target <= {limit:g} {unit}, measured {_unit(value, unit, 3)}: {words[met.get(key)]}"
        others = [
            f"{name}: {_unit(result.get(alt), unit, 3)}, {words[met.get(alt)]}"
            for alt, name in ALTERNATIVES.get(key, ())
            if result.get(alt) is not None
        ]
        lines.append(line + (f" ({'; '.join(others)})." if others else "."))
    return "\n".join(lines)


def docs_body(result: dict[str, Any], *, command: str) -> str:
    from bench_engine import machine_info, machine_line

    server_desc = (
        "Server: `python -m streamprint serve`"
        + "".join(f" `{a}`" for a in result.get("server_args", []))
        + " (defaults otherwise: `--backend auto`, `--heads auto`), started by the script with"
        " `--media-root` at the track's directory; the script is the client, in another process."
        if result.get("server") == "streamprint"
        else f"Server: running at {result.get('server')}."
    ) + (
        f" Run with `--nice {result['nice']}`: the script and its servers got a higher CPU"
        " priority than other jobs on the machine."
        if result.get("nice")
        else ""
    )
    return "\n".join(
        [
            f"Command: `{command}`",
            "",
            machine_line(machine_info())
            + " Wall times from the client (call to response); server CPU = the server"
            " process's CPU seconds during the call. 1-minute load average"
            f" {result.get('load_average_before')} before and {result.get('load_average_after')}"
            " after the run (2 cores shared with other jobs: wall times grow with the load,"
            " server CPU much less). Speed probe (`bench_engine.speed_probe_ms`: a fixed"
            " one-thread workload, best of 7; this virtual machine's speed drifts, lower is"
            f" faster): {result.get('speed_probe_before_ms')} ms before and"
            f" {result.get('speed_probe_after_ms')} ms after the run.",
            "",
            server_desc,
            "",
            f"Track: `{result.get('track')}` ({result.get('media_seconds')} s of music-like"
            " 44.1 kHz stereo 16-bit WAV, the `bench_engine.py` generator). Cold calls clear the"
            f" fingerprint cache first (admin `ClearCache`); {result.get('repeat')} runs each,"
            " back to back, median reported." + _settle_text(result.get("settle_s")),
            "",
            table(result),
            "",
            "Targets (issue 7):",
            "",
            targets_text(result),
        ]
    )


def _human(result: dict[str, Any]) -> str:
    keys = (
        "unary_cold_s", "unary_cold_server_cpu_s", "unary_cold_peak_rss_growth_mb", "cache_hit_p50_ms",
        "cache_hit_p95_ms",
        "cache_hit_p99_ms", "cache_hit_path_p50_ms", "cache_hit_small_p50_ms",
        "validate_first_ms", "validate_ms", "validate_peak_rss_growth_mb", "validate_warm_ms",
        "validate_prefetch_ms", "batch_s",
    )
    return "\n".join(
        [*(f"{k}: {_fmt(result.get(k), 4)}" for k in keys), targets_text(result)]
    )


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=(__doc__ or "").split("\n\n")[0],
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--server", help="address of a running server (default: start one)")
    parser.add_argument("--server-pid", type=int, help="PID of --server for its CPU time")
    parser.add_argument("--server-media-root", type=Path,
                        help="with --server: its --media-root, if the track lies under it "
                        "(enables the server_path cache-hit measurement)")
    parser.add_argument("--server-arg", action="append", default=[],
                        help="extra argument for the started server (repeatable)")
    parser.add_argument("--minutes", type=float, default=3.0, help="track length in minutes")
    parser.add_argument("--track", type=Path, help="a 16-bit WAV to use instead of the generated one")
    parser.add_argument("--repeat", type=int, default=3, help="cold runs (unary and validation)")
    parser.add_argument(
        "--settle-s", type=float, default=SETTLE_S,
        help="seconds to wait before one extra cold unary call and one extra cold validation "
        "that measure the server's peak RSS growth, so its periodic malloc_trim has returned "
        "what earlier calls freed (0: the timed calls' growth, counted over whatever the "
        "server kept from the call before)",
    )
    parser.add_argument("--hits", type=int, default=200, help="cache-hit calls per kind")
    parser.add_argument("--small-seconds", type=float, default=10.0,
                        help="excerpt length of the small cache-hit case (0: skip)")
    parser.add_argument("--batch-items", type=int, default=4, help="BatchFingerprint items (0: skip)")
    parser.add_argument("--batch-seconds", type=float, default=30.0, help="seconds per batch item")
    parser.add_argument("--prefetch", action=argparse.BooleanOptionalAction, default=True,
                        help="also start a server with --validation-prefetch and time the "
                        "validation once the prefetched reference is cached (not with --server)")
    parser.add_argument("--write-docs", action="store_true",
                        help="rewrite the unary-validation section of docs/benchmarks.md")
    parser.add_argument("--nice", type=int, default=0,
                        help="change this process's niceness first, inherited by the started "
                        "servers (e.g. -10 as root: the measurement wins the CPU over other "
                        "jobs on a shared machine)")
    parser.add_argument("--json", action="store_true", help="last line: one JSON object")
    args = parser.parse_args(argv)
    from bench_engine import apply_nice

    apply_nice(args.nice)

    result = run(
        server=args.server,
        server_pid=args.server_pid,
        server_args=args.server_arg,
        minutes=args.minutes,
        track_path=args.track,
        repeat=args.repeat,
        settle_s=args.settle_s,
        hits=args.hits,
        small_seconds=args.small_seconds,
        batch_items=args.batch_items,
        batch_seconds=args.batch_seconds,
        prefetch=args.prefetch,
        server_media_root=args.server_media_root,
    )
    result["nice"] = args.nice
    if args.write_docs:
        from bench_engine import write_doc_section

        command = "python scripts/bench_unary.py " + " ".join(
            shlex.quote(a) for a in (sys.argv[1:] if argv is None else argv)
        )
        write_doc_section(DOC_SECTION, docs_body(result, command=command.strip()))
    print(json.dumps(result) if args.json else _human(result), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
