"""The learned heads' accuracy gate, parity and speed (used by ``scripts/train_heads.py``).

    python scripts/heads_gate.py [--models models] [--clips 120] [--write]
    python scripts/heads_gate.py --pitch-confidence

On every clip of the held-out corpus: the 25D batch fingerprint (``fingerprint_buffer``)
with the DSP reference (numpy analyzer: HPSS + YIN) and with the learned heads (the same
analyzer without YIN plus the heads, loaded and sha256-checked as the server loads them).
The gate passes when every dimension is within its registry tolerance on >= 99 % of the
clips. Also: parity of the heads numpy vs ONNX Runtime on the held-out head inputs, and the
CPU time per media second of both fingerprints (summed over the clips, measured in the same
run). ``--write`` stores the result in ``models/heads/<version>/manifest.json``;
``--write-docs`` rewrites the "heads-gate" section of docs/benchmarks.md (``--from-manifest``:
from what the manifest holds, as ``scripts/train_heads.py`` measured it, without measuring).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")
os.environ.setdefault("OMP_NUM_THREADS", "1")

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT / "server"), str(ROOT / "scripts")]

from accuracy_gate import GATE_SHARE, accuracy_and_gate  # noqa: E402
from make_corpus import build_corpus  # noqa: E402

from streamprint.engine import dims  # noqa: E402
from streamprint.engine.decode import decode_file  # noqa: E402
from streamprint.engine.session import fingerprint_buffer  # noqa: E402
from streamprint.runtime.base import LoadOptions  # noqa: E402
from streamprint.runtime.heads import (  # noqa: E402
    HEADS_MODEL,
    HEADS_VERSION,
    HeadsAnalyzer,
    load_heads_manifest,
    load_heads_runner,
)
from streamprint.runtime.numpy_backend import NumpyAnalyzer  # noqa: E402

HELDOUT: dict[str, Any] = {"out": ".cache/corpus-calibration", "clips": 120, "seconds": (20.0, 30.0), "seed": 0}


def parity(models_dir: Path, clips: Sequence[Path]) -> dict[str, Any]:
    """Max |numpy - onnxruntime| of both heads' outputs on real head inputs."""
    from train_heads import clip_inputs

    opts = LoadOptions(models_dir=models_dir)
    ref = load_heads_runner("numpy", opts)
    ort = load_heads_runner("onnxruntime", opts)
    worst = {"harmonic": 0.0, "pitch": 0.0}
    frames = 0
    for path in clips:
        proxies, pitch = clip_inputs(path)
        frames += proxies.shape[0]
        worst["harmonic"] = max(worst["harmonic"], float(np.abs(ref.harmonic(proxies) - ort.harmonic(proxies)).max()))
        worst["pitch"] = max(worst["pitch"], float(np.abs(ref.pitch(pitch) - ort.pitch(pitch)).max()))
    return {"numpy_vs_onnxruntime_max_abs": {k: float(f"{v:.3g}") for k, v in worst.items()},
            "clips": len(clips), "frames": frames}


def measure(models_dir: Path, held_spec: dict[str, Any] | None = None) -> dict[str, Any]:
    """The manifest entries ``gate``, ``accuracy``, ``parity``, ``speed`` (see module docstring)."""
    spec = held_spec or HELDOUT
    items = build_corpus(ROOT / spec["out"], spec["clips"], spec["seconds"], spec["seed"])
    opts = LoadOptions(models_dir=models_dir)
    agree = parity(models_dir, [item.path for item in items[:6]])
    manifest = load_heads_manifest(opts)
    dsp = NumpyAnalyzer()
    learned = HeadsAnalyzer(NumpyAnalyzer(), load_heads_runner("numpy", opts, manifest), manifest.version)
    errors: dict[str, list[float]] = {name: [] for name in dims.AUDIO_25D}
    worst: dict[str, list[tuple[float, str, float, float]]] = {"harmonic_ratio": [], "pitch_stability": []}
    cpu = {"dsp": 0.0, "learned": 0.0}
    media = 0.0
    for item in items:
        buf = decode_file(item.path)
        media += buf.samples.shape[0] / buf.sample_rate
        t0 = time.process_time()
        ref = fingerprint_buffer(buf, dims.AUDIO_25D, analyzer=dsp)
        t1 = time.process_time()
        got = fingerprint_buffer(buf, dims.AUDIO_25D, analyzer=learned)
        t2 = time.process_time()
        cpu["dsp"] += t1 - t0
        cpu["learned"] += t2 - t1
        for name in dims.AUDIO_25D:
            r, g = ref.values[name], got.values[name]
            errors[name].append(abs(g - r) / dims.get(name).tolerance_for(r))
            if name in worst:
                worst[name].append((abs(g - r), item.file, g, r))
    accuracy, gate = accuracy_and_gate(errors, len(items), reference="the DSP reference",
                                       failed_clips="held-out clips", passed_clips="held-out clips", p99=False)
    for name, rows in worst.items():
        rows.sort(reverse=True)
        accuracy[name]["worst_clips"] = [
            {"clip": f, "learned": round(g, 4), "dsp": round(r, 4)} for _, f, g, r in rows[:5]
        ]
    return {
        "gate": gate,
        "accuracy": accuracy,
        "parity": agree,
        "speed": {
            "what": "CPU seconds (process_time) per media second of the 25D batch fingerprint "
            "(fingerprint_buffer, numpy analyzer), summed over the held-out clips, both in one run",
            "media_seconds": round(media, 1),
            "dsp_cpu_ms_per_media_second": round(1e3 * cpu["dsp"] / media, 2),
            "learned_cpu_ms_per_media_second": round(1e3 * cpu["learned"] / media, 2),
        },
    }


#: Decision margins of the pitch head's pair probability examined by :func:`pitch_confidence`.
CONFIDENCE_BANDS = ((0.1, 0.9), (0.02, 0.98), (0.005, 0.995), (0.001, 0.999))


def pitch_confidence(models_dir: Path) -> list[dict[str, Any]]:
    """How often the pitch head is *confidently* wrong about YIN's voiced pairs.

    On every pair of loud frames of the training and held-out corpora (teacher data cached
    by ``scripts/train_heads.py``): with ``q`` the head's probability of a voiced pair, the
    pairs it is sure of (``q < lo`` or ``q > hi``) that YIN decides the other way, and the
    share it is unsure of. If the sure-but-wrong pairs vanished at some margin, running YIN
    only on the unsure pairs would give YIN's answers at a fraction of its cost; they do not.
    """
    from train_heads import TRAIN, load_clips

    from streamprint.engine.heads import HeadWeights, NumpyHeads

    net = NumpyHeads(HeadWeights.load(str(models_dir / HEADS_MODEL / HEADS_VERSION / "heads.npz")))
    rows: list[dict[str, Any]] = []
    for corpus, spec in (("train", TRAIN), ("held-out", HELDOUT)):
        q_all, yin_all = [], []
        for clip in load_clips(spec, ROOT / ".cache" / "heads-teacher"):
            loud_pair = clip.loud[1:] & clip.loud[:-1]
            q_all.append(net.pitch(clip.pitch)[loud_pair, 0])
            yin_all.append(clip.pair[1:][loud_pair])
        q, yin = np.concatenate(q_all), np.concatenate(yin_all)
        for lo, hi in CONFIDENCE_BANDS:
            sure_no, sure_yes = q < lo, q > hi
            rows.append({
                "corpus": corpus, "pairs": int(q.size), "margin": [lo, hi],
                "unsure_share": round(float(1.0 - (sure_no | sure_yes).mean()), 4),
                "sure_but_wrong": int((sure_no & yin).sum() + (sure_yes & ~yin).sum()),
            })
    return rows


def render(measured: dict[str, Any], command: str) -> str:
    """The docs/benchmarks.md "heads-gate" section from :func:`measure`'s result."""
    from streamprint.runtime.heads import HEAD_DIMENSIONS

    gate, acc, speed, par = measured["gate"], measured["accuracy"], measured["speed"], measured["parity"]
    lines = [
        f"Command: `{command}`",
        "",
        f"Held-out corpus: `{HELDOUT['out']}` ({gate['clips']} clips of 20-30 s, seed {HELDOUT['seed']}; "
        "the training corpus is `.cache/corpus-heads-train`, seed 5151, 160 clips of 8-16 s). "
        "Reference: the 25D batch fingerprint with HPSS + YIN; error in units of the registry tolerance.",
        "",
        "| dimension | head | share within tolerance | max error (tol. units) | mean error (tol. units) | gate (>= 99 %) |",
        "|---|---|---:|---:|---:|---|",
    ]
    for head, dim in HEAD_DIMENSIONS.items():
        a = acc[dim]
        ok = a["share_within_tolerance"] >= GATE_SHARE
        lines.append(f"| {dim} | {head} | {100 * a['share_within_tolerance']:.1f} % | "
                     f"{a['max_error_tolerance_units']:.3g} | {a['mean_error_tolerance_units']:.3g} | "
                     f"{'passed' if ok else 'failed'} |")
    others = [d for d in acc if d not in HEAD_DIMENSIONS.values()]
    worst_other = max(acc[d]["max_error_tolerance_units"] for d in others)
    lines += [
        f"| the other {len(others)} dimensions | - | "
        f"{100 * min(acc[d]['share_within_tolerance'] for d in others):.1f} % (lowest) | {worst_other:.3g} | | |",
        "",
        "Worst clips: " + "; ".join(
            f"{dim}: " + ", ".join(f"{w['clip']} {w['learned']:.3f} vs {w['dsp']:.3f}" for w in acc[dim]["worst_clips"][:3])
            for dim in HEAD_DIMENSIONS.values()) + ".",
        "",
        f"Verdict: {gate['reason']}. `--heads auto` therefore runs "
        + _auto_sentence(acc) + ".",
        "",
        f"Parity numpy vs ONNX Runtime (max |difference| of the head outputs on {par['clips']} clips): "
        + ", ".join(f"{k} {v:.3g}" for k, v in par["numpy_vs_onnxruntime_max_abs"].items()) + ".",
        "",
        f"CPU per media second of the 25D batch fingerprint over the {speed['media_seconds']:.0f} s of the "
        f"held-out clips (numpy analyzer, same run): DSP {speed['dsp_cpu_ms_per_media_second']:.2f} ms, "
        f"both learned heads {speed['learned_cpu_ms_per_media_second']:.2f} ms.",
    ]
    return "\n".join(lines)


def _auto_sentence(acc: dict[str, Any]) -> str:
    from streamprint.runtime.heads import HEAD_DIMENSIONS

    passed = [h for h, d in HEAD_DIMENSIONS.items() if acc[d]["share_within_tolerance"] >= GATE_SHARE]
    if len(passed) == 2:
        return "both heads (no HPSS, no YIN)"
    if passed == ["harmonic"]:
        return "the harmonic head (no HPSS) and YIN for pitch_stability"
    if passed == ["pitch"]:
        return "the pitch head (no YIN) and HPSS for harmonic_ratio"
    return "HPSS and YIN (dsp)"


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--models", type=Path, default=ROOT / "models")
    parser.add_argument("--clips", type=int, default=HELDOUT["clips"])
    parser.add_argument("--write", action="store_true", help="store the result in the manifest")
    parser.add_argument("--write-docs", action="store_true", help="rewrite the heads-gate section of docs/benchmarks.md")
    parser.add_argument("--pitch-confidence", action="store_true",
                        help="only print how often the pitch head is confidently wrong (JSON)")
    parser.add_argument("--from-manifest", action="store_true",
                        help="do not measure: use what the manifest holds (as scripts/train_heads.py measured it)")
    args = parser.parse_args(argv)
    path = args.models / HEADS_MODEL / HEADS_VERSION / "manifest.json"
    if args.pitch_confidence:
        for row in pitch_confidence(args.models):
            print(json.dumps(row))
        return 0
    if args.from_manifest:
        data = json.loads(path.read_text())
        measured = {k: data[k] for k in ("gate", "accuracy", "parity", "speed")}
    else:
        measured = measure(args.models, {**HELDOUT, "clips": args.clips})
    print(json.dumps(measured, indent=1))
    if args.write and not args.from_manifest:
        data = json.loads(path.read_text())
        data.update(measured)
        path.write_text(json.dumps(data, indent=2, sort_keys=True) + "\n")
    if args.write_docs:
        from bench_engine import write_doc_section

        command = ("python scripts/train_heads.py && python scripts/heads_gate.py --from-manifest --write-docs"
                   if args.from_manifest else "python scripts/heads_gate.py --write --write-docs")
        write_doc_section("heads-gate", render(measured, command))
    return 0


if __name__ == "__main__":
    sys.exit(main())
