"""Export the per-frame analysis graph(s) to ONNX and OpenVINO IR (FP32), with a manifest.

The ``spectral`` model (``models/spectral/<version>/``) does the per-frame spectral work of
:class:`streamprint.engine.analysis.NumpyFrameAnalyzer` after the DFT: from the power
spectrum ``P = |rfft(hann * x)|^2`` ``[n, 1025]`` it computes, per frame, the spectral
centroid and 85 % roll-off (Hz, from the magnitude ``sqrt(P)``), the spectral flatness,
the chroma concentration, the 128-band mel spectrum in dB (floored at -50 dB) and the
power in the seven bands plus the 20 Hz-Nyquist total. Exact rules: docs/fingerprint.md
section 2 and the docstring of :mod:`streamprint.engine.analysis`.

What stays in numpy, and why (first measured on a 2-core AVX2 dev machine, 43 frames; the
DFT table of docs/benchmarks.md, "Runtime backends", re-measures it on each run):

* the DFT: pocketfft (numpy's when this was measured; the runtime now uses scipy's, 1.6x
  faster again at 43 frames: :mod:`streamprint.engine.spectrum`) is about 2x faster than
  the DFT operator of
  ONNX Runtime or OpenVINO and about 10x faster than the DFT as a 2048x2050 matmul (which
  would also be a 16 MB initializer); an INT8 DFT matmul would put an 8-bit noise floor
  ~77 dB below a tone's peak bin, which moves the magnitude-weighted centroid of pure
  tones by far more than 5 %;
* the frame RMS: a float64 sum over 2048 samples, exact and nearly free, and the silence
  gate (-60 dBFS) is a hard threshold that should not move with the runtime;
* YIN (f0, voicing): its autocorrelation is a 4096-point FFT pair (pocketfft again) and
  the trough search is data-dependent branching, which a graph does no faster.

Inside the graph every frame's power is first divided by its maximum (and the linear
outputs multiplied back): all scale-invariant descriptors are unchanged, and INT8
activations then see the same 0-1 range whatever the level, which is what makes static
quantization usable across a 100 dB range of frame levels.

Deterministic: fixed opset (17) and IR version (8), fixed node names and producer, the
initializers come from :mod:`streamprint.engine.filters` (no randomness), so the same
code gives the same bytes; a test checks the sha256 values in the manifest. FP32 OpenVINO
IR is converted from the ONNX file with ``openvino.convert_model`` (no FP16 compression).

Usage::

    python scripts/export_models.py [--out models] [--no-openvino]
    python scripts/export_models.py --verify      # only check the sha256 of every model file

The INT8 variants and the accuracy / speed measurements come from ``scripts/quantize.py``
(``make models`` runs both).
"""

from __future__ import annotations

import argparse
import importlib.metadata
import math
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import onnx
from numpy.typing import NDArray
from onnx import TensorProto, helper, numpy_helper

from streamprint.engine import filters
from streamprint.engine.analysis import ONSET_FLOOR_DB
from streamprint.engine.filters import BANDS, N_CHROMA, N_MELS
from streamprint.engine.grid import BIN_FREQUENCIES, N_BINS
from streamprint.errors import ModelError
from streamprint.runtime.manifest import (
    MANIFEST_NAME,
    SPECTRAL_MODEL,
    SPECTRAL_VERSION,
    load_manifest,
    parse_manifest,
    sha256_file,
    write_manifest,
)

ROOT = Path(__file__).resolve().parent.parent
DEFAULT_OUT = ROOT / "models"
OPSET = 17
IR_VERSION = 8
PRODUCER = "streamprint-export"
FP32_ONNX = "fp32/model.onnx"
FP32_OV_XML = "openvino-fp32/model.xml"
FP32_OV_BIN = "openvino-fp32/model.bin"
_AMIN = 1e-10
_TINY = 1e-30
#: Names of the projection MatMuls (the nodes quantization targets).
MEL_NODE = "mel_projection"
CHROMA_BAND_NODE = "chroma_band_projection"

INPUTS: list[dict[str, Any]] = [
    {
        "name": "power", "dtype": "float32", "shape": ["n", N_BINS],
        "unit": "power spectrum |rfft(hann * x)|^2 of frames of 2048 samples in [-1, 1] "
        "at 22,050 Hz (bins k * 22050 / 2048 Hz)",
    },
]
OUTPUTS: list[dict[str, Any]] = [
    {"name": "centroid", "dtype": "float32", "shape": ["n"], "unit": "Hz"},
    {"name": "rolloff", "dtype": "float32", "shape": ["n"], "unit": "Hz (85 % roll-off bin frequency)"},
    {"name": "flatness", "dtype": "float32", "shape": ["n"], "unit": "ratio 0-1"},
    {"name": "chroma_concentration", "dtype": "float32", "shape": ["n"], "unit": "ratio 1/12-1"},
    {"name": "mel_db", "dtype": "float32", "shape": ["n", N_MELS],
     "unit": f"dB re 1 (power), floored at {ONSET_FLOOR_DB:g} dB"},
    {"name": "band_power", "dtype": "float32", "shape": ["n", len(BANDS) + 1],
     "unit": "power (same units as the input): " + ", ".join(BANDS) + ", then 20 Hz-Nyquist total"},
]
NUMPY_SIDE = {
    "dft": "numpy.fft.rfft (pocketfft): ~2x faster than the ONNX Runtime / OpenVINO DFT op and "
    "~10x faster than a 2048x2050 DFT matmul here; an INT8 DFT would move tone centroids > 5 %",
    "rms": "float64 mean of squares per frame: exact and nearly free; the -60 dBFS silence gate "
    "is a hard threshold that must not move with the runtime",
    "yin": "4096-point FFT autocorrelation (pocketfft) plus a data-dependent trough search; "
    "identical f0 / voicing on every backend",
}


def _const(name: str, value: Any, dtype: type = np.float32) -> onnx.TensorProto:
    return numpy_helper.from_array(np.asarray(value, dtype=dtype), name)


#: The mel projection in groups of this many consecutive bands: each group's triangles
#: cover one contiguous run of bins, so each group is a small MatMul over its own bins
#: (about 17,000 multiply-adds a frame instead of the dense 131,200: 3x faster here).
MEL_GROUP = 16


def mel_groups(mel: NDArray[np.float32]) -> list[tuple[int, int, int, int]]:
    """``(first_band, stop_band, first_bin, stop_bin)`` of each group of ``MEL_GROUP`` bands
    of ``mel`` ``[bins, bands]``: the bins outside its range are zero in all its bands."""
    groups = []
    for first in range(0, mel.shape[1], MEL_GROUP):
        stop = min(first + MEL_GROUP, mel.shape[1])
        used = np.flatnonzero((mel[:, first:stop] != 0).any(axis=1))
        lo, hi = (int(used[0]), int(used[-1]) + 1) if used.size else (0, 1)
        groups.append((first, stop, lo, hi))
    return groups


def _mel_projection_initializers(mel: NDArray[np.float32]) -> list[onnx.TensorProto]:
    inits = []
    for g, (first, stop, lo, hi) in enumerate(mel_groups(mel)):
        inits += [
            _const(f"W_mel_{g}", mel[lo:hi, first:stop]),
            _const(f"mel_bins_start_{g}", [lo], np.int64),
            _const(f"mel_bins_stop_{g}", [hi], np.int64),
        ]
    return inits


def _mel_projection_nodes() -> list[onnx.NodeProto]:
    """``pn_mel @ mel_bank`` as one MatMul per band group (``MEL_NODE/<g>``), concatenated."""
    n = helper.make_node
    nodes, parts = [], []
    for g in range(len(mel_groups(filters.mel_bank()))):
        nodes += [
            n("Slice", ["pn_mel", f"mel_bins_start_{g}", f"mel_bins_stop_{g}", "axis1"], [f"pn_mel_{g}"],
              name=f"mel_bins/{g}"),
            n("MatMul", [f"pn_mel_{g}", f"W_mel_{g}"], [f"mel_n_{g}"], name=f"{MEL_NODE}/{g}"),
        ]
        parts.append(f"mel_n_{g}")
    nodes.append(n("Concat", parts, ["mel_n"], name="mel_bands", axis=1))
    return nodes


#: Roll-off in two levels: bins in blocks of this many (the last block zero-padded).
ROLLOFF_BLOCK = 32
_ROLLOFF_BLOCKS = -(-N_BINS // ROLLOFF_BLOCK)


def _rolloff_initializers() -> list[onnx.TensorProto]:
    pad = _ROLLOFF_BLOCKS * ROLLOFF_BLOCK - N_BINS
    return [
        _const("rolloff_pads", [0, 0, 0, pad], np.int64),
        _const("rolloff_blocks_shape", [0, _ROLLOFF_BLOCKS, ROLLOFF_BLOCK], np.int64),
        _const("rolloff_block_width", ROLLOFF_BLOCK, np.int64),
        _const("rolloff_gather_shape", [1, 1, ROLLOFF_BLOCK], np.int64),
        _const("axis2", [2], np.int64),
    ]


def _rolloff_nodes() -> list[onnx.NodeProto]:
    """Roll-off: the first bin whose cumulative magnitude reaches 85 % of the total.

    One CumSum over all 1025 bins is the costliest node of the graph (a quarter of its
    time, about 3 ns a bin), so the sum runs in two levels: the totals of blocks of
    ``ROLLOFF_BLOCK`` bins and their running sum find the block where the threshold is
    reached; the running sum inside that one block (from the total of the blocks before
    it) finds the bin. The target inside the block is capped at the block's own running
    total, so rounding can never leave the block without a reached bin.
    """
    n = helper.make_node
    return [
        n("Pad", ["mn", "rolloff_pads"], ["m_padded"], name="rolloff_pad"),
        n("Reshape", ["m_padded", "rolloff_blocks_shape"], ["m_blocks"], name="rolloff_blocks"),
        n("ReduceSum", ["m_blocks", "axis2"], ["block_sum"], name="block_sum", keepdims=0),
        n("CumSum", ["block_sum", "axis1_scalar"], ["block_cum"], name="cumulative"),
        n("Gather", ["block_cum", "last"], ["m_tot"], name="cumulative_total", axis=1),
        n("Mul", ["m_tot", "rolloff_share"], ["m_thr"], name="rolloff_threshold"),
        n("GreaterOrEqual", ["block_cum", "m_thr"], ["block_reached"], name="block_reached"),
        n("Cast", ["block_reached"], ["block_reached_f"], name="block_reached_float", to=TensorProto.FLOAT),
        n("ArgMax", ["block_reached_f"], ["block_idx"], name="first_block", axis=1, keepdims=1),
        n("CumSum", ["block_sum", "axis1_scalar"], ["block_cum_before"], name="cumulative_before", exclusive=1),
        n("GatherElements", ["block_cum_before", "block_idx"], ["cum_before"], name="cum_before_block", axis=1),
        n("Sub", ["m_thr", "cum_before"], ["thr_in_block"], name="threshold_in_block"),
        n("Unsqueeze", ["block_idx", "axis2"], ["block_idx3"], name="block_index_3d"),
        n("Expand", ["block_idx3", "rolloff_gather_shape"], ["block_gather"], name="block_gather_index"),
        n("GatherElements", ["m_blocks", "block_gather"], ["block_bins3"], name="block_bins", axis=1),
        n("Squeeze", ["block_bins3", "axis1"], ["block_bins"], name="block_bins_2d"),
        n("CumSum", ["block_bins", "axis1_scalar"], ["bin_cum"], name="cumulative_in_block"),
        n("ReduceMax", ["bin_cum"], ["bin_cum_end"], name="block_running_total", axes=[1], keepdims=1),
        n("Min", ["thr_in_block", "bin_cum_end"], ["bin_target"], name="capped_target"),
        n("GreaterOrEqual", ["bin_cum", "bin_target"], ["reached"], name="reached"),
        n("Cast", ["reached"], ["reached_f"], name="reached_float", to=TensorProto.FLOAT),
        n("ArgMax", ["reached_f"], ["bin_in_block"], name="first_reached", axis=1, keepdims=1),
        n("Mul", ["block_idx", "rolloff_block_width"], ["block_start"], name="block_start"),
        n("Add", ["block_start", "bin_in_block"], ["roll_idx2"], name="rolloff_bin"),
        n("Squeeze", ["roll_idx2", "axis1"], ["roll_idx"], name="rolloff_index"),
        n("Gather", ["bin_hz", "roll_idx"], ["rolloff"], name="rolloff", axis=0),
    ]


def build_spectral_model() -> onnx.ModelProto:
    """The ``spectral`` graph (see module docstring); deterministic."""
    mel = filters.mel_bank().astype(np.float32)  # [1025, 128]
    chroma_band = np.concatenate(
        (filters.chroma_bank(), filters.band_bank()), axis=1
    ).astype(np.float32)  # [1025, 20]
    freqs = BIN_FREQUENCIES.astype(np.float32)
    inits = [
        *_mel_projection_initializers(mel),
        _const("W_chroma_band", chroma_band),
        _const("bin_hz", freqs),
        _const("amin", _AMIN),
        _const("tiny", _TINY),
        _const("zero", 0.0),
        _const("one", 1.0),
        _const("rolloff_share", 0.85),
        _const("db_per_ln", 10.0 / math.log(10.0)),
        _const("db_floor", ONSET_FLOOR_DB),
        _const("inv_chroma", 1.0 / N_CHROMA),
        _const("axis1", [1], np.int64),
        _const("axis1_scalar", 1, np.int64),
        _const("split_chroma_band", [N_CHROMA, len(BANDS) + 1], np.int64),
        _const("last", [-1], np.int64),
        _const("flatness_split", [N_BINS // 2, N_BINS // 2, N_BINS % 2], np.int64),
        _const("inv_bins", 1.0 / N_BINS),
        *_rolloff_initializers(),
    ]
    n = helper.make_node
    nodes = [
        # per-frame normalisation: pn = P / max(P) in [0, 1]
        n("ReduceMax", ["power"], ["pmax"], name="frame_max", axes=[1], keepdims=1),
        n("Max", ["pmax", "tiny"], ["pscale"], name="frame_scale"),
        n("Div", ["power", "pscale"], ["pn"], name="normalise"),
        # magnitude moments: centroid (scale invariant)
        n("Sqrt", ["pn"], ["mn"], name="magnitude"),
        n("Mul", ["mn", "bin_hz"], ["mf"], name="magnitude_hz"),
        n("ReduceSum", ["mf", "axis1"], ["mf_sum"], name="moment1", keepdims=0),
        n("ReduceSum", ["mn", "axis1"], ["m_sum"], name="moment0", keepdims=0),
        n("Greater", ["m_sum", "zero"], ["m_pos"], name="has_magnitude"),
        n("Where", ["m_pos", "m_sum", "one"], ["m_safe"], name="safe_total"),
        n("Div", ["mf_sum", "m_safe"], ["centroid"], name="centroid"),
        *_rolloff_nodes(),
        # flatness on the unnormalised power (its 1e-10 floor is absolute): the log of the
        # product of bins k and k + 512, so half as many logs (such a product stays within
        # float32's normal range, 1e-20 to about 1e12)
        n("Max", ["power", "amin"], ["pf"], name="power_floor"),
        n("Split", ["pf", "flatness_split"], ["pf_low", "pf_high", "pf_last"], name="pair_halves", axis=1),
        n("Mul", ["pf_low", "pf_high"], ["pair_products"], name="pair_product"),
        n("Log", ["pair_products"], ["log_pairs"], name="log_power"),
        n("ReduceSum", ["log_pairs", "axis1"], ["log_pairs_sum"], name="log_pairs_sum", keepdims=0),
        n("Log", ["pf_last"], ["log_last"], name="log_last"),
        n("ReduceSum", ["log_last", "axis1"], ["log_unpaired_sum"], name="log_unpaired_sum", keepdims=0),
        n("Add", ["log_pairs_sum", "log_unpaired_sum"], ["log_sum"], name="log_sum"),
        n("Mul", ["log_sum", "inv_bins"], ["log_mean"], name="log_mean"),
        n("ReduceMean", ["pf"], ["p_mean"], name="power_mean", axes=[1], keepdims=0),
        n("Exp", ["log_mean"], ["g_mean"], name="geometric_mean"),
        n("Div", ["g_mean", "p_mean"], ["flatness"], name="flatness"),
        # each projection reads its own copy of pn, so quantizing one projection's input
        # (INT8) touches neither the other nor the centroid / roll-off branch above
        n("Identity", ["pn"], ["pn_chroma_band"], name="chroma_band_input"),
        n("Identity", ["pn"], ["pn_mel"], name="mel_input"),
        # chroma concentration and band power (one projection)
        n("MatMul", ["pn_chroma_band", "W_chroma_band"], ["cb"], name=CHROMA_BAND_NODE),
        n("Split", ["cb", "split_chroma_band"], ["chroma", "bands_n"], name="split_chroma_band", axis=1),
        n("ReduceMax", ["chroma"], ["c_max"], name="chroma_max", axes=[1], keepdims=0),
        n("ReduceSum", ["chroma", "axis1"], ["c_sum"], name="chroma_sum", keepdims=0),
        n("Greater", ["c_sum", "zero"], ["c_pos"], name="has_chroma"),
        n("Where", ["c_pos", "c_sum", "one"], ["c_safe"], name="safe_chroma_sum"),
        n("Div", ["c_max", "c_safe"], ["c_ratio"], name="chroma_ratio"),
        n("Where", ["c_pos", "c_ratio", "inv_chroma"], ["chroma_concentration"], name="chroma_concentration"),
        n("Mul", ["bands_n", "pscale"], ["band_power"], name="band_power"),
        # mel spectrum in dB
        *_mel_projection_nodes(),
        n("Mul", ["mel_n", "pscale"], ["mel"], name="mel_power"),
        n("Max", ["mel", "amin"], ["mel_f"], name="mel_floor"),
        n("Log", ["mel_f"], ["mel_ln"], name="mel_log"),
        n("Mul", ["mel_ln", "db_per_ln"], ["mel_db_raw"], name="mel_decibels"),
        n("Max", ["mel_db_raw", "db_floor"], ["mel_db"], name="mel_db"),
    ]
    f32 = TensorProto.FLOAT
    graph = helper.make_graph(
        nodes,
        SPECTRAL_MODEL,
        [helper.make_tensor_value_info("power", f32, ["n", N_BINS])],
        [
            helper.make_tensor_value_info("centroid", f32, ["n"]),
            helper.make_tensor_value_info("rolloff", f32, ["n"]),
            helper.make_tensor_value_info("flatness", f32, ["n"]),
            helper.make_tensor_value_info("chroma_concentration", f32, ["n"]),
            helper.make_tensor_value_info("mel_db", f32, ["n", N_MELS]),
            helper.make_tensor_value_info("band_power", f32, ["n", len(BANDS) + 1]),
        ],
        inits,
    )
    model = helper.make_model(
        graph, opset_imports=[helper.make_opsetid("", OPSET)], producer_name=PRODUCER,
        producer_version=SPECTRAL_VERSION, ir_version=IR_VERSION,
        doc_string="streamprint per-frame spectral descriptors from the power spectrum "
        "(docs/fingerprint.md section 2)",
    )
    onnx.checker.check_model(model, full_check=True)
    return model


def save_onnx(model: onnx.ModelProto, path: Path) -> None:
    """Serialise ``model`` to ``path`` (deterministic bytes)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(model.SerializeToString(deterministic=True))


def save_openvino_ir(onnx_path: Path, xml_path: Path) -> None:
    """Convert an ONNX file to OpenVINO IR (``.xml`` + ``.bin``), FP32 weights, no rt_info."""
    import openvino as ov

    ov_model = ov.convert_model(str(onnx_path))
    strip_rt_info(ov_model)
    xml_path.parent.mkdir(parents=True, exist_ok=True)
    ov.save_model(ov_model, str(xml_path), compress_to_fp16=False)
    drop_runtime_version(xml_path)


def drop_runtime_version(xml_path: Path) -> None:
    """Remove the ``OpenVINO Runtime`` version line ``save_model`` writes (reproducible bytes)."""
    lines = xml_path.read_text(encoding="utf-8").splitlines(keepends=True)
    kept = [line for line in lines if '<info name="OpenVINO Runtime"' not in line]
    xml_path.write_text("".join(kept), encoding="utf-8")


def strip_rt_info(ov_model: Any) -> None:
    """Drop run-time info that names tool versions or paths, so IR bytes are reproducible."""
    for key in list(ov_model.get_rt_info().keys()):
        if key in ("conversion_parameters", "Runtime_version", "legacy_frontend"):
            del ov_model.get_rt_info()[key]


def tool_versions() -> dict[str, str]:
    """Versions of the packages that produced the files."""
    out = {}
    for pkg in ("numpy", "onnx", "onnxruntime", "openvino", "nncf"):
        try:
            out[pkg] = importlib.metadata.version(pkg)
        except importlib.metadata.PackageNotFoundError:
            continue
    return out


def base_manifest(files: dict[str, str]) -> dict[str, Any]:
    """The manifest of the FP32 export (variants without measurements)."""
    variants: dict[str, Any] = {
        "onnxruntime/fp32": {"files": {"onnx": FP32_ONNX}, "precision": "fp32",
                             "made_by": "scripts/export_models.py"},
    }
    if FP32_OV_XML in files:
        variants["openvino/fp32"] = {
            "files": {"xml": FP32_OV_XML, "bin": FP32_OV_BIN}, "precision": "fp32",
            "made_by": "scripts/export_models.py (openvino.convert_model of the FP32 ONNX)",
        }
    return {
        "name": SPECTRAL_MODEL,
        "version": SPECTRAL_VERSION,
        "description": "Per-frame spectral descriptors from the power spectrum (centroid, "
        "roll-off, flatness, chroma concentration, mel dB, band power); see "
        "docs/fingerprint.md section 2 and scripts/export_models.py",
        "opset": OPSET,
        "ir_version": IR_VERSION,
        "inputs": INPUTS,
        "outputs": OUTPUTS,
        "numpy_side": NUMPY_SIDE,
        "files": files,
        "variants": variants,
        "tools": tool_versions(),
    }


def export(out: Path = DEFAULT_OUT, *, openvino: bool = True) -> Path:
    """Write the FP32 files and the manifest under ``out/spectral/<version>/``; return it.

    Variants that ``scripts/quantize.py`` added to an existing manifest are kept when
    their files still exist (their sha256 is re-read).
    """
    root = out / SPECTRAL_MODEL / SPECTRAL_VERSION
    model = build_spectral_model()
    save_onnx(model, root / FP32_ONNX)
    written = [FP32_ONNX]
    if openvino:
        save_openvino_ir(root / FP32_ONNX, root / FP32_OV_XML)
        written += [FP32_OV_XML, FP32_OV_BIN]
    files = {rel: sha256_file(root / rel) for rel in written}
    data = base_manifest(files)
    keep_previous(root, data, ("calibration", "gate_policy"))
    return write_manifest(root, data)


def keep_previous(root: Path, data: dict[str, Any], keys: Sequence[str]) -> None:
    """Carry into the fresh manifest ``data`` what the one already in ``root`` holds and a
    re-export must not lose: the measurements of a variant whose files did not change, the
    variants ``scripts/quantize.py`` added whose files still exist (their sha256 re-read),
    and the top-level entries ``keys``."""
    import json

    old_path = root / MANIFEST_NAME
    if not old_path.exists():
        return
    try:
        old = json.loads(old_path.read_text(encoding="utf-8"))
    except ValueError:
        old = {}
    variants = data["variants"]
    for key, entry in dict(old.get("variants", {})).items():
        rels = list(dict(entry.get("files", {})).values())
        if key in variants:
            # keep the measurements of an unchanged FP32 file
            if all(old.get("files", {}).get(r) == data["files"].get(r) for r in rels):
                variants[key] = {**entry, **variants[key]}
        elif rels and all((root / r).is_file() for r in rels):
            variants[key] = entry
            for rel in rels:
                data["files"][rel] = sha256_file(root / rel)
    for key in keys:
        if key in old:
            data[key] = old[key]


def verify(out: Path = DEFAULT_OUT) -> list[str]:
    """sha256-check every model directory under ``out``; return ``name/version`` checked."""
    checked = []
    for manifest_path in sorted(out.glob(f"*/*/{MANIFEST_NAME}")):
        version_dir = manifest_path.parent
        manifest = load_manifest(version_dir.parent.name, version_dir.name, models_dir=out)
        manifest.verify()
        checked.append(manifest.model_id)
    if not checked:
        raise ModelError(f"no model manifests under {out}; run `make models`")
    return checked


def main(argv: Sequence[str] | None = None) -> int:
    """CLI entry point."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT, help="models directory")
    parser.add_argument("--no-openvino", action="store_true", help="skip the OpenVINO IR")
    parser.add_argument("--verify", action="store_true", help="only verify the sha256 of every model file")
    args = parser.parse_args(argv)
    try:
        if args.verify:
            for model_id in verify(args.out):
                print(f"ok {model_id}")
            return 0
        path = export(args.out, openvino=not args.no_openvino)
    except ModelError as exc:
        print(f"export_models: error: {exc.message}", file=sys.stderr)
        return 1
    manifest = parse_manifest(__import__("json").loads(path.read_text()), path.parent)
    for rel, digest in sorted(manifest.files.items()):
        print(f"{digest}  {path.parent / rel}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
