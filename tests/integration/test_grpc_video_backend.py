"""A real server started with --backend/--precision runs the selected video analyzer: streams,
Fingerprint, BatchFingerprint and the validation recompute carry its model id; GetServerInfo
says which video backend runs and why, next to audio's, and reports every limit."""

from __future__ import annotations

import io
import sys
from collections.abc import Callable
from pathlib import Path

import grpc
import pytest
from grpc_harness import ServerThread

from streamprint.engine import dims
from streamprint_client import StreamprintClient
from streamprint_client._generated import fingerprint_service_pb2 as fs_pb
from streamprint_client._generated import fingerprint_service_pb2_grpc as fs_grpc
from streamprint_client._generated import media_pb2 as m_pb
from streamprint_client.cli import main as client_main

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "unit"))
import video_clips as vc
from runtime_helpers import require_runtime


@pytest.fixture(scope="module")
def clip_ts() -> bytes:
    return vc.encode(vc.moving_with_cut(1.5), seconds=3.0, container="ts")


def test_server_runs_the_selected_video_backend(
    make_server: Callable[..., ServerThread], clip_ts: bytes, tmp_path: Path
) -> None:
    require_runtime("onnxruntime")
    srv = make_server(backend="onnxruntime", precision="fp32", max_streams_per_token=2, max_chunk_rate=40.0)
    path = tmp_path / "clip.ts"
    path.write_bytes(clip_ts)
    with StreamprintClient(srv.address) as client:
        info = client.server_info()
        by_modality = {m["modality"]: m for m in info.models}
        assert set(by_modality) == {"audio", "video"} and info.models[0]["modality"] == "audio"
        video = by_modality["video"]
        assert (video["name"], video["backend"], video["precision"]) == ("video-onnxruntime-fp32", "onnxruntime", "fp32")
        assert "--backend onnxruntime --precision fp32" in video["selection_reason"]
        assert by_modality["audio"]["backend"] == "onnxruntime"
        limits = info.limits
        assert int(limits["max_streams_per_token"]) == 2
        assert float(limits["max_chunk_rate"]) == 40.0 and float(limits["max_chunk_burst"]) == 80.0
        assert int(limits["max_video_frame_side"]) == 8192 and int(limits["max_retained_bytes_total"]) > 0
    out = io.StringIO()
    assert client_main(["--server", srv.address, "info"], out=out) == 0
    assert "model (video): video-onnxruntime-fp32 1 on onnxruntime (fp32)" in out.getvalue()
    assert "max_chunk_burst: 80" in out.getvalue()
    with StreamprintClient(srv.address) as client:

        final = list(client.stream_file(path, modality="video"))[-1].fingerprint
        assert final.final and final.model == "video-onnxruntime-fp32"
        unary = client.fingerprint(clip_ts, modality="video")
        assert unary.fingerprint.model == "video-onnxruntime-fp32" and not unary.cached
        assert unary.fingerprint.values == pytest.approx(final.values, rel=1e-9, abs=1e-9)
        assert client.fingerprint(clip_ts, modality="video").cached
    with grpc.insecure_channel(srv.address) as channel:
        stub = fs_grpc.FingerprintServiceStub(channel)
        source = m_pb.MediaSource(data=clip_ts)
        batch = stub.BatchFingerprint(
            fs_pb.BatchFingerprintRequest(
                items=[fs_pb.FingerprintRequest(media=source, modality=m_pb.MODALITY_VIDEO)]
            ),
            timeout=60,
        )
        assert batch.results[0].result.fingerprint.model == "video-onnxruntime-fp32"
        candidate = [m_pb.DimensionValue(name=k, value=v) for k, v in final.values.items()]
        validated = stub.ValidateFingerprints(
            fs_pb.ValidateFingerprintsRequest(items=[fs_pb.ValidationItem(media=source, candidate=candidate)]),
            timeout=60,
        )
        report = validated.results[0].report
        assert report.passed and report.reference_algorithm == dims.ALGORITHM_VIDEO_13D
        # the recompute of fresh media runs the selected analyzer and caches under its model id
        fresh = vc.encode(vc.noise(5), seconds=2.0, container="ts")
        stub.ValidateFingerprints(
            fs_pb.ValidateFingerprintsRequest(
                items=[fs_pb.ValidationItem(media=m_pb.MediaSource(data=fresh), candidate=candidate)]
            ),
            timeout=60,
        )
    with StreamprintClient(srv.address) as client:
        again = client.fingerprint(fresh, modality="video")
        assert again.cached and again.fingerprint.model == "video-onnxruntime-fp32"
    # the reference server computes the same clip under another model id, so another cache key
    ref = make_server(backend="numpy")
    with StreamprintClient(ref.address) as client:
        assert client.fingerprint(clip_ts, modality="video").fingerprint.model == "numpy-reference-video"
    assert srv.plane.video.model != ref.plane.video.model
