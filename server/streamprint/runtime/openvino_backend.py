"""The ``openvino`` backend: the spectral model as OpenVINO IR.

Compiles on ``GPU`` when OpenVINO sees one, else ``CPU``, with inference precision pinned
to f32 (a GPU would otherwise run FP16). FP32 runs the IR converted from the FP32 ONNX;
INT8 the IR that NNCF quantized (``scripts/quantize.py``). Inference requests are not
thread-safe, so each calling thread gets its own from the one compiled model.
"""

from __future__ import annotations

import importlib
import threading
import time
from collections.abc import Mapping
from typing import Any

import numpy as np
from numpy.typing import NDArray

from streamprint.errors import ModelError
from streamprint.runtime.base import LoadOptions
from streamprint.runtime.graph import OUTPUT_NAMES, GraphFrameAnalyzer
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
        ov = _ov()
        device = options.device or self.devices()[0]
        config: dict[str, Any] = {
            "INFERENCE_PRECISION_HINT": "f32",
            "PERFORMANCE_HINT": "LATENCY",
            "NUM_STREAMS": "1",
        }
        if device == "CPU":
            config["INFERENCE_NUM_THREADS"] = str(max(1, options.threads))
        try:
            core = ov.Core()
            compiled = core.compile_model(core.read_model(str(xml)), device, config)
        except Exception as exc:  # openvino raises RuntimeError and its own types
            raise ModelError(f"model {manifest.model_id}: openvino cannot load {xml}: {exc}") from exc
        ports = {name: compiled.output(name) for name in OUTPUT_NAMES}
        local = threading.local()

        def run(power: NDArray[np.float32]) -> Mapping[str, NDArray[np.float32]]:
            request = getattr(local, "request", None)
            if request is None:
                request = local.request = compiled.create_infer_request()
            result = request.infer({"power": power})
            return {name: result[port] for name, port in ports.items()}

        return GraphFrameAnalyzer(
            run, model=manifest.name, version=manifest.version, backend=self.name,
            precision=precision, device=device, load_seconds=time.perf_counter() - start,
        )
