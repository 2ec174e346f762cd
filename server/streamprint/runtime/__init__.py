"""Runtime backends for the per-frame work (numpy reference, ONNX Runtime, OpenVINO)."""
