"""Loading a graph on ONNX Runtime or OpenVINO the one way every streamprint graph runs.

The spectral model (``onnxruntime_backend.py``, ``openvino_backend.py``), the video model
(``video.py``) and the learned heads (``heads.py``) share these settings: a fixed number of
intra-op threads (1: the server parallelises across sessions), sequential execution, no
spinning threads, quiet logs; OpenVINO with f32 inference precision (a GPU would otherwise
run FP16), latency hint, one stream. The runtime packages are imported only when called.
"""

from __future__ import annotations

import importlib
import threading
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import numpy as np
from numpy.typing import NDArray

#: ONNX Runtime's CPU provider: always the last fallback.
CPU_PROVIDER = "CPUExecutionProvider"

#: A loaded graph: named float32 input -> its named float32 outputs.
GraphRunner = Callable[[NDArray[np.float32]], Mapping[str, NDArray[np.float32]]]


def ort_providers(device: str | None, default: Sequence[str]) -> list[str]:
    """Execution providers to ask for: ``device`` if given, else ``default``; CPU always last resort."""
    providers = [device] if device else list(default)
    if CPU_PROVIDER not in providers:
        providers.append(CPU_PROVIDER)
    return providers


def ort_session(path: str, threads: int, providers: Sequence[str]) -> Any:
    """An ``onnxruntime.InferenceSession`` of the graph at ``path`` (``ImportError`` without
    onnxruntime; onnxruntime's own exceptions when it cannot load)."""
    ort: Any = importlib.import_module("onnxruntime")
    opts = ort.SessionOptions()
    opts.intra_op_num_threads = max(1, threads)
    opts.inter_op_num_threads = 1
    opts.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
    opts.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    opts.add_session_config_entry("session.intra_op.allow_spinning", "0")
    opts.log_severity_level = 3
    return ort.InferenceSession(path, opts, providers=list(providers))


def ort_runner(session: Any, input_name: str, output_names: Sequence[str]) -> GraphRunner:
    """Run ``session`` on one input; its outputs by name."""
    names = list(output_names)

    def run(x: NDArray[np.float32]) -> Mapping[str, NDArray[np.float32]]:
        outputs = session.run(names, {input_name: x})
        return dict(zip(names, outputs, strict=True))

    return run


def ov_compile(path: str, device: str, threads: int) -> Any:
    """The OpenVINO compiled model of the graph (IR ``.xml`` or ONNX) at ``path`` on ``device``
    (``threads`` inference threads on ``CPU``)."""
    ov: Any = importlib.import_module("openvino")
    config: dict[str, Any] = {
        "INFERENCE_PRECISION_HINT": "f32",
        "PERFORMANCE_HINT": "LATENCY",
        "NUM_STREAMS": "1",
    }
    if device == "CPU":
        config["INFERENCE_NUM_THREADS"] = str(max(1, threads))
    core = ov.Core()
    return core.compile_model(core.read_model(path), device, config)


def ov_runner(compiled: Any, input_name: str, output_names: Sequence[str]) -> GraphRunner:
    """Run ``compiled`` on one input; its outputs by name. Inference requests are not
    thread-safe, so each calling thread gets its own."""
    ports = {name: compiled.output(name) for name in output_names}
    local = threading.local()

    def run(x: NDArray[np.float32]) -> Mapping[str, NDArray[np.float32]]:
        request = getattr(local, "request", None)
        if request is None:
            request = local.request = compiled.create_infer_request()
        result = request.infer({input_name: x})
        return {name: result[port] for name, port in ports.items()}

    return run
