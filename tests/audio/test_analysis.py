"""Descriptors find what was planted: properties, not exact numbers."""

from __future__ import annotations

import numpy as np
import pytest

from engine.audio import DESCRIPTORS, BadAudio, analyse, decode, describe, segments
from engine.audio._synth import STYLES, chord_pad, click_track, song
from tests.audio.conftest import PARAMS, SR, encode

pytestmark = pytest.mark.usefixtures("warm")


def near_tempo(found: float, planted: float, tolerance: float = 0.02) -> bool:
    """Within 2% of the planted tempo, or of half or double it (an octave error)."""
    return any(abs(found - planted * m) <= tolerance * planted * m for m in (0.5, 1.0, 2.0))


@pytest.mark.parametrize("bpm", [90.0, 128.0])
def test_tempo_of_a_click_track(bpm: float) -> None:
    row = describe(click_track(bpm, 12.0).astype(np.float32), SR, PARAMS)
    assert near_tempo(row["tempo"], bpm), row["tempo"]
    assert row["tempo_confidence"] > 0.3
    assert row["beat_regularity"] > 0.8


def test_tempo_of_a_planted_song() -> None:
    style = next(s for s in STYLES if s.name == "electronic")
    row = describe(song(style, bpm=126.0, root=9, seconds=12.0), SR, PARAMS)
    assert near_tempo(row["tempo"], 126.0), row["tempo"]


@pytest.mark.parametrize(("root", "minor"), [(0, False), (9, True), (6, False), (4, True)])
def test_planted_key_and_mode(root: int, minor: bool) -> None:
    row = describe(chord_pad(48 + root, minor, 6.0).astype(np.float32), SR, PARAMS)
    assert (int(row["key"]), int(row["mode"])) == (root, 0 if minor else 1)
    assert row["key_strength"] > 0.5


def test_loudness_rises_with_gain() -> None:
    y = chord_pad(57, True, 5.0).astype(np.float32)
    levels = [describe(y * g, SR, PARAMS)["loudness"] for g in (0.125, 0.25, 0.5)]
    steps = np.diff(levels)
    assert np.all(np.abs(steps - 6.02) < 0.1), levels  # twice the amplitude: +6 dB
    rms = [describe(y * g, SR, PARAMS)["rms_mean"] for g in (0.25, 0.5)]
    assert rms[1] > rms[0]


def test_tone_is_flat_less_than_noise() -> None:
    t = np.arange(5 * SR) / SR
    sine = (0.3 * np.sin(2 * np.pi * 440 * t)).astype(np.float32)
    noise = (0.1 * np.random.default_rng(0).standard_normal(len(t))).astype(np.float32)
    tone_row, noise_row = describe(sine, SR, PARAMS), describe(noise, SR, PARAMS)
    assert tone_row["spectral_flatness_mean"] < 0.05 < 0.3 < noise_row["spectral_flatness_mean"]
    assert tone_row["harmonic_ratio_mean"] > noise_row["harmonic_ratio_mean"]
    assert noise_row["zero_crossing_rate_mean"] > 5 * tone_row["zero_crossing_rate_mean"]


def test_harmonic_versus_percussive() -> None:
    pad = describe(chord_pad(52, False, 6.0).astype(np.float32), SR, PARAMS)
    drums = describe(click_track(100.0, 6.0).astype(np.float32), SR, PARAMS)
    assert pad["harmonic_ratio_mean"] > 0.8 > drums["harmonic_ratio_mean"]
    assert pad["harmony_var"] > pad["perceptr_var"]
    assert drums["perceptr_var"] / drums["harmony_var"] > pad["perceptr_var"] / pad["harmony_var"]


def test_every_descriptor_is_named_finite_and_in_order() -> None:
    row = describe(song(STYLES[1], bpm=120.0, root=4, seconds=6.0), SR, PARAMS)
    assert tuple(row) == DESCRIPTORS
    assert all(np.isfinite(v) for v in row.values())


def test_clipping_is_handled_and_measured() -> None:
    y = np.clip(10 * chord_pad(57, True, 4.0), -1.0, 1.0).astype(np.float32)
    result = analyse(encode(y), PARAMS)
    assert result.clipped_fraction > 0.1
    assert all(np.isfinite(v) for v in result.rows[0].values())
    assert analyse(encode(0.3 * y), PARAMS).clipped_fraction == 0.0


def test_silence_and_too_short_are_refused_with_their_reason() -> None:
    with pytest.raises(BadAudio, match="silent") as err:
        analyse(encode(np.zeros(5 * SR, dtype=np.float32)), PARAMS)
    assert err.value.reason == "silent"
    with pytest.raises(BadAudio) as err:
        analyse(encode(chord_pad(57, True, 1.0).astype(np.float32)), PARAMS)
    assert err.value.reason == "too short" and "1.00 s" in str(err.value)


def test_decoding_mixes_to_mono_and_resamples() -> None:
    y = chord_pad(57, True, 3.0).astype(np.float32)
    stereo = np.stack([y, np.zeros_like(y)], axis=1)
    import soxr

    data = encode(soxr.resample(stereo, SR, 44_100), 44_100, "FLAC", "PCM_16")
    decoded = decode(data, SR)
    assert decoded.channels == 2 and decoded.source_rate == 44_100 and decoded.sr == SR
    assert abs(len(decoded.y) - len(y)) <= 2
    assert np.corrcoef(decoded.y[1000:-1000], y[1000:-1000] / 2)[0, 1] > 0.99


def test_segments_split_a_clip_and_drop_the_remainder() -> None:
    y = np.ones(int(10.5 * SR), dtype=np.float32)
    pieces = segments(y, SR, 3.0)
    assert [s for s, _ in pieces] == [0.0, 3.0, 6.0] and all(len(p) == 3 * SR for _, p in pieces)
    assert len(segments(y, SR, 30.0)) == 1 and len(segments(y, SR, None)[0][1]) == len(y)


def test_segment_rows_leave_out_a_silent_intro() -> None:
    y = np.concatenate([np.zeros(3 * SR), chord_pad(57, True, 6.0)]).astype(np.float32)
    result = analyse(encode(y), PARAMS, segment_seconds=3.0)
    assert len(result.rows) == 2 and result.silent_segments == 1 and result.starts == [3.0, 6.0]
