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
import math
import os
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")

import numpy as np  # noqa: E402
from numpy.typing import NDArray  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT / "server"), str(ROOT / "scripts")]

from make_corpus import build_corpus  # noqa: E402

from streamprint.engine import heads as H  # noqa: E402
from streamprint.engine.analysis import NumpyFrameAnalyzer  # noqa: E402
from streamprint.engine.decode import decode_file  # noqa: E402
from streamprint.engine.features import PITCH_STABLE_CENTS  # noqa: E402
from streamprint.engine.grid import Framer  # noqa: E402
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
    harmonic: F32  # [n, HARMONIC_FEATURES]
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


def teacher(path: Path, name: str, kind: str) -> ClipData:
    """Head inputs and DSP targets of one clip."""
    frames = clip_frames(path)
    analyzer = NumpyFrameAnalyzer()
    parts = [analyzer.analyze(frames[i : i + 430]) for i in range(0, frames.shape[0], 430)]
    mags = np.concatenate([p.magnitude for p in parts])
    mel = np.concatenate([p.mel_db for p in parts])
    rms = np.concatenate([p.rms for p in parts])
    f0 = np.concatenate([p.f0 for p in parts])
    voiced = np.concatenate([p.voiced for p in parts])
    hpss = HarmonicPercussive()
    h1, p1 = hpss.push(mags)
    h2, p2 = hpss.finish()
    inputs = H.frame_inputs(mags, mel, rms)
    voiced = voiced & inputs.loud
    prev_f0 = np.concatenate(([0.0], f0[:-1]))
    prev_v = np.concatenate(([False], voiced[:-1]))
    with np.errstate(divide="ignore", invalid="ignore"):
        cents = np.abs(1200.0 * np.log2(f0 / np.where(prev_f0 > 0, prev_f0, 1.0)))
    stable = voiced & prev_v & (cents < PITCH_STABLE_CENTS)
    return ClipData(
        name, kind, inputs.harmonic, inputs.pitch, inputs.energy, inputs.loud,
        np.concatenate((h1, h2)), np.concatenate((p1, p2)), voiced, stable,
    )


def load_clips(spec: dict[str, Any], cache: Path) -> list[ClipData]:
    """Build (or reuse) a corpus and its teacher data (cached as one .npz per clip)."""
    items = build_corpus(ROOT / spec["out"], spec["clips"], spec["seconds"], spec["seed"])
    cache.mkdir(parents=True, exist_ok=True)
    out = []
    for item in items:
        stem = cache / f"{Path(spec['out']).name}-{item.seed}-{item.file}.npz"
        if stem.exists():
            with np.load(stem) as z:
                clip = ClipData(item.file, item.kind, *(z[k] for k in (
                    "harmonic", "pitch", "energy", "loud", "e_h", "e_p", "voiced", "stable")))
        else:
            clip = teacher(item.path, item.file, item.kind)
            np.savez(stem, harmonic=clip.harmonic, pitch=clip.pitch, energy=clip.energy,
                     loud=clip.loud, e_h=clip.e_h, e_p=clip.e_p, voiced=clip.voiced, stable=clip.stable)
        out.append(clip)
    return out


# -- training ------------------------------------------------------------------------------


def _stats(x: F32) -> tuple[F32, F32]:
    mean = x.mean(axis=0).astype(np.float32)
    std = x.std(axis=0).astype(np.float32)
    return mean, (1.0 / np.maximum(std, 1e-3)).astype(np.float32)


def _padded(x: F32) -> F32:
    idx = np.arange(-H.HARMONIC_CONTEXT, x.shape[0] + H.HARMONIC_CONTEXT)
    return x[reflect_indices(idx, x.shape[0])]


def train_harmonic(clips: list[ClipData], epochs: int, log: list[str]) -> dict[str, F32]:
    import torch
    from torch import nn

    mean, scale = _stats(np.concatenate([c.harmonic for c in clips]))
    seg = 256
    xs, ys, ws = [], [], []
    for c in clips:
        if c.energy.sum() <= 0:
            continue
        x = (_padded(c.harmonic) - mean) * scale
        e = np.maximum(c.energy, 1e-30)
        target = np.stack((c.e_h / e, c.e_p / e), axis=1).astype(np.float32)
        w = (c.energy / c.energy.mean()).astype(np.float32)
        n = c.energy.shape[0]
        for s in range(0, n, seg):
            m = min(seg, n - s)
            xx = np.zeros((seg + 2 * H.HARMONIC_CONTEXT, x.shape[1]), np.float32)
            xx[: m + 2 * H.HARMONIC_CONTEXT] = x[s : s + m + 2 * H.HARMONIC_CONTEXT]
            yy = np.zeros((seg, 2), np.float32)
            yy[:m] = target[s : s + m]
            ww = np.zeros(seg, np.float32)
            ww[:m] = w[s : s + m]
            xs.append(xx)
            ys.append(yy)
            ws.append(ww)
    x_t = torch.from_numpy(np.stack(xs)).transpose(1, 2).contiguous()  # [B, F, seg+30]
    y_t = torch.from_numpy(np.stack(ys))  # [B, seg, 2]
    w_t = torch.from_numpy(np.stack(ws))  # [B, seg]

    layers: list[nn.Module] = [nn.Conv1d(H.HARMONIC_FEATURES, CHANNELS, 1), nn.ReLU()]
    for d in H.DILATIONS:
        layers += [nn.Conv1d(CHANNELS, CHANNELS, 3, dilation=d), nn.ReLU()]
    layers += [nn.Conv1d(CHANNELS, 2, 1)]
    net = nn.Sequential(*layers)
    opt = torch.optim.Adam(net.parameters(), lr=3e-3)
    sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, epochs)
    gen = torch.Generator().manual_seed(SEED)
    for epoch in range(epochs):
        order = torch.randperm(x_t.shape[0], generator=gen)
        total = 0.0
        for i in range(0, len(order), 32):
            b = order[i : i + 32]
            pred = torch.sigmoid(net(x_t[b])).transpose(1, 2)
            err = ((pred - y_t[b]) ** 2).sum(dim=2)
            loss = (err * (w_t[b] + 0.1 * (w_t[b] > 0))).mean()
            opt.zero_grad()
            loss.backward()
            opt.step()
            total += float(loss) * len(b)
        sched.step()
        if epoch % 5 == 0 or epoch == epochs - 1:
            log.append(f"harmonic epoch {epoch}: loss {total / x_t.shape[0]:.5f}")
            print(log[-1], flush=True)
    convs = [m for m in net if isinstance(m, nn.Conv1d)]
    out = {"h_mean": mean, "h_scale": scale,
           "h_w0": convs[0].weight.detach().numpy()[:, :, 0], "h_b0": convs[0].bias.detach().numpy()}
    for i, conv in enumerate(convs[1:-1], start=1):
        out[f"h_w{i}"] = conv.weight.detach().numpy()
        out[f"h_b{i}"] = conv.bias.detach().numpy()
    out["h_wout"] = convs[-1].weight.detach().numpy()[:, :, 0]
    out["h_bout"] = convs[-1].bias.detach().numpy()
    return {k: np.ascontiguousarray(v, dtype=np.float32) for k, v in out.items()}


def train_pitch(clips: list[ClipData], epochs: int, log: list[str]) -> dict[str, F32]:
    import torch
    from torch import nn

    mean, scale = _stats(np.concatenate([c.pitch[c.loud] for c in clips if c.loud.any()]))
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
    net = nn.Sequential(nn.Linear(3 * H.PITCH_FEATURES, HIDDEN), nn.ReLU(),
                        nn.Linear(HIDDEN, HIDDEN), nn.ReLU(), nn.Linear(HIDDEN, 2))
    opt = torch.optim.Adam(net.parameters(), lr=2e-3, weight_decay=1e-5)
    sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, epochs)
    bce = nn.BCEWithLogitsLoss(reduction="none")
    gen = torch.Generator().manual_seed(SEED + 1)
    for epoch in range(epochs):
        order = torch.randperm(z.shape[0], generator=gen)
        total = 0.0
        for i in range(0, len(order), 512):
            b = order[i : i + 512]
            logits = net(z[b])
            l_pair = bce(logits[:, 0], yp[b]).mean()
            l_stable = (bce(logits[:, 1], ys[b]) * yp[b]).sum() / yp[b].sum().clamp(min=1.0)
            loss = l_pair + l_stable
            opt.zero_grad()
            loss.backward()
            opt.step()
            total += float(loss) * len(b)
        sched.step()
        if epoch % 5 == 0 or epoch == epochs - 1:
            log.append(f"pitch epoch {epoch}: loss {total / z.shape[0]:.5f}")
            print(log[-1], flush=True)
    lin = [m for m in net if isinstance(m, nn.Linear)]
    out = {"p_mean": mean, "p_scale": scale,
           "p_w1": lin[0].weight.detach().numpy(), "p_b1": lin[0].bias.detach().numpy(),
           "p_w2": lin[1].weight.detach().numpy(), "p_b2": lin[1].bias.detach().numpy(),
           "p_wout": lin[2].weight.detach().numpy(), "p_bout": lin[2].bias.detach().numpy()}
    return {k: np.ascontiguousarray(v, dtype=np.float32) for k, v in out.items()}


# -- evaluation ----------------------------------------------------------------------------


def clip_values(runner: H.HeadsRunner, c: ClipData) -> dict[str, tuple[float, float]]:
    """``{dim: (learned, dsp)}`` for harmonic_ratio and pitch_stability of one clip, through the
    streaming head accumulators (so edges and pairing are exactly the runtime's)."""
    harm = H.LearnedHarmonic(runner)
    pit = H.LearnedPitch(runner)
    hs, ts, ss, ps = [], [], [], []
    for i in range(0, c.energy.shape[0], 43):
        sl = slice(i, i + 43)
        h, t = harm.push(c.harmonic[sl], c.energy[sl])
        s, p = pit.push(c.pitch[sl], c.loud[sl])
        hs.append(h)
        ts.append(t)
        ss.append(s)
        ps.append(p)
    h, t = harm.finish()
    hs.append(h)
    ts.append(t)
    tot = float(np.concatenate(ts).sum())
    ref_tot = float((c.e_h + c.e_p).sum())
    pair_sum = float(np.concatenate(ps).sum())
    ref_pairs = float(c.pair.sum())
    return {
        "harmonic_ratio": (float(np.concatenate(hs).sum()) / tot if tot > 0 else 0.0,
                           float(c.e_h.sum()) / ref_tot if ref_tot > 0 else 0.0),
        "pitch_stability": (float(np.concatenate(ss).sum()) / pair_sum if pair_sum > 1e-9 else 0.0,
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
    # harmonic: x [T, F] -> standardise -> [1, F, T] -> convs -> [T-30, 2]
    inits = [const("h_mean", w["h_mean"]), const("h_scale", w["h_scale"]),
             const("h_w0", w["h_w0"][:, :, None]), const("h_b0", w["h_b0"]),
             const("h_wout", w["h_wout"][:, :, None]), const("h_bout", w["h_bout"]),
             const("axes0", [0], np.int64)]
    nodes = [helper.make_node("Sub", ["features", "h_mean"], ["c0"], name="center"),
             helper.make_node("Mul", ["c0", "h_scale"], ["s0"], name="scale"),
             helper.make_node("Transpose", ["s0"], ["t0"], perm=[1, 0], name="to_channels"),
             helper.make_node("Unsqueeze", ["t0", "axes0"], ["x0"], name="batch"),
             helper.make_node("Conv", ["x0", "h_w0", "h_b0"], ["y0"], kernel_shape=[1], name="proj"),
             helper.make_node("Relu", ["y0"], ["r0"], name="relu0")]
    prev = "r0"
    for i, d in enumerate(H.DILATIONS, start=1):
        inits += [const(f"h_w{i}", w[f"h_w{i}"]), const(f"h_b{i}", w[f"h_b{i}"])]
        nodes += [helper.make_node("Conv", [prev, f"h_w{i}", f"h_b{i}"], [f"y{i}"], kernel_shape=[3],
                                   dilations=[d], name=f"time{i}"),
                  helper.make_node("Relu", [f"y{i}"], [f"r{i}"], name=f"relu{i}")]
        prev = f"r{i}"
    nodes += [helper.make_node("Conv", [prev, "h_wout", "h_bout"], ["yo"], kernel_shape=[1], name="out"),
              helper.make_node("Sigmoid", ["yo"], ["so"], name="sigmoid"),
              helper.make_node("Squeeze", ["so", "axes0"], ["sq"], name="unbatch"),
              helper.make_node("Transpose", ["sq"], ["energy_share"], perm=[1, 0], name="to_frames")]
    harmonic = helper.make_model(
        helper.make_graph(
            nodes, "harmonic_head",
            [helper.make_tensor_value_info("features", f32, ["t", H.HARMONIC_FEATURES])],
            [helper.make_tensor_value_info("energy_share", f32, ["m", 2])], inits),
        opset_imports=[helper.make_opsetid("", OPSET)], producer_name=PRODUCER,
        producer_version=HEADS_VERSION, ir_version=IR_VERSION,
        doc_string="streamprint harmonic head: frame inputs [m+30, 160] -> (E_h/E, E_p/E) [m, 2]")
    onnx.checker.check_model(harmonic, full_check=True)
    # pitch: x [m+1, F] -> standardise -> [x_t, x_{t-1}, |x_t - x_{t-1}|] -> MLP -> [m, 2]
    inits = [const("p_mean", w["p_mean"]), const("p_scale", w["p_scale"]),
             const("p_w1t", w["p_w1"].T), const("p_b1", w["p_b1"]),
             const("p_w2t", w["p_w2"].T), const("p_b2", w["p_b2"]),
             const("p_woutt", w["p_wout"].T), const("p_bout", w["p_bout"]),
             const("one", [1], np.int64), const("zero", [0], np.int64),
             const("minus1", [-1], np.int64), const("big", [1 << 62], np.int64)]
    nodes = [helper.make_node("Sub", ["frames", "p_mean"], ["c0"], name="center"),
             helper.make_node("Mul", ["c0", "p_scale"], ["x"], name="scale"),
             helper.make_node("Slice", ["x", "one", "big", "zero"], ["cur"], name="current"),
             helper.make_node("Slice", ["x", "zero", "minus1", "zero"], ["prev"], name="previous"),
             helper.make_node("Sub", ["cur", "prev"], ["diff"], name="diff"),
             helper.make_node("Abs", ["diff"], ["adiff"], name="absdiff"),
             helper.make_node("Concat", ["cur", "prev", "adiff"], ["z"], axis=1, name="pair"),
             helper.make_node("MatMul", ["z", "p_w1t"], ["m1"], name="fc1"),
             helper.make_node("Add", ["m1", "p_b1"], ["a1"], name="bias1"),
             helper.make_node("Relu", ["a1"], ["h1"], name="relu1"),
             helper.make_node("MatMul", ["h1", "p_w2t"], ["m2"], name="fc2"),
             helper.make_node("Add", ["m2", "p_b2"], ["a2"], name="bias2"),
             helper.make_node("Relu", ["a2"], ["h2"], name="relu2"),
             helper.make_node("MatMul", ["h2", "p_woutt"], ["m3"], name="fc3"),
             helper.make_node("Add", ["m3", "p_bout"], ["a3"], name="bias3"),
             helper.make_node("Sigmoid", ["a3"], ["pitch_prob"], name="sigmoid")]
    pitch = helper.make_model(
        helper.make_graph(
            nodes, "pitch_head",
            [helper.make_tensor_value_info("frames", f32, ["t", H.PITCH_FEATURES])],
            [helper.make_tensor_value_info("pitch_prob", f32, ["m", 2])], inits),
        opset_imports=[helper.make_opsetid("", OPSET)], producer_name=PRODUCER,
        producer_version=HEADS_VERSION, ir_version=IR_VERSION,
        doc_string="streamprint pitch head: frame inputs [m+1, 177] (previous first) -> "
        "(P(voiced pair), P(stable | voiced pair)) [m, 2]")
    onnx.checker.check_model(pitch, full_check=True)
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
    args = parser.parse_args(argv)

    import torch

    torch.manual_seed(SEED)
    torch.set_num_threads(1)
    torch.use_deterministic_algorithms(True)
    log: list[str] = []
    start = time.perf_counter()
    train_spec = {**TRAIN, "clips": args.train_clips}
    held_spec = {**HELDOUT, "clips": args.heldout_clips}
    train = load_clips(train_spec, args.cache)
    held = load_clips(held_spec, args.cache)
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
                "clips": spec["clips"], "seconds": list(spec["seconds"]), "seed": spec["seed"]}

    return {
        "name": "heads", "version": HEADS_VERSION, "opset": OPSET, "ir_version": IR_VERSION,
        "description": "Learned heads replacing HPSS (harmonic share) and YIN (voiced / stable "
        "pairs); see server/streamprint/engine/heads.py and docs/fingerprint.md",
        "files": files,
        "inputs": [
            {"model": "harmonic.onnx", "name": "features", "dtype": "float32",
             "shape": ["m + 30", H.HARMONIC_FEATURES],
             "unit": "per frame t-15..t+15 (reflected edges): mel dB (128 bands, floored at -50 dB) "
             "then the natural-log flatness (log of geometric / arithmetic mean power) of 32 "
             "bands of 32 bins (bins 1..1024)"},
            {"model": "pitch.onnx", "name": "frames", "dtype": "float32",
             "shape": ["m + 1", H.PITCH_FEATURES],
             "unit": "per frame, previous frame first: log magnitude of bins 1..128 minus its "
             "maximum (natural log, floored at -12), the windowed autocorrelation r(k)/r(0) at "
             "lags 10..338 max-pooled by 7 (47), its maximum, its argmax lag / 338"},
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
