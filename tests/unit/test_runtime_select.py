"""Backend registry, ``auto`` selection (accuracy gate, start-up check, reasons), device
choice, and the CLI's ``--backend`` / ``--precision`` flags."""

from __future__ import annotations

import io
import json
import sys
from pathlib import Path
from types import SimpleNamespace
from typing import Any, cast

import numpy as np
import pytest
from numpy.typing import NDArray
from runtime_helpers import MODELS, require_runtime
from signals import buffer, sine

from streamprint import cli
from streamprint.engine.analysis import FrameDescriptors, NumpyFrameAnalyzer
from streamprint.errors import InvalidInputError, ModelError
from streamprint.runtime import (
    LoadedAnalyzer,
    LoadOptions,
    backend_names,
    get_backend,
    load_manifest,
    register_backend,
    select_analyzer,
)
from streamprint.runtime import select as select_module
from streamprint.runtime.registry import ensure_registered
from streamprint.runtime.select import (
    FOOTPRINT_ORDER,
    TIE_MARGIN,
    check_frames,
    pick_fastest,
    startup_check,
)

OPTS = LoadOptions(models_dir=MODELS)


def test_registry_has_the_three_backends_and_rejects_unknown_names() -> None:
    ensure_registered()
    assert {"numpy", "onnxruntime", "openvino"} <= set(backend_names())
    with pytest.raises(ModelError, match="unknown backend"):
        get_backend("tensorflow")
    with pytest.raises(InvalidInputError, match="backend"):
        select_analyzer("tensorflow", "auto", OPTS, cached=False)
    with pytest.raises(InvalidInputError, match="precision"):
        select_analyzer("auto", "int4", OPTS, cached=False)


def test_auto_picks_a_gate_passing_variant_and_says_why() -> None:
    require_runtime("onnxruntime")
    require_runtime("openvino")
    selection = select_analyzer("auto", "auto", OPTS, cached=False)
    manifest = load_manifest(models_dir=MODELS)
    if selection.backend != "numpy":
        gate = manifest.variant(selection.backend, selection.precision).gate
        assert gate is not None and gate.passed
    timed = [c for c in selection.candidates if c.ms_per_batch is not None]
    assert {(c.backend, c.precision) for c in timed} >= {("numpy", "fp32"), ("onnxruntime", "fp32"), ("openvino", "fp32")}
    chosen = [c for c in selection.candidates if c.status == "chosen"]
    fastest = min(c.ms_per_batch or 1e9 for c in timed)
    close = [c for c in timed if (c.ms_per_batch or 1e9) <= fastest * (1 + TIE_MARGIN)]
    lightest = min(close, key=lambda c: (FOOTPRINT_ORDER.index(c.backend), c.ms_per_batch or 1e9))
    assert len(chosen) == 1 and (chosen[0].backend, chosen[0].precision) == (lightest.backend, lightest.precision)
    assert selection.reason.startswith(f"{selection.backend}/{selection.precision}")
    for key, variant in manifest.variants.items():
        if variant.gate is not None and not variant.gate.passed:
            status = {f"{c.backend}/{c.precision}": c.status for c in selection.candidates}[key]
            assert status == "gate-failed"
            assert f"skipped {key}: its accuracy gate failed" in selection.reason
    assert json.dumps(selection.to_json_dict())


def _timed(backend: str) -> LoadedAnalyzer:
    """A stand-in analyzer: pick_fastest only reads its backend."""
    return cast(LoadedAnalyzer, SimpleNamespace(backend=backend))


def test_auto_breaks_near_ties_toward_the_lightest_runtime() -> None:
    ov, ort, ref = _timed("openvino"), _timed("onnxruntime"), _timed("numpy")
    # clearly faster wins whatever its footprint
    assert pick_fastest([(3.0, ov), (4.0, ort), (5.0, ref)]) == (3.0, ov, False)
    # within the margin: the lighter runtime, and the result says a faster one lost
    assert pick_fastest([(3.0, ov), (3.2, ort), (5.0, ref)]) == (3.2, ort, True)
    assert pick_fastest([(3.0, ov), (3.2, ort), (3.25, ref)]) == (3.25, ref, True)
    assert pick_fastest([(3.0, ort), (3.1, ov)]) == (3.0, ort, False)
    assert pick_fastest([(3.0, ov), (3.0 * (1 + TIE_MARGIN) + 1e-9, ort)])[1] is ov


def test_a_tie_lost_on_footprint_is_reported(monkeypatch: pytest.MonkeyPatch) -> None:
    require_runtime("onnxruntime")
    require_runtime("openvino")
    speeds = {"openvino": 3.0, "onnxruntime": 3.2, "numpy": 9.0}
    monkeypatch.setattr(select_module, "time_analyzer", lambda analyzer, frames: speeds[analyzer.backend])
    selection = select_analyzer("auto", "fp32", OPTS, cached=False)
    status = {c.backend: c.status for c in selection.candidates if c.precision == "fp32"}
    assert selection.backend == "onnxruntime"
    assert status == {"onnxruntime": "chosen", "openvino": "heavier", "numpy": "slower"}
    assert "within 10 % of the fastest and the lightest runtime there" in selection.reason
    assert "skipped openvino/fp32" not in selection.reason


def test_numpy_backend_runs_fp32_only() -> None:
    selection = select_analyzer("numpy", "auto", OPTS, cached=False)
    assert (selection.backend, selection.precision, selection.analyzer.name) == ("numpy", "fp32", "numpy")
    with pytest.raises(ModelError, match=r"fp32 only|cannot run int8"):
        select_analyzer("numpy", "int8", OPTS, cached=False)


@pytest.mark.parametrize("runtime", ["onnxruntime", "openvino"])
def test_explicit_int8_runs_even_when_its_gate_failed_with_a_warning(runtime: str) -> None:
    require_runtime(runtime)
    selection = select_analyzer(runtime, "int8", OPTS, cached=False)
    assert (selection.backend, selection.precision) == (runtime, "int8")
    gate = load_manifest(models_dir=MODELS).variant(runtime, "int8").gate
    assert gate is not None
    if not gate.passed:
        assert "was asked for although its accuracy gate failed" in selection.reason


class _Broken:
    """A fake backend whose analyzer returns garbage centroids (the start-up check's prey)."""

    name = "broken"

    def unavailable_reason(self) -> str | None:
        return None

    def precisions(self) -> tuple[str, ...]:
        return ("fp32",)

    def devices(self) -> tuple[str, ...]:
        return ("CPU",)

    def load(self, precision: str, options: LoadOptions) -> Any:
        inner = NumpyFrameAnalyzer()

        class Analyzer:
            name = "broken"
            version = "1"
            backend = "broken"
            device = "CPU"
            load_seconds = 0.0

            def __init__(self) -> None:
                self.precision = precision

            def analyze(self, frames: NDArray[np.float32]) -> FrameDescriptors:
                d = inner.analyze(frames)
                return FrameDescriptors(**{**d.__dict__, "centroid": d.centroid * 2.0})

        return Analyzer()


def test_startup_check_catches_a_backend_that_computes_garbage() -> None:
    frames = check_frames()
    ref = NumpyFrameAnalyzer().analyze(frames)
    assert startup_check(ref, ref) is None
    broken = _Broken().load("fp32", OPTS).analyze(frames)
    problem = startup_check(broken, ref)
    assert problem is not None and "centroid" in problem


def test_unavailable_backend_is_skipped_by_auto_and_refused_when_explicit(monkeypatch: pytest.MonkeyPatch) -> None:
    ensure_registered()
    from streamprint.runtime.openvino_backend import OpenVinoBackend

    class Missing(OpenVinoBackend):
        def unavailable_reason(self) -> str | None:
            return "openvino is not installed"

    register_backend("openvino", Missing)
    try:
        selection = select_analyzer("auto", "fp32", OPTS, cached=False)
        assert selection.backend != "openvino"
        assert "skipped openvino/-: openvino is not installed" in selection.reason
        with pytest.raises(ModelError, match="unavailable"):
            select_analyzer("openvino", "fp32", OPTS, cached=False)
    finally:
        register_backend("openvino", OpenVinoBackend)


def test_gpu_devices_are_preferred_when_present(monkeypatch: pytest.MonkeyPatch) -> None:
    require_runtime("onnxruntime")
    require_runtime("openvino")
    import onnxruntime
    import openvino

    from streamprint.runtime.onnxruntime_backend import OnnxRuntimeBackend
    from streamprint.runtime.openvino_backend import OpenVinoBackend

    monkeypatch.setattr(
        onnxruntime, "get_available_providers", lambda: ["CUDAExecutionProvider", "CPUExecutionProvider"]
    )
    assert OnnxRuntimeBackend().devices() == ("CUDAExecutionProvider", "CPUExecutionProvider")

    class FakeCore:
        available_devices = ("CPU", "GPU.0", "GPU.1")

    monkeypatch.setattr(openvino, "Core", FakeCore)
    assert OpenVinoBackend().devices() == ("GPU.0", "CPU")


def test_this_machine_runs_on_cpu() -> None:
    require_runtime("onnxruntime")
    selection = select_analyzer("onnxruntime", "fp32", OPTS, cached=False)
    assert selection.device in ("CPUExecutionProvider", "CUDAExecutionProvider")


def _wav(tmp_path: Path) -> Path:
    import soundfile as sf

    path = tmp_path / "tone.wav"
    sf.write(path, buffer(sine(440.0, 2.0)).samples, 22_050, subtype="PCM_16")
    return path


@pytest.mark.parametrize(
    ("backend", "precision"),
    [("numpy", "fp32"), ("onnxruntime", "fp32"), ("openvino", "fp32"), ("onnxruntime", "int8"), ("auto", "auto")],
)
def test_cli_fingerprint_reports_backend_and_precision(tmp_path: Path, backend: str, precision: str) -> None:
    if backend != "auto" and backend != "numpy":
        require_runtime(backend)
    out = io.StringIO()
    code = cli.main(["fingerprint", str(_wav(tmp_path)), "--json", "--backend", backend, "--precision", precision], out=out)
    assert code == 0
    line = json.loads(out.getvalue().splitlines()[-1])
    assert line["backend"] in ("numpy", "onnxruntime", "openvino")
    assert line["precision"] in ("fp32", "int8")
    if backend != "auto":
        assert (line["backend"], line["precision"]) == (backend, precision)
    assert 418 < line["values"]["spectral_centroid"] < 462


def test_cli_stream_uses_the_selected_backend(tmp_path: Path) -> None:
    require_runtime("openvino")
    out = io.StringIO()
    code = cli.main(["fingerprint", str(_wav(tmp_path)), "--json", "--stream", "--backend", "openvino",
                     "--precision", "fp32"], out=out)
    assert code == 0
    lines = [json.loads(x) for x in out.getvalue().splitlines()]
    assert lines[-1]["final"] is True
    # --heads auto may add "+heads1..." (learned heads on top of the spectral model)
    assert all((x["backend"], x["precision"], x["model"].split("+")[0]) == ("openvino", "fp32", "spectral-openvino-fp32")
               for x in lines)


def test_cli_model_error_is_one_line_on_stderr(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                               capsys: pytest.CaptureFixture[str]) -> None:
    require_runtime("onnxruntime")
    monkeypatch.setenv("STREAMPRINT_MODELS_DIR", str(tmp_path / "nowhere"))
    code = cli.main(["fingerprint", str(_wav(tmp_path)), "--backend", "onnxruntime", "--precision", "fp32"],
                    out=io.StringIO())
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 1 and len(err) == 1 and "MODEL_UNAVAILABLE" in err[0] and "make models" in err[0]


def test_cli_rejects_unknown_backend(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exc:
        cli.main(["fingerprint", "x.wav", "--backend", "cuda"])
    assert exc.value.code == 2
    assert "invalid choice" in capsys.readouterr().err


def test_runtime_package_imports_no_grpc() -> None:
    import subprocess

    code = (
        "import sys, streamprint.runtime as r; r.ensure_registered(); "
        "r.select_analyzer('numpy','fp32'); "
        "bad=[m for m in sys.modules if m.startswith(('grpc','torch','nncf','onnx.'))]; "
        "assert not bad, bad"
    )
    subprocess.run([sys.executable, "-c", code], check=True)


def test_both_onnxruntime_packages_installed_is_warned_about(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    require_runtime("onnxruntime")
    import importlib.metadata

    from streamprint.runtime import onnxruntime_backend

    monkeypatch.setattr(importlib.metadata, "version", lambda name: "1.0")
    assert onnxruntime_backend.installed_distributions() == ["onnxruntime", "onnxruntime-gpu"]
    with caplog.at_level("WARNING", logger="streamprint.runtime"):
        assert onnxruntime_backend.OnnxRuntimeBackend().unavailable_reason() is None
    assert "both onnxruntime and onnxruntime-gpu" in caplog.text
