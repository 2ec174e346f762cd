#!/usr/bin/env python3
"""Check the video confidences: of the updates that say p, about p must end within tolerance.

Generates a corpus of synthetic clips (raw RGB frames, 160x96 at 15 fps, 20-40 s: scenes of
sliding stripes, panned gradients, noise, flat colours and black, joined by hard cuts, some
with brightness drift), streams each through a :class:`VideoSession` with one update per
second, and compares every update's confidence with whether its value turned out within
the registry tolerance of the clip's final value. Prints a decile table (all dimensions
pooled) and per-dimension calibration errors, before (raw statistic) and after the fit.
``--write-factors`` fits ``k``, ``cap`` and the no-standard-error base rate per dimension on
the even clips (Brier score) and writes them into ``engine/video/calibration.py``; the
tables are computed on the odd clips. ``--write-docs`` replaces the ``video-confidence``
section of docs/benchmarks.md.
"""

from __future__ import annotations

import argparse
import itertools
import math
import sys
from pathlib import Path

import numpy as np
from numpy.typing import NDArray

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "server"))

from streamprint.engine import dims  # noqa: E402
from streamprint.engine.video import VideoSession, VideoSessionConfig  # noqa: E402

W, H, FPS = 160, 96, 15


def scene(rng: np.random.Generator, kind: str, n: int) -> NDArray[np.uint8]:
    """``n`` frames ``[n, H, W, 3]`` of one scene."""
    x = np.arange(W)[None, :, None]
    y = np.arange(H)[:, None, None]
    t = np.arange(n)[:, None, None, None]
    if kind == "black":
        return np.zeros((n, H, W, 3), np.uint8)
    if kind == "flat":
        return np.broadcast_to(rng.integers(0, 256, 3).astype(np.uint8), (n, H, W, 3)).copy()
    if kind == "noise":
        level = rng.uniform(5, 120)
        base = rng.uniform(40, 200)
        return np.clip(base + rng.normal(0, level, (n, H, W, 3)), 0, 255).astype(np.uint8)
    if kind == "stripes":
        period = int(rng.integers(6, 40))
        speed = rng.uniform(0, 8) * rng.choice([-1, 1])
        c1, c2 = rng.integers(0, 256, 3), rng.integers(0, 256, 3)
        on = (((x[None] + speed * t) // period) % 2).astype(np.float32)
        frames = c1 + on * (c2 - c1)
        return np.broadcast_to(frames, (n, H, W, 3)).astype(np.uint8)
    # gradient pan
    speed = rng.uniform(-4, 4)
    c = rng.uniform(0.3, 1.0, 3)
    g = 127.5 + 127.5 * np.sin((x[None] + y[None] * 0.5 + speed * t) / rng.uniform(8, 40))
    return np.broadcast_to(g * c, (n, H, W, 3)).astype(np.uint8)


def clip(rng: np.random.Generator) -> NDArray[np.uint8]:
    """A clip: 1-5 scenes (hard cuts between), optional brightness drift."""
    seconds = rng.uniform(20, 40)
    total = int(seconds * FPS)
    cuts = sorted(rng.choice(np.arange(FPS, total - FPS), size=int(rng.integers(0, 5)), replace=False))
    bounds = [0, *cuts, total]
    kinds = ["stripes", "gradient", "noise", "flat", "black"]
    parts = [
        scene(rng, str(rng.choice(kinds, p=[0.35, 0.3, 0.2, 0.1, 0.05])), b - a)
        for a, b in itertools.pairwise(bounds)
    ]
    frames = np.concatenate(parts)
    if rng.random() < 0.3:
        drift = np.linspace(1.0, rng.uniform(0.5, 1.5), total)[:, None, None, None]
        frames = np.clip(frames * drift, 0, 255).astype(np.uint8)
    return frames


def collect(clips: int, seed: int) -> dict[str, NDArray[np.float64]]:
    """Per (update, dimension): columns ``clip, tol, se, hit, stated`` keyed by dimension."""
    rng = np.random.default_rng(seed)
    rows: dict[str, list[tuple[float, float, float, float, float]]] = {n: [] for n in dims.VIDEO_13D}
    for c in range(clips):
        frames = clip(rng)
        session = VideoSession(VideoSessionConfig(update_interval_s=1.0))
        pending: list[tuple[dict[str, tuple[float, float]], dict[str, float]]] = []
        for start in range(0, frames.shape[0], FPS):
            block = frames[start : start + FPS]
            updates = session.push_rgb(block, [(start + i) / FPS for i in range(block.shape[0])])
            if updates:
                errors = session._features.values_and_errors(session.media_seconds)
                pending.append((errors, updates[-1].confidence))
        final = session.finish()
        for errors, stated in pending:
            for name in dims.VIDEO_13D:
                ref = final.values[name]
                value, se = errors[name]
                tol = dims.get(name).tolerance_for(value)
                hit = abs(value - ref) <= dims.get(name).tolerance_for(ref) + 1e-12
                rows[name].append((float(c), tol, se, float(hit), stated[name]))
    return {n: np.asarray(r, dtype=np.float64) for n, r in rows.items()}


def predict(tol: NDArray[np.float64], se: NDArray[np.float64], k: float, cap: float, undefined: float) -> NDArray[np.float64]:
    """``cap erf(tol / (sqrt 2 k se))``; ``undefined`` where ``se`` is infinite."""
    from scipy.special import erf

    finite = np.isfinite(se)
    out = np.full(tol.shape, undefined)
    with np.errstate(divide="ignore", invalid="ignore"):
        z = np.where(se[finite] > 0, tol[finite] / (np.sqrt(2.0) * k * np.maximum(se[finite], 1e-300)), np.inf)
    out[finite] = cap * erf(z)
    return out


def fit(data: NDArray[np.float64]) -> tuple[float, float, float]:
    """``(k, cap, undefined)`` minimising the Brier score on ``data``."""
    tol, se, hit = data[:, 1], data[:, 2], data[:, 3]
    finite = np.isfinite(se)
    undefined = float(hit[~finite].mean()) if (~finite).any() else 0.0
    best = (math.inf, 1.0, 1.0)
    for k in np.geomspace(0.1, 200.0, 60):
        for cap in np.linspace(0.3, 1.0, 36):
            p = predict(tol[finite], se[finite], float(k), float(cap), undefined)
            brier = float(np.mean((p - hit[finite]) ** 2))
            if brier < best[0]:
                best = (brier, float(k), float(cap))
    return best[1], best[2], undefined


def ece(c: NDArray[np.float64], h: NDArray[np.float64]) -> float:
    """Count-weighted mean |observed - stated| over confidence deciles."""
    bins = np.minimum((c * 10).astype(int), 9)
    return float(
        sum(abs(h[bins == b].mean() - c[bins == b].mean()) * (bins == b).sum() for b in range(10) if (bins == b).any())
        / max(1, len(c))
    )


def deciles(c: NDArray[np.float64], h: NDArray[np.float64]) -> list[str]:
    lines = ["| decile | updates | stated | observed | gap |", "|---|---:|---:|---:|---:|"]
    for k in range(10):
        lo, hi = k / 10, (k + 1) / 10
        m = (c >= lo) & ((c < hi) if k < 9 else (c <= hi))
        if m.any():
            lines.append(
                f"| {lo:.1f}-{hi:.1f} | {int(m.sum())} | {c[m].mean():.3f} | {h[m].mean():.3f} "
                f"| {h[m].mean() - c[m].mean():+.3f} |"
            )
    return lines


def write_factors(factors: dict[str, tuple[float, float, float]]) -> None:
    path = ROOT / "server" / "streamprint" / "engine" / "video" / "calibration.py"
    text = path.read_text()
    head, rest = text.split("# calibration:begin", 1)
    _, tail = rest.split("# calibration:end", 1)
    body = [
        "# calibration:begin (generated by scripts/check_video_confidence.py --write-factors; do not edit)",
        "INFLATION: dict[str, float] = {",
        *[f'    "{n}": {k:.4g},' for n, (k, _, _) in factors.items()],
        "}",
        "CAP: dict[str, float] = {",
        *[f'    "{n}": {cap:.4g},' for n, (_, cap, _) in factors.items()],
        "}",
        "UNDEFINED: dict[str, float] = {",
        *[f'    "{n}": {u:.4g},' for n, (_, _, u) in factors.items()],
        "}",
    ]
    path.write_text(head + "\n".join(body) + "\n# calibration:end" + tail)
    print(f"wrote {path}")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--clips", type=int, default=60)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--write-factors", action="store_true", help="fit on the train half, write calibration.py")
    parser.add_argument("--write-docs", action="store_true")
    args = parser.parse_args()
    data = collect(args.clips, args.seed)
    factors: dict[str, tuple[float, float, float]] = {}
    before_c, before_h, after_c, after_h = [], [], [], []
    per = [
        "| dimension | k | cap | no-se base rate | ECE before | ECE after |",
        "|---|---:|---:|---:|---:|---:|",
    ]
    for name in dims.VIDEO_13D:
        d = data[name]
        train, test = d[d[:, 0] % 2 == 0], d[d[:, 0] % 2 == 1]
        k, cap, undefined = fit(train)
        factors[name] = (k, cap, undefined)
        raw = predict(test[:, 1], test[:, 2], 1.0, 1.0, 0.0)
        fitted = predict(test[:, 1], test[:, 2], k, cap, undefined)
        before_c.append(raw)
        before_h.append(test[:, 3])
        after_c.append(fitted)
        after_h.append(test[:, 3])
        per.append(
            f"| {name} | {k:.3g} | {cap:.3f} | {undefined:.2f} | {ece(raw, test[:, 3]):.3f} | {ece(fitted, test[:, 3]):.3f} |"
        )
    bc, bh = np.concatenate(before_c), np.concatenate(before_h)
    ac, ah = np.concatenate(after_c), np.concatenate(after_h)
    lines = [
        "All dimensions pooled, TEST half (odd clips). Before: the raw statistic (k = 1, cap 1, "
        "0 before a standard error exists). After: fitted per dimension on the TRAIN half "
        "(even clips) by Brier score.",
        "",
        "Before:",
        "",
        *deciles(bc, bh),
        "",
        "After:",
        "",
        *deciles(ac, ah),
        "",
        f"Calibration error (count-weighted mean |gap|): before {ece(bc, bh):.3f}, after {ece(ac, ah):.3f}.",
        "",
        *per,
    ]
    text = "\n".join(lines)
    print(text)
    if args.write_factors:
        write_factors(factors)
    if args.write_docs:
        section = "\n".join([
            f"Command: `python scripts/check_video_confidence.py --clips {args.clips} --seed {args.seed} "
            "--write-factors --write-docs`",
            "",
            f"Corpus: {args.clips} synthetic raw clips (160x96, 15 fps, 20-40 s, 1-5 scenes of stripes, "
            "gradients, noise, flat colour or black joined by hard cuts, 30 % with brightness drift), "
            "one update per second. An update counts as within tolerance when its value is within "
            "the registry tolerance of the clip's final value. The fitted numbers live in "
            "`server/streamprint/engine/video/calibration.py`; like audio's they depend on the "
            "corpus (scene lengths, clip lengths).",
            "",
            text,
        ])
        from bench_engine import DOCS, write_doc_section

        write_doc_section("video-confidence", section, heading="Video confidence calibration")
        print(f"wrote {DOCS}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
