"""Build a deterministic, generated corpus of varied audio clips plus a manifest.

The corpus is what the calibration, benchmark and (later) model-training scripts run on.
Everything is made here with numpy, except speech, which comes from ``espeak-ng``, and the
``midi`` clips, which are Standard MIDI Files written here and rendered by ``fluidsynth``
with the FluidR3 General MIDI soundfont (Debian packages ``espeak-ng``, ``fluidsynth`` and
``fluid-soundfont-gm``, which ``make setup`` installs; without espeak-ng a numpy "babble"
stands in, without fluidsynth or the soundfont the numpy wavetable synth renders the same
notes, and the manifest says so). The same ``(n_clips, seconds, seed)`` always gives the
same files.

Kinds of clip (``CorpusItem.kind``):

* ``music``: a music-like mix with a known tempo (60-180 BPM) and key: a chord
  progression on a pad, a bass line, an optional arpeggio / lead, band-limited
  wavetable timbres (sine, triangle, square, saw, organ, pluck), drum patterns (kick,
  snare, hat; straight or swung), sections where the drums drop out;
* ``speech``: espeak-ng speech (several English voices, speeds and pitches), sometimes
  over a quiet noise floor;
* ``speech_music``: speech over a quieter music bed;
* ``noise``: white, pink or brown noise, steady or slowly modulated;
* ``silence``: digital silence or dither far below the -60 dBFS silence threshold;
* ``silence_tone``: alternating silence and steady tones;
* ``sweep``: linear or logarithmic sine sweeps, one or repeated;
* ``level_change``: music or noise with stepwise gain changes and fades;
* ``midi``: a song written as a Standard MIDI File (known tempo and key in its tempo and
  key-signature meta events: General MIDI pad, bass and lead programs plus drums on
  channel 10) and rendered by fluidsynth. These clips are *appended* after the
  ``n_clips`` clips of the kind cycle (one per ten, ``midi_clips`` to change it), so the
  clips of a seed that older corpora had stay exactly as they were; the ``.mid`` file is
  kept next to the audio.

Files are 16-bit WAV (or FLAC) at the clip's own sample rate (22.05, 32, 44.1 or 48 kHz)
and channel count (mono or stereo). ``manifest.json`` lists, per clip: ``file``,
``kind``, ``tempo`` (BPM or null), ``key`` (e.g. ``"A minor"`` or null), ``seconds``,
``seed`` (the clip's own seed: :func:`generate_clip` with it rebuilds the clip alone),
``sample_rate``, ``channels`` and ``params`` (everything else that was drawn).

Usage::

    python scripts/make_corpus.py [--out .cache/corpus] [--clips 60] [--seconds 20-30]
                                  [--seed 0] [--format wav|flac] [--midi-clips N] [--force]

From Python: ``build_corpus(out_dir, n_clips, seconds, seed) -> list[CorpusItem]``
(``n_clips`` cycle clips plus the appended ``midi`` clips).
A directory whose manifest matches the request is reused, not rebuilt.
"""

from __future__ import annotations

import argparse
import json
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import soundfile as sf
from numpy.typing import NDArray

F32 = NDArray[np.float32]
F64 = NDArray[np.float64]
Params = dict[str, Any]

#: Bump when generation changes, so cached corpora are rebuilt.
#: 2: ``midi`` clips appended (the clips of version 1 are unchanged).
GENERATOR_VERSION = 2
DEFAULT_OUT = Path(".cache/corpus")
MANIFEST = "manifest.json"

#: The kinds in the order a corpus cycles through them (music about half of the clips).
KIND_CYCLE: tuple[str, ...] = (
    "music", "speech", "noise", "silence_tone", "music", "level_change", "sweep", "music",
    "speech", "music", "silence", "music", "speech_music", "noise", "music", "level_change",
    "speech", "music", "music", "music",
)
#: Every kind: the cycle's, then ``midi`` (appended after the cycle, see :func:`build_corpus`).
KINDS: tuple[str, ...] = (*dict.fromkeys(KIND_CYCLE), "midi")
#: ``midi`` clips appended per clip of the cycle by default (one per ten).
MIDI_SHARE = 0.1
#: The General MIDI soundfont fluidsynth renders with (Debian fluid-soundfont-gm).
SOUNDFONT = Path("/usr/share/sounds/sf2/FluidR3_GM.sf2")
SAMPLE_RATES: tuple[int, ...] = (44_100, 48_000, 22_050, 32_000)
_RATE_WEIGHTS = (0.55, 0.25, 0.1, 0.1)

NOTE_NAMES = ("C", "C#", "D", "D#", "E", "F", "F#", "G", "G#", "A", "A#", "B")
_SCALES = {"major": (0, 2, 4, 5, 7, 9, 11), "minor": (0, 2, 3, 5, 7, 8, 10)}
#: Chord progressions as scale degrees (0 = tonic), one chord per bar or half bar.
_PROGRESSIONS = {
    "major": ((0, 4, 5, 3), (0, 3, 4, 0), (1, 4, 0, 0), (0, 5, 3, 4), (0, 3, 0, 4)),
    "minor": ((0, 5, 2, 6), (0, 3, 4, 0), (0, 6, 5, 4), (0, 3, 6, 2), (0, 0, 3, 4)),
}
#: Harmonic amplitude laws of the wavetable timbres (k = harmonic number).
_TIMBRES: dict[str, Callable[[F64], F64]] = {
    "sine": lambda k: (k == 1).astype(np.float64),
    "triangle": lambda k: np.where(k % 2 == 1, 1.0 / k**2, 0.0),
    "square": lambda k: np.where(k % 2 == 1, 1.0 / k, 0.0),
    "saw": lambda k: 1.0 / k,
    "organ": lambda k: np.isin(k, (1, 2, 3, 4, 6, 8)) * np.array(1.0) / np.sqrt(k),
    "pluck": lambda k: 1.0 / k**1.5,
}
#: 16-step drum patterns per bar: (kick, snare, hat) step lists.
_DRUM_PATTERNS: dict[str, tuple[tuple[int, ...], tuple[int, ...], tuple[int, ...]]] = {
    "four_on_floor": ((0, 4, 8, 12), (4, 12), (2, 6, 10, 14)),
    "backbeat": ((0, 8, 10), (4, 12), (0, 2, 4, 6, 8, 10, 12, 14)),
    "half_time": ((0, 6), (8,), (0, 2, 4, 6, 8, 10, 12, 14)),
    "breakbeat": ((0, 10), (4, 7, 12), (0, 2, 4, 6, 8, 10, 12, 14)),
    "sixteenths": ((0, 8), (4, 12), tuple(range(16))),
    "kick_only": ((0, 4, 8, 12), (), ()),
}
_TEXT = (
    "the morning light falls across a quiet street while people wait for the early train "
    "a small dog runs past the bakery and the smell of fresh bread fills the air "
    "numbers and letters drift through the radio as the weather turns to rain "
    "we measured the signal again and found that every value had changed a little "
    "please remember to close the window before you leave the building tonight "
    "seven bright birds sang on the wire above the river near the old stone bridge "
    "the committee will meet on thursday to discuss the budget for next year "
    "music played softly in the background as the children built a tower of blocks "
    "she opened the letter carefully and read it twice before she smiled"
)
_WORDS = tuple(_TEXT.split())
_VOICES = ("en-us", "en-gb", "en-gb-scotland", "en-029", "en-gb-x-rp")
_VARIANTS = ("", "+m2", "+m3", "+f2", "+f3", "+f4")


@dataclass(frozen=True)
class CorpusItem:
    """One generated clip.

    ``path`` is the file on disk; ``file`` its name relative to the corpus directory;
    ``seconds`` its duration (s); ``tempo`` in BPM and ``key`` (e.g. ``"D major"``) are
    set for clips with a known musical pulse and tonality, else ``None``; ``seed`` is the
    clip's own seed; ``params`` records every other choice the generator drew.
    """

    path: Path
    file: str
    kind: str
    seconds: float
    seed: int
    sample_rate: int
    channels: int
    tempo: float | None = None
    key: str | None = None
    params: Params = field(default_factory=dict)

    def to_json(self) -> dict[str, Any]:
        """The manifest entry (``path`` left out: manifests are relocatable)."""
        out = asdict(self)
        out.pop("path")
        return out


@dataclass
class _Clip:
    """A generated clip before it is written: samples ``[n, channels]`` float in [-1, 1]."""

    samples: F64
    sample_rate: int
    tempo: float | None = None
    key: str | None = None
    params: Params = field(default_factory=dict)
    #: Files that go next to the audio, by suffix (``{"mid": smf_bytes}`` for ``midi``).
    attachments: dict[str, bytes] = field(default_factory=dict)


# --------------------------------------------------------------------------------------
# Building blocks
# --------------------------------------------------------------------------------------


def midi_to_hz(note: float) -> float:
    """Frequency (Hz) of a MIDI note number (A4 = 69 = 440 Hz)."""
    return float(440.0 * 2.0 ** ((note - 69.0) / 12.0))


def _db(gain_db: float) -> float:
    return float(10.0 ** (gain_db / 20.0))


class _Wavetables:
    """Band-limited single-cycle tables per (timbre, frequency), cached per clip."""

    SIZE = 2048

    def __init__(self, rate: int) -> None:
        self.rate = rate
        self._cache: dict[tuple[str, int], F64] = {}
        self._x = np.arange(self.SIZE) / self.SIZE

    def table(self, timbre: str, freq: float) -> F64:
        """One cycle of ``timbre`` with only harmonics below 0.45 x the sample rate."""
        n_harm = max(1, min(48, int(0.45 * self.rate / freq)))
        key = (timbre, n_harm)
        if key not in self._cache:
            k = np.arange(1, n_harm + 1, dtype=np.float64)
            amps = _TIMBRES[timbre](k)
            wave = np.sin(2.0 * np.pi * np.outer(k, self._x)).T @ amps
            self._cache[key] = wave / max(float(np.abs(wave).max()), 1e-9)
        return self._cache[key]

    def render(self, timbre: str, freq: float, n: int, *, vibrato_cents: float = 0.0,
               vibrato_hz: float = 5.0, phase: float = 0.0) -> F64:
        """``n`` samples of a note at ``freq`` Hz (optionally with vibrato)."""
        t = np.arange(n) / self.rate
        if vibrato_cents:
            inst = freq * 2.0 ** (vibrato_cents / 1200.0 * np.sin(2.0 * np.pi * vibrato_hz * t))
            cycles = phase + np.cumsum(inst) / self.rate
        else:
            cycles = phase + freq * t
        pos = (cycles % 1.0) * self.SIZE
        i0 = pos.astype(np.int64)
        frac = pos - i0
        table = self.table(timbre, freq)
        return table[i0] * (1.0 - frac) + table[(i0 + 1) % self.SIZE] * frac


def _envelope(n: int, rate: int, *, attack: float, decay: float, sustain: float,
              release: float) -> F64:
    """ADSR-like envelope ``[n]``: attack (s), exponential decay (s) to ``sustain``, release (s)."""
    t = np.arange(n) / rate
    env = np.minimum(1.0, t / max(attack, 1e-4)) * (sustain + (1.0 - sustain) * np.exp(-t / decay))
    r = min(n, int(release * rate))
    if r > 0:
        env[n - r :] *= np.linspace(1.0, 0.0, r)
    return env


def _add(dst: F64, src: F64, start: int) -> None:
    """Add ``src`` into ``dst`` from sample ``start`` (clipped at both ends)."""
    if start >= dst.shape[0] or start + src.shape[0] <= 0:
        return
    a = max(0, start)
    b = min(dst.shape[0], start + src.shape[0])
    dst[a:b] += src[a - start : b - start]


def _pan(mono: F64, pan: float) -> F64:
    """Equal-power pan of ``mono`` ``[n]`` to ``[n, 2]``; ``pan`` in [-1, 1]."""
    angle = (pan + 1.0) * np.pi / 4.0
    return np.stack((mono * np.cos(angle), mono * np.sin(angle)), axis=1)


def colored_noise(rng: np.random.Generator, n: int, rate: int, color: str) -> F64:
    """Unit-RMS noise ``[n]``: ``white`` (flat), ``pink`` (1/f power) or ``brown`` (1/f^2).

    Shaped in the frequency domain; content below 20 Hz is removed (no DC drift).
    """
    if n == 0:
        return np.zeros(0)
    white = rng.standard_normal(n)
    if color != "white":
        alpha = {"pink": 1.0, "brown": 2.0}[color]
        spec = np.fft.rfft(white)
        f = np.fft.rfftfreq(n, 1.0 / rate)
        shape = np.where(f >= 20.0, np.maximum(f, 20.0) ** (-alpha / 2.0), 0.0)
        white = np.fft.irfft(spec * shape, n)
    rms = float(np.sqrt(np.mean(white**2)))
    return white / max(rms, 1e-12)


def _finish_mix(rng: np.random.Generator, mix: F64, *, peak_db: tuple[float, float]) -> tuple[F64, float]:
    """Scale to a random peak level (dBFS) drawn from ``peak_db``; return it with the level."""
    level = float(rng.uniform(*peak_db))
    peak = float(np.abs(mix).max())
    if peak > 0:
        mix = mix * (_db(level) / peak)
    return mix, level


def _to_channels(rng: np.random.Generator, mix: F64, channels: int) -> F64:
    """Mono ``[n]`` or stereo ``[n, 2]`` to ``[n, channels]`` (stereo from mono: slight width)."""
    if mix.ndim == 1:
        if channels == 1:
            return mix[:, None]
        side = 0.05 * np.roll(mix, int(rng.integers(5, 40)))
        return np.stack((mix + side, mix - side), axis=1)
    if channels == 1:
        mono: F64 = mix.mean(axis=1, keepdims=True)
        return mono
    return mix


# --------------------------------------------------------------------------------------
# Generators, one per kind: (rng, seconds, rate, channels) -> _Clip
# --------------------------------------------------------------------------------------


def _drum_kit(rng: np.random.Generator, rate: int) -> dict[str, F64]:
    """One clip's drum samples: kick, snare, closed and open hat (mono, peak ~1)."""
    t = np.arange(int(0.35 * rate)) / rate
    f_end = rng.uniform(42.0, 60.0)
    f_start = rng.uniform(120.0, 200.0)
    freq = f_end + (f_start - f_end) * np.exp(-t * rng.uniform(25.0, 45.0))
    kick = np.sin(2.0 * np.pi * np.cumsum(freq) / rate) * np.exp(-t * rng.uniform(8.0, 16.0))
    ts = t[: int(0.25 * rate)]
    body = np.sin(2.0 * np.pi * rng.uniform(170.0, 230.0) * ts) * np.exp(-ts * 30.0)
    rattle = colored_noise(rng, ts.size, rate, "white")
    rattle = np.diff(rattle, prepend=0.0) * np.exp(-ts * rng.uniform(18.0, 30.0))
    snare = 0.5 * body + 0.35 * rattle
    th = t[: int(0.3 * rate)]
    hiss = np.diff(colored_noise(rng, th.size, rate, "white"), n=2, prepend=(0.0, 0.0)) / 4.0
    closed = hiss * np.exp(-th * rng.uniform(60.0, 120.0))
    opened = hiss * np.exp(-th * rng.uniform(8.0, 15.0))
    return {"kick": kick, "snare": snare, "hat": closed, "open_hat": opened}


def music_mix(rng: np.random.Generator, seconds: float, rate: int, *,
              tempo: float | None = None) -> tuple[F64, Params]:
    """A stereo music-like mix ``[n, 2]`` (peak ~1) and the parameters drawn.

    Params include ``tempo`` (BPM), ``key``, ``progression``, the timbres, the drum
    ``pattern`` (or ``"none"``), ``swing`` (position of the off-beat eighth within the
    beat: 0.5 = straight) and the bars where the drums drop out.
    """
    bpm = float(tempo if tempo is not None else round(float(np.exp(rng.uniform(np.log(60.0), np.log(180.0)))), 2))
    mode = str(rng.choice(("major", "minor"), p=(0.6, 0.4)))
    tonic = int(rng.integers(12))
    scale = _SCALES[mode]
    prog_index = int(rng.integers(len(_PROGRESSIONS[mode])))
    progression = _PROGRESSIONS[mode][prog_index]
    beat = 60.0 / bpm
    beats_per_chord = int(rng.choice((2, 4, 4, 8)))
    pattern = str(rng.choice((*_DRUM_PATTERNS, "none"), p=(0.22, 0.22, 0.12, 0.14, 0.1, 0.08, 0.12)))
    swing = float(rng.choice((0.5, 0.5, 0.5, 0.58, 0.62, 0.667)))
    pad_timbre = str(rng.choice(("sine", "triangle", "saw", "square", "organ")))
    bass_timbre = str(rng.choice(("sine", "triangle", "saw", "square")))
    lead_timbre = str(rng.choice(("sine", "triangle", "saw", "square", "organ", "pluck")))
    has_lead = bool(rng.random() < 0.7)
    lead_style = str(rng.choice(("arpeggio", "melody")))
    n = round(seconds * rate)
    n_bars = int(np.ceil(seconds / (4 * beat))) + 1
    breakdown: list[int] = []
    if pattern != "none" and rng.random() < 0.35 and n_bars > 4:
        first = int(rng.integers(1, n_bars - 2))
        breakdown = list(range(first, min(n_bars, first + int(rng.integers(1, 4)))))
    tables = _Wavetables(rate)
    pad = np.zeros(n)
    bass = np.zeros(n)
    lead = np.zeros(n)
    drums = np.zeros(n)

    def degree_note(degree: int, octave_base: int) -> int:
        return octave_base + tonic + scale[degree % 7] + 12 * (degree // 7)

    # Harmony: pad chords and bass.
    n_chords = int(np.ceil(seconds / (beats_per_chord * beat))) + 1
    pad_env = dict(attack=rng.uniform(0.01, 0.3), decay=rng.uniform(0.3, 3.0),
                   sustain=rng.uniform(0.2, 0.8), release=0.08)
    bass_rhythm = str(rng.choice(("whole", "beats", "eighths")))
    for c in range(n_chords):
        degree = progression[c % len(progression)]
        start = c * beats_per_chord * beat
        length = int(beats_per_chord * beat * rate)  # samples
        notes = [degree_note(degree + step, 48) for step in (0, 2, 4)]
        if rng.random() < 0.3:
            notes.append(degree_note(degree + 6, 48))
        env = _envelope(length, rate, **pad_env)
        for note in notes:
            tone = tables.render(pad_timbre, midi_to_hz(note), length, phase=float(rng.random()))
            _add(pad, tone * env / len(notes), int(start * rate))
        root = midi_to_hz(degree_note(degree, 36))
        step = {"whole": float(beats_per_chord), "beats": 1.0, "eighths": 0.5}[bass_rhythm]
        for b in np.arange(0.0, beats_per_chord, step):
            blen = int(float(step) * beat * rate * 0.9)
            benv = _envelope(blen, rate, attack=0.005, decay=0.25, sustain=0.5, release=0.03)
            _add(bass, tables.render(bass_timbre, root, blen) * benv, int((start + b * beat) * rate))
    # Lead: an arpeggio of the current chord or a stepwise melody on the scale.
    if has_lead:
        unit = float(rng.choice((0.5, 1.0)))  # beats per lead note
        vibrato = float(rng.choice((0.0, 0.0, 15.0, 30.0)))
        degree_pos = 0
        for i, b in enumerate(np.arange(0.0, seconds / beat, unit)):
            if rng.random() < 0.15:
                continue  # a rest
            chord = progression[int(b // beats_per_chord) % len(progression)]
            if lead_style == "arpeggio":
                note = degree_note(chord + (0, 2, 4, 7)[i % 4], 60)
            else:
                degree_pos = int(np.clip(degree_pos + rng.choice((-2, -1, 1, 1, 2)), -3, 9))
                note = degree_note(chord + degree_pos, 60)
            nlen = int(unit * beat * rate * rng.uniform(0.6, 0.95))
            env = _envelope(nlen, rate, attack=0.01, decay=rng.uniform(0.1, 0.6),
                            sustain=0.3 if lead_timbre == "pluck" else 0.7, release=0.03)
            tone = tables.render(lead_timbre, midi_to_hz(note), nlen, vibrato_cents=vibrato)
            _add(lead, tone * env, int(b * beat * rate))
    # Drums.
    if pattern != "none":
        kit = _drum_kit(rng, rate)
        kicks, snares, hats = _DRUM_PATTERNS[pattern]
        open_hat = pattern == "four_on_floor"
        jitter = float(rng.uniform(0.0, 0.006))
        for bar in range(n_bars):
            if bar in breakdown:
                continue
            for steps, sound, gain in ((kicks, "kick", 1.0), (snares, "snare", 0.8),
                                       (hats, "open_hat" if open_hat else "hat", 0.35)):
                for s in steps:
                    beat_index, sub = divmod(s, 4)
                    offset = {0: 0.0, 1: 0.25, 2: swing, 3: 0.75}[sub]
                    t0 = (bar * 4 + beat_index + offset) * beat + rng.normal(0.0, jitter)
                    accent = gain * (1.0 if sub == 0 else rng.uniform(0.6, 0.9))
                    _add(drums, kit[sound] * accent, round(t0 * rate))
    gains = {"pad": rng.uniform(0.25, 0.6), "bass": rng.uniform(0.3, 0.7),
             "lead": rng.uniform(0.2, 0.5), "drums": rng.uniform(0.4, 0.9)}
    mix = (_pan(pad * gains["pad"], rng.uniform(-0.3, 0.3))
           + _pan(bass * gains["bass"], 0.0)
           + _pan(lead * gains["lead"], rng.uniform(-0.6, 0.6))
           + _pan(drums * gains["drums"], rng.uniform(-0.15, 0.15)))
    if rng.random() < 0.3:
        drive = float(rng.uniform(1.5, 4.0))
        mix = np.tanh(drive * mix / max(float(np.abs(mix).max()), 1e-9))
    peak = float(np.abs(mix).max())
    params: Params = {
        "tempo": bpm, "key": f"{NOTE_NAMES[tonic]} {mode}", "progression": list(progression),
        "beats_per_chord": beats_per_chord, "pattern": pattern, "swing": swing,
        "timbres": {"pad": pad_timbre, "bass": bass_timbre, "lead": lead_timbre if has_lead else None},
        "lead_style": lead_style if has_lead else None, "bass_rhythm": bass_rhythm,
        "breakdown_bars": breakdown,
    }
    return mix / max(peak, 1e-9), params


def _gen_music(rng: np.random.Generator, seconds: float, rate: int, channels: int) -> _Clip:
    mix, params = music_mix(rng, seconds, rate)
    mix, level = _finish_mix(rng, mix, peak_db=(-18.0, -0.5))
    params["peak_dbfs"] = level
    return _Clip(_to_channels(rng, mix, channels), rate, params["tempo"], params["key"], params)


def _espeak(text: str, voice: str, speed: int, pitch: int) -> tuple[F64, int] | None:
    """Speech from espeak-ng as mono float ``[n]`` and its rate, or None without espeak-ng."""
    exe = shutil.which("espeak-ng")
    if exe is None:
        return None
    with tempfile.TemporaryDirectory() as tmp:
        wav = Path(tmp) / "speech.wav"
        subprocess.run(
            [exe, "-v", voice, "-s", str(speed), "-p", str(pitch), "-w", str(wav), "--stdin"],
            input=text.encode(), check=True, capture_output=True,
        )
        data, rate = sf.read(wav, dtype="float64", always_2d=True)
    return data[:, 0], int(rate)


def _babble(rng: np.random.Generator, seconds: float, rate: int) -> F64:
    """A speech-like stand-in ``[n]``: a gliding glottal pulse train through moving formants."""
    n = round(seconds * rate)
    t = np.arange(n) / rate
    f0 = rng.uniform(90.0, 220.0) * (1.0 + 0.15 * np.sin(2 * np.pi * 0.7 * t + rng.uniform(0, 6)))
    pulses = np.sign(np.sin(2.0 * np.pi * np.cumsum(f0) / rate)) + 0.05 * rng.standard_normal(n)
    spec = np.fft.rfft(pulses)
    f = np.fft.rfftfreq(n, 1.0 / rate)
    shape = sum(np.exp(-0.5 * ((f - fc) / 120.0) ** 2) for fc in (500.0, 1500.0, 2500.0))
    voiced = np.fft.irfft(spec * shape, n)
    syllables = np.clip(np.sin(2 * np.pi * rng.uniform(3.0, 5.0) * t), 0.0, None) ** 2
    pauses = (np.sin(2 * np.pi * 0.2 * t + rng.uniform(0, 6)) > -0.6).astype(np.float64)
    out: F64 = voiced * syllables * pauses
    return out


def speech(rng: np.random.Generator, seconds: float) -> tuple[F64, int, Params]:
    """Speech of about ``seconds`` s as mono ``[n]`` (peak ~1), its rate and the params drawn."""
    voice = str(rng.choice(_VOICES)) + str(rng.choice(_VARIANTS))
    speed = int(rng.integers(130, 200))
    pitch = int(rng.integers(20, 80))
    n_words = int(seconds * speed / 60.0 * 1.3) + 8
    words = [str(w) for w in rng.choice(_WORDS, size=n_words)]
    sentences = []
    while words:
        k = int(rng.integers(5, 14))
        sentences.append(" ".join(words[:k]).capitalize() + str(rng.choice((".", ".", ",", "?"))))
        words = words[k:]
    text = " ".join(sentences)
    spoken = _espeak(text, voice, speed, pitch)
    params: Params = {"voice": voice, "speed_wpm": speed, "pitch": pitch}
    if spoken is None:
        rate = 22_050
        audio = _babble(rng, seconds, rate)
        params["source"] = "numpy-babble"
    else:
        audio, rate = spoken
        params["source"] = "espeak-ng"
    n = round(seconds * rate)
    while audio.shape[0] < n:  # too short: repeat after a pause
        audio = np.concatenate((audio, np.zeros(int(0.5 * rate)), audio))
    audio = audio[:n]
    peak = float(np.abs(audio).max())
    return audio / max(peak, 1e-9), rate, params


def _gen_speech(rng: np.random.Generator, seconds: float, rate: int, channels: int) -> _Clip:
    audio, native, params = speech(rng, seconds)
    if rng.random() < 0.4:
        floor_db = float(rng.uniform(-65.0, -40.0))
        audio = audio + _db(floor_db) * colored_noise(rng, audio.shape[0], native, "pink")
        params["noise_floor_dbfs"] = floor_db
    mix, params["peak_dbfs"] = _finish_mix(rng, audio, peak_db=(-12.0, -1.0))
    return _Clip(_to_channels(rng, mix, channels), native, params=params)


def _gen_speech_music(rng: np.random.Generator, seconds: float, rate: int, channels: int) -> _Clip:
    audio, native, params = speech(rng, seconds)
    bed, music = music_mix(rng, seconds, native)
    bed_db = float(rng.uniform(-22.0, -8.0))
    mix = _pan(audio, 0.0) + _db(bed_db) * bed[: audio.shape[0]]
    mix, level = _finish_mix(rng, mix, peak_db=(-12.0, -1.0))
    params.update(bed_db=bed_db, peak_dbfs=level, music=music)
    return _Clip(_to_channels(rng, mix, channels), native, music["tempo"], music["key"], params)


def _gen_noise(rng: np.random.Generator, seconds: float, rate: int, channels: int) -> _Clip:
    n = round(seconds * rate)
    color = str(rng.choice(("white", "pink", "brown")))
    noise = colored_noise(rng, n, rate, color)
    modulation = str(rng.choice(("steady", "steady", "slow")))
    if modulation == "slow":
        t = np.arange(n) / rate
        noise *= _db(6.0) ** np.sin(2 * np.pi * rng.uniform(0.05, 0.3) * t)
    if channels == 2 and rng.random() < 0.5:  # independent channels: a wide image
        noise = np.stack((noise, colored_noise(rng, n, rate, color)), axis=1)
    mix, level = _finish_mix(rng, noise, peak_db=(-20.0, -1.0))
    params: Params = {"color": color, "modulation": modulation, "peak_dbfs": level}
    return _Clip(_to_channels(rng, mix, channels), rate, params=params)


def _gen_silence(rng: np.random.Generator, seconds: float, rate: int, channels: int) -> _Clip:
    n = round(seconds * rate)
    dither_db = float(rng.choice((-200.0, rng.uniform(-95.0, -75.0))))
    mono = _db(dither_db) * rng.standard_normal(n) if dither_db > -150 else np.zeros(n)
    params: Params = {"dither_dbfs": dither_db if dither_db > -150 else None}
    return _Clip(_to_channels(rng, mono, channels), rate, params=params)


def _gen_silence_tone(rng: np.random.Generator, seconds: float, rate: int, channels: int) -> _Clip:
    n = round(seconds * rate)
    out = np.zeros(n)
    tables = _Wavetables(rate)
    segments: list[dict[str, Any]] = []
    pos = 0
    silent = bool(rng.random() < 0.6)
    while pos < n:
        length = min(n - pos, int(rng.uniform(1.0, 8.0) * rate))
        if silent:
            segments.append({"start_s": pos / rate, "seconds": length / rate, "tone": None})
        else:
            freq = float(np.exp(rng.uniform(np.log(80.0), np.log(3000.0))))
            timbre = str(rng.choice(("sine", "sine", "triangle", "square", "organ")))
            amp = _db(float(rng.uniform(-20.0, -2.0)))
            ramp = np.minimum(1.0, np.minimum(np.arange(length), np.arange(length)[::-1]) / (0.005 * rate))
            out[pos : pos + length] = amp * ramp * tables.render(timbre, freq, length)
            segments.append({"start_s": pos / rate, "seconds": length / rate, "tone": round(freq, 2),
                             "timbre": timbre})
        pos += length
        silent = not silent
    return _Clip(_to_channels(rng, out, channels), rate, params={"segments": segments})


def _gen_sweep(rng: np.random.Generator, seconds: float, rate: int, channels: int) -> _Clip:
    n = round(seconds * rate)
    law = str(rng.choice(("log", "linear")))
    period = float(rng.choice((seconds, seconds / 2.0, rng.uniform(2.0, 8.0))))
    f1 = float(rng.uniform(20.0, 200.0))
    f2 = float(rng.uniform(2000.0, 0.45 * rate))
    t = (np.arange(n) / rate) % period
    u = t / period
    freq = f1 * (f2 / f1) ** u if law == "log" else f1 + (f2 - f1) * u
    mono = np.sin(2.0 * np.pi * np.cumsum(freq) / rate)
    mix, level = _finish_mix(rng, mono, peak_db=(-15.0, -1.0))
    params: Params = {"law": law, "period_s": period, "f_start": f1, "f_end": f2, "peak_dbfs": level}
    return _Clip(_to_channels(rng, mix, channels), rate, params=params)


def _gen_level_change(rng: np.random.Generator, seconds: float, rate: int, channels: int) -> _Clip:
    n = round(seconds * rate)
    base_kind = str(rng.choice(("music", "music", "noise")))
    tempo: float | None = None
    key: str | None = None
    if base_kind == "music":
        base, music = music_mix(rng, seconds, rate)
        tempo, key = music["tempo"], music["key"]
    else:
        base = colored_noise(rng, n, rate, str(rng.choice(("white", "pink"))))
        base /= float(np.abs(base).max())
        music = {}
    gain_db = np.zeros(n)
    steps: list[dict[str, float]] = []
    pos = 0
    while pos < n:
        length = min(n - pos, int(rng.uniform(2.0, 8.0) * rate))
        level = float(rng.uniform(-35.0, 0.0))
        fade = bool(rng.random() < 0.3)
        previous = gain_db[pos - 1] if pos else level
        gain_db[pos : pos + length] = np.linspace(previous, level, length) if fade else level
        steps.append({"start_s": pos / rate, "gain_db": level, "fade": float(fade)})
        pos += length
    gain = 10.0 ** (gain_db / 20.0)
    mix = base * (gain[:, None] if base.ndim == 2 else gain)
    mix, peak = _finish_mix(rng, mix, peak_db=(-6.0, -0.5))
    params: Params = {"base": base_kind, "steps": steps, "peak_dbfs": peak, "music": music}
    return _Clip(_to_channels(rng, mix, channels), rate, tempo, key, params)


# --------------------------------------------------------------------------------------
# MIDI: a Standard MIDI File writer, a song generator, fluidsynth rendering
# --------------------------------------------------------------------------------------

#: General MIDI programs (0-based) the ``midi`` kind draws from, per part.
_GM_PADS = {"acoustic_grand": 0, "electric_piano": 4, "drawbar_organ": 16, "strings": 48, "warm_pad": 89}
_GM_BASSES = {"acoustic_bass": 32, "finger_bass": 33, "picked_bass": 34, "synth_bass": 38}
_GM_LEADS = {"nylon_guitar": 24, "vibraphone": 11, "trumpet": 56, "alto_sax": 65, "flute": 73,
             "square_lead": 80}
#: General MIDI percussion keys (channel 10) of the drum parts.
_GM_DRUMS = {"kick": 36, "snare": 38, "hat": 42, "open_hat": 46}
TICKS_PER_BEAT = 480


@dataclass(frozen=True)
class MidiNote:
    """One note of a song: start and length in beats, MIDI key, velocity 1-127, channel 0-15."""

    beat: float
    beats: float
    key: int
    velocity: int
    channel: int


def _vlq(value: int) -> bytes:
    """MIDI variable-length quantity of ``value`` (>= 0)."""
    out = [value & 0x7F]
    value >>= 7
    while value:
        out.append(0x80 | (value & 0x7F))
        value >>= 7
    return bytes(reversed(out))


def key_signature(tonic: int, mode: str) -> tuple[int, int]:
    """``(sharps, minor)`` of the key-signature meta event: sharps -7..7 (negative: flats)."""
    major_tonic = (tonic + 3) % 12 if mode == "minor" else tonic
    sharps = (major_tonic * 7) % 12
    return (sharps - 12 if sharps > 6 else sharps), int(mode == "minor")


def write_smf(notes: Sequence[MidiNote], *, tempo_bpm: float, tonic: int, mode: str,
              programs: dict[int, int]) -> bytes:
    """A format-0 Standard MIDI File: tempo, 4/4, key signature, programs, then ``notes``.

    ``programs`` maps channel -> General MIDI program (0-based); channel 9 is percussion.
    Times are in beats at :data:`TICKS_PER_BEAT` ticks per beat; the tempo is stored as
    microseconds per beat (rounded), so a reader gets ``tempo_bpm`` back within 1e-4 BPM.
    """
    sharps, minor = key_signature(tonic, mode)
    usec = round(60_000_000 / tempo_bpm)
    # (tick, order, bytes): at one tick, meta first, then note-offs, then note-ons.
    events: list[tuple[int, int, bytes]] = [
        (0, 0, b"\xff\x51\x03" + usec.to_bytes(3, "big")),
        (0, 0, b"\xff\x58\x04\x04\x02\x18\x08"),
        (0, 0, b"\xff\x59\x02" + (sharps & 0xFF).to_bytes(1, "big") + bytes([minor])),
    ]
    events += [(0, 1, bytes([0xC0 | ch, program])) for ch, program in sorted(programs.items())]
    for note in notes:
        on = round(note.beat * TICKS_PER_BEAT)
        off = max(on + 1, round((note.beat + note.beats) * TICKS_PER_BEAT))
        events.append((on, 3, bytes([0x90 | note.channel, note.key, note.velocity])))
        events.append((off, 2, bytes([0x80 | note.channel, note.key, 0])))
    events.sort(key=lambda e: (e[0], e[1]))
    track = bytearray()
    last = 0
    for tick, _, data in events:
        track += _vlq(tick - last) + data
        last = tick
    track += b"\x00\xff\x2f\x00"
    header = b"MThd" + (6).to_bytes(4, "big") + (0).to_bytes(2, "big") + (1).to_bytes(2, "big")
    header += TICKS_PER_BEAT.to_bytes(2, "big")
    return header + b"MTrk" + len(track).to_bytes(4, "big") + bytes(track)


def midi_song(rng: np.random.Generator, seconds: float, *,
              tempo: float | None = None) -> tuple[list[MidiNote], dict[int, int], Params]:
    """A song of about ``seconds`` s: notes, channel programs and the params drawn.

    Pad chords (channel 0), a bass line (1), an arpeggio or melody lead (2) on a chord
    progression in a drawn key, and a drum pattern (channel 9, never ``none``: the clip's
    pulse is meant to be heard). Params hold ``tempo`` (BPM), ``key``, ``tonic``, ``mode``,
    the programs and the pattern.
    """
    bpm = float(tempo if tempo is not None else round(float(rng.uniform(70.0, 160.0)), 2))
    mode = str(rng.choice(("major", "minor"), p=(0.6, 0.4)))
    tonic = int(rng.integers(12))
    scale = _SCALES[mode]
    progression = _PROGRESSIONS[mode][int(rng.integers(len(_PROGRESSIONS[mode])))]
    beats_per_chord = int(rng.choice((2, 4, 4)))
    pattern = str(rng.choice(tuple(p for p in _DRUM_PATTERNS if p != "kick_only")))
    pad = str(rng.choice(tuple(_GM_PADS)))
    bass = str(rng.choice(tuple(_GM_BASSES)))
    lead = str(rng.choice(tuple(_GM_LEADS)))
    lead_style = str(rng.choice(("arpeggio", "melody")))
    total_beats = seconds * bpm / 60.0

    def degree_key(degree: int, base: int) -> int:
        return base + tonic + scale[degree % 7] + 12 * (degree // 7)

    notes: list[MidiNote] = []
    for c in range(int(np.ceil(total_beats / beats_per_chord))):
        degree = progression[c % len(progression)]
        start = float(c * beats_per_chord)
        for step in (0, 2, 4):
            notes.append(MidiNote(start, beats_per_chord * 0.95, degree_key(degree + step, 48),
                                  int(rng.integers(50, 70)), 0))
        for b in range(beats_per_chord):
            notes.append(MidiNote(start + b, 0.8, degree_key(degree, 36), int(rng.integers(80, 100)), 1))
    degree_pos = 0
    for i, lead_beat in enumerate(np.arange(0.0, total_beats, 0.5)):
        if rng.random() < 0.2:
            continue
        chord = progression[int(lead_beat // beats_per_chord) % len(progression)]
        if lead_style == "arpeggio":
            key = degree_key(chord + (0, 2, 4, 7)[i % 4], 60)
        else:
            degree_pos = int(np.clip(degree_pos + rng.choice((-2, -1, 1, 1, 2)), -3, 9))
            key = degree_key(chord + degree_pos, 60)
        notes.append(MidiNote(float(lead_beat), 0.45, key, int(rng.integers(60, 90)), 2))
    kicks, snares, hats = _DRUM_PATTERNS[pattern]
    for bar in range(int(np.ceil(total_beats / 4))):
        for steps, drum, velocity in ((kicks, "kick", 110), (snares, "snare", 95), (hats, "hat", 60)):
            for step in steps:
                notes.append(MidiNote(bar * 4 + step / 4.0, 0.1, _GM_DRUMS[drum], velocity, 9))
    notes = [n for n in notes if n.beat < total_beats]
    programs = {0: _GM_PADS[pad], 1: _GM_BASSES[bass], 2: _GM_LEADS[lead]}
    params: Params = {
        "tempo": bpm, "key": f"{NOTE_NAMES[tonic]} {mode}", "tonic": tonic, "mode": mode,
        "progression": list(progression), "beats_per_chord": beats_per_chord, "pattern": pattern,
        "programs": {"pad": pad, "bass": bass, "lead": lead}, "lead_style": lead_style,
        "notes": len(notes),
    }
    return notes, programs, params


def render_fluidsynth(smf: bytes, rate: int, *, soundfont: Path = SOUNDFONT) -> F64 | None:
    """Stereo float ``[n, 2]`` of ``smf`` rendered by fluidsynth at ``rate`` Hz.

    ``None`` when the ``fluidsynth`` program or the soundfont is missing. Runs
    ``fluidsynth -ni -F out.wav -r RATE SOUNDFONT in.mid`` (no audio driver, no shell).
    """
    exe = shutil.which("fluidsynth")
    if exe is None or not soundfont.is_file():
        return None
    with tempfile.TemporaryDirectory() as tmp:
        mid, wav = Path(tmp) / "song.mid", Path(tmp) / "song.wav"
        mid.write_bytes(smf)
        subprocess.run([exe, "-ni", "-q", "-F", str(wav), "-r", str(rate), str(soundfont), str(mid)],
                       check=True, capture_output=True, timeout=300)
        data, got = sf.read(wav, dtype="float64", always_2d=True)
    if got != rate:  # pragma: no cover - fluidsynth honours -r
        raise RuntimeError(f"fluidsynth rendered {got} Hz instead of {rate} Hz")
    out: F64 = np.asarray(data, dtype=np.float64)
    return out


def render_numpy(notes: Sequence[MidiNote], tempo_bpm: float, seconds: float, rate: int,
                 rng: np.random.Generator) -> F64:
    """The fallback renderer: ``notes`` on the wavetable synth and drum kit, mono ``[n]``."""
    beat = 60.0 / tempo_bpm
    n = round(seconds * rate)
    out = np.zeros(n)
    tables = _Wavetables(rate)
    kit = _drum_kit(rng, rate)
    drums = {key: name for name, key in _GM_DRUMS.items()}
    timbres = {0: "organ", 1: "triangle", 2: "pluck"}
    for note in notes:
        start = round(note.beat * beat * rate)
        gain = note.velocity / 127.0
        if note.channel == 9:
            _add(out, 0.8 * gain * kit[drums[note.key]], start)
            continue
        length = max(1, int(note.beats * beat * rate))
        env = _envelope(length, rate, attack=0.01, decay=0.4, sustain=0.5, release=0.03)
        tone = tables.render(timbres.get(note.channel, "sine"), midi_to_hz(note.key), length)
        _add(out, 0.3 * gain * tone * env, start)
    return out


def _gen_midi(rng: np.random.Generator, seconds: float, rate: int, channels: int) -> _Clip:
    notes, programs, params = midi_song(rng, seconds)
    smf = write_smf(notes, tempo_bpm=params["tempo"], tonic=params["tonic"], mode=params["mode"],
                    programs=programs)
    rendered = render_fluidsynth(smf, rate)
    if rendered is None:
        mix = render_numpy(notes, params["tempo"], seconds, rate, rng)
        params["renderer"] = "numpy-wavetable (fluidsynth or its soundfont not found)"
    else:
        mix = rendered
        params["renderer"] = f"fluidsynth {SOUNDFONT.name}"
    n = round(seconds * rate)
    mix = mix[:n] if mix.shape[0] >= n else np.concatenate((mix, np.zeros((n - mix.shape[0], *mix.shape[1:]))))
    mix, params["peak_dbfs"] = _finish_mix(rng, mix, peak_db=(-12.0, -1.0))
    return _Clip(_to_channels(rng, mix, channels), rate, params["tempo"], params["key"], params,
                 attachments={"mid": smf})


_GENERATORS: dict[str, Callable[[np.random.Generator, float, int, int], _Clip]] = {
    "music": _gen_music,
    "speech": _gen_speech,
    "speech_music": _gen_speech_music,
    "noise": _gen_noise,
    "silence": _gen_silence,
    "silence_tone": _gen_silence_tone,
    "sweep": _gen_sweep,
    "level_change": _gen_level_change,
    "midi": _gen_midi,
}


# --------------------------------------------------------------------------------------
# Corpus
# --------------------------------------------------------------------------------------


def clip_seed(seed: int, index: int) -> int:
    """The seed of clip ``index`` of a corpus seeded with ``seed`` (stable across versions)."""
    return int(np.random.SeedSequence([seed, index]).generate_state(1)[0])


def generate_clip(kind: str, seconds: float, seed: int) -> tuple[F32, int, Params]:
    """Generate one clip of ``kind`` lasting ``seconds`` s from its own ``seed``.

    Returns float32 samples ``[n, channels]`` in [-1, 1], the sample rate (Hz) and
    metadata ``{"tempo", "key", "params", "attachments"}`` (``attachments``: files to keep
    next to the audio by suffix, e.g. the ``.mid`` of a ``midi`` clip). The rate and
    channel count are drawn too.
    """
    if kind not in _GENERATORS:
        raise ValueError(f"unknown kind {kind!r}; known: {', '.join(KINDS)}")
    rng = np.random.default_rng(seed)
    rate = int(rng.choice(SAMPLE_RATES, p=_RATE_WEIGHTS))
    channels = int(rng.choice((1, 2), p=(0.3, 0.7)))
    clip = _GENERATORS[kind](rng, seconds, rate, channels)
    samples = np.clip(clip.samples, -1.0, 1.0).astype(np.float32)
    return samples, clip.sample_rate, {"tempo": clip.tempo, "key": clip.key, "params": clip.params,
                                       "attachments": clip.attachments}


def _durations(n_clips: int, seconds: float | tuple[float, float], seed: int) -> list[float]:
    if isinstance(seconds, tuple):
        rng = np.random.default_rng([seed, 1_000_003])
        return [round(float(rng.uniform(*seconds)), 3) for _ in range(n_clips)]
    return [float(seconds)] * n_clips


def _request(n_clips: int, seconds: float | tuple[float, float], seed: int, fmt: str,
             kinds: Sequence[str], midi_clips: int) -> dict[str, Any]:
    return {"generator_version": GENERATOR_VERSION, "n_clips": n_clips,
            "seconds": list(seconds) if isinstance(seconds, tuple) else seconds,
            "seed": seed, "format": fmt, "kinds": list(kinds), "midi_clips": midi_clips}


def default_midi_clips(n_clips: int) -> int:
    """``midi`` clips appended to a corpus of ``n_clips`` cycle clips by default (one per ten)."""
    return int(n_clips * MIDI_SHARE)


def load_manifest(out_dir: Path) -> tuple[dict[str, Any], list[CorpusItem]]:
    """Read ``out_dir/manifest.json``: the build request and the items (absolute paths)."""
    data = json.loads((out_dir / MANIFEST).read_text())
    items = [CorpusItem(path=out_dir / entry["file"], **entry) for entry in data["clips"]]
    return data["request"], items


def build_corpus(
    out_dir: Path | str = DEFAULT_OUT,
    n_clips: int = 60,
    seconds: float | tuple[float, float] = (20.0, 30.0),
    seed: int = 0,
    *,
    fmt: str = "wav",
    kinds: Sequence[str] = KIND_CYCLE,
    midi_clips: int | None = None,
    force: bool = False,
) -> list[CorpusItem]:
    """Generate the clips into ``out_dir`` and write the manifest; return the items.

    ``n_clips`` clips take the kinds of ``kinds`` in turn (default: :data:`KIND_CYCLE`,
    about half music); then ``midi_clips`` ``midi`` clips are appended (default
    :func:`default_midi_clips`: one per ten), each with its ``.mid`` file, so the first
    ``n_clips`` are the same files whatever ``midi_clips`` is. ``seconds`` is each clip's
    duration (s), or a ``(low, high)`` range drawn per clip; ``seed`` fixes everything;
    ``fmt`` is ``"wav"`` or ``"flac"`` (16-bit either way). If ``out_dir`` already holds a
    corpus built with the same request and all its files, it is reused unless ``force``.
    The manifest's ``notes`` say when a fallback renderer stood in (no fluidsynth).
    """
    out = Path(out_dir)
    if fmt not in ("wav", "flac"):
        raise ValueError("fmt must be 'wav' or 'flac'")
    unknown = [k for k in kinds if k not in _GENERATORS]
    if unknown or not kinds:
        raise ValueError(f"unknown or no kinds: {unknown}")
    n_midi = default_midi_clips(n_clips) if midi_clips is None else midi_clips
    if n_midi < 0:
        raise ValueError("midi_clips must be >= 0")
    request = _request(n_clips, seconds, seed, fmt, kinds, n_midi)
    if not force and (out / MANIFEST).exists():
        try:
            old_request, old_items = load_manifest(out)
        except (ValueError, KeyError, TypeError):
            old_request, old_items = {}, []
        if old_request == request and all(item.path.exists() for item in old_items):
            return old_items
    out.mkdir(parents=True, exist_ok=True)
    for stale in out.glob("clip_*.*"):
        stale.unlink()
    items: list[CorpusItem] = []
    plan = [kinds[i % len(kinds)] for i in range(n_clips)] + ["midi"] * n_midi
    notes: set[str] = set()
    for index, duration in enumerate(_durations(len(plan), seconds, seed)):
        kind = plan[index]
        cseed = clip_seed(seed, index)
        samples, rate, meta = generate_clip(kind, duration, cseed)
        name = f"clip_{index:04d}_{kind}.{fmt}"
        sf.write(out / name, samples, rate, subtype="PCM_16", format=fmt.upper())
        for suffix, data in meta["attachments"].items():
            attachment = f"clip_{index:04d}_{kind}.{suffix}"
            (out / attachment).write_bytes(data)
            meta["params"][f"{suffix}_file"] = attachment
        renderer = str(meta["params"].get("renderer", ""))
        if renderer.startswith("numpy"):
            notes.add(f"{kind} clips: {renderer}")
        if meta["params"].get("source") == "numpy-babble":
            notes.add("speech clips: numpy babble (espeak-ng not found)")
        items.append(CorpusItem(
            path=out / name, file=name, kind=kind, seconds=samples.shape[0] / rate, seed=cseed,
            sample_rate=rate, channels=int(samples.shape[1]), tempo=meta["tempo"], key=meta["key"],
            params=meta["params"],
        ))
    manifest = {"request": request, "notes": sorted(notes), "clips": [item.to_json() for item in items]}
    (out / MANIFEST).write_text(json.dumps(manifest, indent=1) + "\n")
    return items


def parse_seconds(text: str) -> float | tuple[float, float]:
    """``"25"`` -> 25.0; ``"20-30"`` -> (20.0, 30.0) (seconds)."""
    if "-" in text.strip("-"):
        low, high = text.split("-", 1)
        return float(low), float(high)
    return float(text)


def main(argv: Sequence[str] | None = None) -> int:
    """CLI entry point: build the corpus and print a one-line summary."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT, help="output directory")
    parser.add_argument("--clips", type=int, default=60, help="number of clips")
    parser.add_argument("--seconds", type=parse_seconds, default=(20.0, 30.0),
                        help="clip duration in s, or a range LOW-HIGH (default 20-30)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--format", choices=("wav", "flac"), default="wav")
    parser.add_argument("--midi-clips", type=int, default=None,
                        help="midi clips appended after the --clips clips (default: one per ten)")
    parser.add_argument("--force", action="store_true", help="rebuild even if a matching corpus exists")
    args = parser.parse_args(argv)
    start = time.perf_counter()
    items = build_corpus(args.out, args.clips, args.seconds, args.seed, fmt=args.format,
                         midi_clips=args.midi_clips, force=args.force)
    counts: dict[str, int] = {}
    for item in items:
        counts[item.kind] = counts.get(item.kind, 0) + 1
    total = sum(item.seconds for item in items)
    print(f"{len(items)} clips, {total:.0f} s of audio in {args.out} "
          f"({', '.join(f'{k} {v}' for k, v in counts.items())}) in {time.perf_counter() - start:.1f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
