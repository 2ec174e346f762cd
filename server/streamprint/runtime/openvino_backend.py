"""The ``openvino`` backend: the spectral model as OpenVINO IR.

Compiles on ``GPU`` when OpenVINO sees one, else ``CPU``, with inference precision pinned
to f32 (a GPU would otherwise run FP16). FP32 runs the IR converted from the FP32 ONNX;
INT8 the IR that NNCF quantized (``scripts/quantize.py``). Inference requests are not
thread-safe, so each calling thread gets its own from the one compiled model.
"""

from __future__ import annotations

import importlib
import time
from typing import Any

from streamprint.errors import ModelError
from streamprint.runtime.base import LoadOptions
from streamprint.runtime.graph import OUTPUT_NAMES, GraphFrameAnalyzer
from streamprint.runtime.graph_loading import ov_compile, ov_runner
from streamprint.runtime.manifest import SPECTRAL_MODEL, SPECTRAL_VERSION, load_manifest


def _ov() -> Any:
    return importlib.import_module("openvino")


class OpenVinoBackend:
    """See module docstring."""

    name = "openvino"

    def unavailable_reason(self) -> str | None:
        try:
            _ov()
        except ImportError:
            return "openvino is not installed (pip install 'streamprint[cpu]' or '[gpu]')"
        return None

    def precisions(self) -> tuple[str, ...]:
        return ("fp32", "int8")

    def devices(self) -> tuple[str, ...]:
        found = [str(d) for d in _ov().Core().available_devices]
        gpus = [d for d in found if d.startswith("GPU")]
        return (*gpus[:1], "CPU")

    def load(self, precision: str, options: LoadOptions) -> GraphFrameAnalyzer:
        start = time.perf_counter()
        manifest = load_manifest(SPECTRAL_MODEL, SPECTRAL_VERSION, models_dir=options.models_dir)
        variant = manifest.variant(self.name, precision)
        manifest.verify_variant(variant)
        xml = manifest.path(variant.files["xml"])
        device = options.device or self.devices()[0]
        try:
            compiled = ov_compile(str(xml), device, options.threads)
        except Exception as exc:  # openvino raises RuntimeError and its own types
            raise ModelError(f"model {manifest.model_id}: openvino cannot load {xml}: {exc}") from exc
        run = ov_runner(compiled, "power", OUTPUT_NAMES)

        return GraphFrameAnalyzer(
            run, model=manifest.name, version=manifest.version, backend=self.name,
            precision=precision, device=device, load_seconds=time.perf_counter() - start,
        )
