"""INT8 versions of the spectral model, calibrated on the corpus, and the accuracy gate.

Given the FP32 export of ``scripts/export_models.py`` (``models/spectral/<version>/``), this:

1. builds (or reuses) the generated corpus with ``scripts/make_corpus.py``
   (``build_corpus(out_dir, n_clips, seconds, seed)``);
2. collects a calibration set: power spectra of evenly spaced frames of every
   ``--calibration-every``-th clip, exactly what the runtime feeds the model;
3. ONNX Runtime INT8: static quantization in QDQ format, per-channel int8 weights, uint8
   activations, MinMax calibration, MatMul nodes only (``int8-qdq/model.onnx``);
4. OpenVINO INT8: NNCF post-training quantization of the FP32 IR with the same calibration
   set, the same nodes (``openvino-int8/model.xml``). NNCF directly rather than
   optimum-intel: optimum-intel wraps NNCF for Hugging Face models (it needs a
   transformers config, a model class and torch); our graph is a plain ONNX / OpenVINO
   model with nothing of that, and ``nncf.quantize(ov_model, nncf.Dataset(...))`` is the
   API optimum-intel itself calls;
5. measures every variant (both runtimes x FP32 / INT8) against the numpy reference at the
   fingerprint level: for each corpus clip, ``fingerprint_buffer`` (all 25 dimensions)
   with the variant and with the reference, and each dimension's error in units of its
   registry tolerance. The **accuracy gate**: every dimension within tolerance on at least
   99 % of the clips. A variant that fails is never chosen by ``--backend auto``, and the
   manifest says which dimensions failed;
6. measures speed (frames per second of the analyzer, one thread, 43-frame batches);
7. writes it all into the manifest (files + sha256, quantization settings, calibration set,
   per-dimension accuracy, gate, speed).

``--exclude NODE`` keeps a node in float (ORT ``nodes_to_exclude``, NNCF ``IgnoredScope``);
by default every projection MatMul is INT8 (the standard recipe). Measured on the corpus,
INT8 fails the gate either way: all projections INT8 fails band shares, bass/mid ratio,
chroma and the onset dimensions; with ``--exclude mel_projection`` the onset dimensions
pass but the band shares still fail (uint8 activations resolve ~24 dB of power below each
frame's peak), so INT8 ships as measured and ``auto`` runs FP32.

Usage::

    python scripts/quantize.py [--models models] [--corpus .cache/corpus] [--clips 60]
                               [--seconds 20-30] [--seed 0] [--exclude mel_projection ...]
                               [--no-eval] [--eval-clips N]
"""

from __future__ import annotations

import argparse
import json
import logging
import math
import os
import sys
import time
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

os.environ.setdefault("OMP_NUM_THREADS", "1")
os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")

import numpy as np
from numpy.typing import NDArray

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "scripts"))

import export_models  # noqa: E402
from accuracy_gate import GATE_SHARE, accuracy_and_gate  # noqa: E402
from make_corpus import GENERATOR_VERSION, CorpusItem, build_corpus, parse_seconds  # noqa: E402

from streamprint.engine import dims  # noqa: E402
from streamprint.engine.analysis import FrameAnalyzer  # noqa: E402
from streamprint.engine.decode import decode_file  # noqa: E402
from streamprint.engine.fingerprint import AudioBuffer  # noqa: E402
from streamprint.engine.grid import Framer  # noqa: E402
from streamprint.engine.resample import StreamingResampler, to_mono  # noqa: E402
from streamprint.engine.session import fingerprint_buffer  # noqa: E402
from streamprint.engine.spectrum import power_spectrum  # noqa: E402
from streamprint.runtime.base import LoadOptions, get_backend  # noqa: E402
from streamprint.runtime.manifest import (  # noqa: E402
    MANIFEST_NAME,
    SPECTRAL_MODEL,
    SPECTRAL_VERSION,
    sha256_file,
    write_manifest,
)
from streamprint.runtime.registry import ensure_registered  # noqa: E402

DEFAULT_CORPUS = ROOT / ".cache" / "corpus"
INT8_ONNX = "int8-qdq/model.onnx"
INT8_OV_XML = "openvino-int8/model.xml"
INT8_OV_BIN = "openvino-int8/model.bin"
#: Nodes kept in float by default: none, the standard recipe (every projection MatMul in
#: INT8). ``--exclude mel_projection`` keeps the mel projection (onset envelope) in float;
#: docs/benchmarks.md gives the gate results of both.
DEFAULT_EXCLUDE: tuple[str, ...] = ()
BATCH = 43
VARIANTS = ("onnxruntime/fp32", "onnxruntime/int8", "openvino/fp32", "openvino/int8")

log = logging.getLogger("quantize")


# -- corpus and calibration ------------------------------------------------------------


def analysis_frames(buffer: AudioBuffer) -> NDArray[np.float32]:
    """All analysis frames ``[n, 2048]`` of a decoded buffer (mono, 22,050 Hz)."""
    resampler = StreamingResampler(buffer.sample_rate)
    mono = np.concatenate((resampler.push(to_mono(buffer.samples)), resampler.flush()))
    return Framer().push(mono)


def power_spectra(frames: NDArray[np.float32]) -> NDArray[np.float32]:
    """The model input for ``frames``: ``|rfft(hann * x)|^2`` float32 ``[n, 1025]``."""
    return power_spectrum(frames)


def calibration_set(
    items: Sequence[CorpusItem], *, every: int, frames_per_clip: int
) -> tuple[list[NDArray[np.float32]], dict[str, Any]]:
    """Batches of power spectra (``BATCH`` frames each) and a description for the manifest."""
    chosen = list(items[::every])
    rows: list[NDArray[np.float32]] = []
    for item in chosen:
        frames = analysis_frames(decode_file(item.path))
        if frames.shape[0] == 0:
            continue
        idx = np.unique(np.linspace(0, frames.shape[0] - 1, frames_per_clip).round().astype(int))
        rows.append(power_spectra(frames[idx]))
    data = np.concatenate(rows)
    batches = [data[i : i + BATCH] for i in range(0, data.shape[0], BATCH)]
    described = {
        "clips": [item.file for item in chosen],
        "kinds": sorted({item.kind for item in chosen}),
        "frames": int(data.shape[0]),
        "frames_per_clip": frames_per_clip,
        "selection": f"one corpus clip in {every} (from the first), {frames_per_clip} evenly spaced "
        "frames of each",
        "input": "power spectra |rfft(hann * x)|^2 as the runtime feeds the model",
    }
    return batches, described


# -- quantizers ---------------------------------------------------------------------------


def excluded_nodes(names: Sequence[str], exclude: Sequence[str]) -> list[str]:
    """The nodes of ``names`` that ``--exclude`` keeps in float: each excluded name, and the
    parts of a node split into several (``mel_projection`` covers ``mel_projection/0`` ...)."""
    return sorted(n for n in names if any(n == e or n.startswith(f"{e}/") for e in exclude))


def quantize_onnxruntime(
    fp32: Path, out: Path, batches: list[NDArray[np.float32]], exclude: Sequence[str],
    *, input_name: str = "power", op_type: str = "MatMul",
) -> dict[str, Any]:
    """ORT static QDQ quantization; returns the settings for the manifest."""
    from onnxruntime.quantization import (
        CalibrationDataReader,
        CalibrationMethod,
        QuantFormat,
        QuantType,
        quantize_static,
    )

    class Reader(CalibrationDataReader):  # type: ignore[misc]
        def __init__(self) -> None:
            self._it: Iterator[dict[str, NDArray[np.float32]]] = iter({input_name: b} for b in batches)

        def get_next(self) -> dict[str, NDArray[np.float32]] | None:
            return next(self._it, None)

    import onnx

    exclude = excluded_nodes([node.name for node in onnx.load(str(fp32)).graph.node], exclude)
    out.parent.mkdir(parents=True, exist_ok=True)
    logging.getLogger().setLevel(logging.ERROR)  # ORT's "consider pre-processing" warnings
    quantize_static(
        str(fp32), str(out), Reader(), quant_format=QuantFormat.QDQ, per_channel=True,
        activation_type=QuantType.QUInt8, weight_type=QuantType.QInt8,
        op_types_to_quantize=[op_type], nodes_to_exclude=list(exclude),
        calibrate_method=CalibrationMethod.MinMax,
        # Quantize the MatMul inputs only: the outputs feed float post-processing (dB, ratios),
        # and an 8-bit output would quantize the band powers and chroma a second time.
        extra_options={"OpTypesToExcludeOutputQuantization": [op_type]},
    )
    logging.getLogger().setLevel(logging.INFO)
    model = onnx.load(str(out))
    quantized = sorted(
        {n.name for n in model.graph.node if n.op_type == op_type} - set(exclude)
    )
    out.write_bytes(model.SerializeToString(deterministic=True))
    return {
        "method": "onnxruntime.quantization.quantize_static",
        "format": "QDQ", "per_channel": True, "weights": "int8 (symmetric, per output channel)",
        "activations": "uint8 (asymmetric, per tensor)", "calibration_method": "MinMax",
        "op_types": [op_type], "outputs": "float (no output QDQ)", "quantized_nodes": quantized, "float_nodes": sorted(exclude),
    }


def quantize_openvino(
    fp32_xml: Path, out_xml: Path, batches: list[NDArray[np.float32]], exclude: Sequence[str],
    *, op_type: str = "MatMul",
) -> dict[str, Any]:
    """NNCF post-training INT8 quantization of the FP32 IR; returns the settings."""
    import nncf
    import openvino as ov

    core = ov.Core()
    model = core.read_model(str(fp32_xml))
    # Quantize the projection MatMuls only, as the ORT variant does; elementwise ops stay float.
    names = [op.get_friendly_name() for op in model.get_ops()]
    matmuls = [op.get_friendly_name() for op in model.get_ops() if op.get_type_name() == op_type]
    exclude = excluded_nodes(matmuls, exclude)
    ignored = [n for n in names if n not in matmuls or n in exclude]
    quantized = nncf.quantize(
        model, nncf.Dataset(batches), preset=nncf.QuantizationPreset.MIXED,
        subset_size=len(batches), fast_bias_correction=False,
        ignored_scope=nncf.IgnoredScope(names=ignored, validate=False),
    )
    export_models.strip_rt_info(quantized)
    for key in list(quantized.get_rt_info().keys()):
        if key == "nncf":
            del quantized.get_rt_info()[key]
    out_xml.parent.mkdir(parents=True, exist_ok=True)
    ov.save_model(quantized, str(out_xml), compress_to_fp16=False)
    export_models.drop_runtime_version(out_xml)
    fq = sorted(op.get_friendly_name() for op in quantized.get_ops() if op.get_type_name() == "FakeQuantize")
    return {
        "method": "nncf.quantize (post-training, OpenVINO backend)",
        "preset": "MIXED (symmetric int8 weights per output channel, asymmetric activations)",
        "quantized_nodes": sorted(set(matmuls) - set(exclude)), "float_nodes": sorted(exclude),
        "fake_quantize_ops": fq, "subset_size": len(batches), "fast_bias_correction": False,
    }


# -- evaluation ---------------------------------------------------------------------------


def load_analyzers(models_dir: Path, keys: Sequence[str]) -> dict[str, FrameAnalyzer]:
    """``numpy`` plus each ``runtime/precision`` variant in ``keys``, one thread each."""
    ensure_registered()
    options = LoadOptions(models_dir=models_dir, threads=1)
    out: dict[str, FrameAnalyzer] = {"numpy": get_backend("numpy").load("fp32", options)}
    for key in keys:
        runtime, precision = key.split("/")
        out[key] = get_backend(runtime).load(precision, options)
    return out


_WORKER: dict[str, FrameAnalyzer] = {}


def _init_worker(models_dir: Path, keys: Sequence[str]) -> None:
    _WORKER.update(load_analyzers(models_dir, keys))


def clip_errors(path: Path, analyzers: dict[str, FrameAnalyzer] | None = None) -> dict[str, dict[str, float]]:
    """One clip: per variant, per dimension, the error in tolerance units vs numpy."""
    use = analyzers if analyzers is not None else _WORKER
    buffer = decode_file(path)
    ref = fingerprint_buffer(buffer, dims.AUDIO_25D, analyzer=use["numpy"])
    out: dict[str, dict[str, float]] = {}
    for key, analyzer in use.items():
        if key == "numpy":
            continue
        fp = fingerprint_buffer(buffer, dims.AUDIO_25D, analyzer=analyzer)
        out[key] = {}
        for name in dims.AUDIO_25D:
            reference = ref.values[name]
            tol = dims.get(name).tolerance_for(reference)
            diff = abs(fp.values[name] - reference)
            out[key][name] = diff / tol if tol > 0 else (0.0 if diff == 0 else math.inf)
    return out


def evaluate(
    items: Sequence[CorpusItem], models_dir: Path, keys: Sequence[str], *, jobs: int
) -> dict[str, dict[str, list[float]]]:
    """Per variant, per dimension: the error of each clip in tolerance units vs numpy."""
    errors: dict[str, dict[str, list[float]]] = {k: {d: [] for d in dims.AUDIO_25D} for k in keys}
    paths = [item.path for item in items]
    if jobs > 1:
        from concurrent.futures import ProcessPoolExecutor

        with ProcessPoolExecutor(jobs, initializer=_init_worker, initargs=(models_dir, keys)) as pool:
            results = list(pool.map(clip_errors, paths))
    else:
        analyzers = load_analyzers(models_dir, keys)
        results = [clip_errors(p, analyzers) for p in paths]
    for result in results:
        for key, per_dim in result.items():
            for name, err in per_dim.items():
                errors[key][name].append(err)
    return errors


def record_gates(
    data: dict[str, Any], keys: Sequence[str], errors: dict[str, dict[str, list[float]]], clips: int,
    speeds: dict[str, dict[str, Any]], reference: str,
) -> None:
    """Store each variant's ``accuracy``, ``gate`` and ``speed`` in the manifest ``data`` (and
    log the verdicts); ``reference`` names what the errors were measured against."""
    for key in keys:
        accuracy, gate = accuracy_and_gate(errors[key], clips)
        entry = data["variants"][key]
        entry["accuracy"] = {"reference": reference, "clips": clips, "per_dimension": accuracy}
        entry["gate"] = gate
        entry["speed"] = speeds[key]
        log.info("%s: gate %s (%s); %.0f frames/s", key, "passed" if gate["passed"] else "FAILED",
                 gate["reason"], speeds[key]["frames_per_second"])
    data["reference_speed"] = {"numpy": speeds["numpy"]}


def measure_speed(analyzer: FrameAnalyzer, batches: list[NDArray[np.float32]], rounds: int = 3) -> dict[str, Any]:
    """Frames per second of ``analyzer.analyze`` over ``batches`` of frames (best round)."""
    analyzer.analyze(batches[0])
    best = math.inf
    for _ in range(rounds):
        start = time.process_time()
        for batch in batches:
            analyzer.analyze(batch)
        best = min(best, time.process_time() - start)
    frames = sum(b.shape[0] for b in batches)
    return {"frames_per_second": round(frames / best, 1), "batch_frames": BATCH, "threads": 1,
            "measured_frames": frames, "clock": "process CPU time",
            "note": "analyze() incl. the numpy DFT, RMS and YIN"}


# -- main ---------------------------------------------------------------------------------


def run(args: argparse.Namespace) -> Path:
    """Everything in the module docstring; returns the manifest path."""
    models: Path = args.models
    root = models / SPECTRAL_MODEL / SPECTRAL_VERSION
    if not (root / MANIFEST_NAME).exists() or not (root / export_models.FP32_ONNX).exists():
        export_models.export(models)
    items = build_corpus(args.corpus, args.clips, args.seconds, args.seed)
    log.info("corpus: %d clips in %s", len(items), args.corpus)
    batches, calibration = calibration_set(
        items, every=args.calibration_every, frames_per_clip=args.calibration_frames
    )
    calibration["corpus"] = {"clips": args.clips, "midi_clips": len(items) - args.clips,
                             "seconds": args.seconds, "seed": args.seed,
                             "generator": "scripts/make_corpus.py build_corpus",
                             "generator_version": GENERATOR_VERSION}
    log.info("calibration: %d frames from %d clips", calibration["frames"], len(calibration["clips"]))
    exclude = tuple(args.exclude)
    ort_info = quantize_onnxruntime(root / export_models.FP32_ONNX, root / INT8_ONNX, batches, exclude)
    ov_info = quantize_openvino(root / export_models.FP32_OV_XML, root / INT8_OV_XML, batches, exclude)
    data = json.loads((root / MANIFEST_NAME).read_text(encoding="utf-8"))
    for rel in (INT8_ONNX, INT8_OV_XML, INT8_OV_BIN):
        data["files"][rel] = sha256_file(root / rel)
    data["variants"]["onnxruntime/int8"] = {
        "files": {"onnx": INT8_ONNX}, "precision": "int8", "made_by": "scripts/quantize.py",
        "quantization": ort_info,
    }
    data["variants"]["openvino/int8"] = {
        "files": {"xml": INT8_OV_XML, "bin": INT8_OV_BIN}, "precision": "int8",
        "made_by": "scripts/quantize.py", "quantization": ov_info,
    }
    data["calibration"] = calibration
    data["gate_policy"] = {
        "required_share": GATE_SHARE,
        "rule": "every dimension of the 25D fingerprint within its registry tolerance of the "
        "numpy reference (fingerprint_buffer on the same clip) on at least 99 % of the "
        "corpus clips; --backend auto never picks a variant that fails",
    }
    write_manifest(root, data)
    if args.no_eval:
        return root / MANIFEST_NAME
    keys = [k for k in VARIANTS if k in data["variants"]]
    eval_items = list(items[: args.eval_clips] if args.eval_clips else items)
    log.info("evaluating %d clips x %d variants (%d jobs)", len(eval_items), len(keys), args.jobs)
    errors = evaluate(eval_items, models, keys, jobs=args.jobs)
    analyzers = load_analyzers(models, keys)
    speed_batches = speed_set(eval_items)
    speeds = {k: measure_speed(a, speed_batches) for k, a in analyzers.items()}
    record_gates(data, keys, errors, len(eval_items), speeds, "numpy (NumpyFrameAnalyzer)")
    write_manifest(root, data)
    return root / MANIFEST_NAME


# -- the video per-frame model ------------------------------------------------------------

VIDEO_CLIP_SECONDS = 6.0
VIDEO_KINDS = ("flat", "dark", "bars", "gradient", "stripes_cut", "noise", "smooth_noise", "fade")


def video_clip(kind: str, seed: int, width: int = 256, height: int = 144) -> NDArray[np.uint8]:
    """A generated clip ``[60, height, width, 3]`` uint8 (6 s at the 10 fps analysis rate)."""
    rng = np.random.default_rng(seed)
    n = int(VIDEO_CLIP_SECONDS * 10)
    x = np.arange(width)[None, :, None]
    y = np.arange(height)[:, None, None]
    base = rng.integers(0, 256, 3)
    out = np.empty((n, height, width, 3), np.uint8)
    for i in range(n):
        t = i / 10
        if kind == "flat":
            f = np.broadcast_to(base, (height, width, 3))
        elif kind == "dark":
            f = rng.integers(0, 30, (height, width, 3))
        elif kind == "bars":
            f = np.broadcast_to(rng.permutation(8)[(x * 8) // width] * 30 + base * 0, (height, width, 3))
            f = (f + base) % 256
        elif kind == "gradient":
            f = (x * base / width + y * (255 - base) / height + 3 * t) % 256
        elif kind == "stripes_cut":
            v = 40 + 60 * (((x + 30 * t) // 16) % 2) if t < 3 else 160 + 60 * (((y - 30 * t) // 12) % 2)
            f = np.broadcast_to(v * np.array([1.0, 0.6, 0.9]), (height, width, 3))
        elif kind == "noise":
            f = rng.integers(0, 256, (height, width, 3))
        elif kind == "smooth_noise":
            coarse = rng.integers(0, 256, (height // 8, width // 8, 3))
            f = np.repeat(np.repeat(coarse, 8, axis=0), 8, axis=1)
        else:  # fade
            f = np.broadcast_to(base * (i / n) + (x % 32) * 2, (height, width, 3))
        out[i] = np.clip(np.asarray(f, dtype=np.float64), 0, 255).astype(np.uint8)
    return out


def video_corpus(clips: int, seed: int) -> list[tuple[str, NDArray[np.uint8]]]:
    """``clips`` generated clips cycling through :data:`VIDEO_KINDS`."""
    return [(VIDEO_KINDS[i % len(VIDEO_KINDS)], video_clip(VIDEO_KINDS[i % len(VIDEO_KINDS)], seed + i))
            for i in range(clips)]


def video_fingerprint(frames: NDArray[np.uint8], analyzer: Any) -> Any:
    """Batch 13D fingerprint of ``frames`` at 10 fps with ``analyzer``."""
    from streamprint.engine.video.session import VideoSession, VideoSessionConfig

    session = VideoSession(VideoSessionConfig(update_interval_s=None), analyzer=analyzer)
    session.push_rgb(frames, [i / 10 for i in range(frames.shape[0])])
    return session.finish()


def run_video(args: argparse.Namespace) -> Path:
    """INT8 variants of the ``video`` model, the gate on the 13D video fingerprint, speed."""
    import export_video_model

    from streamprint.runtime.video import VIDEO_MODEL, VIDEO_VERSION, load_video_analyzer

    models: Path = args.models
    root = models / VIDEO_MODEL / VIDEO_VERSION
    if not (root / MANIFEST_NAME).exists():
        export_video_model.export(models)
    corpus = video_corpus(args.clips, args.seed)
    chosen = corpus[:: args.calibration_every]
    per_clip = max(1, args.calibration_frames // 8)
    batches = [np.ascontiguousarray(frames[j], dtype=np.float32)
               for _, frames in chosen for j in np.linspace(0, frames.shape[0] - 1, per_clip).round().astype(int)]
    ort_info = quantize_onnxruntime(root / export_video_model.FP32_ONNX, root / INT8_ONNX, batches,
                                    tuple(args.exclude), input_name="rgb", op_type="Conv")
    ov_info = quantize_openvino(root / export_video_model.FP32_OV_XML, root / INT8_OV_XML, batches,
                                tuple(args.exclude), op_type="Convolution")
    data = json.loads((root / MANIFEST_NAME).read_text(encoding="utf-8"))
    for rel in (INT8_ONNX, INT8_OV_XML, INT8_OV_BIN):
        data["files"][rel] = sha256_file(root / rel)
    data["variants"]["onnxruntime/int8"] = {"files": {"onnx": INT8_ONNX}, "precision": "int8",
                                            "made_by": "scripts/quantize.py --model video", "quantization": ort_info}
    data["variants"]["openvino/int8"] = {"files": {"xml": INT8_OV_XML, "bin": INT8_OV_BIN}, "precision": "int8",
                                         "made_by": "scripts/quantize.py --model video", "quantization": ov_info}
    data["calibration"] = {
        "corpus": {"clips": args.clips, "seed": args.seed, "kinds": list(VIDEO_KINDS),
                   "generator": "scripts/quantize.py video_corpus", "seconds": VIDEO_CLIP_SECONDS},
        "frames": len(batches), "frames_per_clip": per_clip,
        "selection": f"one generated clip in {args.calibration_every}, {per_clip} evenly spaced frames of each",
        "input": "analysis-size RGB frames (float32 levels) as the runtime feeds the model",
    }
    data["gate_policy"] = {
        "required_share": GATE_SHARE,
        "rule": "every dimension of the 13D video fingerprint within its registry tolerance of the "
        "numpy reference (the same clip through VideoSession) on at least 99 % of the generated "
        "clips; --backend auto never picks a variant that fails",
    }
    write_manifest(root, data)
    keys = [k for k in VARIANTS if k in data["variants"]]
    options = LoadOptions(models_dir=models, threads=1)
    analyzers = {"numpy": load_video_analyzer("numpy")}
    for key in keys:
        runtime, precision = key.split("/")
        analyzers[key] = load_video_analyzer(runtime, precision, options)
    errors: dict[str, dict[str, list[float]]] = {k: {d: [] for d in dims.VIDEO_13D} for k in keys}
    for _, frames in corpus:
        ref = video_fingerprint(frames, analyzers["numpy"])
        for key in keys:
            fp = video_fingerprint(frames, analyzers[key])
            for name in dims.VIDEO_13D:
                tol = dims.get(name).tolerance_for(ref.values[name])
                diff = abs(fp.values[name] - ref.values[name])
                errors[key][name].append(diff / tol if tol > 0 else (0.0 if diff == 0 else math.inf))
    speed_frames = np.concatenate([frames[:5] for _, frames in corpus[: len(VIDEO_KINDS)]])  # every kind
    speeds = {}
    for key, analyzer in analyzers.items():
        best = math.inf
        for _ in range(3):
            start = time.process_time()
            prev = None
            for frame in speed_frames:
                _, y, h = analyzer.describe(frame, prev)
                prev = (y, h)
            best = min(best, time.process_time() - start)
        speeds[key] = {"frames_per_second": round(len(speed_frames) / best, 1), "threads": 1,
                       "clock": "process CPU time", "frame": list(speed_frames.shape[1:]),
                       "note": "describe() incl. the numpy histogram and pair columns"}
    record_gates(data, keys, errors, len(corpus), speeds, "numpy (features.describe)")
    write_manifest(root, data)
    return root / MANIFEST_NAME


def speed_set(items: Sequence[CorpusItem], n_batches: int = 40) -> list[NDArray[np.float32]]:
    """``n_batches`` batches of ``BATCH`` consecutive analysis frames from the first clips."""
    out: list[NDArray[np.float32]] = []
    for item in items:
        frames = analysis_frames(decode_file(item.path))
        for i in range(0, frames.shape[0] - BATCH + 1, BATCH):
            out.append(frames[i : i + BATCH])
            if len(out) == n_batches:
                return out
    return out


def main(argv: Sequence[str] | None = None) -> int:
    """CLI entry point."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--models", type=Path, default=export_models.DEFAULT_OUT)
    parser.add_argument("--model", choices=("spectral", "video"), default="spectral",
                        help="which per-frame model (default spectral; video uses generated clips)")
    parser.add_argument("--corpus", type=Path, default=DEFAULT_CORPUS)
    parser.add_argument("--clips", type=int, default=60)
    parser.add_argument("--seconds", type=parse_seconds, default=(20.0, 30.0))
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--calibration-every", type=int, default=3,
                        help="use every Nth corpus clip for calibration (default 3)")
    parser.add_argument("--calibration-frames", type=int, default=64,
                        help="evenly spaced frames per calibration clip (default 64)")
    parser.add_argument("--exclude", nargs="*", default=list(DEFAULT_EXCLUDE),
                        help=f"nodes kept in float (default: {' '.join(DEFAULT_EXCLUDE)})")
    parser.add_argument("--no-eval", action="store_true", help="skip the accuracy / speed measurement")
    parser.add_argument("--eval-clips", type=int, default=0, help="evaluate only the first N clips")
    parser.add_argument("--jobs", type=int, default=os.cpu_count() or 1,
                        help="processes for the evaluation (default: one per CPU)")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(name)s: %(message)s", force=True)
    start = time.perf_counter()
    path = run_video(args) if args.model == "video" else run(args)
    print(f"wrote {path} in {time.perf_counter() - start:.0f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
