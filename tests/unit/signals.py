"""Deterministic test signals for the audio engine tests.

Every generator returns float32 samples shaped ``[n_samples, channels]`` (the layout
:class:`~streamprint.engine.session.AudioSession` takes), peak-bounded well inside
[-1, 1]. Random parts come from ``numpy.random.default_rng(seed)`` so a given call always
returns the same samples.
"""

from __future__ import annotations

import numpy as np
from numpy.typing import NDArray

from streamprint.engine.fingerprint import AudioBuffer

F32 = NDArray[np.float32]
F64 = NDArray[np.float64]

#: The analysis rate of the engine; generators default to it so frames line up exactly.
ANALYSIS_RATE = 22_050


def _channels(mono: F64, channels: int) -> F32:
    """Repeat a mono signal ``[n]`` over ``channels`` columns as float32 ``[n, channels]``."""
    if channels < 1:
        raise ValueError("channels must be >= 1")
    return np.repeat(mono[:, np.newaxis], channels, axis=1).astype(np.float32)


def buffer(samples: F32, rate: int = ANALYSIS_RATE) -> AudioBuffer:
    """Wrap ``samples`` ``[n, channels]`` as an :class:`AudioBuffer`."""
    return AudioBuffer(samples=np.ascontiguousarray(samples, dtype=np.float32), sample_rate=rate)


def sine(
    freq: float,
    seconds: float,
    *,
    rate: int = ANALYSIS_RATE,
    amplitude: float = 0.5,
    channels: int = 1,
    phase: float = 0.0,
) -> F32:
    """A pure tone of ``freq`` Hz with peak ``amplitude``."""
    t = np.arange(round(rate * seconds)) / rate
    return _channels(amplitude * np.sin(2.0 * np.pi * freq * t + phase), channels)


def silence(seconds: float, *, rate: int = ANALYSIS_RATE, channels: int = 1) -> F32:
    """Digital silence."""
    return np.zeros((round(rate * seconds), channels), dtype=np.float32)


def white_noise(
    seconds: float,
    *,
    rate: int = ANALYSIS_RATE,
    amplitude: float = 0.25,
    channels: int = 1,
    seed: int = 0,
) -> F32:
    """Gaussian white noise with standard deviation ``amplitude`` (clipped to +-0.99)."""
    rng = np.random.default_rng(seed)
    mono = np.clip(amplitude * rng.standard_normal(round(rate * seconds)), -0.99, 0.99)
    return _channels(mono, channels)


def silence_then_tone(
    silence_s: float,
    tone_s: float,
    *,
    freq: float = 440.0,
    rate: int = ANALYSIS_RATE,
    amplitude: float = 0.5,
    channels: int = 1,
) -> F32:
    """``silence_s`` seconds of digital silence followed by ``tone_s`` seconds of a sine."""
    return np.concatenate(
        (
            silence(silence_s, rate=rate, channels=channels),
            sine(freq, tone_s, rate=rate, amplitude=amplitude, channels=channels),
        )
    )


def click_times(bpm: float, seconds: float, *, offset_s: float = 0.25) -> F64:
    """Start times (s) of the clicks of :func:`click_track`: ``offset_s + k * 60 / bpm``."""
    period = 60.0 / bpm
    count = int(np.floor((seconds - offset_s) / period - 1e-9)) + 1
    times: F64 = offset_s + period * np.arange(max(count, 0), dtype=np.float64)
    return times[times < seconds]


def click_track(
    bpm: float,
    seconds: float,
    *,
    offset_s: float = 0.25,
    rate: int = ANALYSIS_RATE,
    amplitude: float = 0.6,
    click_ms: float = 10.0,
    channels: int = 1,
    seed: int = 0,
) -> F32:
    """Identical broadband clicks every ``60 / bpm`` s starting at ``offset_s``.

    A click is ``click_ms`` of white noise with an exponential decay (time constant a
    fifth of its length): one sharp, broadband onset per beat, silence in between. Every
    click is the same noise burst, so the track is exactly periodic up to the rounding
    of each click's start to a sample.
    """
    rng = np.random.default_rng(seed)
    n = round(rate * seconds)
    length = max(1, round(rate * click_ms / 1000.0))
    burst = rng.standard_normal(length) * np.exp(-np.arange(length) / (length / 5.0))
    burst *= amplitude / float(np.abs(burst).max())
    mono = np.zeros(n)
    for start_s in click_times(bpm, seconds, offset_s=offset_s):
        i = round(start_s * rate)
        stop = min(n, i + length)
        mono[i:stop] += burst[: stop - i]
    return _channels(mono, channels)


#: Chord progression of :func:`music_like` (MIDI note numbers): C, Am, F, G.
PROGRESSION: tuple[tuple[int, ...], ...] = ((60, 64, 67), (57, 60, 64), (53, 57, 60), (55, 59, 62))


def _midi_hz(note: float) -> float:
    return float(440.0 * 2.0 ** ((note - 69.0) / 12.0))


def music_like(
    seconds: float = 8.0,
    *,
    bpm: float = 120.0,
    rate: int = 44_100,
    channels: int = 2,
    seed: int = 0,
) -> F32:
    """A short deterministic "song": chords, bass, kick/snare at ``bpm``, noise, level changes.

    * one chord of :data:`PROGRESSION` per bar (4 beats), each note with 4 harmonics and a
      slow attack/decay envelope, plus a bass note an octave below the root;
    * kick (decaying 55 -> 45 Hz sine, 120 ms) on beats 1 and 3, snare (decaying noise,
      80 ms) on beats 2 and 4, hi-hat (short high-passed noise) on every eighth note;
    * a low noise floor and a level step of a few dB every two bars;
    * stereo: the chords lean left, the hi-hats right, kick/snare/bass in the centre
      (channels > 2 repeat the mix; ``channels == 1`` is the mid).
    """
    rng = np.random.default_rng(seed)
    n = round(rate * seconds)
    t = np.arange(n) / rate
    beat = 60.0 / bpm
    bar = 4 * beat
    chords = np.zeros(n)
    bass = np.zeros(n)
    for b in range(int(np.ceil(seconds / bar))):
        start = round(b * bar * rate)
        stop = min(n, round((b + 1) * bar * rate))
        if start >= n:
            break
        tt = t[start:stop] - t[start]
        envelope = np.minimum(1.0, tt / 0.03) * np.exp(-tt / (1.5 * bar))
        notes = PROGRESSION[b % len(PROGRESSION)]
        for note in notes:
            f0 = _midi_hz(note)
            for k in range(1, 5):
                chords[start:stop] += (
                    (0.25 / k)
                    * envelope
                    * np.sin(2 * np.pi * f0 * k * tt + rng.uniform(0, 2 * np.pi))
                )
        bass[start:stop] += 0.35 * envelope * np.sin(2 * np.pi * _midi_hz(notes[0] - 12) * tt)

    drums = np.zeros(n)
    hats = np.zeros(n)
    kick_len = round(0.12 * rate)
    kt = np.arange(kick_len) / rate
    kick = np.sin(2 * np.pi * (55.0 * kt - 50.0 * kt * kt)) * np.exp(-kt / 0.04)
    snare_len = round(0.08 * rate)
    snare = rng.standard_normal(snare_len) * np.exp(-np.arange(snare_len) / (0.02 * rate))
    hat_len = round(0.02 * rate)
    hat_noise = rng.standard_normal(hat_len + 1)
    hat = np.diff(hat_noise) * np.exp(-np.arange(hat_len) / (0.004 * rate))
    for k in range(int(seconds / beat) + 1):
        i = round(k * beat * rate)
        if i >= n:
            break
        hit = kick if k % 2 == 0 else 0.6 * snare
        stop = min(n, i + hit.shape[0])
        drums[i:stop] += 0.9 * hit[: stop - i]
    for k in range(int(seconds / (beat / 2)) + 1):
        i = round(k * beat / 2 * rate)
        if i >= n:
            break
        stop = min(n, i + hat_len)
        hats[i:stop] += 0.15 * hat[: stop - i]

    noise = 0.01 * rng.standard_normal(n)
    level_db = rng.uniform(-6.0, 0.0, size=int(seconds / (2 * bar)) + 1)
    level = 10.0 ** (np.repeat(level_db, round(2 * bar * rate))[:n] / 20.0)
    if level.shape[0] < n:
        level = np.concatenate((level, np.full(n - level.shape[0], level[-1])))
    centre = bass + drums + noise
    left = level * (centre + 0.9 * chords + 0.4 * hats)
    right = level * (centre + 0.5 * chords + 0.9 * hats)
    stereo: F64 = np.stack((left, right), axis=1)
    stereo *= 0.7 / float(np.abs(stereo).max())
    if channels == 1:
        mono: F64 = stereo.mean(axis=1)
        return mono[:, np.newaxis].astype(np.float32)
    if channels == 2:
        return stereo.astype(np.float32)
    reps = -(-channels // 2)
    return np.tile(stereo, (1, reps))[:, :channels].astype(np.float32)


def mono_analysis(samples: F32) -> F32:
    """The channel mean of ``[n, channels]`` samples as float32 ``[n]`` (the engine's downmix)."""
    mono: F32 = samples.mean(axis=1, dtype=np.float32)
    return mono
