"""Measure and fit the calibration of the engine's confidences over a generated corpus.

A confidence is the probability that a dimension's current value is already within the
dimension's tolerance of the final value. This script checks that claim:

1. Build (or reuse) a corpus with ``make_corpus.build_corpus`` (default 120 clips of
   20-30 s, seed 0, plus the 12 ``midi`` clips corpus generator version 2 appends) and
   split it in two halves, TRAIN and TEST, alternating within each kind of clip.
2. Stream every clip through an :class:`AudioSession` with all 25 dimensions (the 13
   streamed ones plus the batch-only ones), 100 ms chunks, one update per second of
   media. For every update and dimension record the value, whether it is within
   ``dims.get(name).tolerance_for(final)`` of the clip's final value, and the evidence
   behind its confidence: ``z = tol / (sqrt(2) se)`` for standard-error dimensions
   (recovered exactly by running the session with a huge known inflation and inverting
   ``erf``), and ``(bpm, strength, beats)`` for tempo. The final update itself is not
   counted.
3. FIT on TRAIN, per dimension: ``k`` (inflation of the standard error) and ``cap`` (the
   largest confidence the dimension may state) minimising the Brier score of
   ``cap * erf(z / k)``, and the base rate for updates without a standard error yet;
   for tempo a logistic curve in ``(strength, ln(1 + beats))`` and a base rate for "no
   pulse". The Brier score is a proper scoring rule: within a model family its minimum
   is the best-calibrated member, and unlike the binned error it is smooth in the
   parameters.
4. Report on TEST, per confidence decile (0-0.1, ..., 0.9-1.0): count, mean stated
   confidence, observed share within tolerance and the gap, overall and per dimension,
   for the uncalibrated statistic (what the engine states with ``k = 1``, 0 without a
   standard error, the old tempo formula) and for the fitted calibration (evaluated with
   the real :func:`confidence.calibrated` / :func:`confidence.tempo_confidence`). The
   DESIGN target: every decile's observed share within 0.1 of its stated confidence.

Usage::

    python scripts/calibrate_confidence.py [--clips 120] [--seconds 20-30] [--seed 0]
        [--jobs N] [--json] [--write-docs] [--write-factors]

``--write-factors`` stores the fitted numbers in server/streamprint/engine/confidence.py
(between its ``calibration:begin`` / ``calibration:end`` comments); ``--write-docs``
rewrites the "Confidence calibration" section of docs/benchmarks.md.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import math
import os
import re
import sys
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from unittest import mock

import numpy as np
import soundfile as sf
from numpy.typing import NDArray
from scipy.special import erf, erfinv

sys.path.insert(0, str(Path(__file__).resolve().parent))

from bench_engine import machine_info, machine_line, write_doc_section
from make_corpus import CorpusItem, build_corpus, parse_seconds

from streamprint.engine import confidence, dims
from streamprint.engine.session import AudioSession, SessionConfig

F64 = NDArray[np.float64]
ROOT = Path(__file__).resolve().parent.parent
CONFIDENCE_PY = ROOT / "server" / "streamprint" / "engine" / "confidence.py"
DEFAULT_CORPUS = ROOT / ".cache" / "corpus-calibration"
SECTION = "confidence-calibration"
DIMENSIONS: tuple[str, ...] = dims.AUDIO_25D
TEMPO = "tempo_bpm"
#: Inflation used while collecting: confidences stay far from 1, so erf can be inverted.
COLLECT_INFLATION = 1e4
CHUNK_SECONDS = 0.1
UPDATE_SECONDS = 1.0
#: Deciles with fewer updates than this are left out of the "max gap".
MIN_BIN_COUNT = 20
#: Inflations tried. Below 0.2 a standard error would be overstated five-fold: the fit then
#: says the standard error carries no information, and we keep it from saying so.
_K_GRID = np.geomspace(0.2, 20.0, 185)


# --------------------------------------------------------------------------------------
# Records
# --------------------------------------------------------------------------------------


@dataclass
class Records:
    """One row per (update, dimension); every array has the same length ``n``.

    ``clip`` indexes ``files``/``kinds``; ``dim`` indexes :data:`DIMENSIONS`; ``t`` is the
    update's media time (s); ``value``/``final`` in the dimension's unit; ``within`` is
    the outcome; ``z = tol / (sqrt(2) se)`` (``inf``: zero standard error, ``0``: none
    yet); ``bpm``/``strength``/``beats`` are the tempo evidence of the update.
    """

    files: list[str]
    kinds: list[str]
    clip: NDArray[np.int64]
    dim: NDArray[np.int64]
    t: F64
    value: F64
    final: F64
    within: NDArray[np.bool_]
    z: F64
    bpm: F64
    strength: F64
    beats: F64

    @staticmethod
    def concat(parts: Sequence[Records]) -> Records:
        """Join the records of several clips (``clip`` indices renumbered)."""
        files: list[str] = []
        kinds: list[str] = []
        arrays: dict[str, list[NDArray[Any]]] = {k: [] for k in _ARRAYS}
        for part in parts:
            offset = len(files)
            files += part.files
            kinds += part.kinds
            for key in _ARRAYS:
                column = getattr(part, key)
                arrays[key].append(column + offset if key == "clip" else column)
        joined: dict[str, Any] = {k: np.concatenate(v) if v else np.zeros(0) for k, v in arrays.items()}
        return Records(files, kinds, **joined)

    def select(self, mask: NDArray[np.bool_]) -> Records:
        """The rows where ``mask`` is true (clip list unchanged)."""
        return Records(self.files, self.kinds, **{k: getattr(self, k)[mask] for k in _ARRAYS})

    def __len__(self) -> int:
        return int(self.clip.shape[0])


_ARRAYS = ("clip", "dim", "t", "value", "final", "within", "z", "bpm", "strength", "beats")


@contextlib.contextmanager
def raw_confidences() -> Iterator[None]:
    """Make the engine state ``erf(z / COLLECT_INFLATION)`` for every standard-error dimension.

    Works for call sites using either :func:`confidence.within_tolerance` (no explicit
    inflation) or :func:`confidence.calibrated`: no cap, base rate 0 without a standard
    error, so :func:`z_from_confidence` recovers ``z`` exactly.
    """
    k = COLLECT_INFLATION
    with contextlib.ExitStack() as stack:
        for name, value in (
            ("INFLATION", k), ("INFLATION_BY_DIMENSION", {}), ("DEFAULT_INFLATION", k),
            ("CAP_BY_DIMENSION", {}), ("DEFAULT_CAP", 1.0),
            ("UNDEFINED_BY_DIMENSION", {}), ("DEFAULT_UNDEFINED", 0.0),
        ):
            stack.enter_context(mock.patch.object(confidence, name, value))
        yield


def z_from_confidence(c: F64) -> F64:
    """Invert a confidence stated under :func:`raw_confidences` into ``z = tol / (sqrt(2) se)``."""
    c = np.asarray(c, dtype=np.float64)
    z = COLLECT_INFLATION * erfinv(np.clip(c, 0.0, 1.0))
    z = np.where(c >= 1.0, np.inf, z)
    return np.where(c <= 0.0, 0.0, z)


def tempo_evidence(session: AudioSession) -> tuple[float, float, float]:
    """``(bpm, strength, beats)`` behind the session's current tempo confidence.

    beats = frames seen / frame rate x bpm / 60, as the engine computes them.
    """
    bpm, strength, beats = session.tempo_evidence()
    return float(bpm), float(strength), float(beats)


def _read(item: CorpusItem) -> tuple[NDArray[np.float32], int]:
    samples, rate = sf.read(item.path, dtype="float32", always_2d=True)
    return samples, int(rate)


def _stream(samples: NDArray[np.float32], rate: int, *, raw: bool) -> tuple[list[Any], Any, list[tuple[float, float, float]]]:
    """Updates, final fingerprint and per-update tempo evidence of one clip."""
    context = raw_confidences() if raw else contextlib.nullcontext()
    evidence: list[tuple[float, float, float]] = []
    updates: list[Any] = []
    with context:
        session = AudioSession(SessionConfig(rate, samples.shape[1], DIMENSIONS, UPDATE_SECONDS))
        chunk = max(1, round(CHUNK_SECONDS * rate))
        for start in range(0, samples.shape[0], chunk):
            for update in session.push(samples[start : start + chunk]):
                updates.append(update)
                evidence.append(tempo_evidence(session))
        final = session.finish()
    return updates, final, evidence


def collect_clip(item: CorpusItem) -> Records:
    """Records of one clip (see :class:`Records`)."""
    samples, rate = _read(item)
    updates, final, evidence = _stream(samples, rate, raw=True)
    n_u, n_d = len(updates), len(DIMENSIONS)
    value = np.array([[u.values[d] for d in DIMENSIONS] for u in updates]).reshape(n_u, n_d)
    stated = np.array([[u.confidence[d] for d in DIMENSIONS] for u in updates]).reshape(n_u, n_d)
    fin = np.array([final.values[d] for d in DIMENSIONS])
    tol = np.array([dims.get(d).tolerance_for(final.values[d]) for d in DIMENSIONS])
    within = np.abs(value - fin) <= tol
    ev = np.array(evidence, dtype=np.float64).reshape(n_u, 3)
    t = np.array([u.media_seconds for u in updates])
    return Records(
        files=[item.file], kinds=[item.kind],
        clip=np.zeros(n_u * n_d, dtype=np.int64),
        dim=np.tile(np.arange(n_d), n_u),
        t=np.repeat(t, n_d), value=value.ravel(), final=np.tile(fin, n_u),
        within=within.ravel(), z=z_from_confidence(stated.ravel()),
        bpm=np.repeat(ev[:, 0], n_d), strength=np.repeat(ev[:, 1], n_d), beats=np.repeat(ev[:, 2], n_d),
    )


def _init_worker() -> None:
    with contextlib.suppress(ImportError):
        from threadpoolctl import threadpool_limits

        threadpool_limits(1)


def collect(items: Sequence[CorpusItem], *, jobs: int = 1) -> Records:
    """Records of every clip, in corpus order (``jobs`` worker processes)."""
    if jobs <= 1 or len(items) <= 1:
        return Records.concat([collect_clip(item) for item in items])
    import multiprocessing

    with multiprocessing.get_context("fork").Pool(jobs, initializer=_init_worker) as pool:
        return Records.concat(pool.map(collect_clip, items, chunksize=1))


def split_by_kind(kinds: Sequence[str]) -> NDArray[np.bool_]:
    """``True`` for TRAIN clips: alternate clips of each kind, in order, starting with TRAIN."""
    seen: dict[str, int] = {}
    train = np.zeros(len(kinds), dtype=bool)
    for i, kind in enumerate(kinds):
        train[i] = seen.get(kind, 0) % 2 == 0
        seen[kind] = seen.get(kind, 0) + 1
    return train


# --------------------------------------------------------------------------------------
# Calibration models
# --------------------------------------------------------------------------------------


@dataclass
class Calibration:
    """The fitted numbers that :mod:`streamprint.engine.confidence` holds."""

    inflation: dict[str, float] = field(default_factory=dict)
    cap: dict[str, float] = field(default_factory=dict)
    undefined: dict[str, float] = field(default_factory=dict)
    default_inflation: float = 1.0
    default_cap: float = 1.0
    default_undefined: float = 0.0
    tempo_w: tuple[float, float, float] = (-2.0, 4.0, 0.5)
    tempo_no_pulse: float = 0.0

    @staticmethod
    def current() -> Calibration:
        """The numbers :mod:`confidence` holds now."""
        c = confidence
        return Calibration(
            dict(c.INFLATION_BY_DIMENSION), dict(c.CAP_BY_DIMENSION), dict(c.UNDEFINED_BY_DIMENSION),
            c.DEFAULT_INFLATION, c.DEFAULT_CAP, c.DEFAULT_UNDEFINED,
            (c.TEMPO_W0, c.TEMPO_W_STRENGTH, c.TEMPO_W_BEATS), c.TEMPO_NO_PULSE,
        )

    @contextlib.contextmanager
    def applied(self) -> Iterator[None]:
        """Temporarily install these numbers in :mod:`confidence`."""
        values = {
            "INFLATION_BY_DIMENSION": self.inflation, "CAP_BY_DIMENSION": self.cap,
            "UNDEFINED_BY_DIMENSION": self.undefined, "DEFAULT_INFLATION": self.default_inflation,
            "DEFAULT_CAP": self.default_cap, "DEFAULT_UNDEFINED": self.default_undefined,
            "TEMPO_W0": self.tempo_w[0], "TEMPO_W_STRENGTH": self.tempo_w[1],
            "TEMPO_W_BEATS": self.tempo_w[2], "TEMPO_NO_PULSE": self.tempo_no_pulse,
        }
        with contextlib.ExitStack() as stack:
            for name, value in values.items():
                stack.enter_context(mock.patch.object(confidence, name, value))
            yield

    def to_json(self) -> dict[str, Any]:
        """JSON-ready numbers."""
        return {
            "inflation": self.inflation, "cap": self.cap, "undefined": self.undefined,
            "tempo": {"w0": self.tempo_w[0], "w_strength": self.tempo_w[1], "w_beats": self.tempo_w[2],
                      "no_pulse": self.tempo_no_pulse},
        }


def legacy_confidences(rec: Records) -> F64:
    """What the uncalibrated engine states: ``erf(z)`` (0 without a standard error), and
    ``strength * (1 - exp(-beats / 8))`` for tempo (0 without a pulse)."""
    p = np.where(np.isinf(rec.z), 1.0, erf(np.where(np.isinf(rec.z), 0.0, rec.z)))
    tempo = np.where(rec.bpm > 0, np.clip(rec.strength, 0.0, 1.0) * (1.0 - np.exp(-rec.beats / 8.0)), 0.0)
    out: F64 = np.where(rec.dim == DIMENSIONS.index(TEMPO), tempo, p)
    return out


def calibrated_confidences(rec: Records, cal: Calibration) -> F64:
    """Confidences under ``cal``, computed by the engine's own functions, one row at a time."""
    out = np.empty(len(rec))
    tempo_index = DIMENSIONS.index(TEMPO)
    with cal.applied():
        for i in range(len(rec)):
            d = int(rec.dim[i])
            if d == tempo_index:
                out[i] = confidence.tempo_confidence(rec.bpm[i], rec.strength[i], rec.beats[i])
                continue
            z = rec.z[i]
            if z == 0.0:
                out[i] = confidence.calibrated(DIMENSIONS[d], 1.0, math.inf)
            elif math.isinf(z):
                out[i] = confidence.calibrated(DIMENSIONS[d], 1.0, 0.0)
            else:
                out[i] = confidence.calibrated(DIMENSIONS[d], math.sqrt(2.0) * z, 1.0)
    return out


def _erf_of(z: F64, k: float) -> F64:
    finite = np.where(np.isinf(z), 0.0, z)
    result: F64 = np.where(np.isinf(z), 1.0, erf(finite / k))
    return result


def fit_dimension(z: F64, within: NDArray[np.bool_]) -> tuple[float, float, float | None]:
    """``(k, cap, base rate)`` for one standard-error dimension from TRAIN rows.

    Rows with ``z == 0`` (no standard error yet) give the base rate (``None`` if there are
    none); the others give ``k`` on a log grid (0.2-20) and, for each ``k``, the cap that
    minimises the Brier score in closed form (``sum(w e) / sum(e^2)``, clipped to [0, 1]).
    """
    w = within.astype(np.float64)
    undefined = z == 0.0
    base = float(w[undefined].mean()) if undefined.any() else None
    zd, wd = z[~undefined], w[~undefined]
    if zd.size == 0:
        return 1.0, 1.0, base
    best = (math.inf, 1.0, 1.0)
    for k in _K_GRID:
        e = _erf_of(zd, float(k))
        cap = float(np.clip((e * wd).sum() / max(float((e * e).sum()), 1e-300), 0.0, 1.0))
        score = float(np.mean((cap * e - wd) ** 2))
        if score < best[0] - 1e-12:
            best = (score, float(k), cap)
    return best[1], best[2], base


def _tempo_features(strength: F64, beats: F64) -> F64:
    return np.stack((np.ones_like(strength), np.clip(strength, 0.0, 1.0), np.log1p(np.maximum(beats, 0.0))), axis=1)


def fit_logistic(x: F64, y: NDArray[np.bool_], *, ridge: float = 1e-4, iterations: int = 50) -> F64:
    """Weights of ``P(y) = 1 / (1 + exp(-x @ w))`` by Newton's method (tiny ridge, no penalty on w0)."""
    w = np.zeros(x.shape[1])
    yf = y.astype(np.float64)
    penalty = np.full(x.shape[1], ridge)
    penalty[0] = 0.0
    for _ in range(iterations):
        p = 1.0 / (1.0 + np.exp(-(x @ w)))
        grad = x.T @ (p - yf) / len(yf) + penalty * w
        hess = (x * (p * (1.0 - p))[:, None]).T @ x / len(yf) + np.diag(penalty + 1e-9)
        step = np.linalg.solve(hess, grad)
        w -= step
        if float(np.abs(step).max()) < 1e-9:
            break
    return w


def fit(rec: Records) -> Calibration:
    """Fit every dimension on ``rec`` (the TRAIN rows)."""
    cal = Calibration()
    bases: list[float] = []
    for d, name in enumerate(DIMENSIONS):
        rows = rec.dim == d
        if name == TEMPO or not rows.any():
            continue
        k, cap, base = fit_dimension(rec.z[rows], rec.within[rows])
        cal.inflation[name] = round(k, 4)
        cal.cap[name] = round(cap, 4)
        if base is not None:
            cal.undefined[name] = round(base, 4)
            bases.append(base)
    for name in cal.inflation:
        cal.undefined.setdefault(name, round(float(np.mean(bases)) if bases else 0.0, 4))
    tempo = rec.dim == DIMENSIONS.index(TEMPO)
    pulse = tempo & (rec.bpm > 0)
    if pulse.sum() >= 10 and 0 < rec.within[pulse].mean() < 1:
        w = fit_logistic(_tempo_features(rec.strength[pulse], rec.beats[pulse]), rec.within[pulse])
        cal.tempo_w = (round(float(w[0]), 4), round(float(w[1]), 4), round(float(w[2]), 4))
    no_pulse = tempo & (rec.bpm <= 0)
    if no_pulse.any():
        cal.tempo_no_pulse = round(float(rec.within[no_pulse].mean()), 4)
    return cal


# --------------------------------------------------------------------------------------
# Tables
# --------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Bin:
    """One confidence decile: ``[low, high)`` (the last includes 1.0)."""

    low: float
    high: float
    count: int
    stated: float
    observed: float

    @property
    def gap(self) -> float:
        """Observed share minus mean stated confidence."""
        return self.observed - self.stated


def decile_table(stated: F64, within: NDArray[np.bool_]) -> list[Bin]:
    """The ten deciles of ``stated`` with their counts, mean stated and observed shares."""
    index = np.minimum((np.clip(stated, 0.0, 1.0) * 10).astype(np.int64), 9)
    table = []
    for i in range(10):
        m = index == i
        n = int(m.sum())
        table.append(Bin(i / 10, (i + 1) / 10, n, float(stated[m].mean()) if n else math.nan,
                         float(within[m].mean()) if n else math.nan))
    return table


def calibration_error(table: Sequence[Bin], *, min_count: int = MIN_BIN_COUNT) -> tuple[float, float]:
    """``(ece, max_gap)``: count-weighted mean |gap|, and the largest |gap| of deciles with
    at least ``min_count`` updates (0 if none)."""
    total = sum(b.count for b in table)
    if total == 0:
        return 0.0, 0.0
    ece = sum(b.count * abs(b.gap) for b in table if b.count) / total
    gaps = [abs(b.gap) for b in table if b.count >= min_count]
    return float(ece), float(max(gaps, default=0.0))


def _table_json(table: Sequence[Bin]) -> list[dict[str, Any]]:
    return [{"decile": f"{b.low:.1f}-{b.high:.1f}", "count": b.count,
             "stated": None if b.count == 0 else round(b.stated, 4),
             "observed": None if b.count == 0 else round(b.observed, 4),
             "gap": None if b.count == 0 else round(b.gap, 4)} for b in table]


def evaluate(rec: Records, stated: F64) -> dict[str, Any]:
    """Overall and per-dimension tables and errors of ``stated`` on ``rec``."""
    overall = decile_table(stated, rec.within)
    ece, gap = calibration_error(overall)
    per_dim: dict[str, Any] = {}
    for d, name in enumerate(DIMENSIONS):
        m = rec.dim == d
        if not m.any():
            continue
        table = decile_table(stated[m], rec.within[m])
        e, g = calibration_error(table)
        per_dim[name] = {"ece": e, "max_gap": g, "table": table}
    per_kind: dict[str, Any] = {}
    kinds = np.array(rec.kinds)[rec.clip] if len(rec) else np.zeros(0, dtype=str)
    for kind in sorted(set(kinds.tolist())):
        m = kinds == kind
        e, g = calibration_error(decile_table(stated[m], rec.within[m]))
        per_kind[kind] = {"updates": int(m.sum()), "ece": e, "max_gap": g,
                          "stated": float(stated[m].mean()), "observed": float(rec.within[m].mean())}
    return {"table": overall, "ece": ece, "max_gap": gap, "per_dimension": per_dim, "per_kind": per_kind}


def _evaluation_json(ev: dict[str, Any]) -> dict[str, Any]:
    return {
        "ece": round(ev["ece"], 4), "max_gap": round(ev["max_gap"], 4), "table": _table_json(ev["table"]),
        "per_dimension": {n: {"ece": round(v["ece"], 4), "max_gap": round(v["max_gap"], 4),
                              "table": _table_json(v["table"])} for n, v in ev["per_dimension"].items()},
        "per_kind": {k: {kk: round(vv, 4) if isinstance(vv, float) else vv for kk, vv in v.items()}
                     for k, v in ev["per_kind"].items()},
    }


# --------------------------------------------------------------------------------------
# Engine check, factors file, docs
# --------------------------------------------------------------------------------------


def check_engine(item: CorpusItem, rec: Records, cal: Calibration) -> dict[str, float]:
    """Largest |engine confidence - confidences under ``cal``| per dimension on one clip.

    0 everywhere means the engine's call sites apply :mod:`confidence`'s calibration to
    every dimension (so the reported "after" table is what the engine states).
    """
    samples, rate = _read(item)
    updates, _, _ = _stream(samples, rate, raw=False)
    stated = np.array([[u.confidence[d] for d in DIMENSIONS] for u in updates]).ravel()
    expected = calibrated_confidences(rec, cal)
    diff = np.abs(stated - expected)
    return {name: float(diff[rec.dim == d].max(initial=0.0)) for d, name in enumerate(DIMENSIONS)}


def _format_dict(values: dict[str, float]) -> str:
    lines = [f"    {name!r}: {value!r}," for name, value in values.items()]
    return "{\n" + "\n".join(lines) + "\n}" if lines else "{}"


def render_factors(cal: Calibration, command: str, summary: str) -> str:
    """The generated block of confidence.py (between the calibration markers)."""
    return (
        "# calibration:begin (generated by scripts/calibrate_confidence.py --write-factors; do not edit)\n"
        f"# Fitted on the TRAIN half of a generated corpus by `{command}`:\n"
        "# per dimension, k and cap minimise the Brier score of cap * erf(z / k); the base rate\n"
        "# is the share of updates without a standard error that were within tolerance; tempo is\n"
        "# a logistic fit. " + summary + "\n"
        "#: Per-dimension multiplier k on standard errors.\n"
        f"INFLATION_BY_DIMENSION: dict[str, float] = {_format_dict(cal.inflation)}\n"
        "#: Per-dimension largest confidence (share of confident updates not hit by a regime change).\n"
        f"CAP_BY_DIMENSION: dict[str, float] = {_format_dict(cal.cap)}\n"
        "#: Per-dimension confidence while no standard error is defined yet.\n"
        f"UNDEFINED_BY_DIMENSION: dict[str, float] = {_format_dict(cal.undefined)}\n"
        f"DEFAULT_INFLATION = {cal.default_inflation!r}\n"
        f"DEFAULT_CAP = {cal.default_cap!r}\n"
        f"DEFAULT_UNDEFINED = {cal.default_undefined!r}\n"
        "#: Tempo: ``p = 1 / (1 + exp(-(W0 + W_STRENGTH * strength + W_BEATS * ln(1 + beats))))``.\n"
        f"TEMPO_W0 = {cal.tempo_w[0]!r}\n"
        f"TEMPO_W_STRENGTH = {cal.tempo_w[1]!r}\n"
        f"TEMPO_W_BEATS = {cal.tempo_w[2]!r}\n"
        "#: Tempo confidence when no pulse was found (tempo_bpm is 0).\n"
        f"TEMPO_NO_PULSE = {cal.tempo_no_pulse!r}\n"
        "# calibration:end"
    )


def write_factors(cal: Calibration, command: str, summary: str, *, path: Path = CONFIDENCE_PY) -> None:
    """Replace the generated block of ``path`` with ``cal``."""
    text = path.read_text()
    pattern = re.compile(r"# calibration:begin.*?# calibration:end", re.S)
    if not pattern.search(text):
        raise RuntimeError(f"no calibration markers in {path}")
    path.write_text(pattern.sub(lambda _: render_factors(cal, command, summary), text, count=1))


def _cell(b: Bin) -> str:
    return "" if b.count == 0 else f"{b.gap:+.2f}" if b.count >= MIN_BIN_COUNT else f"({b.gap:+.2f})"


def render_markdown(result: dict[str, Any], command: str) -> str:
    """The "Confidence calibration" section body."""
    before, after = result["before"], result["after"]
    corpus = result["corpus"]
    lines = [
        f"Command: `{command}`",
        "",
        machine_line(result["machine"]),
        "",
        f"Corpus: {corpus['clips']} generated clips of {corpus['seconds']} s (seed {corpus['seed']}; "
        + ", ".join(f"{k} {v}" for k, v in corpus["kinds"].items())
        + f"), streamed in 100 ms chunks with one update per second and all 25 dimensions: "
        f"{result['updates_train']} (update, dimension) pairs to fit on (TRAIN half), "
        f"{result['updates_test']} to test on (TEST half, the tables below). An update counts as "
        "within tolerance when its value is within the registry tolerance of the clip's final value.",
        "",
        "*Before*: the uncalibrated statistic (k = 1, confidence 0 until a standard error exists, "
        "tempo = strength x (1 - exp(-beats/8))). *After*: the fitted calibration in "
        "`engine/confidence.py` (per-dimension k and cap, a base rate until a standard error exists, "
        "a logistic curve for tempo).",
        "",
        "All dimensions pooled, TEST half (target: |gap| <= 0.1 in every decile):",
        "",
        "| decile | n before | stated | observed | gap | n after | stated | observed | gap |",
        "|---|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for b, a in zip(before["table"], after["table"], strict=True):
        def cols(x: Bin) -> str:
            if x.count == 0:
                return "0 | | | "
            return f"{x.count} | {x.stated:.3f} | {x.observed:.3f} | {x.gap:+.3f}"
        lines.append(f"| {b.low:.1f}-{b.high:.1f} | {cols(b)} | {cols(a)} |")
    lines += [
        "",
        f"Calibration error (count-weighted mean |gap|): before {before['ece']:.3f}, after "
        f"{after['ece']:.3f}; largest |gap| over deciles with >= {MIN_BIN_COUNT} updates: before "
        f"{before['max_gap']:.3f}, after {after['max_gap']:.3f}.",
        "",
        "Per dimension, TEST half: fitted numbers, calibration error and largest decile gap.",
        "",
        "| dimension | k | cap | no-se base rate | ece before | ece after | max gap before | max gap after |",
        "|---|---:|---:|---:|---:|---:|---:|---:|",
    ]
    cal = result["calibration"]
    present = [n for n in DIMENSIONS if n in before["per_dimension"] and n in after["per_dimension"]]
    for name in present:
        b, a = before["per_dimension"][name], after["per_dimension"][name]
        if name == TEMPO:
            t = cal["tempo"]
            fitted = f"logistic ({t['w0']:+.2f}, {t['w_strength']:+.2f} s, {t['w_beats']:+.2f} ln(1+beats)) | | " \
                     f"{t['no_pulse']:.2f} (no pulse)"
        else:
            fitted = (f"{cal['inflation'].get(name, math.nan):.3f} | {cal['cap'].get(name, math.nan):.3f} | "
                      f"{cal['undefined'].get(name, math.nan):.2f}")
        lines.append(f"| {name} | {fitted} | {b['ece']:.3f} | {a['ece']:.3f} | {b['max_gap']:.3f} | {a['max_gap']:.3f} |")
    lines += [
        "",
        "After calibration, gap (observed - stated) per dimension and decile, TEST half "
        f"(in parentheses: fewer than {MIN_BIN_COUNT} updates; empty: none):",
        "",
        "| dimension | " + " | ".join(f"{i / 10:.1f}" for i in range(10)) + " |",
        "|---|" + "---:|" * 10,
    ]
    for name in present:
        table = after["per_dimension"][name]["table"]
        lines.append(f"| {name} | " + " | ".join(_cell(b) for b in table) + " |")
    lines += [
        "",
        "By kind of clip, TEST half, after: " + "; ".join(
            f"{k} ece {v['ece']:.3f} (stated {v['stated']:.2f}, observed {v['observed']:.2f})"
            for k, v in after["per_kind"].items()) + ".",
    ]
    length = result.get("length_check")
    if length is not None:
        lb, la = length["before"], length["after"]
        lines += [
            "",
            f"Stream length: the same fitted numbers on {length['clips']} other clips of "
            f"{length['seconds']:g} s (seed {length['seed']}, {length['updates']} pairs): calibration error "
            f"before {lb['ece']:.3f}, after {la['ece']:.3f}; largest decile gap before {lb['max_gap']:.3f}, "
            f"after {la['max_gap']:.3f}. Deciles after: "
            + ", ".join(f"{b.low:.1f}-{b.high:.1f}: {b.observed:.2f} observed for {b.stated:.2f} stated (n {b.count})"
                        for b in la["table"] if b.count) + ".",
        ]
    check = result.get("engine_check")
    if check is not None:
        off = [n for n, d in check.items() if d > 1e-6]
        held = ("no fitted numbers yet, so this cannot tell `calibrated` from `within_tolerance` call sites"
                if result.get("engine_check_basis") == "uncalibrated" else "fitted numbers")
        lines += ["", "Engine check (one TEST clip streamed without instrumentation, compared with the "
                  f"numbers `engine/confidence.py` held when this run started: {held}): "
                  f"{len(check) - len(off)} of {len(check)} dimensions state exactly those confidences"
                  + (f"; not: {', '.join(off)} (call site not on `confidence.calibrated` / "
                     "`confidence.tempo_confidence`)" if off else "") + "."]
    return "\n".join(lines)


def print_report(result: dict[str, Any]) -> None:
    """Human-readable report on stdout."""
    before, after = result["before"], result["after"]
    print(f"corpus: {result['corpus']}; updates train {result['updates_train']}, test {result['updates_test']}")
    print("TEST, all dimensions:   before                          | after")
    print("decile     n  stated observed    gap |      n  stated observed    gap")
    for b, a in zip(before["table"], after["table"], strict=True):
        def cols(x: Bin) -> str:
            return f"{x.count:6d}  {x.stated:6.3f}   {x.observed:6.3f} {x.gap:+6.3f}" if x.count else f"{0:6d}" + " " * 25
        print(f"{b.low:.1f}-{b.high:.1f} {cols(b)} | {cols(a)}")
    print(f"ece {before['ece']:.3f} -> {after['ece']:.3f}; max gap {before['max_gap']:.3f} -> {after['max_gap']:.3f}")
    print(f"{'dimension':24s} {'k':>7s} {'cap':>6s} {'base':>5s}  ece b/a        max gap b/a")
    cal = result["calibration"]
    for name in [n for n in DIMENSIONS if n in after["per_dimension"]]:
        b, a = before["per_dimension"][name], after["per_dimension"][name]
        k = cal["inflation"].get(name, math.nan)
        cap = cal["cap"].get(name, math.nan)
        base = cal["undefined"].get(name, cal["tempo"]["no_pulse"] if name == TEMPO else math.nan)
        print(f"{name:24s} {k:7.3f} {cap:6.3f} {base:5.2f}  {b['ece']:.3f}/{a['ece']:.3f}  "
              f"{b['max_gap']:.3f}/{a['max_gap']:.3f}")
    print(f"tempo: {cal['tempo']}")
    for kind, v in after["per_kind"].items():
        print(f"  {kind:14s} ece {v['ece']:.3f} max gap {v['max_gap']:.3f} stated {v['stated']:.2f} observed {v['observed']:.2f}")
    length = result.get("length_check")
    if length is not None:
        print(f"length check ({length['clips']} clips of {length['seconds']:g} s): ece "
              f"{length['before']['ece']:.3f} -> {length['after']['ece']:.3f}, max gap "
              f"{length['before']['max_gap']:.3f} -> {length['after']['max_gap']:.3f}")
        for b in length["after"]["table"]:
            if b.count:
                print(f"  {b.low:.1f}-{b.high:.1f} n {b.count:6d} stated {b.stated:.3f} observed {b.observed:.3f}")
    if result.get("engine_check") is not None:
        off = {n: round(d, 4) for n, d in result["engine_check"].items() if d > 1e-6}
        print("engine check:", "calibrated everywhere" if not off else f"not calibrated yet: {off}")


def run(
    *,
    clips: int,
    seconds: float | tuple[float, float],
    seed: int,
    corpus_dir: Path,
    jobs: int,
    check: bool = True,
    long_clips: int = 0,
    long_seconds: float = 90.0,
) -> tuple[dict[str, Any], Calibration, Records]:
    """Build the corpus, collect, fit on TRAIN, evaluate on TEST; return the result.

    With ``long_clips`` > 0, also evaluate the fitted calibration on a second corpus of
    that many clips of ``long_seconds`` s (seed + 1): how much the calibration depends on
    the stream length it was fitted for.
    """
    start = time.perf_counter()
    items = build_corpus(corpus_dir, clips, seconds, seed)
    built = time.perf_counter()
    rec = collect(items, jobs=jobs)
    collected = time.perf_counter()
    train_clips = split_by_kind([item.kind for item in items])
    train_rows = train_clips[rec.clip]
    train, test = rec.select(train_rows), rec.select(~train_rows)
    cal = fit(train)
    before = evaluate(test, legacy_confidences(test))
    after = evaluate(test, calibrated_confidences(test, cal))
    engine_check = None
    basis = Calibration.current()
    check_basis = "fitted" if (basis.inflation or basis.cap or basis.undefined) else "uncalibrated"
    if check:
        first_test = int(np.flatnonzero(~train_clips)[0]) if (~train_clips).any() else 0
        engine_check = check_engine(items[first_test], rec.select(rec.clip == first_test), basis)
    kinds: dict[str, int] = {}
    for item in items:
        kinds[item.kind] = kinds.get(item.kind, 0) + 1
    length_check = None
    if long_clips > 0:
        long_items = build_corpus(corpus_dir.with_name(corpus_dir.name + "-long"), long_clips, long_seconds,
                                  seed + 1)
        long_rec = collect(long_items, jobs=jobs)
        length_check = {
            "clips": len(long_items), "seconds": long_seconds, "seed": seed + 1,
            "updates": len(long_rec),
            "before": evaluate(long_rec, legacy_confidences(long_rec)),
            "after": evaluate(long_rec, calibrated_confidences(long_rec, cal)),
        }
    result: dict[str, Any] = {
        "corpus": {"clips": len(items), "seconds": "-".join(f"{s:g}" for s in seconds) if isinstance(seconds, tuple)
                   else f"{seconds:g}", "seed": seed, "kinds": kinds,
                   "media_seconds": round(sum(item.seconds for item in items), 1)},
        "updates_train": len(train), "updates_test": len(test),
        "before": before, "after": after,
        "calibration": cal.to_json(),
        "engine_check": engine_check,
        "engine_check_basis": check_basis,
        "length_check": length_check,
        "timing_s": {"corpus": built - start, "collect": collected - built, "total": time.perf_counter() - start},
        "machine": machine_info(),
    }
    return result, cal, rec


def main(argv: Sequence[str] | None = None) -> int:
    """CLI entry point."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--clips", type=int, default=120, help="corpus clips (half train, half test)")
    parser.add_argument("--seconds", type=parse_seconds, default=(20.0, 30.0),
                        help="clip duration in s, or a range LOW-HIGH (default 20-30)")
    parser.add_argument("--seed", type=int, default=0, help="corpus seed")
    parser.add_argument("--corpus", type=Path, default=DEFAULT_CORPUS, help="corpus directory (cached)")
    parser.add_argument("--jobs", type=int, default=os.cpu_count() or 1, help="worker processes")
    parser.add_argument("--json", action="store_true", help="print one JSON object as the last line")
    parser.add_argument("--write-docs", action="store_true", help="update docs/benchmarks.md")
    parser.add_argument("--write-factors", action="store_true",
                        help="store the fitted numbers in engine/confidence.py")
    parser.add_argument("--no-engine-check", action="store_true", help="skip the uninstrumented engine check")
    parser.add_argument("--long-clips", type=int, default=0,
                        help="also test the fitted numbers on this many longer clips (0: skip)")
    parser.add_argument("--long-seconds", type=float, default=90.0, help="duration of those clips (s)")
    args = parser.parse_args(argv)
    if args.clips < 2:
        parser.error("--clips must be at least 2 (one to fit, one to test)")
    result, cal, _ = run(clips=args.clips, seconds=args.seconds, seed=args.seed, corpus_dir=args.corpus,
                         jobs=args.jobs, check=not args.no_engine_check, long_clips=args.long_clips,
                         long_seconds=args.long_seconds)
    command = "python scripts/calibrate_confidence.py"
    defaults = {"--clips": (args.clips, 120), "--seconds": (args.seconds, (20.0, 30.0)), "--seed": (args.seed, 0)}
    for flag, (value, default) in defaults.items():
        if value != default:
            command += f" {flag} {result['corpus']['seconds'] if flag == '--seconds' else value}"
    if args.long_clips:
        command += f" --long-clips {args.long_clips} --long-seconds {args.long_seconds:g}"
    if args.write_factors:
        after = result["after"]
        write_factors(cal, command + " --write-factors",
                      f"TEST half: calibration error {after['ece']:.3f}, largest decile gap {after['max_gap']:.3f}.")
    if args.write_docs:
        write_doc_section(SECTION, render_markdown(result, command + " --write-factors --write-docs"))
    if not args.json:
        print_report(result)
    if args.json:
        out = {**result, "before": _evaluation_json(result["before"]), "after": _evaluation_json(result["after"])}
        if result["length_check"] is not None:
            lc = result["length_check"]
            out["length_check"] = {**lc, "before": _evaluation_json(lc["before"]), "after": _evaluation_json(lc["after"])}
        print(json.dumps(out, default=float))
    return 0


if __name__ == "__main__":
    sys.exit(main())
