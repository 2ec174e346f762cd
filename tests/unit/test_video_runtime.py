"""The video per-frame model: parity of ONNX Runtime / OpenVINO with the numpy ``describe``,
session wiring, and the committed model files (sha256, deterministic export)."""

from __future__ import annotations

import importlib.util
import subprocess
import sys

import numpy as np
import pytest
import video_clips as vc
from runtime_helpers import MODELS, ROOT, load_script, require_runtime

from streamprint.engine import dims
from streamprint.engine.video.features import COLUMNS, describe
from streamprint.engine.video.session import VIDEO_REFERENCE_MODEL, fingerprint_video
from streamprint.errors import ModelError
from streamprint.runtime import LoadOptions
from streamprint.runtime.manifest import MANIFEST_NAME, load_manifest, sha256_file
from streamprint.runtime.video import (
    VIDEO_MODEL,
    VIDEO_VERSION,
    NumpyVideoAnalyzer,
    VideoAnalyzer,
    load_video_analyzer,
)

GRAPH = ("onnxruntime", "openvino")
VIDEO_ROOT = MODELS / VIDEO_MODEL / VIDEO_VERSION


def _analyzer(backend: str) -> VideoAnalyzer:
    require_runtime(backend)
    return load_video_analyzer(backend, "fp32", LoadOptions(models_dir=MODELS))


def _frames() -> list[np.ndarray]:
    rng = np.random.default_rng(1)
    out = [rng.integers(0, 256, (144, 256, 3), dtype=np.uint8) for _ in range(3)]
    out.append(np.full((144, 256, 3), 128, np.uint8))
    out.append(np.zeros((144, 256, 3), np.uint8))
    out.append(np.ascontiguousarray(vc.bars(256, 144)(0, 0.0)))
    cut = vc.moving_with_cut(0.5, 256, 144)
    out += [cut(i, i / 10) for i in range(8)]
    out.append(np.full((3, 3, 3), 7, np.uint8))
    return out


@pytest.mark.parametrize("backend", GRAPH)
def test_graph_rows_match_describe(backend: str) -> None:
    analyzer = _analyzer(backend)
    prev_ref = prev = None
    for rgb in _frames():
        ref, y_ref, h_ref = describe(rgb, prev_ref)
        row, y, h = analyzer.describe(rgb, prev)
        np.testing.assert_array_equal(y, y_ref)  # same luma bits, so same histogram and pairs
        np.testing.assert_array_equal(h, h_ref)
        for name, a, b in zip(COLUMNS, row, ref, strict=True):
            assert a == pytest.approx(b, rel=1e-4, abs=1e-3), name
        prev_ref, prev = (y_ref, h_ref), (y, h)


@pytest.mark.parametrize("backend", GRAPH)
@pytest.mark.parametrize(
    "frame_fn", [vc.flat((0, 0, 0)), vc.flat((128, 128, 128)), vc.bars(), vc.moving_with_cut(2.0), vc.noise(3)],
    ids=["black", "grey", "bars", "cut", "noise"],
)
def test_fingerprint_parity_on_generated_clips(backend: str, frame_fn: vc.FrameFn) -> None:
    clip = vc.encode(frame_fn, seconds=4.0, container="ts")
    ref = fingerprint_video(clip)
    fp = fingerprint_video(clip, analyzer=_analyzer(backend))
    assert ref.model == VIDEO_REFERENCE_MODEL
    assert fp.model == f"video-{backend}-fp32" and fp.model_version == VIDEO_VERSION
    for name in dims.VIDEO_13D:
        tol = dims.get(name).tolerance_for(ref.values[name])
        assert abs(fp.values[name] - ref.values[name]) <= 1e-3 * tol + 1e-9, name
        assert fp.confidence[name] == pytest.approx(ref.confidence[name], abs=1e-3), name


def test_numpy_analyzer_is_the_reference() -> None:
    analyzer = load_video_analyzer("numpy")
    assert isinstance(analyzer, NumpyVideoAnalyzer)
    clip = vc.encode(vc.bars(), seconds=2.0, container="ts")
    assert fingerprint_video(clip, analyzer=analyzer) == fingerprint_video(clip)
    with pytest.raises(ModelError):
        load_video_analyzer("numpy", "int8")
    with pytest.raises(ModelError, match="unknown video backend"):
        load_video_analyzer("tensorrt")


def test_committed_video_model_files_match_their_sha256() -> None:
    manifest = load_manifest(VIDEO_MODEL, VIDEO_VERSION, models_dir=MODELS)
    on_disk = {
        str(p.relative_to(VIDEO_ROOT)) for p in VIDEO_ROOT.rglob("*") if p.is_file() and p.name != MANIFEST_NAME
    }
    assert on_disk == set(manifest.files)
    for rel, digest in manifest.files.items():
        assert sha256_file(VIDEO_ROOT / rel) == digest, rel
    assert {"onnxruntime/fp32", "openvino/fp32"} <= set(manifest.variants)
    assert [o["name"] for o in manifest.outputs] == ["luma", "stats"]
    assert sum(p.stat().st_size for p in VIDEO_ROOT.rglob("*") if p.is_file()) < 400_000  # small, committed


def test_corrupt_video_model_is_a_model_error(tmp_path: pytest.TempPathFactory) -> None:
    require_runtime("onnxruntime")
    import shutil

    models = tmp_path / "models"  # type: ignore[operator]
    shutil.copytree(VIDEO_ROOT, models / VIDEO_MODEL / VIDEO_VERSION)
    (models / VIDEO_MODEL / VIDEO_VERSION / "fp32" / "model.onnx").write_bytes(b"x")
    with pytest.raises(ModelError, match="corrupt"):
        load_video_analyzer("onnxruntime", "fp32", LoadOptions(models_dir=models))


@pytest.mark.skipif(
    importlib.util.find_spec("onnx") is None or importlib.util.find_spec("openvino") is None,
    reason="onnx and openvino are needed to re-export (the dev extra installs them)",
)
def test_video_export_is_deterministic_and_matches_the_committed_sha256(tmp_path: pytest.TempPathFactory) -> None:
    script = load_script("export_video_model")
    assert script.build_video_model().SerializeToString(deterministic=True) == script.build_video_model().SerializeToString(
        deterministic=True
    )
    subprocess.run(
        [sys.executable, str(ROOT / "scripts" / "export_video_model.py"), "--out", str(tmp_path)],
        check=True, capture_output=True, timeout=300,
    )
    fresh = load_manifest(VIDEO_MODEL, VIDEO_VERSION, models_dir=tmp_path).files  # type: ignore[arg-type]
    committed = load_manifest(VIDEO_MODEL, VIDEO_VERSION, models_dir=MODELS).files
    for rel in ("fp32/model.onnx", "openvino-fp32/model.xml", "openvino-fp32/model.bin"):
        assert fresh[rel] == committed[rel], f"{rel} differs from the committed model"


def test_int8_variants_are_gated_and_auto_never_picks_a_failed_gate() -> None:
    from streamprint.runtime.video import select_video_analyzer

    manifest = load_manifest(VIDEO_MODEL, VIDEO_VERSION, models_dir=MODELS)
    for key in ("onnxruntime/fp32", "openvino/fp32"):
        gate = manifest.variants[key].gate
        assert gate is not None and gate.passed, key
    for key in ("onnxruntime/int8", "openvino/int8"):
        variant = manifest.variants[key]
        assert variant.gate is not None and variant.raw["quantization"]["quantized_nodes"], key
        assert set(variant.raw["accuracy"]["per_dimension"]) == set(dims.VIDEO_13D)
        if not variant.gate.passed:
            failed = [n for n, s in variant.gate.worst_share.items() if s < variant.gate.required_share]
            assert failed and all(n in variant.gate.reason for n in failed)
    options = LoadOptions(models_dir=MODELS)
    for backend in ("auto", *GRAPH):
        if backend != "auto":
            require_runtime(backend)
        chosen = select_video_analyzer(backend, "auto", options)
        gate = manifest.variants[f"{chosen.backend}/{chosen.precision}"].gate if chosen.backend != "numpy" else None
        assert chosen.backend == "numpy" or (gate is not None and gate.passed)
    require_runtime("onnxruntime")
    explicit = select_video_analyzer("onnxruntime", "int8", options)  # asked for: runs anyway
    assert explicit.precision == "int8"
    row, _, _ = explicit.describe(np.full((144, 256, 3), 90, np.uint8), None)
    assert row[COLUMNS.index("luma_mean")] == pytest.approx(90.0, abs=1.0)
