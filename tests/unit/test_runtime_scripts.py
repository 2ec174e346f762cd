"""Tiny, fast runs of scripts/quantize.py and scripts/bench_runtime.py so they cannot rot.

The quantization run needs the ``models`` extra (onnx, nncf) and skips without it.
"""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path

import pytest
import soundfile as sf
from runtime_helpers import MODELS, ROOT, load_script, require_runtime
from signals import music_like

from streamprint.runtime.manifest import SPECTRAL_MODEL, SPECTRAL_VERSION, load_manifest

MODELS_EXTRA = all(importlib.util.find_spec(m) is not None for m in ("onnx", "nncf"))


@pytest.mark.skipif(not MODELS_EXTRA, reason="needs the models extra: pip install -e '.[cpu,models]'")
def test_quantize_builds_int8_variants_with_measurements(tmp_path: Path) -> None:
    require_runtime("onnxruntime")
    require_runtime("openvino")
    quantize = load_script("quantize")
    models = tmp_path / "models"
    code = quantize.main([
        "--models", str(models), "--corpus", str(tmp_path / "corpus"), "--clips", "3",
        "--seconds", "2", "--calibration-every", "1", "--calibration-frames", "16", "--jobs", "1",
    ])
    assert code == 0
    manifest = load_manifest(models_dir=models)
    manifest.verify()
    assert set(manifest.variants) == {"onnxruntime/fp32", "onnxruntime/int8", "openvino/fp32", "openvino/int8"}
    for key, variant in manifest.variants.items():
        assert variant.gate is not None and variant.frames_per_second, key
        assert variant.raw["accuracy"]["clips"] == 3
    assert manifest.raw["calibration"]["frames"] > 0
    import onnx

    qdq = onnx.load(str(models / SPECTRAL_MODEL / SPECTRAL_VERSION / "int8-qdq" / "model.onnx"))
    ops = [n.op_type for n in qdq.graph.node]
    assert "QuantizeLinear" in ops and "DequantizeLinear" in ops
    per_channel = [
        n for n in qdq.graph.node
        if n.op_type == "DequantizeLinear" and any(a.name == "axis" for a in n.attribute)
    ]
    assert per_channel, "weights should be quantized per channel"
    xml = (models / SPECTRAL_MODEL / SPECTRAL_VERSION / "openvino-int8" / "model.xml").read_text()
    assert "FakeQuantize" in xml or 'element_type="i8"' in xml


def test_bench_runtime_worker_and_report(tmp_path: Path) -> None:
    require_runtime("onnxruntime")
    bench = load_script("bench_runtime")
    wav = tmp_path / "music.wav"
    sf.write(wav, music_like(4.0, rate=44_100, channels=2), 44_100, subtype="PCM_16")
    numpy_run = bench.worker_variant("numpy/fp32", wav)
    ort_run = bench.worker_variant("onnxruntime/fp32", wav)
    for run in (numpy_run, ort_run):
        assert run["analyze_fps"] > 0 and run["rtf"] > 0 and run["rss_mib"] > 0 and run["load_s"] >= 0
    assert numpy_run["model_fps"] is None and ort_run["model_fps"] > 0
    best = bench.combine([ort_run, {**ort_run, "rtf": ort_run["rtf"] / 2}])
    assert best["rtf"] == ort_run["rtf"] and best["runs_rtf"][1] == round(ort_run["rtf"] / 2, 1)
    dft = {k: 1.0 for k in ("numpy_rfft_ms", "scipy_rfft_ms", "ort_dft_op_ms", "openvino_dft_op_ms", "ort_matmul_fp32_ms",
                            "ort_matmul_int8_ms", "openvino_matmul_fp32_ms", "openvino_matmul_int8_ms")}
    auto = {"backend": "onnxruntime", "precision": "fp32", "reason": "because; more"}
    graph = load_manifest(models_dir=MODELS).path("fp32/model.onnx")
    graph_run = bench.worker_graph(graph, wav)
    assert graph_run["frames"] == ort_run["frames"] and graph_run["model_fps"] > 0
    compared = {"v1.onnx": ort_run["model_fps"] / 2}
    text = bench.render_markdown([numpy_run, ort_run], dft, {"nproc": 2, "cpu": "x", "python": "3"},
                                 "python scripts/bench_runtime.py", auto, compared)
    assert text.startswith("## Runtime backends")
    assert "- `v1.onnx`: " in text and "(x2.00)" in text
    assert "- INT8 speed: this CPU (unknown) has no 8-bit dot-product instruction" in text
    vnni = bench.render_markdown([numpy_run, ort_run], dft, {"nproc": 2, "cpu": "x", "python": "3",
                                 "vector": "AVX-512 + VNNI"}, "python scripts/bench_runtime.py", auto)
    assert "this CPU has VNNI" in vnni and "(x2.00)" not in vnni and "AVX-512 + VNNI)" in vnni
    extensions = bench.bench_engine.vector_extensions
    assert extensions({"avx2", "avx512f", "avx512_vnni"}) == "AVX-512 + VNNI"
    assert extensions({"sse2", "avx2", "avx_vnni"}) == "AVX2 + VNNI"
    assert extensions({"sse2", "avx2"}) == "AVX2, no VNNI" and extensions(set()) == "unknown"
    assert "| onnxruntime/fp32 |" in text and "**onnxruntime/fp32**" in text
    doc = tmp_path / "benchmarks.md"
    doc.write_text("# Benchmarks\n\nother section\n")
    bench.bench_engine.write_doc_section(bench.SECTION, text, path=doc)
    bench.bench_engine.write_doc_section(bench.SECTION, text, path=doc)
    written = doc.read_text()
    assert "other section" in written and written.count("<!-- runtime-backends:begin -->") == 1
    assert json.dumps(ort_run)
    assert (ROOT / "docs" / "runtime.md").exists()
