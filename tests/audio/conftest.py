"""Audio tests need the `audio` extra (librosa, soundfile, mutagen); without it they are skipped,
saying so. Clips are synthesized (engine/audio/_synth.py), never downloaded or committed."""

from __future__ import annotations

import io

import numpy as np
import pytest

pytest.importorskip("librosa", reason="the audio extra is not installed: pip install -e '.[audio]'")
pytest.importorskip("soundfile", reason="the audio extra is not installed: pip install -e '.[audio]'")

from engine.audio import ExtractorParams

PARAMS = ExtractorParams()
SR = PARAMS.sample_rate


def encode(y: np.ndarray, sr: int = SR, fmt: str = "WAV", subtype: str | None = None) -> bytes:
    import soundfile as sf

    buf = io.BytesIO()
    sf.write(buf, y, sr, format=fmt, subtype=subtype)
    return buf.getvalue()


@pytest.fixture(scope="session")
def warm() -> None:
    """numba compiles librosa's kernels once per process (seconds); pay it in one place."""
    from engine.audio import warm_up

    warm_up(PARAMS)
