"""Write a short generated demo clip (WAV) and print its path.

The clip is a 12 s music-like mix at 120 BPM (a chord progression, a kick on every beat,
hi-hat noise on off-beats), made with numpy only. ``make demo`` fingerprints it.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from pathlib import Path

import numpy as np
import soundfile as sf


def demo_mix(*, seconds: float = 12.0, rate: int = 44_100, bpm: float = 120.0, seed: int = 7) -> np.ndarray:
    """A stereo music-like mix ``[n, 2]`` float32 in [-1, 1]."""
    rng = np.random.default_rng(seed)
    t = np.arange(int(seconds * rate)) / rate
    beat = 60.0 / bpm
    chords = [(261.63, 329.63, 392.00), (220.00, 261.63, 329.63), (174.61, 220.00, 261.63), (196.00, 246.94, 293.66)]
    music = np.zeros_like(t)
    for i, start in enumerate(np.arange(0.0, seconds, 4 * beat)):
        span = (t >= start) & (t < start + 4 * beat)
        for f in chords[i % len(chords)]:
            music[span] += 0.12 * np.sin(2 * np.pi * f * t[span]) * np.exp(-(t[span] - start) * 0.4)
    kick_t = np.arange(int(0.15 * rate)) / rate
    kick = 0.6 * np.sin(2 * np.pi * (50 + 80 * np.exp(-kick_t * 30)) * kick_t) * np.exp(-kick_t * 20)
    hat = 0.15 * rng.standard_normal(int(0.04 * rate)) * np.exp(-np.arange(int(0.04 * rate)) / (0.01 * rate))
    for k in range(int(seconds / beat)):
        i = int(k * beat * rate)
        music[i : i + kick.size] += kick[: max(0, music.size - i)]
        j = int((k + 0.5) * beat * rate)
        music[j : j + hat.size] += hat[: max(0, music.size - j)]
    stereo = np.stack([music, 0.9 * music + 0.02 * rng.standard_normal(music.size)], axis=1)
    return (stereo / max(1.0, np.abs(stereo).max() / 0.9)).astype(np.float32)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--out", type=Path, default=Path(tempfile.gettempdir()) / "streamprint-demo.wav")
    args = parser.parse_args()
    sf.write(args.out, demo_mix(), 44_100, subtype="PCM_16")
    print(args.out)
    return 0


if __name__ == "__main__":
    sys.exit(main())
