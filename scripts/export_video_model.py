"""Export the ``video`` per-frame model: FP32 ONNX + OpenVINO IR and its sha256 manifest.

The graph computes, from one analysis-size RGB frame (float32 ``[h, w, 3]``, levels 0-255),
what :func:`streamprint.engine.video.features.describe` computes per frame with plain array
maps and reductions: BT.601 luma, the Sobel and Laplacian convolutions (one 3x3 ``Conv``
with three output channels) and the statistics. It returns the luma ``[h, w]`` (the
histogram and the temporal pair columns stay in numpy, see ``numpy_side``) and
``stats [len(STATS)]``. Deterministic like ``scripts/export_models.py`` (fixed opset, IR
version, node names, producer; IR without version rt_info).

Usage: python scripts/export_video_model.py [--out models] [--no-openvino]
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

sys.path.insert(0, str(Path(__file__).resolve().parent))

from export_models import (
    DEFAULT_OUT,
    IR_VERSION,
    OPSET,
    PRODUCER,
    keep_previous,
    save_onnx,
    save_openvino_ir,
    tool_versions,
)

from streamprint.engine.video.features import BLACK_PIXEL_LEVEL, EDGE_LEVEL
from streamprint.runtime.manifest import sha256_file, write_manifest
from streamprint.runtime.video import STATS, VIDEO_MODEL, VIDEO_VERSION

FP32_ONNX = "fp32/model.onnx"
FP32_OV_XML = "openvino-fp32/model.xml"
FP32_OV_BIN = "openvino-fp32/model.bin"


def _const(name: str, value: Any, dtype: type = np.float32) -> onnx.TensorProto:
    return numpy_helper.from_array(np.asarray(value, dtype=dtype), name)


def build_video_model() -> onnx.ModelProto:
    """The ``video`` graph (see module docstring); deterministic."""
    kernels = np.array(
        [
            [[-1, 0, 1], [-2, 0, 2], [-1, 0, 1]],  # gx: smooth down, difference across
            [[-1, -2, -1], [0, 0, 0], [1, 2, 1]],  # gy: smooth across, difference down
            [[0, 1, 0], [1, -4, 1], [0, 1, 0]],  # Laplacian
        ],
        np.float32,
    ).reshape(3, 1, 3, 3)
    inits = [
        _const("k_conv", kernels),
        _const("c_r", 0.299), _const("c_g", 0.587), _const("c_b", 0.114),
        _const("half", 0.5), _const("one", 1.0),
        _const("edge_level", EDGE_LEVEL), _const("black_level", BLACK_PIXEL_LEVEL),
        _const("s0", [0], np.int64), _const("s1", [1], np.int64), _const("s2", [2], np.int64),
        _const("s3", [3], np.int64), _const("ax2", [2], np.int64), _const("ax0", [0], np.int64),
        _const("shape1", [1], np.int64), _const("shape_hw", [0, 0], np.int64),
        _const("ch0", [0], np.int64), _const("ch1", [1], np.int64), _const("ch2", [2], np.int64),
        _const("ch3", [3], np.int64), _const("ax1", [1], np.int64),
    ]
    nodes: list[onnx.NodeProto] = []

    def node(op: str, inputs: list[str], output: str, **attrs: Any) -> str:
        nodes.append(helper.make_node(op, inputs, [output], name=f"n_{output}", **attrs))
        return output

    # channels [h, w] (squeeze the last axis after slicing)
    r3 = node("Slice", ["rgb", "s0", "s1", "ax2"], "r3")
    g3 = node("Slice", ["rgb", "s1", "s2", "ax2"], "g3")
    b3 = node("Slice", ["rgb", "s2", "s3", "ax2"], "b3")
    r = node("Squeeze", [r3, "ax2"], "r")
    g = node("Squeeze", [g3, "ax2"], "g")
    b = node("Squeeze", [b3, "ax2"], "b")
    # luma in describe's order: (0.299 r + 0.587 g) + 0.114 b
    y = node("Add", [node("Add", [node("Mul", ["c_r", r], "yr"), node("Mul", ["c_g", g], "yg")], "yrg"),
                     node("Mul", ["c_b", b], "yb_")], "luma")

    def mean(x: str, out: str) -> str:
        return node("Reshape", [node("ReduceMean", [x], f"{out}_s", keepdims=0), "shape1"], out)

    def mean_std(x: str, out: str) -> tuple[str, str]:
        m = mean(x, f"{out}_mean")
        d = node("Sub", [x, node("ReduceMean", [x], f"{out}_mk", keepdims=1)], f"{out}_d")
        var = mean(node("Mul", [d, d], f"{out}_d2"), f"{out}_var")
        return m, node("Sqrt", [var], f"{out}_std")

    luma_mean, luma_std = mean_std(y, "y")
    mx = node("Max", [r, g, b], "mx")
    mn = node("Min", [r, g, b], "mn")
    sat = mean(node("Div", [node("Sub", [mx, mn], "chroma"), node("Max", [mx, "one"], "mx1")], "satpx"), "sat")
    rg = node("Sub", [r, g], "rg")
    ybl = node("Sub", [node("Mul", ["half", node("Add", [r, g], "rpg")], "hrg"), b], "ybl")
    mean_rg, std_rg = mean_std(rg, "rg")
    mean_yb, std_yb = mean_std(ybl, "yb")
    y4 = node("Unsqueeze", [node("Unsqueeze", [y, "ax0"], "y3"), "ax0"], "y4")
    conv = node("Conv", [y4, "k_conv"], "conv", kernel_shape=[3, 3], pads=[0, 0, 0, 0])  # [1, 3, h-2, w-2]
    gx = node("Slice", [conv, "ch0", "ch1", "ax1"], "gx")
    gy = node("Slice", [conv, "ch1", "ch2", "ax1"], "gy")
    lap = node("Slice", [conv, "ch2", "ch3", "ax1"], "lap")
    _, lap_std = mean_std(lap, "lap")
    lap_var = node("Mul", [lap_std, lap_std], "lap_sq")
    mag = node("Sqrt", [node("Add", [node("Mul", [gx, gx], "gx2"), node("Mul", [gy, gy], "gy2")], "mag2")], "mag")
    edge = mean(node("Cast", [node("Greater", [mag, "edge_level"], "edge_b")], "edge_f", to=TensorProto.FLOAT), "edge")
    _, si = mean_std(mag, "mag")
    dark = mean(node("Cast", [node("LessOrEqual", [y, "black_level"], "dark_b")], "dark_f", to=TensorProto.FLOAT), "dark")
    columns = {
        "luma_mean": luma_mean, "luma_std": luma_std, "saturation": sat, "mean_rg": mean_rg,
        "std_rg": std_rg, "mean_yb": mean_yb, "std_yb": std_yb, "lap_var": lap_var,
        "edge_share": edge, "si": si, "dark_share": dark,
    }
    node("Concat", [columns[name] for name in STATS], "stats", axis=0)
    f32 = TensorProto.FLOAT
    graph = helper.make_graph(
        nodes, "streamprint_video",
        [helper.make_tensor_value_info("rgb", f32, ["h", "w", 3])],
        [helper.make_tensor_value_info("luma", f32, ["h", "w"]),
         helper.make_tensor_value_info("stats", f32, [len(STATS)])],
        inits,
    )
    model = helper.make_model(
        graph, opset_imports=[helper.make_opsetid("", OPSET)], producer_name=PRODUCER,
        producer_version=VIDEO_VERSION, ir_version=IR_VERSION,
        doc_string="streamprint per-frame video descriptors (docs/fingerprint.md, Video 13D)",
    )
    onnx.checker.check_model(model, full_check=True)
    return model


def export(out: Path = DEFAULT_OUT, *, openvino: bool = True) -> Path:
    """Write the FP32 files and the manifest under ``out/video/<version>/``; return it."""
    root = out / VIDEO_MODEL / VIDEO_VERSION
    save_onnx(build_video_model(), root / FP32_ONNX)
    written = [FP32_ONNX]
    variants: dict[str, Any] = {
        "onnxruntime/fp32": {"files": {"onnx": FP32_ONNX}, "precision": "fp32",
                             "made_by": "scripts/export_video_model.py"},
    }
    if openvino:
        save_openvino_ir(root / FP32_ONNX, root / FP32_OV_XML)
        written += [FP32_OV_XML, FP32_OV_BIN]
        variants["openvino/fp32"] = {
            "files": {"xml": FP32_OV_XML, "bin": FP32_OV_BIN}, "precision": "fp32",
            "made_by": "scripts/export_video_model.py (openvino.convert_model of the FP32 ONNX)",
        }
    data = {
        "name": VIDEO_MODEL,
        "version": VIDEO_VERSION,
        "description": "Per-frame video descriptors from the analysis-size RGB frame (luma, "
        "Sobel / Laplacian convolutions, statistics); see scripts/export_video_model.py",
        "opset": OPSET,
        "ir_version": IR_VERSION,
        "inputs": [{"name": "rgb", "shape": ["h", "w", 3], "dtype": "float32", "unit": "levels 0-255"}],
        "outputs": [
            {"name": "luma", "shape": ["h", "w"], "dtype": "float32", "unit": "BT.601 levels"},
            {"name": "stats", "shape": [len(STATS)], "dtype": "float32", "unit": ", ".join(STATS)},
        ],
        "numpy_side": {
            "histogram_and_pairs": "the 32-bin luma histogram and the temporal columns (ti, mad, "
            "cut) use the previous frame and data-dependent bins; numpy on the luma the graph returns",
        },
        "files": {rel: sha256_file(root / rel) for rel in written},
        "variants": variants,
        "tools": tool_versions(),
    }
    keep_previous(root, data, ("calibration", "gate_policy", "reference_speed"))  # quantize.py --model video's
    return write_manifest(root, data)


def main(argv: list[str] | None = None) -> int:
    """CLI entry point."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT, help="models directory")
    parser.add_argument("--no-openvino", action="store_true", help="skip the OpenVINO IR")
    args = parser.parse_args(argv)
    path = export(args.out, openvino=not args.no_openvino)
    print(path)
    return 0


if __name__ == "__main__":
    sys.exit(main())
