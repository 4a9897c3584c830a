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
                                              ("MP3", "MPEG_LAYER_III"), ("WAV", "FLOAT")])
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
                                              ("MP3", "MPEG_LAYER_III")])
def test_truncated(fmt: str, subtype: str) -> None:
    data = encode(np.tile(CLIP, 5), SR, fmt, subtype)
    assert reason(data[:len(data) // 2]) == "truncated"


def test_empty_file_is_truncated() -> None:
    assert reason(b"") == "truncated"


def test_too_long_is_refused_before_it_fills_memory() -> None:
    # 11 minutes of a quiet constant hum: ~100 KB of FLAC that would decode to 58 MB of float32 at 22 kHz
    hum = np.full(11 * 60 * 8000, 0.01, dtype=np.float32)
    data = encode(hum, 8000, "FLAC", "PCM_16")
    assert len(data) < 1_000_000
    with pytest.raises(BadAudio) as err:
        decode(data, SR, max_seconds=600)
    assert err.value.reason == "too long" and "660 s" in str(err.value)
    assert abs(decode(data, SR).seconds - 660) < 1  # no cap: decoded
