"""Registers the built-in backends (``numpy``, ``onnxruntime``, ``openvino``)."""

from __future__ import annotations

from streamprint.runtime.base import backend_names, register_backend


def ensure_registered() -> None:
    """Register the built-in backends once (importing no runtime package yet)."""
    if {"numpy", "onnxruntime", "openvino"} <= set(backend_names()):
        return
    from streamprint.runtime.numpy_backend import NumpyBackend
    from streamprint.runtime.onnxruntime_backend import OnnxRuntimeBackend
    from streamprint.runtime.openvino_backend import OpenVinoBackend

    register_backend("numpy", NumpyBackend)
    register_backend("onnxruntime", OnnxRuntimeBackend)
    register_backend("openvino", OpenVinoBackend)
