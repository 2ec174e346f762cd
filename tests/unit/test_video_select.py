"""Choosing the video analyzer (--backend / --precision): gate, sha256, start-up check, reason;
and its wiring into the data plane (sessions, unary jobs, cache keys, server info)."""

from __future__ import annotations

import asyncio
import dataclasses
import logging
import shutil
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
import video_clips as vc
from numpy.typing import NDArray
from runtime_helpers import MODELS, require_runtime

from streamprint.config import ServerConfig
from streamprint.dataplane import DataPlane, NumpyEngine
from streamprint.dataplane.types import (
    FingerprintJob,
    MediaFormat,
    MediaInput,
    StreamSpec,
    VideoInput,
)
from streamprint.engine import dims
from streamprint.engine.video.features import COLUMNS
from streamprint.engine.video.session import VIDEO_REFERENCE_MODEL
from streamprint.errors import InvalidInputError, ModelError
from streamprint.runtime import LoadOptions
from streamprint.runtime import video_select as vs
from streamprint.runtime.manifest import load_manifest
from streamprint.runtime.video import (
    VIDEO_MODEL,
    VIDEO_VERSION,
    Described,
    Prev,
    VideoAnalyzer,
    load_video_analyzer,
)

OPTIONS = LoadOptions(models_dir=MODELS)


@pytest.fixture(autouse=True)
def _fresh_cache() -> Iterator[None]:
    vs.clear_cache()
    yield
    vs.clear_cache()


class GarbageAnalyzer:
    """A 'graph' analyzer that computes nonsense (a broken runtime or device)."""

    name = "video-onnxruntime-fp32"
    version = VIDEO_VERSION
    backend = "onnxruntime"
    precision = "fp32"
    device = "CPUExecutionProvider"

    def describe(self, rgb: NDArray[np.uint8], prev: Prev) -> Described:
        y = np.zeros(rgb.shape[:2], np.float32)
        row = np.zeros(len(COLUMNS))
        row[COLUMNS.index("luma_mean")] = 255.0
        return row, y, np.full(32, 1 / 32)


def _prefer_onnxruntime(monkeypatch: pytest.MonkeyPatch, analyzer: VideoAnalyzer | None = None) -> None:
    """Make onnxruntime/fp32 the fastest candidate (and optionally replace what it loads)."""
    real_speed, real_load = vs._speed, load_video_analyzer
    monkeypatch.setattr(
        vs, "_speed", lambda m, b, p: 1e6 if (b, p) == ("onnxruntime", "fp32") else real_speed(m, b, p)
    )
    if analyzer is not None:
        monkeypatch.setattr(
            vs, "load_video_analyzer",
            lambda b, p, o: analyzer if (b, p) == ("onnxruntime", "fp32") else real_load(b, p, o),
        )


def test_auto_takes_the_fastest_gate_passing_candidate_and_says_why() -> None:
    sel = vs.select_video("auto", "auto", OPTIONS)
    statuses = {(c.backend, c.precision): c.status for c in sel.candidates}
    assert statuses[(sel.backend, sel.precision)] == "chosen"
    assert list(statuses.values()).count("chosen") == 1
    assert "--backend auto --precision auto" in sel.reason
    for c in sel.candidates:
        if c.status == "gate-failed":  # INT8 fails the video gate here: auto never takes it
            assert c.precision == "int8" and f"skipped {c.backend}/int8: its accuracy gate failed" in sel.reason
    # the chosen one is the fastest of those ranked by the manifest
    ranked = [c for c in sel.candidates if c.status in ("chosen", "slower")]
    assert max(ranked, key=lambda c: c.frames_per_second or 0.0).status == "chosen"
    info = sel.to_json_dict()
    assert info["model"] == sel.model and info["reason"] == sel.reason
    if sel.backend == "numpy":
        assert (sel.model, sel.model_version) == (VIDEO_REFERENCE_MODEL, "1")


@pytest.mark.parametrize("backend", ["onnxruntime", "openvino"])
def test_explicit_backend_runs_that_backend(backend: str) -> None:
    require_runtime(backend)
    sel = vs.select_video(backend, "fp32", OPTIONS)
    assert (sel.backend, sel.precision, sel.model) == (backend, "fp32", f"video-{backend}-fp32")
    assert sel.model_version == VIDEO_VERSION and f"--backend {backend} --precision fp32" in sel.reason


def test_explicit_int8_runs_with_a_warning_when_its_gate_failed(caplog: pytest.LogCaptureFixture) -> None:
    require_runtime("onnxruntime")
    with caplog.at_level(logging.WARNING, "streamprint.runtime"):
        sel = vs.select_video("onnxruntime", "int8", OPTIONS)
    assert (sel.backend, sel.precision) == ("onnxruntime", "int8")
    gate = load_manifest(VIDEO_MODEL, VIDEO_VERSION, models_dir=MODELS).variants["onnxruntime/int8"].gate
    assert gate is not None
    if not gate.passed:
        assert "was asked for although its accuracy gate failed" in sel.reason
        assert any("onnxruntime/int8 was asked for" in r.getMessage() for r in caplog.records)


def test_numpy_runs_fp32_only_and_bad_names_are_invalid_input() -> None:
    assert vs.select_video("numpy", "auto", OPTIONS).model == VIDEO_REFERENCE_MODEL
    with pytest.raises(ModelError, match="numpy cannot run int8"):
        vs.select_video("numpy", "int8", OPTIONS)
    with pytest.raises(InvalidInputError):
        vs.select_video("tensorflow", "auto", OPTIONS)
    with pytest.raises(InvalidInputError):
        vs.select_video("auto", "fp16", OPTIONS)


def test_a_failed_startup_check_falls_back_with_a_log_line(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    _prefer_onnxruntime(monkeypatch, GarbageAnalyzer())
    monkeypatch.setattr(vs, "_installed", lambda name: True)
    with caplog.at_level(logging.WARNING, "streamprint.runtime"):
        sel = vs.select_video("auto", "auto", OPTIONS)
    assert sel.backend != "onnxruntime" or sel.precision != "fp32"
    failed = [c for c in sel.candidates if c.status == "check-failed"]
    assert [(c.backend, c.precision) for c in failed] == [("onnxruntime", "fp32")]
    assert "luma_mean" not in failed[0].detail and "brightness_mean" in failed[0].detail
    assert "skipped onnxruntime/fp32: start-up check against the numpy reference failed" in sel.reason
    assert any("onnxruntime/fp32 skipped: start-up check" in r.getMessage() for r in caplog.records)
    # with only that candidate left, nothing can run: a clear error, never garbage
    vs.clear_cache()
    with pytest.raises(ModelError, match=r"no runnable video analyzer.*start-up check"):
        vs.select_video("onnxruntime", "auto", OPTIONS)
    # asked for explicitly: it runs, with a warning
    vs.clear_cache()
    sel = vs.select_video("onnxruntime", "fp32", OPTIONS)
    assert isinstance(sel.analyzer, GarbageAnalyzer) and "was asked for although its start-up check" in sel.reason


def test_a_passing_startup_check_lets_a_graph_backend_win(monkeypatch: pytest.MonkeyPatch) -> None:
    require_runtime("onnxruntime")
    _prefer_onnxruntime(monkeypatch)
    sel = vs.select_video("auto", "auto", OPTIONS)
    assert (sel.backend, sel.precision) == ("onnxruntime", "fp32")
    assert "the fastest candidate passing the start-up check" in sel.reason


def test_startup_check_compares_every_dimension_with_its_tolerance() -> None:
    ref = vs.check_fingerprint(None)
    assert vs.startup_check(ref, ref) is None
    # the clip exercises the dimensions: not all zero, a cut, black frames, motion
    assert ref.values["black_frame_ratio"] > 0 and ref.values["scene_cut_rate"] > 0
    assert ref.values["motion_intensity"] > 0 and ref.values["colorfulness"] > 0
    off = dataclasses.replace(ref, values={**ref.values, "sharpness": ref.values["sharpness"] + 10.0,
                                           "contrast": float("nan")})
    problem = vs.startup_check(off, ref)
    assert problem is not None and "sharpness" in problem and "contrast" in problem
    assert "brightness_mean" not in problem


def test_missing_runtime_is_skipped_by_auto_and_refused_when_explicit(monkeypatch: pytest.MonkeyPatch) -> None:
    real = vs._installed
    monkeypatch.setattr(vs, "_installed", lambda name: name != "openvino" and real(name))
    sel = vs.select_video("auto", "auto", OPTIONS)
    assert ("openvino", "-", "unavailable") in [(c.backend, c.precision, c.status) for c in sel.candidates]
    assert "skipped openvino/-: openvino is not installed" in sel.reason
    with pytest.raises(ModelError, match="backend openvino is unavailable"):
        vs.select_video("openvino", "fp32", OPTIONS)


def test_a_corrupt_video_model_is_a_startup_error_not_a_fallback(tmp_path: Path) -> None:
    require_runtime("onnxruntime")
    models = tmp_path / "models"
    shutil.copytree(MODELS / VIDEO_MODEL, models / VIDEO_MODEL)
    model = models / VIDEO_MODEL / VIDEO_VERSION / "fp32" / "model.onnx"
    model.write_bytes(model.read_bytes()[:-10] + b"0123456789")
    for backend in ("auto", "onnxruntime"):
        vs.clear_cache()
        with pytest.raises(ModelError, match=r"model\.onnx"):
            vs.select_video(backend, "auto", LoadOptions(models_dir=models))


# ---------------------------------------------------------------------------- data plane wiring


CONFIG = ServerConfig(workers=1, max_streams=2, max_requests=2)


def _plane(video: vs.VideoSelection) -> DataPlane:
    return DataPlane(CONFIG, NumpyEngine(), video=video)


@pytest.fixture(scope="module")
def clip() -> bytes:
    return vc.encode(vc.moving_with_cut(1.0), seconds=2.0, container="ts")


def test_plane_runs_the_selected_video_analyzer_and_keys_the_cache_by_it(clip: bytes) -> None:
    require_runtime("onnxruntime")
    graph = vs.select_video("onnxruntime", "fp32", OPTIONS)
    job = FingerprintJob(MediaInput(data=clip), dims.VIDEO_13D, dims.Modality.VIDEO)

    async def run(plane: DataPlane) -> tuple[str, str, str]:
        result = await plane.fingerprint(job)
        async with plane.open_stream(
            StreamSpec(MediaFormat(), dims.VIDEO_13D, 1.0, modality=dims.Modality.VIDEO, video=VideoInput())
        ) as stream:
            stream.accept_chunk(0, len(clip))
            await stream.push(clip)
            _, final = await stream.finish()
        key = plane._key(result.media_sha256, job.media.video.cache_params(), job.dimensions, modality=job.modality)
        plane.close()
        assert final.model == result.fingerprint.model
        return result.fingerprint.model, final.model, key

    ref_model, _, ref_key = asyncio.run(run(_plane(vs.reference_video_selection())))
    graph_model, _, graph_key = asyncio.run(run(_plane(graph)))
    assert ref_model == VIDEO_REFERENCE_MODEL and graph_model == "video-onnxruntime-fp32"
    assert ref_key != graph_key  # results of different backends never share a cache entry

    async def info() -> None:
        plane = _plane(graph)
        models = plane.info().models
        plane.close()
        video = [m for m in models if m.modality is dims.Modality.VIDEO]
        assert models[0].modality is dims.Modality.AUDIO and len(video) == 1
        assert (video[0].name, video[0].backend, video[0].precision) == ("video-onnxruntime-fp32", "onnxruntime", "fp32")
        assert video[0].selection_reason == graph.reason

    asyncio.run(info())


def test_plane_without_an_engine_selects_video_from_the_flags(monkeypatch: pytest.MonkeyPatch) -> None:
    require_runtime("onnxruntime")
    monkeypatch.setenv("STREAMPRINT_MODELS_DIR", str(MODELS))

    async def run() -> vs.VideoSelection:
        plane = DataPlane(dataclasses.replace(CONFIG, backend="onnxruntime", precision="fp32"))
        plane.close()
        return plane.video

    sel = asyncio.run(run())
    assert (sel.backend, sel.precision) == ("onnxruntime", "fp32")


def test_without_runtimes_auto_runs_the_reference_and_needs_no_model_files(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(vs, "_installed", lambda name: False)
    sel = vs.select_video("auto", "auto", LoadOptions(models_dir=tmp_path / "nowhere"))
    assert sel.model == VIDEO_REFERENCE_MODEL
    assert "onnxruntime is not installed" in sel.reason and "openvino is not installed" in sel.reason
