"""Neighbour-table entries from a deeper fetch: a song listed many times near a track eats the first
fetch's slack, and the table follows the live schedule's next fetch for it (engine/_table.py), so the
by-id query on such a track is answered from the table with the live query's answer, also after
``musicrec add``."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from engine import GenreConfig, Recommender, Seed, SimilarQuery, build_bundle, load_bundle, synthetic_catalog
from engine._build import _neighbour_table
from engine._index import build_index
from engine._table import NeighbourTable, first_fetch
from engine._update import add_tracks
from tests.conftest import FAST_CONFIG

CONFIG = FAST_CONFIG.replace(genre=dataclasses.asdict(GenreConfig(max_rounds=8, early_stopping_rounds=3, tune=False)))
LISTINGS = 120  # one song under this many ids: more than the first fetch's slack (64)


def _relisted(frame: pd.DataFrame, row: int, copies: int, start: int) -> pd.DataFrame:
    """``copies`` listings of ``frame``'s track ``row`` under new ids (same name and artists, the
    audio a hair apart, as re-releases are)."""
    song = frame.iloc[[row] * copies].copy()
    song["track_id"] = [f"relisted{start + i:05d}" for i in range(copies)]
    song["danceability"] = (song["danceability"] + np.arange(copies) * 1e-4).clip(0, 1)
    return song


@pytest.fixture(scope="module")
def planted(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("deep")
    frame = synthetic_catalog(1500, seed=3)
    pd.concat([frame, _relisted(frame, 0, LISTINGS, 0)]).to_csv(root / "x.csv", index=False)
    # an update adds more listings of the same song and a few other tracks near it
    pd.concat([_relisted(frame, 0, 10, LISTINGS), frame.iloc[1:6].assign(
        track_id=[f"later{i}" for i in range(5)], danceability=frame["danceability"].iloc[0])]
    ).to_csv(root / "y.csv", index=False)
    build_bundle(root / "x.csv", root / "a", CONFIG)
    add_tracks(root / "a", root / "b", csv=root / "y.csv")
    return {"a": root / "a", "b": root / "b"}


def _deep_rows(bundle_dir: Path) -> np.ndarray:
    bundle = load_bundle(bundle_dir)
    table = bundle.neighbours
    assert table is not None
    return np.flatnonzero(table.consumed > first_fetch(len(bundle.tracks), table.block))


@pytest.mark.parametrize("which", ["a", "b"])
def test_deep_entries_answer_as_the_live_query(planted: dict[str, Path], which: str) -> None:
    bundle = load_bundle(planted[which])
    deep = _deep_rows(planted[which])
    relisted = [bundle.row(t) for t in bundle.tracks.ids if str(t).startswith("relisted")]
    assert set(relisted) <= set(deep.tolist())  # each listing's own song is out of its fetch: deeper
    assert bundle.neighbours is not None and (bundle.neighbours.consumed >= 0).all()  # none answered live
    table, live = Recommender(bundle), Recommender(dataclasses.replace(bundle, neighbours=None))
    for row in deep.tolist():
        seed = Seed(track_id=table.ids[row])
        for q in (SimilarQuery(seeds=[seed], k=10), SimilarQuery(seeds=[seed], k=40, offset=20)):
            assert table._similar.plan(q, "").table_row == row
            a, b = table.similar(q), live.similar(q)
            assert a.rows.tolist() == b.rows.tolist() and a.scores.tolist() == b.scores.tolist(), row
            assert (a.examined, a.filtered, a.exhausted) == (b.examined, b.filtered, b.exhausted), row


def test_an_update_recomputes_deep_entries_as_a_rebuild_does(planted: dict[str, Path]) -> None:
    bundle = load_bundle(planted["b"])
    prep, config = bundle.preprocessor, bundle.config
    vectors = prep.embed(bundle.tracks.features).astype(np.float32)
    weight = bundle.neighbours.genre_weight
    proba = None
    if weight > 0:  # what the build ranks the table with: the stored per-track probabilities, where kept
        stored = getattr(bundle, "genre_proba", None)
        proba = stored if stored is not None else bundle.classifier.predict_proba(
            prep.transform_features(bundle.tracks.features))
    ref = _neighbour_table(bundle.tracks, config, build_index(vectors, config.index), vectors, proba, weight,
                           lambda _m: None)
    got = bundle.neighbours
    assert isinstance(got, NeighbourTable)
    for key in ("rows", "scores", "consumed", "lengths"):
        np.testing.assert_array_equal(getattr(got, key), ref[key], err_msg=key)
