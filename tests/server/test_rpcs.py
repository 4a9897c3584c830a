"""Every RPC's happy path over a real channel, and congruence with the engine called directly."""

from __future__ import annotations

import json
import math

import grpc
import numpy as np
import pytest
from grpc_health.v1 import health_pb2, health_pb2_grpc
from grpc_reflection.v1alpha import reflection_pb2, reflection_pb2_grpc

from engine import Seed, SimilarQuery, TrackFilter
from server import RunningServer
from server._generated.musicrec.v1 import recommender_pb2 as pb
from server._generated.musicrec.v1 import recommender_pb2_grpc as pb_grpc

T = 10  # seconds: every call has a deadline


def ids(running: RunningServer, rows: object) -> list[str]:
    rec = running.holder.require()
    return [rec.ids[r] for r in rows]  # type: ignore[union-attr]


def test_similar_tracks_is_congruent_with_the_engine(running: RunningServer, stub: pb_grpc.RecommenderStub) -> None:
    rec = running.holder.require()
    for row in (0, 17, 123):
        tid = rec.ids[row]
        request = pb.SimilarTracksRequest(seeds=[pb.Seed(track_id=tid)], k=8, max_per_artist=2,
                                          filter=pb.Filter(exclude_genres=["metal"]))
        response = stub.SimilarTracks(request, timeout=T)
        direct = rec.similar(SimilarQuery(seeds=[Seed(track_id=tid)], k=8, max_per_artist=2,
                                          filter=TrackFilter(exclude_genres=["metal"])))
        assert [r.track.track_id for r in response.results] == ids(running, direct.rows)
        np.testing.assert_allclose([r.score for r in response.results], direct.scores, rtol=1e-6)
        assert response.stats.candidates_examined == direct.examined
        first = response.results[0].track
        assert first.name and first.artists and first.genres and first.mood_name
        assert not first.features  # only when asked


def test_similar_by_features_vector_targets_and_features_in_results(
    running: RunningServer, stub: pb_grpc.RecommenderStub
) -> None:
    rec = running.holder.require()
    feats = rec.features_of(3)
    values = {n: feats[n] for n in rec.feature_names}
    by_features = stub.SimilarTracks(pb.SimilarTracksRequest(
        seeds=[pb.Seed(features=pb.FeatureValues(values=values))], k=5, include_features=True, genre_weight=0.0),
        timeout=T)
    assert by_features.results[0].track.track_id == rec.ids[3]  # cosine only: the track itself comes first
    assert set(by_features.results[0].track.features) >= set(rec.feature_names)
    vector = list(map(float, rec.bundle.vectors[3]))
    by_vector = stub.SimilarTracks(pb.SimilarTracksRequest(seeds=[pb.Seed(vector=pb.Vector(values=vector))], k=5),
                                   timeout=T)
    assert [r.track.track_id for r in by_vector.results] == [r.track.track_id for r in by_features.results]
    # the default weight re-ranks by genre agreement; a bare vector has no features to classify
    reranked = stub.SimilarTracks(pb.SimilarTracksRequest(seeds=[pb.Seed(features=pb.FeatureValues(values=values))],
                                                          k=5), timeout=T)
    assert [r.score for r in reranked.results] != [r.score for r in by_features.results]
    info = stub.ServerInfo(pb.ServerInfoRequest(), timeout=T)
    assert info.default_genre_weight == pytest.approx(rec.bundle.config.similar.genre_weight)
    assert info.compiled_kernels == "on"  # the test extra installs numba (the fast extra)
    with pytest.raises(grpc.RpcError) as err:
        stub.SimilarTracks(pb.SimilarTracksRequest(seeds=[pb.Seed(track_id=rec.ids[3])], genre_weight=1.5), timeout=T)
    assert err.value.code() == grpc.StatusCode.INVALID_ARGUMENT and "genre_weight" in err.value.details()
    pulled = stub.SimilarTracks(pb.SimilarTracksRequest(seeds=[pb.Seed(track_id=rec.ids[3])], k=5,
                                                        targets={"energy": 0.95}, target_weight=0.9,
                                                        include_features=True), timeout=T)
    assert np.mean([r.track.features["energy"] for r in pulled.results]) > feats["energy"] - 0.2


def test_batch_matches_single_calls(running: RunningServer, stub: pb_grpc.RecommenderStub) -> None:
    rec = running.holder.require()
    queries = [pb.SimilarTracksRequest(seeds=[pb.Seed(track_id=rec.ids[i])], k=4) for i in range(5)]
    batch = stub.BatchSimilarTracks(pb.BatchSimilarTracksRequest(queries=queries), timeout=T)
    assert len(batch.responses) == 5
    for q, got in zip(queries, batch.responses, strict=True):
        single = stub.SimilarTracks(q, timeout=T)
        assert [r.track.track_id for r in got.results] == [r.track.track_id for r in single.results]


def test_unknown_seeds_listed_when_tolerated(stub: pb_grpc.RecommenderStub, running: RunningServer) -> None:
    rec = running.holder.require()
    r = stub.SimilarTracks(pb.SimilarTracksRequest(
        seeds=[pb.Seed(track_id=rec.ids[0]), pb.Seed(track_id="nope")], skip_unknown_seeds=True), timeout=T)
    assert list(r.unknown_seed_ids) == ["nope"] and len(r.results) == 10


def test_moods_playlists_and_streaming(running: RunningServer, stub: pb_grpc.RecommenderStub) -> None:
    rec = running.holder.require()
    moods = stub.ListMoods(pb.ListMoodsRequest(), timeout=T).moods
    assert len(moods) == len(rec.moods()) and sum(m.size for m in moods) == rec.n
    assert all(m.name and m.centroid and m.top_genres for m in moods)
    by_name = stub.MoodPlaylist(pb.MoodPlaylistRequest(mood_name=moods[1].name, length=12), timeout=T)
    assert by_name.mood.mood_id == 1 and len(by_name.entries) == 12
    assert all(e.track.mood_id == 1 for e in by_name.entries)
    streamed = list(stub.StreamMoodPlaylist(pb.MoodPlaylistRequest(mood_name=moods[1].name, length=12), timeout=T))
    assert [e.track.track_id for e in streamed] == [e.track.track_id for e in by_name.entries]
    assert [e.position for e in streamed] == list(range(12))
    seeded = stub.MoodPlaylist(pb.MoodPlaylistRequest(seed_track_id=rec.ids[9], length=5), timeout=T)
    assert seeded.entries[0].track.track_id == rec.ids[9]
    target = stub.MoodPlaylist(pb.MoodPlaylistRequest(target=pb.MoodTarget(valence=0.1, energy=0.1), length=5),
                               timeout=T)
    assert target.mood.centroid["valence"] < 0.5


def test_classify_get_track_info(running: RunningServer, stub: pb_grpc.RecommenderStub) -> None:
    rec = running.holder.require()
    c = stub.ClassifyGenre(pb.ClassifyGenreRequest(track_id=rec.ids[0], top_k=3, explain=True), timeout=T)
    direct = rec.classify(track_id=rec.ids[0], top_k=3, explain=True)
    assert [g.genre for g in c.genres] == [g for g, _ in direct.genres]
    assert math.isclose(c.bias + sum(x.contribution for x in c.contributions), direct.bias +
                        sum(v for _, v in direct.contributions), rel_tol=1e-4)
    assert list(c.known_genres) == list(rec.genres[0])
    t = stub.GetTrack(pb.GetTrackRequest(track_id=rec.ids[0]), timeout=T).track
    assert t.track_id == rec.ids[0] and set(t.features) >= set(rec.feature_names)
    info = stub.ServerInfo(pb.ServerInfoRequest(), timeout=T)
    assert info.tracks == rec.n and info.bundle_version == rec.bundle.version and info.index_kind == "flat"
    assert list(info.feature_names) == list(rec.feature_names)
    assert json.loads(info.metrics_json)["genre"]["top1"] > 0


def test_health_and_reflection(channel: grpc.Channel) -> None:
    health = health_pb2_grpc.HealthStub(channel)
    for service in ("", "musicrec.v1.Recommender"):
        status = health.Check(health_pb2.HealthCheckRequest(service=service), timeout=T).status
        assert status == health_pb2.HealthCheckResponse.SERVING
    refl = reflection_pb2_grpc.ServerReflectionStub(channel)
    answers = list(refl.ServerReflectionInfo(iter([reflection_pb2.ServerReflectionRequest(list_services="")]),
                                             timeout=T))
    names = {s.name for s in answers[0].list_services_response.service}
    assert {"musicrec.v1.Recommender", "grpc.health.v1.Health"} <= names


@pytest.mark.parametrize("k", [1, 1000])
def test_k_bounds_are_served(stub: pb_grpc.RecommenderStub, running: RunningServer, k: int) -> None:
    rec = running.holder.require()
    r = stub.SimilarTracks(pb.SimilarTracksRequest(seeds=[pb.Seed(track_id=rec.ids[0])], k=k), timeout=T)
    assert len(r.results) == k and not r.stats.exhausted
