"""The C++ streaming example (clients/cpp), built with cmake from Debian's gRPC packages with
stubs generated from protos/ at build time, run against a real server. Its rich error
details come from google/rpc/*.proto of googleapis-common-protos (in .venv) at build time.

Needs cmake, g++, protoc, grpc_cpp_plugin and libgrpc++-dev (Debian: cmake g++ libgrpc++-dev
libprotobuf-dev protobuf-compiler protobuf-compiler-grpc). Without them the tests skip
locally, but fail under CI (``CI`` set), where they must run. The build goes to build/cpp
(incremental: a second run only relinks what changed).
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from pathlib import Path
from typing import Any

import grpc
import pytest
from grpc_harness import ServerThread

from streamprint_client import StreamprintClient, StreamprintRpcError

ROOT = Path(__file__).resolve().parents[2]
SOURCE = ROOT / "clients" / "cpp"
BUILD = ROOT / "build" / "cpp"
GRPC_HEADER = Path("/usr/include/grpcpp/grpcpp.h")


def _missing() -> str | None:
    tools = [t for t in ("cmake", "c++", "protoc", "grpc_cpp_plugin") if shutil.which(t) is None]
    if tools:
        return f"missing {', '.join(tools)}"
    if not GRPC_HEADER.exists():
        return "missing libgrpc++-dev (no grpcpp/grpcpp.h)"
    return None


@pytest.fixture(scope="module")
def binary() -> Path:
    missing = _missing()
    if missing is not None:
        reason = (
            f"C++ toolchain: {missing} (apt-get install cmake g++ libgrpc++-dev libprotobuf-dev "
            "protobuf-compiler protobuf-compiler-grpc)"
        )
        if os.environ.get("CI"):
            pytest.fail(f"the C++ client must be built in CI: {reason}")
        pytest.skip(reason)
    for cmd in (
        ["cmake", "-S", str(SOURCE), "-B", str(BUILD), "-DCMAKE_BUILD_TYPE=Release"],
        ["cmake", "--build", str(BUILD), "-j2"],
    ):
        result = subprocess.run(cmd, capture_output=True, text=True, timeout=900)
        assert result.returncode == 0, result.stdout[-4000:] + result.stderr[-4000:]
    path = BUILD / "streamprint_stream"
    assert path.is_file()
    return path


def _run(binary: Path, server: ServerThread, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(binary), *args],
        env={**os.environ, "STREAMPRINT_SERVER": server.address},
        capture_output=True,
        text=True,
        timeout=120,
    )


@pytest.mark.parametrize("name", ["clip.wav", "clip.flac"])
def test_cpp_stream_final_equals_python(
    binary: Path, server: ServerThread, media_dir: Path, name: str
) -> None:
    path = media_dir / name
    result = _run(binary, server, str(path), "--json", "--client-stream-id", "cpp-1")
    assert result.returncode == 0, result.stderr
    lines = [json.loads(line) for line in result.stdout.splitlines()]
    assert len(lines) >= 3
    assert [line["final"] for line in lines] == [False] * (len(lines) - 1) + [True]
    revisions = [line["revision"] for line in lines]
    assert revisions == sorted(set(revisions))
    assert {line["client_stream_id"] for line in lines} == {"cpp-1"}
    final = lines[-1]

    with StreamprintClient(server.address) as client:
        expected = list(client.stream_file(path, client_stream_id="cpp-1"))[-1].to_json_dict()
    expected["path"] = str(path)
    assert set(final) == set(expected)
    for key in ("values", "confidence", "revision", "media_seconds", "algorithm", "model"):
        assert final[key] == expected[key], key


def test_cpp_error_status(binary: Path, server: ServerThread, media_dir: Path) -> None:
    result = _run(binary, server, str(media_dir / "garbage.bin"), "--json")
    assert result.returncode == 1
    assert "INVALID_ARGUMENT" in result.stderr
    assert json.loads(result.stdout.splitlines()[-1])["error"]["code"] == "INVALID_ARGUMENT"


def _python_error(server: ServerThread, path: Path) -> StreamprintRpcError:
    """The error the Python client raises streaming ``path``."""
    with StreamprintClient(server.address) as client, pytest.raises(StreamprintRpcError) as info:
        list(client.stream_file(path))
    return info.value


def test_cpp_error_prints_the_rich_details(
    binary: Path, server: ServerThread, media_dir: Path
) -> None:
    """Undecodable media: INVALID_ARGUMENT with ErrorInfo and a BadRequest field violation,
    printed on stderr exactly as the Python client describes them, and in --json's error line
    with the Python client's details."""
    path = media_dir / "garbage.bin"
    expected = _python_error(server, path)
    assert expected.reason == "MEDIA_UNDECODABLE" and expected.field_violations  # what is checked

    result = _run(binary, server, str(path))
    assert result.returncode == 1
    assert "  reason MEDIA_UNDECODABLE (streamprint.dev)\n" in result.stderr
    assert "  field chunk.data: unrecognised or unsupported media format" in result.stderr
    assert result.stderr == f"streamprint_stream: error: {expected.describe()}\n"

    as_json = _run(binary, server, str(path), "--json")
    assert as_json.returncode == 1
    assert json.loads(as_json.stdout.splitlines()[-1]) == {"error": expected.to_json_dict()}


def test_cpp_error_prints_error_info_metadata(
    binary: Path, make_server: Any, media_dir: Path
) -> None:
    """A limit (chunks larger than --max-chunk-bytes): RESOURCE_EXHAUSTED whose ErrorInfo
    names the limit in its metadata."""
    server = make_server(max_chunk_bytes=1024)
    result = _run(binary, server, str(media_dir / "clip.wav"), "--json")
    assert result.returncode == 1
    assert result.stderr.splitlines()[1:] == [
        "  reason RESOURCE_LIMIT (streamprint.dev, limit=chunk_bytes)"
    ]
    error = json.loads(result.stdout.splitlines()[-1])["error"]
    assert error["code"] == "RESOURCE_EXHAUSTED"
    assert error["details"] == [
        {
            "type": "google.rpc.ErrorInfo",
            "reason": "RESOURCE_LIMIT",
            "domain": "streamprint.dev",
            "metadata": {"limit": "chunk_bytes"},
        }
    ]


def test_cpp_error_decodes_every_detail_type(binary: Path) -> None:
    """A stub server that refuses the stream with one detail of each kind: the C++ client
    prints RetryInfo, ResourceInfo, ErrorInfo and BadRequest as the Python client does, other
    google.rpc types as JSON, and a type it has no descriptor for by its type URL; its --json
    details equal the Python client's decoding of the same status."""
    from concurrent import futures

    from google.protobuf import any_pb2, duration_pb2
    from google.rpc import error_details_pb2, status_pb2

    from streamprint_client.errors import decode_details

    def packed(message: Any) -> any_pb2.Any:
        any_message = any_pb2.Any()
        any_message.Pack(message)
        return any_message

    unknown = any_pb2.Any(type_url="type.googleapis.com/example.v1.Unknown", value=b"\x08\x01")
    status = status_pb2.Status(
        code=grpc.StatusCode.RESOURCE_EXHAUSTED.value[0],
        message="refused",
        details=[
            packed(
                error_details_pb2.ErrorInfo(reason="R", domain="d", metadata={"b": "2", "a": "1"})
            ),
            packed(
                error_details_pb2.RetryInfo(
                    retry_delay=duration_pb2.Duration(seconds=1, nanos=500_000_000)
                )
            ),
            packed(
                error_details_pb2.BadRequest(
                    field_violations=[
                        error_details_pb2.BadRequest.FieldViolation(
                            field="config.x", description="too big"
                        ),
                        error_details_pb2.BadRequest.FieldViolation(
                            field="chunk.seq", description="gap"
                        ),
                    ]
                )
            ),
            packed(error_details_pb2.ResourceInfo(resource_type="session", resource_name="s-1")),
            packed(
                error_details_pb2.QuotaFailure(
                    violations=[
                        error_details_pb2.QuotaFailure.Violation(
                            subject="token", description="over", quota_value=5
                        )
                    ]
                )
            ),
            packed(error_details_pb2.DebugInfo(stack_entries=["a", "b"], detail="x")),
            unknown,
        ],
    )

    def refuse(requests: Any, context: grpc.ServicerContext) -> Any:
        context.set_trailing_metadata((("grpc-status-details-bin", status.SerializeToString()),))
        context.abort(grpc.StatusCode.RESOURCE_EXHAUSTED, status.message)
        yield b""  # a generator: the stream handler's shape

    handler = grpc.method_handlers_generic_handler(
        "streamprint.v1.FingerprintService",
        {"StreamFingerprint": grpc.stream_stream_rpc_method_handler(refuse)},
    )
    stub = grpc.server(futures.ThreadPoolExecutor(2), options=[("grpc.so_reuseport", 0)])
    stub.add_generic_rpc_handlers((handler,))
    port = stub.add_insecure_port("127.0.0.1:0")
    stub.start()
    try:
        address = f"127.0.0.1:{port}"
        media = ROOT / "pyproject.toml"  # any file: the stub refuses before reading it
        text = subprocess.run(
            [str(binary), str(media), "--server", address],
            capture_output=True,
            text=True,
            timeout=60,
        )
        as_json = subprocess.run(
            [str(binary), str(media), "--server", address, "--json"],
            capture_output=True,
            text=True,
            timeout=60,
        )
    finally:
        stub.stop(0)

    python = StreamprintRpcError(
        grpc.StatusCode.RESOURCE_EXHAUSTED,
        "refused",
        decode_details((d.type_url, d.value) for d in status.details),
    )
    assert text.returncode == 1
    assert text.stderr.splitlines() == [
        "streamprint_stream: error: RESOURCE_EXHAUSTED: refused",
        "  reason R (d, a=1, b=2)",
        "  retry after 1.5 s",
        "  field config.x: too big",
        "  field chunk.seq: gap",
        "  resource session s-1",
        "  quota token: over",
        '  google.rpc.DebugInfo: {"stack_entries":["a","b"],"detail":"x"}',
        '  example.v1.Unknown: {"undecoded_bytes":2}',
    ]
    # every line is the Python client's
    assert text.stderr.splitlines()[1:] == python.describe().splitlines()[1:]
    assert as_json.returncode == 1
    assert json.loads(as_json.stdout.splitlines()[-1]) == {"error": python.to_json_dict()}


def test_cpp_usage(binary: Path) -> None:
    assert subprocess.run([str(binary)], capture_output=True, timeout=30).returncode == 2
    missing = subprocess.run([str(binary), "/nonexistent.wav"], capture_output=True, timeout=30)
    assert missing.returncode == 1
    # a directory: a clean error, not an uncaught std::ios_base::failure (exit 134)
    directory = subprocess.run([str(binary), str(ROOT)], capture_output=True, text=True, timeout=30)
    assert directory.returncode == 1 and f"Is a directory: {ROOT}" in directory.stderr
    # --json: the Python client's LOCAL_FILE error line, for scripts reading stdout
    for path, reason in (("/nonexistent.wav", "No such file or directory"), (str(ROOT), "Is a directory")):
        run = subprocess.run([str(binary), path, "--json"], capture_output=True, text=True, timeout=30)
        assert run.returncode == 1
        error = json.loads(run.stdout.splitlines()[-1])["error"]
        assert error["code"] == "LOCAL_FILE" and error["details"] == [] and reason in error["message"]


def _bench_streams() -> Any:
    """``scripts/bench_streams.py`` as a module (its C++ launcher and accounting)."""
    import importlib
    import sys

    if str(ROOT / "scripts") not in sys.path:
        sys.path.insert(0, str(ROOT / "scripts"))
    return importlib.import_module("bench_streams")


def test_cpp_load_generator_sends_the_benchmark_streams(binary: Path, server: ServerThread, tmp_path: Path) -> None:
    """``bench_streams.py --client cpp``: the C++ load generator sends every stream exactly as
    the Python client does (the kept media's sha256 is that of the Python chunks' bytes),
    paced at real time, and its records go through the same latency accounting."""
    import time

    import numpy as np

    bs = _bench_streams()

    from streamprint.cache.keys import SamplesDigest

    assert binary.parent == bs.LOADGEN.parent
    spec = bs.LoadSpec(
        duration_s=2.5, chunk_ms=250, sample_rate=16000, channels=2, streams_per_channel=1, client="cpp"
    )
    clip = tmp_path / "clip.raw"
    clip.write_bytes(bs.audio_clip(spec, seconds=2.0))  # shorter than a stream: it loops
    clients = bs.CppClients([server.address], 3, 2, spec, clip)
    _, start_at = clients.start(1.0)
    try:
        records, failures = clients.collect(time.monotonic() + 60)
    finally:
        clients.stop()
    assert failures == []
    assert sorted(r.index for r in records) == [0, 1, 2]
    for record in records:
        chunks, ends = bs.stream_chunks(spec, clip.read_bytes(), record.index)
        assert record.error is None, record.error_message
        assert record.chunk_ends == ends
        samples = np.frombuffer(b"".join(chunks), dtype="<i2").reshape(-1, spec.channels)
        digest = SamplesDigest(spec.sample_rate, spec.channels, "s16")
        digest.update(samples)
        assert server.plane.sessions.get(record.session_id).media_sha256 == digest.hexdigest()
        t0 = start_at + spec.interval_s * record.index / 3
        assert all(sent >= t0 + k * 0.25 - 1e-3 for k, sent in enumerate(record.send_times))
        assert [final for _, _, final in record.updates] == [False, False, True]
        assert record.updates[-1][1] == pytest.approx(2.5)
        latencies = bs.update_latencies(record)
        assert len(latencies) == 2 and all(0.0 <= s < 5.0 for s in latencies)
    summary = bs.summarize(records, streams=3, interval_s=spec.interval_s, lag_limit_s=0.5)
    assert summary["errors"] == 0 and summary["streams_realtime"] == 3


def test_cpp_load_generator_records_streams_the_server_refuses(
    binary: Path, make_server: Any, tmp_path: Path
) -> None:
    """A server full at one stream: the refused streams end RESOURCE_EXHAUSTED in their
    records (the pacer sends nothing after a call is over), the admitted one completes."""
    import time

    bs = _bench_streams()

    server = make_server(max_streams=1)
    spec = bs.LoadSpec(
        duration_s=2.0, chunk_ms=100, sample_rate=16000, channels=1, streams_per_channel=1, client="cpp"
    )
    clip = tmp_path / "clip.raw"
    clip.write_bytes(bs.audio_clip(spec, seconds=1.0))
    clients = bs.CppClients([server.address], 3, 1, spec, clip)
    clients.start(0.5)
    try:
        records, failures = clients.collect(time.monotonic() + 60)
    finally:
        clients.stop()
    assert failures == []
    errors = sorted(r.error or "OK" for r in records)
    assert errors == ["OK", "RESOURCE_EXHAUSTED", "RESOURCE_EXHAUSTED"], errors
    refused = [r for r in records if r.error]
    assert all(len(r.send_times) < 20 for r in refused)


def test_cpp_load_generator_usage(binary: Path) -> None:
    loadgen = binary.parent / "streamprint_loadgen"
    assert subprocess.run([str(loadgen)], capture_output=True, timeout=30).returncode == 2
    bad = subprocess.run(
        [str(loadgen), "--address", "127.0.0.1:1", "--clip", "/nonexistent.raw", "--streams", "1"],
        capture_output=True, text=True, timeout=30,
    )
    assert bad.returncode == 2 and "cannot read the clip" in bad.stderr
