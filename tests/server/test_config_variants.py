"""Every bundle the indexer can build, the server can serve.

One small bundle per configuration choice that changes what a bundle holds (the classifier's tree
shape or its absence, each index kind, the neighbour table, how PCA is sized, imputation), each
served on a real port and asked every read RPC once over a real channel.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import grpc
import numpy as np
import pytest
import xgboost as xgb

from engine import BuildConfig, GenreConfig, IndexConfig, MoodConfig, build_bundle, synthetic_catalog
from engine._report import format_report
from server import RunningServer
from server._generated.musicrec.v1 import recommender_pb2 as pb
from server._generated.musicrec.v1 import recommender_pb2_grpc as pb_grpc

T = 10  # seconds: every call has a deadline
N_TRACKS = 1000
BAD_ROWS = 4  # synthetic_catalog: half have tempo 0 (always dropped), half a missing energy
BLANK_EXPLICIT = (5, 6)  # tracks whose explicit cell is left blank in every row of theirs

BASE = BuildConfig(
    index=IndexConfig(kind="flat", recall_queries=200),
    moods=MoodConfig(fit_sample=5000, min_cluster_size=40, min_samples=5, stability_subsample=0),
    # one XGBoost thread: beside FAISS's OpenMP threads on a busy 2-core machine, two cost 10x more
    genre=GenreConfig(max_rounds=10, early_stopping_rounds=3, threads=1, tune=False),
)
VARIANTS: dict[str, dict[str, Any]] = {
    "multi_output_tree": {},  # the defaults, on a flat index
    "one_output_per_tree": {"genre": {"multi_strategy": "one_output_per_tree"}},
    "no_genre": {"genre": {"enabled": False}},
    "hnsw": {"index": {"kind": "hnsw"}},
    "ivf": {"index": {"kind": "ivf", "ivf_nlist": 8, "ivf_nprobe": 4}},
    "ivfpq": {"index": {"kind": "ivfpq", "ivf_nlist": 8, "ivf_nprobe": 4}},
    "no_neighbour_table": {"index": {"neighbours": 0}},
    "pca_components": {"preprocess": {"pca_components": 4}},
    "missing_impute": {"schema": {"missing": "impute"}},
}


@pytest.fixture(scope="module")
def catalog_csv(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, list[str]]:
    """The catalog every variant indexes, and the ids of the tracks with a blank explicit flag."""
    frame = synthetic_catalog(N_TRACKS, seed=4, bad_rows=BAD_ROWS)
    blank = [str(frame["track_id"].iloc[i]) for i in BLANK_EXPLICIT]
    frame["explicit"] = frame["explicit"].astype(object)
    frame.loc[frame["track_id"].isin(blank), "explicit"] = ""
    path = tmp_path_factory.mktemp("variants") / "catalog.csv"
    frame.to_csv(path, index=False)
    return path, blank


@pytest.fixture(scope="module", params=list(VARIANTS))
def variant(request: pytest.FixtureRequest, catalog_csv: tuple[Path, list[str]],
            tmp_path_factory: pytest.TempPathFactory) -> tuple[str, Path, dict[str, Any]]:
    name = request.param
    out = tmp_path_factory.mktemp("variants") / name
    manifest = build_bundle(catalog_csv[0], out, BASE.replace(**VARIANTS[name]))
    return name, out, manifest


@pytest.fixture(scope="module")
def server_bundle(variant: tuple[str, Path, dict[str, Any]]) -> Path:
    """The module's server (``running``, tests/conftest.py) serves each variant in turn."""
    return variant[1]


def has_classifier(variant: tuple[str, Path, dict[str, Any]]) -> bool:
    return "genre_model.ubj" in variant[2]["files"]


def test_the_bundle_holds_what_its_configuration_asks(variant: tuple[str, Path, dict[str, Any]]) -> None:
    name, _, m = variant
    assert has_classifier(variant) == (name != "no_genre")
    assert ("neighbours.npz" in m["files"]) == (name != "no_neighbour_table")
    assert m["metrics"]["index"]["kind"] == VARIANTS[name].get("index", {}).get("kind", "flat")
    if name == "one_output_per_tree":
        assert m["metrics"]["genre"]["multi_strategy"] == "one_output_per_tree"
    if name == "pca_components":
        assert m["metrics"]["pca"]["components"] == 4
    missing = "missing or non-finite energy"
    assert (missing in m["counts"]["imputed"]) == (name == "missing_impute")
    assert (missing in m["counts"]["dropped"]) == (name != "missing_impute")
    assert m["counts"]["flag_blanks"] == {"explicit": len(BLANK_EXPLICIT)}
    report = format_report(m)
    assert f"explicit unknown             {len(BLANK_EXPLICIT)}  blank flag" in report


def test_similar_tracks(stub: pb_grpc.RecommenderStub, running: RunningServer) -> None:
    rec = running.holder.require()
    seed = rec.ids[0]
    by_id = stub.SimilarTracks(pb.SimilarTracksRequest(seeds=[pb.Seed(track_id=seed)], k=10), timeout=T)
    got = [r.track.track_id for r in by_id.results]
    assert len(got) == 10 and len(set(got)) == 10 and seed not in got
    assert all(r.track.name and r.track.genres for r in by_id.results)

    values = {n: rec.features_of(3)[n] for n in rec.feature_names}
    by_features = stub.SimilarTracks(pb.SimilarTracksRequest(
        seeds=[pb.Seed(features=pb.FeatureValues(values=values))], k=5, genre_weight=0.0), timeout=T)
    assert len(by_features.results) == 5
    assert rec.ids[3] in [r.track.track_id for r in by_features.results]  # a track is near itself
    scores = [r.score for r in by_features.results]
    assert scores == sorted(scores, reverse=True) and scores[0] > 0.9

    batch = stub.BatchSimilarTracks(pb.BatchSimilarTracksRequest(queries=[
        pb.SimilarTracksRequest(seeds=[pb.Seed(track_id=seed)], k=10)]), timeout=T)
    assert [r.track.track_id for r in batch.responses[0].results] == got


def test_moods_and_playlists(stub: pb_grpc.RecommenderStub, running: RunningServer) -> None:
    rec = running.holder.require()
    moods = stub.ListMoods(pb.ListMoodsRequest(), timeout=T).moods
    assert moods and sum(m.size for m in moods) == rec.n and all(m.name and m.centroid for m in moods)
    mood = moods[0]
    playlist = stub.MoodPlaylist(pb.MoodPlaylistRequest(mood_id=mood.mood_id, length=10), timeout=T)
    assert playlist.mood.mood_id == mood.mood_id and len(playlist.entries) == 10
    assert all(e.track.mood_id == mood.mood_id for e in playlist.entries)
    streamed = list(stub.StreamMoodPlaylist(pb.MoodPlaylistRequest(mood_id=mood.mood_id, length=10), timeout=T))
    assert [e.track.track_id for e in streamed] == [e.track.track_id for e in playlist.entries]


def test_classify_genre(stub: pb_grpc.RecommenderStub, running: RunningServer,
                        variant: tuple[str, Path, dict[str, Any]]) -> None:
    rec = running.holder.require()
    request = pb.ClassifyGenreRequest(track_id=rec.ids[0], top_k=len(rec.genre_names), explain=True)
    if not has_classifier(variant):
        with pytest.raises(grpc.RpcError) as err:
            stub.ClassifyGenre(request, timeout=T)
        assert err.value.code() in (grpc.StatusCode.FAILED_PRECONDITION, grpc.StatusCode.INVALID_ARGUMENT)
        assert "classifier" in (err.value.details() or "")
        return
    c = stub.ClassifyGenre(request, timeout=T)
    assert len(c.genres) == len(rec.genre_names)
    assert sum(g.probability for g in c.genres) == pytest.approx(1.0, abs=1e-3)
    assert list(c.known_genres) == list(rec.genres[0])
    classifier = rec.bundle.classifier
    assert classifier is not None
    assert {x.feature for x in c.contributions} == set(classifier.feature_names)
    # the explanation adds up to the top genre's margin, whichever tree shape the model has
    x = rec.bundle.preprocessor.transform_features(rec.bundle.tracks.features[:1]).astype(np.float32)
    margins = classifier.booster_.predict(xgb.DMatrix(x, feature_names=list(classifier.feature_names)),
                                          output_margin=True)[0]
    top = rec.genre_names.index(c.genres[0].genre)
    assert c.bias + sum(f.contribution for f in c.contributions) == pytest.approx(float(margins[top]), abs=1e-3)


def test_get_track_and_server_info(stub: pb_grpc.RecommenderStub, running: RunningServer,
                                   variant: tuple[str, Path, dict[str, Any]]) -> None:
    rec = running.holder.require()
    manifest = variant[2]
    t = stub.GetTrack(pb.GetTrackRequest(track_id=rec.ids[1]), timeout=T).track
    assert t.track_id == rec.ids[1] and t.name and t.genres and set(t.features) >= set(rec.feature_names)
    info = stub.ServerInfo(pb.ServerInfoRequest(), timeout=T)
    assert info.tracks == rec.n == manifest["counts"]["tracks"]
    assert info.index_kind == manifest["metrics"]["index"]["kind"]
    assert info.vector_dimension == manifest["metrics"]["pca"]["components"]
    assert list(info.feature_names) == list(rec.feature_names)
    assert json.loads(info.counts_json)["flag_blanks"] == {"explicit": len(BLANK_EXPLICIT)}
    if has_classifier(variant):
        assert info.genres == len(rec.genre_names) and info.default_genre_weight > 0
    else:
        assert info.default_genre_weight == 0.0


def test_an_unknown_flag_is_shown_as_no_value(stub: pb_grpc.RecommenderStub,
                                              catalog_csv: tuple[Path, list[str]]) -> None:
    for blank in catalog_csv[1]:
        assert not stub.GetTrack(pb.GetTrackRequest(track_id=blank), timeout=T).track.HasField("explicit")
