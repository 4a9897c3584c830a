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


@pytest.fixture(scope="session")
def extracted(tmp_path_factory: pytest.TempPathFactory) -> tuple[list, object]:  # type: ignore[type-arg]
    """60 four-second clips of 5 planted styles by 20 artists, extracted in this process:
    (the planted tracks, the features CSV path)."""
    from engine.audio._batch import run_extraction
    from engine.audio._synth import write_corpus

    root = tmp_path_factory.mktemp("audio_corpus")
    tracks = write_corpus(root / "music", artists_per_style=4, songs_per_artist=3, seconds=4.0,
                          formats=("wav", "flac"))
    out = root / "features.csv"
    report = run_extraction([root / "music"], out, workers=0)
    assert report.extracted == len(tracks) and not report.skipped
    return tracks, out


def audio_config(header: list[str]):  # type: ignore[no-untyped-def]
    """The CLI's audio preset with the test suite's small, quick model sizes."""
    from engine import BuildConfig, GenreConfig, MoodConfig
    from engine._schema import AUDIO_MOOD_WEIGHTS, audio_schema

    return BuildConfig(schema=audio_schema(header),
                       moods=MoodConfig(weights=AUDIO_MOOD_WEIGHTS, min_cluster_size=5, min_samples=3,
                                        smoothing_neighbours=5),
                       genre=GenreConfig(max_rounds=25, early_stopping_rounds=5, threads=1, tune=False))


@pytest.fixture(scope="session")
def audio_bundle(extracted: tuple[list, object], tmp_path_factory: pytest.TempPathFactory):  # type: ignore[no-untyped-def]
    import csv
    from pathlib import Path

    from engine import build_bundle

    _, csv_path = extracted
    with Path(str(csv_path)).open() as fh:
        header = next(csv.reader(fh))
    out = tmp_path_factory.mktemp("audio_bundles") / "b"
    build_bundle(Path(str(csv_path)), out, audio_config(header))
    return out
