"""Train the learned heads (harmonic share, voicing / pitch stability) and export them.

    python scripts/train_heads.py [--out models/heads/1] [--epochs 40]

Needs the ``train`` extra (torch CPU build); the server never does. Steps:

1. corpora (``scripts/make_corpus.py build_corpus``): a **training** corpus (seed 5151, 160
   clips of 8-16 s, ``.cache/corpus-heads-train``) and the **held-out** gate corpus (seed
   0, 120 clips of 20-30 s, ``.cache/corpus-calibration``; no clip in common: other seeds);
2. per clip, the analysis frames (mono, soxr to 22,050 Hz, 2048/512 framing as a session
   does), the head inputs (:func:`streamprint.engine.heads.frame_inputs`) and the teacher
   targets from the numpy DSP reference: HPSS energies ``E_h``, ``E_p`` per frame
   (``engine/hpss.py``) as fractions of the frame power, YIN voicing of loud frames and
   stable pairs (``engine/pitch.py``, ``engine/features.py``);
3. training with torch, seeded and single-threaded (deterministic): the harmonic head on
   frame sequences (valid dilated convolutions over reflected edges, energy-weighted
   squared error per clip), the pitch head on frame pairs (binary cross-entropy on the
   voiced pair of two loud frames and on stability given a voiced pair);
4. export: ``heads.npz`` (the numpy reference's weights), ``harmonic.onnx`` and
   ``pitch.onnx`` (opset 17, built with onnx.helper from the same weights);
5. the accuracy gate: on every held-out clip the 25D batch fingerprint with learned heads
   against the DSP fingerprint, per dimension within the registry tolerance on >= 99 %
   of the clips; parity numpy vs ONNX Runtime; speed; all into ``manifest.json`` with the
   sha256 of every file.
"""

from __future__ import annotations

import argparse
import hashlib
import importlib.metadata
import json
import os
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")

import numpy as np
from numpy.typing import NDArray

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT / "server"), str(ROOT / "scripts")]

from make_corpus import build_corpus  # noqa: E402

from streamprint.engine import heads as H  # noqa: E402
from streamprint.engine.analysis import NumpyFrameAnalyzer  # noqa: E402
from streamprint.engine.decode import decode_file  # noqa: E402
from streamprint.engine.features import PITCH_STABLE_CENTS  # noqa: E402
from streamprint.engine.grid import SILENCE_RMS, Framer  # noqa: E402
from streamprint.engine.hpss import HarmonicPercussive  # noqa: E402
from streamprint.engine.median import reflect_indices  # noqa: E402
from streamprint.engine.resample import StreamingResampler, to_mono  # noqa: E402

OPSET = 17
IR_VERSION = 8
PRODUCER = "streamprint-train-heads"
HEADS_VERSION = "1"
TRAIN = {"out": ".cache/corpus-heads-train", "clips": 160, "seconds": (8.0, 16.0), "seed": 5151}
HELDOUT = {"out": ".cache/corpus-calibration", "clips": 120, "seconds": (20.0, 30.0), "seed": 0}
CHANNELS = 24
HIDDEN = 32
SEED = 1234
F32 = NDArray[np.float32]
F64 = NDArray[np.float64]


@dataclass
class ClipData:
    """Inputs and teacher targets of one clip (``n`` frames)."""

    name: str
    kind: str
    harmonic: F32  # [n, HARMONIC_FEATURES] proxy fractions
    pitch: F32  # [n, PITCH_FEATURES]
    energy: F64  # [n]
    loud: NDArray[np.bool_]  # [n]
    e_h: F64  # [n] HPSS harmonic energy
    e_p: F64  # [n] HPSS percussive energy
    voiced: NDArray[np.bool_]  # [n] YIN voiced and loud
    stable: NDArray[np.bool_]  # [n] pair (t-1, t) voiced and < 50 cents

    @property
    def pair(self) -> NDArray[np.bool_]:
        prev = np.concatenate(([False], self.voiced[:-1]))
        out: NDArray[np.bool_] = self.voiced & prev
        return out


def clip_frames(path: Path) -> F32:
    """Analysis frames ``[n, 2048]`` of a file, exactly as a session cuts them."""
    buf = decode_file(path)
    resampler = StreamingResampler(buf.sample_rate)
    mono = np.concatenate((resampler.push(to_mono(buf.samples)), resampler.flush()))
    return Framer().push(mono)


def teacher(path: Path) -> dict[str, NDArray[Any]]:
    """The DSP targets of one clip: frame power ``energy``, ``loud``, HPSS ``e_h`` / ``e_p``,
    YIN ``voiced`` (loud frames only) and ``stable`` pairs, each ``[n]``."""
    frames = clip_frames(path)
    analyzer = NumpyFrameAnalyzer()
    parts = [analyzer.analyze(frames[i : i + 430]) for i in range(0, frames.shape[0], 430)]
    if not parts:
        parts = [analyzer.analyze(frames)]
    mags = np.concatenate([p.magnitude for p in parts])
    rms = np.concatenate([p.rms for p in parts])
    f0 = np.concatenate([p.f0 for p in parts])
    hpss = HarmonicPercussive()
    h1, p1 = hpss.push(mags)
    h2, p2 = hpss.finish()
    loud = rms >= SILENCE_RMS
    voiced = np.concatenate([p.voiced for p in parts]) & loud
    prev_f0 = np.concatenate(([0.0], f0[:-1]))
    prev_v = np.concatenate(([False], voiced[:-1]))
    with np.errstate(divide="ignore", invalid="ignore"):
        cents = np.abs(1200.0 * np.log2(f0 / np.where(prev_f0 > 0, prev_f0, 1.0)))
    return {
        "energy": np.square(mags, dtype=np.float32).sum(axis=1, dtype=np.float64), "loud": loud,
        "e_h": np.concatenate((h1, h2)), "e_p": np.concatenate((p1, p2)), "voiced": voiced,
        "stable": voiced & prev_v & (cents < PITCH_STABLE_CENTS),
    }


FEATURES_TAG = f"b{H.N_BANDS}-p{H.PITCH_FEATURES}-v4"
_TARGETS = ("energy", "loud", "e_h", "e_p", "voiced", "stable")


class _Capture:
    """A runner that records the harmonic proxies (and answers zeros)."""

    name = "capture"

    def __init__(self) -> None:
        self.rows: list[F32] = []

    def harmonic(self, proxies: F32) -> F32:
        self.rows.append(proxies)
        return np.zeros((proxies.shape[0], 2), np.float32)

    def pitch(self, frames: F32) -> F32:
        return np.zeros((frames.shape[0] - 1, 2), np.float32)


def clip_inputs(path: Path) -> tuple[F32, F32]:
    """``(proxies [n, HARMONIC_FEATURES], pitch [n, PITCH_FEATURES])`` of every frame of a file,
    through the streaming accumulator (so edges are exactly the runtime's); no HPSS, no YIN."""
    frames = clip_frames(path)
    analyzer = NumpyFrameAnalyzer(pitch=False)
    capture = _Capture()
    harm = H.LearnedHarmonic(capture)
    pitch = []
    for i in range(0, frames.shape[0], 430):
        d = analyzer.analyze(frames[i : i + 430])
        x = H.frame_inputs(d.magnitude, d.mel_db, d.rms)
        harm.push(x)
        pitch.append(x.pitch)
    harm.finish()
    if not pitch:
        return np.zeros((0, H.HARMONIC_FEATURES), np.float32), np.zeros((0, H.PITCH_FEATURES), np.float32)
    return np.concatenate(capture.rows), np.concatenate(pitch)


def load_clips(spec: dict[str, Any], cache: Path, root: Path = ROOT) -> list[ClipData]:
    """Build (or reuse) a corpus under ``root`` and its teacher data (cached per clip: the DSP
    targets, and the head inputs per feature version)."""
    items = build_corpus(root / spec["out"], spec["clips"], spec["seconds"], spec["seed"])
    cache.mkdir(parents=True, exist_ok=True)
    out = []
    for item in items:
        stem = f"{Path(spec['out']).name}-{item.seed}-{item.file}"
        targets_path = cache / f"{stem}.npz"
        inputs_path = cache / f"{stem}.inputs-{FEATURES_TAG}.npz"
        if targets_path.exists():
            with np.load(targets_path) as z:
                targets = {k: z[k] for k in _TARGETS}
        else:
            targets = teacher(item.path)
            np.savez(targets_path, **targets)
        if inputs_path.exists():
            with np.load(inputs_path) as z:
                harmonic, pitch = z["harmonic"], z["pitch"]
        else:
            harmonic, pitch = clip_inputs(item.path)
            np.savez(inputs_path, harmonic=harmonic, pitch=pitch)
        out.append(ClipData(item.file, item.kind, harmonic, pitch, targets["energy"], targets["loud"],
                            targets["e_h"], targets["e_p"], targets["voiced"], targets["stable"]))
    return out


# -- training ------------------------------------------------------------------------------


def _stats(x: F32) -> tuple[F32, F32]:
    mean = x.mean(axis=0).astype(np.float32)
    std = x.std(axis=0).astype(np.float32)
    return mean, (1.0 / np.maximum(std, 1e-3)).astype(np.float32)


def _padded(x: F32) -> F32:
    idx = np.arange(-H.HARMONIC_CONTEXT, x.shape[0] + H.HARMONIC_CONTEXT)
    return x[reflect_indices(idx, x.shape[0])]


def _mlp(n_in: int) -> Any:
    from torch import nn

    return nn.Sequential(nn.Linear(n_in, HIDDEN), nn.ReLU(), nn.Linear(HIDDEN, HIDDEN), nn.ReLU(),
                         nn.Linear(HIDDEN, 2))


def _export_mlp(net: Any, prefix: str) -> dict[str, F32]:
    from torch import nn

    lin = [m for m in net if isinstance(m, nn.Linear)]
    out = {}
    for name, layer in zip(("1", "2", "out"), lin, strict=True):
        out[f"{prefix}_w{name}"] = layer.weight.detach().numpy()
        out[f"{prefix}_b{name}"] = layer.bias.detach().numpy()
    return out


def _fit(name: str, opt: Any, loss: Callable[[Any], Any], n: int, epochs: int, seed: int,
         digits: int, log: list[str]) -> None:
    """Train with ``opt`` for ``epochs`` over ``n`` rows: shuffled batches of 512 (seeded by
    ``seed``), ``loss(batch indices)`` the batch's mean loss, cosine-annealed learning rate;
    every fifth epoch and the last, the epoch's mean loss (``digits`` decimals) goes to ``log``."""
    import torch

    sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, epochs)
    gen = torch.Generator().manual_seed(seed)
    for epoch in range(epochs):
        order = torch.randperm(n, generator=gen)
        total = 0.0
        for i in range(0, len(order), 512):
            b = order[i : i + 512]
            batch_loss = loss(b)
            opt.zero_grad()
            batch_loss.backward()
            opt.step()
            total += float(batch_loss.detach()) * len(b)
        sched.step()
        if epoch % 5 == 0 or epoch == epochs - 1:
            log.append(f"{name} epoch {epoch}: loss {total / n:.{digits}f}")
            print(log[-1], flush=True)


def train_harmonic(clips: list[ClipData], epochs: int, log: list[str]) -> dict[str, F32]:
    import torch

    xs, ys, ws = [], [], []
    for c in clips:
        if c.energy.sum() <= 0:  # digital silence: harmonic_ratio is 0 whatever the head says
            continue
        e = np.where(c.energy > 0, c.energy, 1.0)
        xs.append(c.harmonic)
        ys.append(np.stack((c.e_h / e, c.e_p / e), axis=1).astype(np.float32))
        w = c.energy / c.energy.mean()
        if not c.loud.any():  # quiet media: HPSS shares are defined all the same; weight frames evenly
            w = np.ones_like(w)
        ws.append((w + 0.05).astype(np.float32))
    x_all = np.concatenate(xs)
    mean, scale = _stats(x_all)
    x = torch.from_numpy((x_all - mean) * scale)
    y = torch.from_numpy(np.concatenate(ys))
    wt = torch.from_numpy(np.concatenate(ws))
    net = _mlp(H.HARMONIC_FEATURES)
    opt = torch.optim.Adam(net.parameters(), lr=2e-3)

    def loss(b: Any) -> Any:
        pred = torch.sigmoid(net(x[b]))
        return (((pred - y[b]) ** 2).sum(dim=1) * wt[b]).mean()

    _fit("harmonic", opt, loss, x.shape[0], epochs, SEED, 6, log)
    out = {"h_mean": mean, "h_scale": scale, **_export_mlp(net, "h")}
    return {k: np.ascontiguousarray(v, dtype=np.float32) for k, v in out.items()}


def train_pitch(clips: list[ClipData], epochs: int, log: list[str]) -> dict[str, F32]:
    import torch
    from torch import nn

    mean, scale = _stats(np.concatenate([c.pitch[c.loud] for c in clips if c.loud.any()]))
    scale[H.LAG_COLUMN] = 12.0  # log2(lag) in semitones: a pair's |difference| ~ its f0 change
    cur, prev, pair_y, stable_y = [], [], [], []
    for c in clips:
        both = c.loud & np.concatenate(([False], c.loud[:-1]))
        idx = np.nonzero(both)[0]
        if idx.size == 0:
            continue
        x = (c.pitch - mean) * scale
        cur.append(x[idx])
        prev.append(x[idx - 1])
        pair_y.append(c.pair[idx])
        stable_y.append(c.stable[idx])
    a = torch.from_numpy(np.concatenate(cur))
    p = torch.from_numpy(np.concatenate(prev))
    z = torch.cat((a, p, (a - p).abs()), dim=1)
    yp = torch.from_numpy(np.concatenate(pair_y).astype(np.float32))
    ys = torch.from_numpy(np.concatenate(stable_y).astype(np.float32))
    net = _mlp(3 * H.PITCH_FEATURES)
    opt = torch.optim.Adam(net.parameters(), lr=2e-3, weight_decay=1e-5)
    bce = nn.BCEWithLogitsLoss(reduction="none")

    def loss(b: Any) -> Any:
        logits = net(z[b])
        l_pair = bce(logits[:, 0], yp[b]).mean()
        l_stable = (bce(logits[:, 1], ys[b]) * yp[b]).sum() / yp[b].sum().clamp(min=1.0)
        return l_pair + l_stable

    _fit("pitch", opt, loss, z.shape[0], epochs, SEED + 1, 5, log)
    out = {"p_mean": mean, "p_scale": scale, **_export_mlp(net, "p")}
    return {k: np.ascontiguousarray(v, dtype=np.float32) for k, v in out.items()}


# -- evaluation ----------------------------------------------------------------------------


def clip_values(runner: H.HeadsRunner, c: ClipData) -> dict[str, tuple[float, float]]:
    """``{dim: (learned, dsp)}`` for harmonic_ratio and pitch_stability of one clip (the cached
    proxies were made by the streaming accumulator; pairs go through :class:`LearnedPitch`)."""
    shares = runner.harmonic(c.harmonic).astype(np.float64) if c.energy.size else np.zeros((0, 2))
    harmonic = float((shares[:, 0] * c.energy).sum())
    total = float(((shares[:, 0] + shares[:, 1]) * c.energy).sum())
    pit = H.LearnedPitch(runner)
    stable = pairs = 0.0
    for i in range(0, c.energy.shape[0], 43):
        s, p = pit.push(c.pitch[i : i + 43], c.loud[i : i + 43])
        stable += float(s.sum())
        pairs += float(p.sum())
    ref_tot = float((c.e_h + c.e_p).sum())
    ref_pairs = float(c.pair.sum())
    return {
        "harmonic_ratio": (harmonic / total if total > 0 else 0.0,
                           float(c.e_h.sum()) / ref_tot if ref_tot > 0 else 0.0),
        "pitch_stability": (H.pitch_stability(stable, pairs),
                            float(c.stable.sum()) / ref_pairs if ref_pairs > 0 else 0.0),
    }


def quick_eval(runner: H.HeadsRunner, clips: list[ClipData]) -> dict[str, Any]:
    """Per dimension: share of clips within tolerance, mean / max error, the worst clips."""
    from streamprint.engine import dims

    out: dict[str, Any] = {}
    rows = [(c, clip_values(runner, c)) for c in clips]
    for dim in ("harmonic_ratio", "pitch_stability"):
        tol = dims.get(dim).tolerance
        errs = [(abs(v[dim][0] - v[dim][1]), c.name, v[dim]) for c, v in rows]
        within = sum(e <= tol for e, _, _ in errs) / len(errs)
        worst = sorted(errs, reverse=True)[:4]
        out[dim] = {"share_within": round(within, 4), "mean_abs_error": round(float(np.mean([e for e, _, _ in errs])), 4),
                    "max_abs_error": round(worst[0][0], 4),
                    "worst": [{"clip": n, "learned": round(v[0], 4), "dsp": round(v[1], 4)} for _, n, v in worst]}
    return out


# -- export --------------------------------------------------------------------------------


def build_onnx(w: dict[str, F32]) -> tuple[Any, Any]:
    """``(harmonic, pitch)`` ONNX models computing exactly :class:`NumpyHeads`."""
    import onnx
    from onnx import TensorProto, helper, numpy_helper

    def const(name: str, value: Any, dtype: Any = np.float32) -> Any:
        return numpy_helper.from_array(np.asarray(value, dtype=dtype), name)

    f32 = TensorProto.FLOAT

    def mlp(prefix: str, src: str) -> tuple[list[Any], list[Any]]:
        inits = [const(f"{prefix}_w1t", w[f"{prefix}_w1"].T), const(f"{prefix}_b1", w[f"{prefix}_b1"]),
                 const(f"{prefix}_w2t", w[f"{prefix}_w2"].T), const(f"{prefix}_b2", w[f"{prefix}_b2"]),
                 const(f"{prefix}_woutt", w[f"{prefix}_wout"].T), const(f"{prefix}_bout", w[f"{prefix}_bout"])]
        nodes = [helper.make_node("MatMul", [src, f"{prefix}_w1t"], ["m1"], name="fc1"),
                 helper.make_node("Add", ["m1", f"{prefix}_b1"], ["a1"], name="bias1"),
                 helper.make_node("Relu", ["a1"], ["h1"], name="relu1"),
                 helper.make_node("MatMul", ["h1", f"{prefix}_w2t"], ["m2"], name="fc2"),
                 helper.make_node("Add", ["m2", f"{prefix}_b2"], ["a2"], name="bias2"),
                 helper.make_node("Relu", ["a2"], ["h2"], name="relu2"),
                 helper.make_node("MatMul", ["h2", f"{prefix}_woutt"], ["m3"], name="fc3"),
                 helper.make_node("Add", ["m3", f"{prefix}_bout"], ["a3"], name="bias3")]
        return inits, nodes

    def model(nodes: list[Any], inits: list[Any], name: str, source: tuple[str, list[Any]], output: str,
              doc: str) -> Any:
        """A checked float32 graph: input ``source`` (name, shape) -> ``output`` ``[m, 2]``."""
        out = helper.make_model(
            helper.make_graph(
                nodes, name,
                [helper.make_tensor_value_info(source[0], f32, source[1])],
                [helper.make_tensor_value_info(output, f32, ["m", 2])], inits),
            opset_imports=[helper.make_opsetid("", OPSET)], producer_name=PRODUCER,
            producer_version=HEADS_VERSION, ir_version=IR_VERSION, doc_string=doc)
        onnx.checker.check_model(out, full_check=True)
        return out

    # harmonic: proxies [m, 64] -> standardise -> MLP -> sigmoid -> [m, 2]
    inits, body = mlp("h", "x")
    inits += [const("h_mean", w["h_mean"]), const("h_scale", w["h_scale"])]
    nodes = [helper.make_node("Sub", ["proxies", "h_mean"], ["c0"], name="center"),
             helper.make_node("Mul", ["c0", "h_scale"], ["x"], name="scale"),
             *body,
             helper.make_node("Sigmoid", ["a3"], ["energy_share"], name="sigmoid")]
    harmonic = model(nodes, inits, "harmonic_head", ("proxies", ["m", H.HARMONIC_FEATURES]), "energy_share",
                     "streamprint harmonic head: proxy fractions [m, 64] -> (E_h/E, E_p/E) [m, 2]")
    # pitch: x [m+1, F] -> standardise -> [x_t, x_{t-1}, |x_t - x_{t-1}|] -> MLP -> [m, 2]
    inits, body = mlp("p", "z")
    inits += [const("p_mean", w["p_mean"]), const("p_scale", w["p_scale"]),
              const("one", [1], np.int64), const("zero", [0], np.int64),
              const("minus1", [-1], np.int64), const("big", [1 << 62], np.int64)]
    nodes = [helper.make_node("Sub", ["frames", "p_mean"], ["c0"], name="center"),
             helper.make_node("Mul", ["c0", "p_scale"], ["x"], name="scale"),
             helper.make_node("Slice", ["x", "one", "big", "zero"], ["cur"], name="current"),
             helper.make_node("Slice", ["x", "zero", "minus1", "zero"], ["prev"], name="previous"),
             helper.make_node("Sub", ["cur", "prev"], ["diff"], name="diff"),
             helper.make_node("Abs", ["diff"], ["adiff"], name="absdiff"),
             helper.make_node("Concat", ["cur", "prev", "adiff"], ["z"], axis=1, name="pair"),
             *body,
             helper.make_node("Sigmoid", ["a3"], ["pitch_prob"], name="sigmoid")]
    pitch = model(nodes, inits, "pitch_head", ("frames", ["t", H.PITCH_FEATURES]), "pitch_prob",
                  f"streamprint pitch head: frame inputs [m+1, {H.PITCH_FEATURES}] (previous first) -> "
                  "(P(voiced pair), P(stable | voiced pair)) [m, 2]")
    return harmonic, pitch


def sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", type=Path, default=ROOT / "models" / "heads" / HEADS_VERSION)
    parser.add_argument("--cache", type=Path, default=ROOT / ".cache" / "heads-teacher")
    parser.add_argument("--epochs", type=int, default=40)
    parser.add_argument("--train-clips", type=int, default=TRAIN["clips"])
    parser.add_argument("--heldout-clips", type=int, default=HELDOUT["clips"])
    parser.add_argument("--no-gate", action="store_true", help="skip the full fingerprint gate (smoke tests)")
    parser.add_argument("--corpus-root", type=Path, default=ROOT,
                        help="directory the corpus paths (.cache/...) are relative to")
    parser.add_argument("--seconds", type=float, default=None,
                        help="clip duration of both corpora (smoke tests; default: 8-16 s and 20-30 s)")
    args = parser.parse_args(argv)

    import torch

    torch.manual_seed(SEED)
    torch.set_num_threads(1)
    torch.use_deterministic_algorithms(True)
    log: list[str] = []
    start = time.perf_counter()
    train_spec = {**TRAIN, "clips": args.train_clips}
    held_spec = {**HELDOUT, "clips": args.heldout_clips}
    if args.seconds is not None:
        train_spec["seconds"] = held_spec["seconds"] = args.seconds
    train = load_clips(train_spec, args.cache, args.corpus_root)
    held = load_clips(held_spec, args.cache, args.corpus_root)
    print(f"teacher data: {len(train)} train clips, {len(held)} held-out clips "
          f"in {time.perf_counter() - start:.0f} s", flush=True)
    weights = train_harmonic(train, args.epochs, log)
    weights.update(train_pitch(train, args.epochs, log))
    runner = H.NumpyHeads(H.HeadWeights(weights))
    train_eval = quick_eval(runner, train)
    held_eval = quick_eval(runner, held)
    print("train:", json.dumps(train_eval), "\nheld-out:", json.dumps(held_eval), flush=True)

    out = args.out
    out.mkdir(parents=True, exist_ok=True)
    npz = out / "heads.npz"
    with npz.open("wb") as fh:  # fixed member order, no timestamps: np.savez is deterministic
        np.savez(fh, **{k: weights[k] for k in sorted(weights)})
    harmonic, pitch = build_onnx(weights)
    (out / "harmonic.onnx").write_bytes(harmonic.SerializeToString(deterministic=True))
    (out / "pitch.onnx").write_bytes(pitch.SerializeToString(deterministic=True))
    files = {name: sha256(out / name) for name in ("heads.npz", "harmonic.onnx", "pitch.onnx")}
    manifest = build_manifest(files, weights, train_spec, held_spec, held_eval, log)
    (out / "manifest.json").write_text(json.dumps(manifest, indent=2, sort_keys=True) + "\n")
    if not args.no_gate:
        from heads_gate import measure

        measured = measure(out.parent.parent, held_spec)
        manifest.update(measured)
        (out / "manifest.json").write_text(json.dumps(manifest, indent=2, sort_keys=True) + "\n")
        print(json.dumps(measured["gate"], indent=1))
    print(f"wrote {out} in {time.perf_counter() - start:.0f} s")
    return 0


def build_manifest(files: dict[str, str], weights: dict[str, F32], train_spec: dict[str, Any],
                   held_spec: dict[str, Any], held_eval: dict[str, Any], log: list[str]) -> dict[str, Any]:
    params = {k: int(v.size) for k, v in weights.items() if not k.endswith(("_mean", "_scale"))}
    versions = {}
    for pkg in ("numpy", "torch", "onnx", "onnxruntime"):
        try:
            versions[pkg] = importlib.metadata.version(pkg)
        except importlib.metadata.PackageNotFoundError:
            continue

    def corpus(spec: dict[str, Any]) -> dict[str, Any]:
        return {"generator": "scripts/make_corpus.py build_corpus", "dir": spec["out"],
                "clips": spec["clips"], "seed": spec["seed"],
                "seconds": list(spec["seconds"]) if isinstance(spec["seconds"], tuple) else spec["seconds"]}

    return {
        "name": "heads", "version": HEADS_VERSION, "opset": OPSET, "ir_version": IR_VERSION,
        "description": "Learned heads replacing HPSS (harmonic share) and YIN (voiced / stable "
        "pairs); see server/streamprint/engine/heads.py and docs/fingerprint.md",
        "files": files,
        "inputs": [
            {"model": "harmonic.onnx", "name": "proxies", "dtype": "float32",
             "shape": ["m", H.HARMONIC_FEATURES],
             "unit": "per frame, fractions (0-1) of the frame power sum_f X^2 in 32 bands of 32 bins "
             "(bins 0..1023): sum m^2 X^2 then sum (1-m)^2 X^2, with the soft mask m = H^2/(H^2+P^2) "
             "of 31-point means of ln X over frames t-15..t+15 (H) and bins f-15..f+15 (P), "
             "reflected edges (server/streamprint/engine/heads.py harmonic_proxies)"},
            {"model": "pitch.onnx", "name": "frames", "dtype": "float32",
             "shape": ["m + 1", H.PITCH_FEATURES],
             "unit": "per frame, previous frame first: log magnitude of bins 1..128 minus its "
             "maximum (natural log, floored at -12), the windowed autocorrelation r(k)/r(0) at "
             "lags 10..338 max-pooled by 7 (47), its maximum, log2 of its argmax lag (samples, "
             "parabola-refined)"},
        ],
        "outputs": [
            {"model": "harmonic.onnx", "name": "energy_share", "dtype": "float32", "shape": ["m", 2],
             "unit": "fractions (0-1) of the frame power sum_f X^2: HPSS harmonic energy, percussive energy"},
            {"model": "pitch.onnx", "name": "pitch_prob", "dtype": "float32", "shape": ["m", 2],
             "unit": "probabilities: the pair (t-1, t) is voiced (YIN), the voiced pair moves < 50 cents"},
        ],
        "parameters": {"count": sum(params.values()), "per_tensor": params},
        "training": {"script": "scripts/train_heads.py", "corpus": corpus(train_spec),
                     "seed": SEED, "threads": 1, "log": log, "tool_versions": versions},
        "heldout": {"corpus": corpus(held_spec), "head_accuracy": held_eval},
        "gate_policy": {
            "required_share": 0.99,
            "rule": "every dimension of the 25D batch fingerprint with learned heads within its "
            "registry tolerance of the DSP fingerprint (HPSS + YIN) on at least 99 % of the "
            "held-out clips; --heads auto runs the learned heads only when this passed",
        },
    }


if __name__ == "__main__":
    sys.exit(main())
