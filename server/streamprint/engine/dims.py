"""The dimension registry: the single source of truth about every fingerprint dimension.

Everything that builds, compares, normalises or prints a fingerprint looks dimensions up
here by name; no code relies on a dimension's position.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from enum import StrEnum


class Modality(StrEnum):
    """What kind of media a dimension describes."""

    AUDIO = "audio"
    VIDEO = "video"


class ToleranceKind(StrEnum):
    """How the tolerance of a dimension is applied.

    ``ABSOLUTE``: ``|a - b| <= tol``.
    ``RELATIVE``: ``|a - b| <= tol * max(|reference|, floor)``.
    """

    ABSOLUTE = "absolute"
    RELATIVE = "relative"


@dataclass(frozen=True)
class Dimension:
    """Static description of one fingerprint dimension.

    ``low``/``high`` give the range used to normalise values for similarity. A bounded
    quantity (a ratio, a share, a correlation, a frequency below Nyquist, a tempo on the
    30-300 BPM grid) never leaves it. Values of ordinary media lie inside it, but a few
    unbounded measures can exceed it on extreme media and are reported as measured:
    ``integrated_lufs`` above 0 (full-scale multichannel), ``crest_db`` and
    ``dynamic_range_variation`` of lone clicks in silence, ``scene_cut_rate`` of a strobe,
    ``colorfulness`` and ``sharpness`` of synthetic patterns. :meth:`normalise` clips them.
    ``tolerance`` and ``tolerance_floor`` define "the same value" for validation and
    confidence; ``streamed`` marks the 13 dimensions live streams carry; ``critical``
    dimensions fail a validation report on their own.
    """

    name: str
    modality: Modality
    group: str
    unit: str
    low: float
    high: float
    tolerance: float
    tolerance_kind: ToleranceKind
    streamed: bool
    critical: bool
    description: str
    tolerance_floor: float = 0.0

    def tolerance_for(self, reference: float) -> float:
        """Absolute tolerance (in ``unit``) around ``reference``."""
        if self.tolerance_kind is ToleranceKind.RELATIVE:
            return self.tolerance * max(abs(reference), self.tolerance_floor)
        return self.tolerance

    def normalise(self, value: float) -> float:
        """Map ``value`` to [0, 1] by the valid range (clipped)."""
        span = self.high - self.low
        return min(1.0, max(0.0, (value - self.low) / span))


_A = Modality.AUDIO
_ABS = ToleranceKind.ABSOLUTE
_REL = ToleranceKind.RELATIVE

#: Every audio dimension; the first 13 (``streamed=True``) are the streamed fingerprint.
AUDIO_DIMENSIONS: tuple[Dimension, ...] = (
    Dimension("spectral_centroid", _A, "spectral", "Hz", 0.0, 11025.0, 0.05, _REL, True, True,
              "Mean spectral centroid over non-silent frames", tolerance_floor=50.0),
    Dimension("spectral_rolloff", _A, "spectral", "Hz", 0.0, 11025.0, 0.05, _REL, True, False,
              "Mean 85 % spectral roll-off frequency over non-silent frames", tolerance_floor=50.0),
    Dimension("spectral_flatness", _A, "spectral", "ratio", 0.0, 1.0, 0.02, _ABS, True, False,
              "Mean spectral flatness (geometric / arithmetic mean of power) over non-silent frames"),
    Dimension("chroma_energy", _A, "harmonic", "ratio", 1.0 / 12.0, 1.0, 0.03, _ABS, True, False,
              "Mean chroma concentration (max / sum of the 12 chroma bins) over non-silent frames"),
    Dimension("harmonic_ratio", _A, "harmonic", "ratio", 0.0, 1.0, 0.05, _ABS, True, False,
              "Energy share of the harmonic part after median-filter HPSS"),
    Dimension("pitch_stability", _A, "harmonic", "ratio", 0.0, 1.0, 0.05, _ABS, True, False,
              "Share of consecutive voiced frame pairs whose f0 moves less than 50 cents"),
    Dimension("tempo_bpm", _A, "temporal", "BPM", 0.0, 300.0, 0.04, _REL, True, True,
              "Tempo from the autocorrelation of the onset-strength envelope (0: no pulse)",
              tolerance_floor=30.0),
    Dimension("rhythm_stability", _A, "temporal", "ratio", 0.0, 1.0, 0.05, _ABS, True, False,
              "1 - coefficient of variation of inter-onset intervals"),
    Dimension("transient_density", _A, "temporal", "1/s", 0.0, 20.0, 0.10, _REL, True, False,
              "Detected onsets per second", tolerance_floor=2.0),
    Dimension("silence_ratio", _A, "temporal", "ratio", 0.0, 1.0, 0.02, _ABS, True, False,
              "Share of frames whose RMS is below -60 dBFS"),
    Dimension("loudness_variation_std", _A, "variation", "dB", 0.0, 40.0, 1.0, _ABS, True, False,
              "Standard deviation of frame RMS level over non-silent frames"),
    Dimension("dynamic_range_variation", _A, "variation", "dB", 0.0, 20.0, 1.0, _ABS, True, False,
              "Standard deviation of the per-second crest factor"),
    Dimension("peak_consistency", _A, "variation", "ratio", 0.0, 1.0, 0.05, _ABS, True, False,
              "1 - coefficient of variation of per-second peaks"),
    Dimension("band_sub_bass", _A, "bands", "ratio", 0.0, 1.0, 0.02, _ABS, False, False,
              "Energy share of 20-60 Hz"),
    Dimension("band_bass", _A, "bands", "ratio", 0.0, 1.0, 0.02, _ABS, False, False,
              "Energy share of 60-250 Hz"),
    Dimension("band_low_mid", _A, "bands", "ratio", 0.0, 1.0, 0.02, _ABS, False, False,
              "Energy share of 250-500 Hz"),
    Dimension("band_mid", _A, "bands", "ratio", 0.0, 1.0, 0.02, _ABS, False, False,
              "Energy share of 500-2000 Hz"),
    Dimension("band_upper_mid", _A, "bands", "ratio", 0.0, 1.0, 0.02, _ABS, False, False,
              "Energy share of 2-4 kHz"),
    Dimension("band_presence", _A, "bands", "ratio", 0.0, 1.0, 0.02, _ABS, False, False,
              "Energy share of 4-6 kHz"),
    Dimension("band_air", _A, "bands", "ratio", 0.0, 1.0, 0.02, _ABS, False, False,
              "Energy share of 6 kHz to the analysis Nyquist (11025 Hz)"),
    Dimension("integrated_lufs", _A, "loudness", "LUFS", -70.0, 0.0, 0.5, _ABS, False, True,
              "ITU-R BS.1770-4 gated integrated loudness of the native-rate input"),
    Dimension("crest_db", _A, "loudness", "dB", 0.0, 40.0, 1.0, _ABS, False, False,
              "Peak-to-RMS ratio of the native-rate input"),
    Dimension("bass_mid_ratio", _A, "loudness", "dB", -60.0, 60.0, 1.0, _ABS, False, False,
              "Energy of 60-250 Hz relative to 500-2000 Hz"),
    Dimension("stereo_width", _A, "stereo", "ratio", 0.0, 1.0, 0.03, _ABS, False, False,
              "Side energy / (mid + side energy) of the first two channels; mono gives 0"),
    Dimension("phase_correlation", _A, "stereo", "ratio", -1.0, 1.0, 0.05, _ABS, False, False,
              "Correlation of the first two channels; mono gives 1"),
)

ALGORITHM_AUDIO_13D = "audio-13d/1"
ALGORITHM_AUDIO_25D = "audio-25d/1"

_V = Modality.VIDEO

#: The 13 video dimensions (all streamed; unary and batch give the same 13). Luma is
#: BT.601 from full-range RGB at the analysis size, 0-255 "levels"; exact rules and the
#: reason for every tolerance are in docs/fingerprint.md ("Video 13D").
VIDEO_DIMENSIONS: tuple[Dimension, ...] = (
    Dimension("brightness_mean", _V, "tone", "ratio", 0.0, 1.0, 0.02, _ABS, True, True,
              "Mean luma / 255 over analysed frames"),
    Dimension("brightness_variation", _V, "tone", "ratio", 0.0, 0.5, 0.02, _ABS, True, False,
              "Standard deviation over analysed frames of the frame mean luma / 255"),
    Dimension("contrast", _V, "tone", "ratio", 0.0, 0.5, 0.02, _ABS, True, False,
              "Mean over analysed frames of the RMS contrast (luma std / 255)"),
    Dimension("saturation_mean", _V, "colour", "ratio", 0.0, 1.0, 0.03, _ABS, True, False,
              "Mean HSV saturation (max - min) / max over pixels and analysed frames"),
    Dimension("colorfulness", _V, "colour", "M", 0.0, 200.0, 3.0, _ABS, True, True,
              "Mean Hasler-Suesstrunk colourfulness M (RGB 0-255) over analysed frames"),
    Dimension("sharpness", _V, "detail", "log10 level^2", 0.0, 5.0, 0.1, _ABS, True, False,
              "Mean log10(1 + Laplacian variance of luma) over non-black analysed frames"),
    Dimension("edge_density", _V, "detail", "ratio", 0.0, 1.0, 0.02, _ABS, True, False,
              "Mean share of pixels whose Sobel gradient magnitude exceeds 10 % of full scale"),
    Dimension("spatial_information", _V, "detail", "level", 0.0, 250.0, 0.05, _REL, True, True,
              "ITU-T P.910 SI per analysed frame (std of the Sobel magnitude), mean over frames",
              tolerance_floor=20.0),
    Dimension("temporal_information", _V, "motion", "level", 0.0, 150.0, 0.10, _REL, True, False,
              "ITU-T P.910 TI per analysed frame pair (std of the luma difference), mean over pairs",
              tolerance_floor=5.0),
    Dimension("motion_intensity", _V, "motion", "level", 0.0, 100.0, 1.0, _ABS, True, False,
              "Mean absolute luma difference of consecutive analysed frames, cuts excluded"),
    Dimension("motion_stability", _V, "motion", "ratio", 0.0, 1.0, 0.05, _ABS, True, False,
              "1 - coefficient of variation of the per-pair motion (clipped to 0-1)"),
    Dimension("scene_cut_rate", _V, "structure", "1/min", 0.0, 60.0, 0.20, _REL, True, False,
              "Hard cuts per minute of media", tolerance_floor=10.0),
    Dimension("black_frame_ratio", _V, "structure", "ratio", 0.0, 1.0, 0.02, _ABS, True, False,
              "Share of analysed frames with >= 98 % of pixels at luma <= 10 % of full scale"),
)

ALGORITHM_VIDEO_13D = "video-13d/1"

_BY_NAME: dict[str, Dimension] = {d.name: d for d in AUDIO_DIMENSIONS + VIDEO_DIMENSIONS}


def get(name: str) -> Dimension:
    """Look a dimension up by name; raises ``KeyError`` for unknown names."""
    return _BY_NAME[name]


def known(name: str) -> bool:
    """Whether ``name`` is a registered dimension."""
    return name in _BY_NAME


def names(modality: Modality = Modality.AUDIO, *, streamed_only: bool = False) -> tuple[str, ...]:
    """Dimension names of ``modality`` in registry order (display order only)."""
    return tuple(
        d.name
        for d in _BY_NAME.values()
        if d.modality is modality and (d.streamed or not streamed_only)
    )


AUDIO_13D: tuple[str, ...] = names(Modality.AUDIO, streamed_only=True)
AUDIO_25D: tuple[str, ...] = names(Modality.AUDIO)
VIDEO_13D: tuple[str, ...] = names(Modality.VIDEO, streamed_only=True)


def algorithm_for(dimension_names: Iterable[str]) -> str:
    """Algorithm id of a fingerprint carrying ``dimension_names``."""
    wanted = set(dimension_names)
    if wanted and wanted <= set(VIDEO_13D):
        return ALGORITHM_VIDEO_13D
    return ALGORITHM_AUDIO_25D if wanted - set(AUDIO_13D) else ALGORITHM_AUDIO_13D


def ordered(values: Mapping[str, float]) -> dict[str, float]:
    """``values`` re-keyed in registry order (for stable printing)."""
    return {n: values[n] for n in _BY_NAME if n in values}
