"""Every way a file can fail has its own reason (engine/audio/_decode.py)."""

from __future__ import annotations

import numpy as np
import pytest

from engine.audio import REASONS, BadAudio, decode, sniff
from engine.audio._synth import chord_pad
from tests.audio.conftest import SR, encode

CLIP = chord_pad(57, True, 6.0).astype(np.float32)


def reason(data: bytes) -> str:
    with pytest.raises(BadAudio) as err:
        decode(data, SR, name="x")
    assert err.value.reason in REASONS
    return err.value.reason


@pytest.mark.parametrize(("fmt", "subtype"), [("WAV", "PCM_16"), ("FLAC", "PCM_16"), ("OGG", "VORBIS"),
                                              ("MP3", "MPEG_LAYER_III"), ("WAV", "FLOAT"), ("AIFF", "PCM_16"),
                                              ("AU", "PCM_16"), ("RF64", "PCM_16")])
def test_supported_formats_decode(fmt: str, subtype: str) -> None:
    decoded = decode(encode(CLIP, SR, fmt, subtype), SR)
    assert abs(decoded.seconds - 6.0) < 0.1 and decoded.y.dtype == np.float32


def test_not_audio() -> None:
    assert reason(b"title,artist\nsong,someone\n" * 20) == "not audio"
    assert reason(b"\x89PNG\r\n\x1a\n" + bytes(200)) == "not audio"


def test_unsupported_containers() -> None:
    assert reason(b"\x00\x00\x00\x20ftypM4A " + bytes(400)) == "unsupported"
    assert reason(b"MThd\x00\x00\x00\x06\x00\x01\x00\x01\x01\xe0" + bytes(50)) == "unsupported"
    assert sniff(b"\xff\xf1\x50\x80")[0] == "unsupported"  # ADTS AAC, not MP3


def test_corrupt() -> None:
    assert reason(b"RIFF\x10\x00\x00\x00WAVEjunkjunkjunk" + bytes(100)) == "corrupt"
    flac = bytearray(encode(np.tile(CLIP, 5), SR, "FLAC", "PCM_16"))
    middle = len(flac) // 3
    flac[middle:middle + 3000] = np.random.default_rng(0).integers(0, 256, 3000, dtype=np.uint8).tobytes()
    assert reason(bytes(flac)) == "corrupt"
    nan = encode(np.full(SR * 3, np.nan, dtype=np.float32), SR, "WAV", "FLOAT")
    assert reason(nan) == "corrupt"


def huge(value: float, at: int = -1) -> bytes:
    """A float WAV of CLIP with one finite sample set to ``value``."""
    y = CLIP.copy()
    y[at] = value
    return encode(y, SR, "WAV", "FLOAT")


def test_finite_samples_far_past_full_scale_are_corrupt() -> None:
    """1e30 passes the NaN/inf check, then overflows float32 in the analysis ("Input must be finite")."""
    for value in (1e30, -3e38, 1.01e6):
        with pytest.raises(BadAudio) as err:
            decode(huge(value), SR, name="x.wav")
        assert err.value.reason == "corrupt"
        assert f"x.wav holds a sample of magnitude {abs(value):.3g} (at 6.00 s)" in str(err.value)
        assert "at most 1e+06 is accepted" in str(err.value)
    stereo = np.stack([CLIP, CLIP], axis=1)
    stereo[SR, 1] = 1e20  # the second channel, one second in
    with pytest.raises(BadAudio, match=r"magnitude 1e\+20 \(at 1\.00 s\)"):
        decode(encode(stereo, SR, "WAV", "FLOAT"), SR)


def test_hot_float_audio_up_to_the_bound_decodes() -> None:
    """A float recording a few dB over full scale (clipped hot), or even at the bound, is still audio."""
    for peak in (2.0, 1e6):
        decoded = decode(encode(CLIP / np.abs(CLIP).max() * np.float32(peak), SR, "WAV", "FLOAT"), SR)
        assert abs(decoded.seconds - 6.0) < 0.1 and np.isfinite(decoded.y).all()


@pytest.mark.parametrize(("fmt", "subtype"), [("WAV", "PCM_16"), ("FLAC", "PCM_16"), ("OGG", "VORBIS"),
                                              ("MP3", "MPEG_LAYER_III"),
                                              # libsndfile shortened these to what was there: half a clip, analysed
                                              # as the whole (an audit, 2026-12-07)
                                              ("AIFF", "PCM_16"), ("AU", "PCM_16"), ("RF64", "PCM_16"),
                                              ("WAVEX", "PCM_16")])
def test_truncated(fmt: str, subtype: str) -> None:
    data = encode(np.tile(CLIP, 5), SR, fmt, subtype)
    assert reason(data[:len(data) // 2]) == "truncated"


def test_empty_file_is_truncated() -> None:
    assert reason(b"") == "truncated"


def test_too_long_is_refused_before_it_fills_memory() -> None:
    # 11 minutes of a quiet 1 Hz square wave (not constant: that is refused as no sound): ~100 KB of FLAC that
    # would decode to 58 MB of float32 at 22 kHz
    hum = np.where(np.arange(11 * 60 * 8000) // 4000 % 2, 0.01, -0.01).astype(np.float32)
    data = encode(hum, 8000, "FLAC", "PCM_16")
    assert len(data) < 1_000_000
    with pytest.raises(BadAudio) as err:
        decode(data, SR, max_seconds=600)
    assert err.value.reason == "too long" and "660 s" in str(err.value)
    assert abs(decode(data, SR).seconds - 660) < 1  # no cap: decoded
    with pytest.raises(BadAudio) as err:  # a frame over: it said "lasts 600 s; at most 600 s"
        decode(encode(hum[:600 * 8000 + 1], 8000, "FLAC", "PCM_16"), SR, max_seconds=600)
    assert "lasts 600.0001 s; at most 600 s" in str(err.value)


def test_a_constant_signal_is_no_sound_however_loud() -> None:
    # a DC offset or a file stuck at full scale was described as music (tempo 117) and classified with 100%
    for value in (0.5, 1.0, -1.0):
        data = encode(np.full(5 * SR, value, dtype=np.float32), SR, "WAV", "FLOAT")
        with pytest.raises(BadAudio) as err:
            decode(data, SR, name="x")
        assert err.value.reason == "silent" and "holds no sound" in str(err.value)


def test_a_flac_of_unknown_length_decodes_to_its_end() -> None:
    # STREAMINFO's total samples 0 ("unknown", what streaming encoders write): libsndfile counts 2**63 - 1
    # frames, which read as "truncated after 17.8 s of the 418293516410647 s its header declares"
    data = bytearray(encode(CLIP, SR, "FLAC", "PCM_16"))
    at = 8 + 10  # STREAMINFO's sample rate, channels, bits and total samples: 64 bits, the total the low 36
    packed = int.from_bytes(data[at:at + 8], "big")
    assert packed & ((1 << 36) - 1) == len(CLIP)
    data[at:at + 8] = (packed & ~((1 << 36) - 1)).to_bytes(8, "big")
    decoded = decode(bytes(data), SR, name="x", max_seconds=600)
    assert 5.9 < decoded.seconds <= 6.0
    np.testing.assert_allclose(decoded.y, decode(encode(CLIP, SR, "FLAC", "PCM_16"), SR).y[:len(decoded.y)])


def test_channels_are_mixed_as_read_to_the_same_mono() -> None:
    # each block is mixed as it is read (a few MiB of 8-channel 192 kHz FLAC held every channel: GBs):
    # the same values as the mean of the whole, the checks counted over every channel
    rng = np.random.default_rng(0)
    channels = (rng.normal(size=(200_000, 6)) * 0.1).astype(np.float32)
    channels[123_456, 4] = 1.0  # at full scale: clipped, and the peak
    decoded = decode(encode(channels, SR, "WAV", "FLOAT"), SR, name="x")
    np.testing.assert_array_equal(decoded.y, channels.mean(axis=1))
    assert decoded.channels == 6 and decoded.clipped_fraction == 1 / channels.size
