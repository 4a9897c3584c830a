"""Segments done honestly: a song's segments stay on one side of the split, and the evaluation
votes once per song; an audio query against a segment bundle is cut the same way."""

from __future__ import annotations

import csv
import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from engine import Recommender, build_bundle, load_bundle, read_catalog
from engine._genre import HELD_OUT_FRACTION, held_out_split, song_vote_metrics, split_groups
from engine.audio._batch import run_extraction
from server._audio import AudioPool, _analyse, audio_seeds, classify_audio
from tests.audio.conftest import audio_config


class InProcessPool(AudioPool):
    """The server's audio pool without worker processes (the segment logic is what is tested)."""

    def analyse(self, clips: Sequence[bytes], params: dict[str, Any], segment_seconds: float | None,
                deadline: float | None) -> list[list[dict[str, float]]]:
        return [_analyse(c, params, segment_seconds) for c in clips]


@pytest.fixture(scope="module")
def segment_bundle(extracted: tuple[list, Path], tmp_path_factory: pytest.TempPathFactory) -> Path:
    tracks, _ = extracted
    root = tmp_path_factory.mktemp("segments")
    out = root / "segments.csv"
    report = run_extraction([tracks[0].path.parent.parent], out, segment_seconds=2.0, workers=0)
    assert report.rows_total == 2 * len(tracks)
    with out.open() as fh:
        header = next(csv.reader(fh))
    build_bundle(out, root / "bundle", audio_config(header))
    return root / "bundle"


def test_groups_fall_back_to_the_song_without_an_artist() -> None:
    import pandas as pd

    from engine import FeatureSchema, clean_catalog

    frame = pd.DataFrame({"id": ["a#0", "a#1", "b#0", "c#0"], "x": ["1", "2", "3", "4"], "g": ["r"] * 4,
                          "artist": ["", "", "", "Someone"], "song": ["a", "a", "b", "c"]})
    schema = FeatureSchema.generic(id_column="id", feature_columns=("x",), label_column="g",
                                   artists_column="artist", metadata_columns=("song",))
    catalog = clean_catalog(frame, schema)
    groups = split_groups(catalog, catalog.metadata["song"])
    assert groups[0] == groups[1] != groups[2] and groups[3] == "Someone"


def test_one_vote_per_song() -> None:
    proba = np.array([[0.9, 0.1], [0.2, 0.8], [0.3, 0.7], [0.9, 0.1]])
    truth = np.array([[True, False]] * 2 + [[False, True]] * 2)
    scores = song_vote_metrics(proba, truth, np.array(["s1", "s1", "s2", "s2"]))
    # s1's segments disagree but their mean (0.55) is right; s2's mean (0.4 for its genre) is wrong
    assert scores["songs"] == 2 and scores["segments_per_song"] == 2 and scores["top1"] == 0.5


def test_a_segment_bundle_never_splits_a_song(segment_bundle: Path) -> None:
    manifest = json.loads((segment_bundle / "manifest.json").read_text())
    per_song = manifest["metrics"]["genre"]["per_song"]
    assert per_song["segments_per_song"] == 2.0 and per_song["songs"] * 2 == manifest["metrics"]["genre"]["test_tracks"]
    assert manifest["audio"]["segment_seconds"] == 2.0
    bundle = load_bundle(segment_bundle)
    catalog = read_catalog(Path(manifest["source"]["path"]), bundle.config.schema)
    songs = catalog.metadata["song"]
    split = held_out_split(catalog, HELD_OUT_FRACTION, bundle.config.seed, songs)
    test_songs = set(songs[split.test])
    assert test_songs and not test_songs & set(songs[split.fit]) and not test_songs & set(songs[split.valid])


def test_an_audio_query_is_cut_like_the_bundle(segment_bundle: Path, extracted: tuple[list, Path]) -> None:
    tracks, _ = extracted
    rec = Recommender(load_bundle(segment_bundle))
    track = next(t for t in tracks if t.style == "hiphop")
    pool = InProcessPool()
    (seeds,) = list(audio_seeds(rec, pool, [track.path.read_bytes()], None))
    assert len(seeds) == 2 and all(s.features is not None for s in seeds)  # 4 s clip, 2 s segments
    result = classify_audio(rec, pool, track.path.read_bytes(), top_k=2, explain=False, deadline=None)
    assert result.genres[0][0] == "hiphop" and len(result.genres) == 2
    assert abs(sum(p for _, p in classify_audio(rec, pool, track.path.read_bytes(), top_k=5, explain=False,
                                                deadline=None).genres) - 1.0) < 1e-4
