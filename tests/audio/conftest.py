"""Audio tests need the `audio` extra (librosa, soundfile, mutagen); without it they are skipped,
saying so. Clips are synthesized (engine/audio/_synth.py), never downloaded or committed."""

from __future__ import annotations

import io
from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("librosa", reason="the audio extra is not installed: pip install -e '.[audio]'")
pytest.importorskip("soundfile", reason="the audio extra is not installed: pip install -e '.[audio]'")

from engine.audio import ExtractorParams
from tests._once import once_per_run

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
    """60 four-second clips of 5 planted styles by 20 artists, extracted once per run (tests/_once.py):
    (the planted tracks, the features CSV path)."""
    import dataclasses
    import json

    from engine.audio._batch import run_extraction
    from engine.audio._synth import CorpusTrack, write_corpus

    def build(root: Path) -> None:
        tracks = write_corpus(root / "music", artists_per_style=4, songs_per_artist=3, seconds=4.0,
                              formats=("wav", "flac"))
        report = run_extraction([root / "music"], root / "features.csv", workers=0)
        assert report.extracted == len(tracks) and not report.skipped
        planted = [{**dataclasses.asdict(t), "path": str(t.path)} for t in tracks]
        (root / "planted.json").write_text(json.dumps(planted), encoding="utf-8")

    root = once_per_run(tmp_path_factory, "audio_corpus", build)
    planted = json.loads((root / "planted.json").read_text(encoding="utf-8"))
    return [CorpusTrack(**{**t, "path": Path(t["path"])}) for t in planted], root / "features.csv"


def audio_config(header: list[str]):  # type: ignore[no-untyped-def]
    """The CLI's audio preset with the test suite's small, quick model sizes."""
    from engine import BuildConfig, GenreConfig, MoodConfig, with_audio_preset

    small = BuildConfig(moods=MoodConfig(min_cluster_size=5, min_samples=3, smoothing_neighbours=5),
                        genre=GenreConfig(max_rounds=25, early_stopping_rounds=5, threads=1, tune=False))
    return with_audio_preset(small, header)


@pytest.fixture(scope="session")
def audio_bundle(extracted: tuple[list, object], tmp_path_factory: pytest.TempPathFactory):  # type: ignore[no-untyped-def]
    import csv

    from engine import build_bundle

    _, csv_path = extracted
    with Path(str(csv_path)).open() as fh:
        header = next(csv.reader(fh))
    return once_per_run(tmp_path_factory, "audio_bundles",
                        lambda out: build_bundle(Path(str(csv_path)), out / "b", audio_config(header))) / "b"
