"""The committed models: manifest contents, sha256 values, deterministic export, and the
clear errors for a missing or corrupt model."""

from __future__ import annotations

import importlib.util
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from runtime_helpers import MODELS, VARIANTS, load_script, require_runtime

from streamprint.engine import dims
from streamprint.errors import ModelError
from streamprint.runtime import LoadOptions, get_backend, select_analyzer
from streamprint.runtime.manifest import (
    MANIFEST_NAME,
    SPECTRAL_MODEL,
    SPECTRAL_VERSION,
    load_manifest,
    sha256_file,
)
from streamprint.runtime.registry import ensure_registered

ROOT_DIR = MODELS / SPECTRAL_MODEL / SPECTRAL_VERSION
REPO = Path(__file__).resolve().parents[2]


def test_every_model_file_is_listed_and_matches_its_sha256() -> None:
    manifest = load_manifest(models_dir=MODELS)
    on_disk = {
        str(p.relative_to(ROOT_DIR)) for p in ROOT_DIR.rglob("*") if p.is_file() and p.name != MANIFEST_NAME
    }
    assert on_disk == set(manifest.files), "files on disk and in the manifest differ; run `make models`"
    for rel, digest in manifest.files.items():
        assert sha256_file(ROOT_DIR / rel) == digest, rel
    manifest.verify()


def test_manifest_describes_inputs_outputs_variants_and_measurements() -> None:
    manifest = load_manifest(models_dir=MODELS)
    assert manifest.opset == 17
    assert [i["name"] for i in manifest.inputs] == ["power"]
    assert manifest.inputs[0]["shape"] == ["n", 1025] and manifest.inputs[0]["unit"]
    outputs = {o["name"]: o for o in manifest.outputs}
    assert set(outputs) == {"centroid", "rolloff", "flatness", "chroma_concentration", "mel_db", "band_power"}
    assert all(o["unit"] and o["shape"] for o in outputs.values())
    assert set(VARIANTS) <= set(manifest.variants)
    calibration = manifest.raw["calibration"]
    assert calibration["frames"] > 0 and calibration["clips"]
    for key in VARIANTS:
        variant = manifest.variants[key]
        assert variant.gate is not None, key
        per_dim = variant.raw["accuracy"]["per_dimension"]
        assert set(per_dim) == set(dims.AUDIO_25D), key
        assert variant.frames_per_second and variant.frames_per_second > 0
        if variant.precision == "int8":
            assert variant.raw["quantization"]["quantized_nodes"], key
    # FP32 on either runtime matches the reference everywhere; the INT8 verdicts are
    # whatever the corpus measured, but a failed gate must say which dimensions failed.
    for key in ("onnxruntime/fp32", "openvino/fp32"):
        gate = manifest.variants[key].gate
        assert gate is not None and gate.passed, gate
    for key in ("onnxruntime/int8", "openvino/int8"):
        gate = manifest.variants[key].gate
        assert gate is not None
        if not gate.passed:
            failed = [n for n, s in gate.worst_share.items() if s < gate.required_share]
            assert failed and all(n in gate.reason for n in failed)


@pytest.mark.skipif(
    importlib.util.find_spec("onnx") is None or importlib.util.find_spec("openvino") is None,
    reason="onnx and openvino are needed to re-export (the dev extra installs them)",
)
def test_export_is_deterministic_and_matches_the_committed_sha256(tmp_path: Path) -> None:
    export_models = load_script("export_models")
    committed = load_manifest(models_dir=MODELS).files
    first = export_models.build_spectral_model().SerializeToString(deterministic=True)
    second = export_models.build_spectral_model().SerializeToString(deterministic=True)
    assert first == second
    # A fresh process, as `make models` runs it: OpenVINO names unnamed graph nodes from a
    # per-process counter, so an export after other OpenVINO work in the same process (the
    # rest of this test session) would serialise different node names.
    subprocess.run(
        [sys.executable, str(REPO / "scripts" / "export_models.py"), "--out", str(tmp_path)],
        check=True, capture_output=True, timeout=300,
    )
    fresh = load_manifest(models_dir=tmp_path).files
    for rel in (export_models.FP32_ONNX, export_models.FP32_OV_XML, export_models.FP32_OV_BIN):
        assert fresh[rel] == committed[rel], f"{rel} differs from the committed model; run `make models`"


def _copy_models(tmp_path: Path) -> Path:
    dst = tmp_path / "models"
    shutil.copytree(MODELS, dst)
    return dst


@pytest.mark.parametrize("key", VARIANTS)
def test_corrupt_model_file_is_a_model_error(tmp_path: Path, key: str) -> None:
    runtime, precision = key.split("/")
    require_runtime(runtime)
    models = _copy_models(tmp_path)
    manifest = load_manifest(models_dir=models)
    target = manifest.path(next(iter(manifest.variants[key].files.values())))
    data = bytearray(target.read_bytes())
    data[len(data) // 2] ^= 0xFF
    target.write_bytes(bytes(data))
    with pytest.raises(ModelError, match=r"corrupt.*sha256"):
        get_backend(runtime).load(precision, LoadOptions(models_dir=models))


def test_missing_model_file_and_missing_manifest_are_model_errors(tmp_path: Path) -> None:
    require_runtime("onnxruntime")
    ensure_registered()
    models = _copy_models(tmp_path)
    root = models / SPECTRAL_MODEL / SPECTRAL_VERSION
    (root / "fp32" / "model.onnx").unlink()
    with pytest.raises(ModelError, match=r"missing.*make models"):
        get_backend("onnxruntime").load("fp32", LoadOptions(models_dir=models))
    (root / MANIFEST_NAME).unlink()
    with pytest.raises(ModelError, match="no manifest"):
        get_backend("onnxruntime").load("fp32", LoadOptions(models_dir=models))


def test_auto_refuses_a_corrupt_model_instead_of_falling_back(tmp_path: Path) -> None:
    require_runtime("onnxruntime")
    models = _copy_models(tmp_path)
    target = models / SPECTRAL_MODEL / SPECTRAL_VERSION / "fp32" / "model.onnx"
    target.write_bytes(target.read_bytes()[:-10])
    with pytest.raises(ModelError, match="corrupt"):
        select_analyzer("auto", "auto", LoadOptions(models_dir=models), cached=False)


def test_verify_script_checks_every_model(tmp_path: Path) -> None:
    export_models = pytest.importorskip("onnx") and load_script("export_models")
    assert export_models.verify(MODELS) == ["heads/1", f"{SPECTRAL_MODEL}/{SPECTRAL_VERSION}", "video/1"]
    models = _copy_models(tmp_path)
    (models / SPECTRAL_MODEL / SPECTRAL_VERSION / "openvino-int8" / "model.bin").write_bytes(b"x")
    with pytest.raises(ModelError, match="corrupt"):
        export_models.verify(models)
