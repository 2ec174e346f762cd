"""Runtime backends side by side: numpy reference, ONNX Runtime and OpenVINO, FP32 and INT8.

On the benchmark file of ``scripts/bench_engine.py`` (music-like, 44.1 kHz stereo,
``--minutes`` long, default 10), each backend x precision is measured in its own fresh
process, pinned to one core with one thread everywhere (so "per core" is true):

* ``load_s``: model load time (manifest read, sha256 check of the files, session /
  compile), from a process that has imported numpy and streamprint only;
* ``analyze_fps``: frames per second of ``FrameAnalyzer.analyze`` on the file's frames in
  43-frame batches (what sessions send), i.e. the whole per-frame work (numpy DFT, RMS
  and YIN included);
* ``model_fps``: frames per second of the model call alone (graph backends), i.e. what
  INT8 vs FP32 can change;
* ``rtf``: realtime factor of ``fingerprint_buffer`` (25D) on the decoded file end to end
  (resampling, HPSS, onsets ... included) = media seconds / wall seconds;
* ``rss_mib``: peak resident set size of that process (MiB).

Times are CPU seconds of the worker process (``time.process_time``, all its threads), not
wall time: the dev machine is shared, and a pinned one-thread worker's CPU time is the work
it did, whereas its wall time also counts every moment another process held the core.

A second table measures the DFT choices that ``scripts/export_models.py`` made (numpy's
pocketfft vs the ONNX ``DFT`` operator on both runtimes vs a DFT as a 2048x2050 matmul in
FP32 and INT8), on 43 frames, so the decision to keep the DFT in numpy is re-checkable.

Usage::

    python scripts/bench_runtime.py [--minutes 10] [--core 0] [--json] [--write-docs]
                                    [--compare-graph OTHER.onnx ...]

``--write-docs`` rewrites the "Runtime backends" section of docs/benchmarks.md between its
``runtime-backends`` marker comments (other sections are left alone).
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "scripts"))

import bench_engine  # noqa: E402

SECTION = "runtime-backends"
VARIANTS = ("numpy/fp32", "onnxruntime/fp32", "onnxruntime/int8", "openvino/fp32", "openvino/int8")
BATCH = 43
ROUNDS = 3


def _rss_mib() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0


def _clock() -> float:
    """CPU seconds of this process (all threads): on a shared machine, wall time also counts
    the time other processes held the core; a pinned single-threaded worker's CPU time is
    the work it did."""
    return time.process_time()


def _best(fn: Callable[[], Any], rounds: int = ROUNDS) -> float:
    fn()
    best = float("inf")
    for _ in range(rounds):
        start = _clock()
        fn()
        best = min(best, _clock() - start)
    return best


# -- workers (run in fresh processes) ----------------------------------------------------


def worker_variant(key: str, path: Path) -> dict[str, Any]:
    """Everything measured for one backend x precision (see module docstring)."""
    from streamprint.engine import dims
    from streamprint.engine.fingerprint import AudioBuffer
    from streamprint.engine.session import fingerprint_buffer
    from streamprint.runtime import LoadOptions, get_backend
    from streamprint.runtime.registry import ensure_registered

    ensure_registered()
    runtime, precision = key.split("/")
    rss_base = _rss_mib()
    start = _clock()
    analyzer = get_backend(runtime).load(precision, LoadOptions(threads=1))
    load_s = _clock() - start
    samples, rate, frames = _analysis_frames(path)
    buffer = AudioBuffer(samples=samples, sample_rate=rate)
    batches = [frames[i : i + BATCH] for i in range(0, frames.shape[0], BATCH)]
    n_frames = frames.shape[0]

    def analyze_all() -> None:
        for batch in batches:
            analyzer.analyze(batch)

    analyze_s = _best(analyze_all)
    runner = getattr(analyzer, "_runner", None)
    model_fps = None if runner is None else _model_call_fps(runner, batches)
    fingerprint_buffer(AudioBuffer(samples[: 3 * int(rate)], int(rate)), dims.AUDIO_25D, analyzer=analyzer)
    start = _clock()
    fingerprint_buffer(buffer, dims.AUDIO_25D, analyzer=analyzer)
    e2e_s = _clock() - start
    media_s = samples.shape[0] / rate
    return {
        "variant": key, "device": analyzer.device, "load_s": load_s, "frames": n_frames,
        "analyze_fps": n_frames / analyze_s, "model_fps": model_fps,
        "analyze_rtf": (n_frames * 512 / 22_050) / analyze_s,
        "rtf": media_s / e2e_s, "e2e_s": e2e_s, "media_s": media_s,
        "rss_mib": _rss_mib(), "rss_before_load_mib": rss_base,
    }


def _analysis_frames(path: Path) -> tuple[Any, int, Any]:
    """The file at ``path`` decoded (float32 ``[n, channels]``), its rate (Hz), and its
    analysis frames ``[m, 2048]`` (mono, 22,050 Hz) as sessions cut them."""
    import numpy as np
    import soundfile as sf

    from streamprint.engine.grid import Framer
    from streamprint.engine.resample import StreamingResampler, to_mono

    samples, rate = sf.read(path, dtype="float32", always_2d=True)
    resampler = StreamingResampler(int(rate))
    mono = np.concatenate((resampler.push(to_mono(samples)), resampler.flush()))
    return samples, int(rate), Framer().push(mono)


def worker_graph(onnx_path: Path, path: Path) -> dict[str, Any]:
    """The model call alone of a spectral graph file (another version's, for a side by side
    with the committed one), on ONNX Runtime, one thread: frames per second."""
    from streamprint.runtime.graph import OUTPUT_NAMES
    from streamprint.runtime.graph_loading import ort_runner, ort_session

    runner = ort_runner(ort_session(str(onnx_path), 1, ["CPUExecutionProvider"]), "power", OUTPUT_NAMES)
    _, _, frames = _analysis_frames(path)
    batches = [frames[i : i + BATCH] for i in range(0, frames.shape[0], BATCH)]
    return {"graph": str(onnx_path), "frames": frames.shape[0], "model_fps": _model_call_fps(runner, batches)}


def _model_call_fps(runner: Callable[[Any], Any], batches: Sequence[Any]) -> float:
    """Frames per second of the model call ``runner`` alone on the power spectra of the
    frame ``batches`` (best of :data:`ROUNDS`, process CPU time)."""
    from streamprint.engine.spectrum import power_spectrum

    powers = [power_spectrum(batch) for batch in batches]

    def model_all() -> None:
        for p in powers:
            runner(p)

    return sum(batch.shape[0] for batch in batches) / _best(model_all)


def worker_dft() -> dict[str, Any]:
    """The DFT choices on 43 frames: ms per batch for each (see module docstring)."""
    import numpy as np
    import onnx
    import onnxruntime as ort
    import openvino as ov
    from onnx import TensorProto, helper, numpy_helper

    from streamprint.engine.spectrum import power_spectrum

    rng = np.random.default_rng(0)
    frames = (0.1 * rng.standard_normal((BATCH, 2048))).astype(np.float32)
    window = np.hanning(2049)[:-1].astype(np.float32)
    n_bins = 1025

    def numpy_dft() -> Any:
        s = np.fft.rfft(frames * window, axis=1)
        return s.real**2 + s.imag**2

    f32 = TensorProto.FLOAT
    inp = [helper.make_tensor_value_info("frames", f32, ["n", 2048])]
    out = [helper.make_tensor_value_info("power", f32, ["n", n_bins])]
    dft_graph = helper.make_graph(
        [
            helper.make_node("Mul", ["frames", "win"], ["xw"]),
            helper.make_node("Unsqueeze", ["xw", "ax"], ["xw3"]),
            helper.make_node("DFT", ["xw3", "", "one"], ["spec"], onesided=1),
            helper.make_node("Mul", ["spec", "spec"], ["sq"]),
            helper.make_node("ReduceSum", ["sq", "ax"], ["power"], keepdims=0),
        ],
        "dft_op", inp, out,
        [numpy_helper.from_array(window, "win"), numpy_helper.from_array(np.array([-1], np.int64), "ax"),
         numpy_helper.from_array(np.array(1, np.int64), "one")],
    )
    k = np.arange(n_bins)[None, :]
    m = np.arange(2048)[:, None]
    angle = 2 * np.pi * m * k / 2048
    weights = np.concatenate((np.cos(angle) * window[:, None], -np.sin(angle) * window[:, None]), axis=1)
    mm_graph = helper.make_graph(
        [
            helper.make_node("MatMul", ["frames", "W"], ["y"], name="dft_matmul"),
            helper.make_node("Mul", ["y", "y"], ["y2"]),
            helper.make_node("Split", ["y2", "sp"], ["re", "im"], axis=1),
            helper.make_node("Add", ["re", "im"], ["power"]),
        ],
        "dft_matmul", inp, out,
        [numpy_helper.from_array(weights.astype(np.float32), "W"),
         numpy_helper.from_array(np.array([n_bins, n_bins], np.int64), "sp")],
    )
    results: dict[str, Any] = {
        "numpy_rfft_ms": _best(numpy_dft, 20) * 1e3,
        "scipy_rfft_ms": _best(lambda: power_spectrum(frames), 20) * 1e3,
    }
    tmp = Path(tempfile.mkdtemp())
    opts = ort.SessionOptions()
    opts.intra_op_num_threads = 1
    opts.inter_op_num_threads = 1
    core = ov.Core()
    for name, graph, opset in (("dft_op", dft_graph, 20), ("matmul_fp32", mm_graph, 17)):
        model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", opset)])
        path = tmp / f"{name}.onnx"
        onnx.save(model, path)
        sess = ort.InferenceSession(str(path), opts, providers=["CPUExecutionProvider"])
        results[f"ort_{name}_ms"] = _best(lambda s=sess: s.run(None, {"frames": frames}), 20) * 1e3
        compiled = core.compile_model(core.read_model(str(path)), "CPU", {"INFERENCE_NUM_THREADS": "1"})
        request = compiled.create_infer_request()
        results[f"openvino_{name}_ms"] = _best(lambda r=request: r.infer({0: frames}), 20) * 1e3
    from onnxruntime.quantization import (
        CalibrationDataReader,
        QuantFormat,
        QuantType,
        quantize_static,
    )

    class Reader(CalibrationDataReader):  # type: ignore[misc]
        def __init__(self) -> None:
            self._it = iter([{"frames": frames}])

        def get_next(self) -> dict[str, Any] | None:
            return next(self._it, None)

    q_path = tmp / "matmul_int8.onnx"
    quantize_static(str(tmp / "matmul_fp32.onnx"), str(q_path), Reader(), quant_format=QuantFormat.QDQ,
                    per_channel=True, activation_type=QuantType.QUInt8, weight_type=QuantType.QInt8,
                    op_types_to_quantize=["MatMul"],
                    extra_options={"OpTypesToExcludeOutputQuantization": ["MatMul"]})
    sess = ort.InferenceSession(str(q_path), opts, providers=["CPUExecutionProvider"])
    results["ort_matmul_int8_ms"] = _best(lambda: sess.run(None, {"frames": frames}), 20) * 1e3
    import nncf

    ov_model = core.read_model(str(tmp / "matmul_fp32.onnx"))
    q_model = nncf.quantize(ov_model, nncf.Dataset([frames]), subset_size=1)
    compiled = core.compile_model(q_model, "CPU", {"INFERENCE_NUM_THREADS": "1"})
    request = compiled.create_infer_request()
    results["openvino_matmul_int8_ms"] = _best(lambda: request.infer({0: frames}), 20) * 1e3
    return results


def worker_auto() -> dict[str, Any]:
    """What ``--backend auto --precision auto`` picks in a fresh single-threaded process."""
    from streamprint.runtime import select_analyzer

    selection = select_analyzer("auto", "auto")
    return {"backend": selection.backend, "precision": selection.precision, "reason": selection.reason}


def combine(runs: Sequence[dict[str, Any]]) -> dict[str, Any]:
    """Best of repeated runs of one variant: highest speeds, lowest load time, largest RSS."""
    out = dict(max(runs, key=lambda r: float(r["rtf"])))
    out["analyze_fps"] = max(float(r["analyze_fps"]) for r in runs)
    out["analyze_rtf"] = max(float(r["analyze_rtf"]) for r in runs)
    fps = [float(r["model_fps"]) for r in runs if r["model_fps"]]
    out["model_fps"] = max(fps) if fps else None
    out["load_s"] = min(float(r["load_s"]) for r in runs)
    out["rss_mib"] = max(float(r["rss_mib"]) for r in runs)
    out["runs_rtf"] = [round(float(r["rtf"]), 1) for r in runs]
    return out


def run_isolated(args: list[str], core: int | None) -> dict[str, Any]:
    """Run a worker in a fresh interpreter (single-thread environment, pinned)."""
    return bench_engine.run_worker(Path(__file__).resolve(), args, core, f"worker {args}")


# -- report -------------------------------------------------------------------------------


def _gate_summary() -> dict[str, str]:
    from streamprint.runtime.manifest import load_manifest

    out = {"numpy/fp32": "reference"}
    manifest = load_manifest()
    for key, variant in manifest.variants.items():
        if variant.gate is None:
            out[key] = "not measured"
        elif variant.gate.passed:
            out[key] = "passed"
        else:
            failed = [n for n, s in variant.gate.worst_share.items() if s < variant.gate.required_share]
            out[key] = f"FAILED ({len(failed)} dims: {', '.join(sorted(failed))})"
    return out


def render_markdown(results: list[dict[str, Any]], dft: dict[str, Any] | None, info: dict[str, Any],
                    command: str, auto: dict[str, Any], compared: dict[str, float] | None = None) -> str:
    gates = _gate_summary()
    minutes = results[0]["media_s"] / 60.0
    lines = [
        "## Runtime backends",
        "",
        f"Measured by `{command}` on a {minutes:g}-minute music-like file (44.1 kHz stereo): each "
        "backend x precision in a fresh process pinned to one core, one thread, repeated "
        "(interleaved) and the best run kept. Times are CPU seconds of the worker (the 2-core "
        "machine was shared with other work; CPU time is what the work cost, wall time would "
        "also count the waiting), so differences under ~10 % are noise. "
        + bench_engine.machine_line(info),
        "",
        "| backend / precision | device | load (s) | analyze (frames/s) | analyze (x realtime) "
        "| model call only (frames/s) | 25D end to end (x realtime) | peak RSS (MiB) | accuracy gate |",
        "|---|---|---:|---:|---:|---:|---:|---:|---|",
    ]
    for r in results:
        model = f"{r['model_fps']:,.0f}" if r["model_fps"] else "n/a (numpy)"
        lines.append(
            f"| {r['variant']} | {r['device']} | {r['load_s']:.3f} | {r['analyze_fps']:,.0f} | "
            f"{r['analyze_rtf']:,.0f} | {model} | {r['rtf']:,.1f} | {r['rss_mib']:.0f} | {gates.get(r['variant'], '?')} |"
        )
    by = {r["variant"]: r for r in results}
    lines += ["", "INT8 against FP32 on the same runtime (model call only; ratio > 1: INT8 faster):", ""]
    for runtime in ("onnxruntime", "openvino"):
        a, b = by.get(f"{runtime}/int8"), by.get(f"{runtime}/fp32")
        if a and b and a["model_fps"] and b["model_fps"]:
            lines.append(
                f"- {runtime}: INT8 {a['model_fps']:,.0f} vs FP32 {b['model_fps']:,.0f} frames/s "
                f"(x{a['model_fps'] / b['model_fps']:.2f}); whole analyze x{a['analyze_fps'] / b['analyze_fps']:.2f}."
            )
    current = by.get("onnxruntime/fp32", {}).get("model_fps")
    if compared and current:
        lines += ["", "The committed FP32 graph against other graph files, ONNX Runtime, model call only "
                  "(`--compare-graph`; ratio > 1: the committed graph faster):", ""]
        lines += [f"- `{graph}`: {fps:,.0f} vs {current:,.0f} frames/s (x{current / fps:.2f})."
                  for graph, fps in compared.items()]
    numpy_rss = by.get("numpy/fp32", {}).get("rss_mib")
    if numpy_rss:
        extra = ", ".join(
            f"{r['variant']} +{r['rss_mib'] - numpy_rss:.0f}" for r in results if r["variant"] != "numpy/fp32"
        )
        lines += ["", f"Peak RSS includes the decoded file and its frames (the numpy row); what the runtime "
                  f"itself adds (MiB): {extra}."]
    first = auto["reason"].split(";")[0]
    detail = first.split(": ", 1)[1] if ": " in first else first
    lines += [
        "",
        f"`--backend auto --precision auto` on this machine: **{auto['backend']}/{auto['precision']}**, "
        f"{detail}.",
    ]
    if dft:
        lines += [
            "",
            "Where the DFT runs (43 frames of 2048 samples to a 1025-bin power spectrum, one thread, "
            "ms per batch, best of 20):",
            "",
            "| scipy rfft (the runtime's) | numpy rfft | ORT DFT op | OpenVINO DFT op | ORT matmul FP32 | ORT matmul INT8 "
            "| OpenVINO matmul FP32 | OpenVINO matmul INT8 |",
            "|---:|---:|---:|---:|---:|---:|---:|---:|",
            f"| {dft['scipy_rfft_ms']:.2f} | {dft['numpy_rfft_ms']:.2f} | {dft['ort_dft_op_ms']:.2f} | {dft['openvino_dft_op_ms']:.2f} | "
            f"{dft['ort_matmul_fp32_ms']:.2f} | {dft['ort_matmul_int8_ms']:.2f} | "
            f"{dft['openvino_matmul_fp32_ms']:.2f} | {dft['openvino_matmul_int8_ms']:.2f} |",
        ]
    lines += ["", *EXPLANATION[:3], int8_speed_reading(info, by), *EXPLANATION[3:]]
    if dft:
        lines.append(
            f"- The DFT stays outside the graph: scipy's pocketfft takes {dft['scipy_rfft_ms']:.2f} ms for 43 "
            f"frames (numpy's, which loops over rows, {dft['numpy_rfft_ms']:.2f} ms), the "
            f"DFT operator {dft['ort_dft_op_ms'] / dft['scipy_rfft_ms']:.0f}x (ONNX Runtime) and "
            f"{dft['openvino_dft_op_ms'] / dft['scipy_rfft_ms']:.0f}x (OpenVINO) that, a DFT matmul "
            f"{dft['ort_matmul_fp32_ms'] / dft['scipy_rfft_ms']:.0f}x in FP32; INT8 makes that matmul "
            f"x{dft['ort_matmul_fp32_ms'] / dft['ort_matmul_int8_ms']:.2f} as fast on ONNX Runtime and "
            f"x{dft['openvino_matmul_fp32_ms'] / dft['openvino_matmul_int8_ms']:.2f} on OpenVINO: the "
            "biggest matmul there could be, and still several times slower than pocketfft."
        )
    return "\n".join(lines)


def int8_speed_reading(info: dict[str, Any], by: dict[str, dict[str, Any]]) -> str:
    """What INT8 gains on this CPU: the reading bullet, from the measured model-call ratios."""
    ratios = []
    for runtime in ("onnxruntime", "openvino"):
        a, b = by.get(f"{runtime}/int8"), by.get(f"{runtime}/fp32")
        if a and b and a["model_fps"] and b["model_fps"]:
            ratios.append(f"x{a['model_fps'] / b['model_fps']:.2f} on {runtime}")
    measured = f" (model call, INT8 against FP32: {', '.join(ratios)})" if ratios else ""
    vector = str(info.get("vector", "unknown"))
    if "VNNI" in vector and "no VNNI" not in vector:
        how = ("this CPU has VNNI (`vpdpbusd`: four 8-bit multiply-adds per 32-bit lane in one "
               "instruction), so a large INT8 matmul runs several times faster than FP32, but")
    else:
        how = (f"this CPU ({vector}) has no 8-bit dot-product instruction: integer dot products go "
               "through `vpmaddubsw` + `vpmaddwd`, at best about twice the multiply-adds per "
               "instruction of FP32 FMA, and")
    return (f"- INT8 speed: {how} the projections here are small (about 38,000 multiply-adds a frame: 1025 x 20 for "
            f"chroma and bands, about 17,000 for the mel groups), so "
            f"quantizing and dequantizing the activations costs about what the integer matmul "
            f"saves{measured}.")


EXPLANATION = [
    "What the numbers say:",
    "",
    "- The graph backends run the spectral descriptors (centroid, roll-off, flatness, chroma, "
    "mel dB, band power) as one fused model; the DFT (scipy), frame RMS and YIN stay outside the graph on every "
    "backend (scripts/export_models.py says why), so YIN (about half of `analyze`), HPSS and "
    "the onset / tempo work bound the end-to-end gain.",
    "- INT8 accuracy: the model input is the power spectrum divided by each frame's strongest "
    "bin, and a uint8 activation steps in 1/255 of that, so it resolves only ~24 dB (power) "
    "below the peak; weaker bins round to zero or to one step. Band shares sum hundreds of such "
    "bins and the mel dB spectrum behind the onset envelope reaches down to -50 dB, so the INT8 "
    "variants miss the tolerance on those dimensions on too many clips (the gate column names "
    "them) and `auto` runs FP32. The centroid, roll-off and flatness branch is never quantized.",
]


def main(argv: Sequence[str] | None = None) -> int:
    """CLI entry point."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--minutes", type=float, default=10.0)
    parser.add_argument("--core", type=int, default=None, help="pin the measuring processes to this core")
    parser.add_argument("--json", action="store_true", help="print one JSON object as the last line")
    parser.add_argument("--write-docs", action="store_true", help="update docs/benchmarks.md")
    parser.add_argument("--no-dft", action="store_true", help="skip the DFT-choice table")
    parser.add_argument("--variants", nargs="*", default=list(VARIANTS))
    parser.add_argument("--repeat", type=int, default=2,
                        help="measure each variant this many times, interleaved; keep the best")
    parser.add_argument("--compare-graph", type=Path, action="append", default=[], metavar="ONNX",
                        help="also time the model call of this spectral graph file (e.g. an earlier "
                        "version's, from `git show REV:models/spectral/1/fp32/model.onnx`) beside "
                        "the committed FP32 one, interleaved in the same run")
    parser.add_argument("--worker", help=argparse.SUPPRESS)
    parser.add_argument("--audio", type=Path, help=argparse.SUPPRESS)
    parser.add_argument("--graph-file", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.worker:
        if args.core is not None and hasattr(os, "sched_setaffinity"):
            os.sched_setaffinity(0, {args.core})
        if args.worker == "dft":
            result = worker_dft()
        elif args.worker == "auto":
            result = worker_auto()
        elif args.worker == "graph":
            result = worker_graph(args.graph_file, args.audio)
        else:
            result = worker_variant(args.worker, args.audio)
        print(json.dumps(result))
        return 0
    core = args.core if args.core is not None else (0 if (os.cpu_count() or 1) > 1 else None)
    path = bench_engine.bench_file(args.minutes)
    runs: dict[str, list[dict[str, Any]]] = {key: [] for key in args.variants}
    graphs: dict[str, list[float]] = {}
    for round_ in range(args.repeat):  # interleaved, so a busy spell hits every variant alike
        for key in args.variants:
            r = run_isolated(["--worker", key, "--audio", str(path)], core)
            runs[key].append(r)
            model = f"{r['model_fps']:,.0f}" if r["model_fps"] else "-"
            print(f"[{round_ + 1}/{args.repeat}] {key:<18} load {r['load_s']:.3f} s  analyze "
                  f"{r['analyze_fps']:,.0f} frames/s  model {model} frames/s  e2e {r['rtf']:.1f}x "
                  f"realtime  RSS {r['rss_mib']:.0f} MiB", flush=True)
        for graph in args.compare_graph:
            g = run_isolated(["--worker", "graph", "--graph-file", str(graph), "--audio", str(path)], core)
            graphs.setdefault(str(graph), []).append(float(g["model_fps"]))
            print(f"[{round_ + 1}/{args.repeat}] graph {graph}: model {g['model_fps']:,.0f} frames/s", flush=True)
    results = [combine(runs[key]) for key in args.variants]
    compared = {graph: max(fps) for graph, fps in graphs.items()}
    dft = None if args.no_dft else run_isolated(["--worker", "dft"], core)
    if dft:
        print("dft ms per 43 frames: " + ", ".join(f"{k} {v:.2f}" for k, v in dft.items()), flush=True)
    auto = run_isolated(["--worker", "auto"], core)
    print(f"auto: {auto['reason']}")
    bench_engine.CACHE.mkdir(parents=True, exist_ok=True)
    (bench_engine.CACHE / "runtime.json").write_text(
        json.dumps({"variants": results, "dft": dft, "auto": auto, "minutes": args.minutes, "compared": compared})
    )
    if args.write_docs:
        command = "python scripts/bench_runtime.py" + (f" --minutes {args.minutes:g}" if args.minutes != 10 else "")
        command += "".join(f" --compare-graph {graph}" for graph in args.compare_graph)
        body = render_markdown(results, dft, bench_engine.machine_info(), command, auto, compared)
        bench_engine.write_doc_section(SECTION, body)
    if args.json:
        print(json.dumps({"variants": results, "dft": dft, "auto": auto, "compared": compared}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
