"""The extractor's identity, parameters and output columns (no librosa here: the schema preset,
the bundle manifest and the server read these without loading the audio stack).

Column names follow the GTZAN feature-table layout (``filename, length, chroma_stft_mean, ...,
tempo, mfcc1_mean ... mfcc20_var, label``) for every descriptor that layout has, so published
tables of that shape and this extractor's output index with the same schema preset. Extra
descriptors are named the same way: ``<descriptor>_mean`` / ``<descriptor>_var`` for summaries
over frames, a bare name for one value per clip.
"""

from __future__ import annotations

import dataclasses
from typing import Any

EXTRACTOR_NAME = "musicrec-librosa"
# Bump whenever a descriptor's definition or a default parameter changes: a bundle records the
# version it was built with, and audio queries against it must be extracted identically.
EXTRACTOR_VERSION = 1


@dataclasses.dataclass(frozen=True, kw_only=True)
class ExtractorParams:
    """Everything that decides the numbers. Recorded in the extraction sidecar and the bundle
    manifest; an audio query is analysed with the bundle's own values."""

    sample_rate: int = 22_050  # every clip is mixed to mono and resampled (soxr HQ) to this rate
    n_fft: int = 2048
    hop_length: int = 512
    n_mels: int = 128
    n_mfcc: int = 20
    # harmonic/percussive split: median filters over a mel spectrogram pooled to hop * hpss_pool,
    # kernel hpss_kernel frames by hpss_kernel bands (see _analysis.harmonic_percussive)
    hpss_kernel: int = 17
    hpss_pool: int = 2
    min_seconds: float = 2.0  # shorter clips (or segments) are refused as "too short"
    silence_dbfs: float = -60.0  # a clip whose loudest sample is below this is "silent"

    def to_json(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> ExtractorParams:
        known = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(data) - known)
        if unknown:
            raise ValueError(f"unknown extractor parameter(s) {unknown}")
        return cls(**data)


N_MFCC = 20
N_CONTRAST = 7  # librosa.feature.spectral_contrast: 6 bands + the residual

# The GTZAN layout's descriptors, in its order (``length`` is metadata here: it is the clip's
# sample count, a property of the file, not of the music).
GTZAN_FEATURES: tuple[str, ...] = (
    "chroma_stft_mean", "chroma_stft_var", "rms_mean", "rms_var",
    "spectral_centroid_mean", "spectral_centroid_var", "spectral_bandwidth_mean", "spectral_bandwidth_var",
    "rolloff_mean", "rolloff_var", "zero_crossing_rate_mean", "zero_crossing_rate_var",
    "harmony_mean", "harmony_var", "perceptr_mean", "perceptr_var", "tempo",
    *(f"mfcc{i}_{s}" for i in range(1, N_MFCC + 1) for s in ("mean", "var")),
)  # fmt: skip

# Descriptors GTZAN tables lack, in the same naming style.
EXTRA_FEATURES: tuple[str, ...] = (
    "tempo_confidence", "beat_strength", "beat_regularity", "onset_rate",
    "key", "mode", "key_strength", "loudness", "loudness_range",
    "spectral_flatness_mean", "spectral_flatness_var",
    *(f"spectral_contrast{i}_{s}" for i in range(1, N_CONTRAST + 1) for s in ("mean", "var")),
    "harmonic_ratio_mean", "harmonic_ratio_var",
    *(f"chroma{i}_{s}" for i in range(1, 13) for s in ("mean", "var")),
)  # fmt: skip

DESCRIPTORS: tuple[str, ...] = GTZAN_FEATURES + EXTRA_FEATURES

# What each descriptor means (README and `musicrec extract --help` point here).
DESCRIPTOR_DOCS: dict[str, str] = {
    "chroma_stft": "energy share of the strongest pitch class per frame (12-bin STFT chroma, tuning fixed at A440)",
    "rms": "frame root-mean-square amplitude",
    "spectral_centroid": "frame spectral centroid, Hz",
    "spectral_bandwidth": "frame spectral spread around the centroid, Hz",
    "rolloff": "frequency below which 85% of the frame's energy lies, Hz",
    "zero_crossing_rate": "share of sign changes per frame",
    "harmony / perceptr": "mean and variance of the harmonic / percussive waveform (GTZAN's meaning), "
                          "from a median-filter split of a pooled mel spectrogram",
    "tempo": "beats per minute (librosa beat tracker)",
    "mfccN": "mel-frequency cepstral coefficients 1..20 of the mel power spectrogram in dB",
    "tempo_confidence": "autocorrelation tempogram strength at the tempo's lag, 0..1",
    "beat_strength": "onset strength on beats over the mean onset strength",
    "beat_regularity": "1 - coefficient of variation of the beat intervals, 0..1",
    "onset_rate": "onsets per second",
    "key / mode / key_strength": "Krumhansl-Kessler template matching of the mean root chroma energy: pitch "
                                 "class 0..11 (C=0), 1 major / 0 minor, the winning correlation",
    "loudness": "mean power in dBFS",
    "loudness_range": "spread of frame levels, dB (95th - 10th percentile of frames above -70 dBFS)",
    "spectral_flatness": "frame tonality: near 0 for tones, near 1 for white noise",
    "spectral_contrastN": "peak-to-valley level in 7 octave bands, dB",
    "harmonic_ratio": "harmonic share of each frame's energy, 0..1",
    "chromaN": "energy share of pitch class N (1 = C ... 12 = B)",
}

# Metadata columns the extractor writes besides the descriptors. ``song`` names the recording a
# row comes from (one row per segment with --segment-seconds); ``sha256`` keys resumable runs.
ID_COLUMN = "filename"
LABEL_COLUMN = "label"
METADATA_COLUMNS: tuple[str, ...] = (
    "title", "artist", "album", "song", "segment", "start_seconds", "duration", "clipped_fraction", "sha256")


def csv_columns() -> tuple[str, ...]:
    """The extractor's CSV header, GTZAN's order first."""
    return (ID_COLUMN, "length", *DESCRIPTORS, LABEL_COLUMN, *METADATA_COLUMNS)


def extractor_info(params: ExtractorParams) -> dict[str, Any]:
    """The block recorded in the extraction sidecar and the bundle manifest."""
    return {"name": EXTRACTOR_NAME, "version": EXTRACTOR_VERSION, "params": params.to_json()}
