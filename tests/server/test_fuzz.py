"""Property-based fuzzing of every RPC: any message gets OK or a documented status, never UNKNOWN or
INTERNAL, never a hang; and the server keeps serving afterwards."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import grpc
import pytest
from grpc_health.v1 import health_pb2, health_pb2_grpc
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from server import RunningServer
from server._generated.musicrec.v1 import recommender_pb2 as pb
from server._generated.musicrec.v1 import recommender_pb2_grpc as pb_grpc

ALLOWED = {grpc.StatusCode.OK, grpc.StatusCode.INVALID_ARGUMENT, grpc.StatusCode.NOT_FOUND}
FUZZ = settings(max_examples=150, deadline=None, suppress_health_check=list(HealthCheck), derandomize=True)
T = 10

FEATURES = ("danceability", "energy", "key", "loudness", "mode", "speechiness", "acousticness",
            "instrumentalness", "liveness", "valence", "tempo", "time_signature", "duration_ms")
GENRES = ("acoustic", "ambient", "classical", "dance", "edm", "folk", "hip-hop", "jazz", "metal", "pop")

numbers = st.one_of(st.floats(allow_nan=True, allow_infinity=True), st.floats(-2.0, 2.0),
                    st.sampled_from([0.0, -0.0, 5e-324, 1e308, -1e308, 3.4e38, 1e-40]))
texts = st.one_of(st.text(max_size=40), st.sampled_from(["", " ", "\x00", "🎵" * 50, "a" * 20_000]))
# the requests' counts and mood ids are 64-bit: values past 32 bits are refused, not cut to their low bits
uint64 = st.one_of(st.integers(0, 50), st.sampled_from([0, 1, 1000, 1001, 2**31, 2**32 - 1, 2**32 + 3, 2**64 - 1]))
int64 = st.one_of(st.integers(-5, 50), st.sampled_from([-(2**63), -(2**31), 2**31 - 1, 2**32 + 1, 2**63 - 1]))


def track_ids(running: RunningServer) -> st.SearchStrategy[str]:
    return st.one_of(st.sampled_from(running.holder.require().ids[:50]), texts)


def feature_maps() -> st.SearchStrategy[dict[str, float]]:
    full = st.fixed_dictionaries({f: numbers for f in FEATURES})
    partial = st.dictionaries(st.one_of(st.sampled_from(FEATURES), texts), numbers, max_size=16)
    return st.one_of(full, partial)


def seeds(running: RunningServer) -> st.SearchStrategy[pb.Seed]:
    return st.one_of(
        track_ids(running).map(lambda t: pb.Seed(track_id=t)),
        feature_maps().map(lambda f: pb.Seed(features=pb.FeatureValues(values=f))),
        st.lists(numbers, max_size=24).map(lambda v: pb.Seed(vector=pb.Vector(values=v))),
        st.just(pb.Seed()),
    )


def filters() -> st.SearchStrategy[pb.Filter]:
    names = st.one_of(st.sampled_from(GENRES), texts)
    ranges = st.dictionaries(st.one_of(st.sampled_from([*FEATURES, "popularity"]), texts),
                             st.builds(lambda lo, hi: pb.Range(min=lo, max=hi), numbers, numbers), max_size=3)
    return st.builds(lambda inc, exc, expl, rng, ids, moods: pb.Filter(
        include_genres=inc, exclude_genres=exc, ranges=rng, exclude_track_ids=ids, mood_ids=moods,
        **({} if expl is None else {"explicit": expl})),
        st.lists(names, max_size=3), st.lists(names, max_size=3), st.none() | st.booleans(), ranges,
        st.lists(texts, max_size=3), st.lists(int64, max_size=3))


def similar_requests(running: RunningServer) -> st.SearchStrategy[pb.SimilarTracksRequest]:
    many = st.integers(0, 600).map(lambda n: [pb.Seed(track_id=running.holder.require().ids[i % 50])
                                              for i in range(n)])
    return st.builds(
        lambda s, neg, targets, tw, f, k, off, cap, div, skip, feats: pb.SimilarTracksRequest(
            seeds=s, negative_seeds=neg, targets=targets, filter=f, k=k, offset=off, max_per_artist=cap,
            diversity=div, skip_unknown_seeds=skip, include_features=feats,
            **({} if tw is None else {"target_weight": tw})),
        st.one_of(st.lists(seeds(running), max_size=4), many), st.lists(seeds(running), max_size=2),
        st.dictionaries(st.one_of(st.sampled_from(FEATURES), texts), numbers, max_size=3),
        st.none() | numbers, filters(), uint64, uint64, uint64, numbers, st.booleans(), st.booleans())


def check(call: Callable[..., Any], request: Any, stream: bool = False) -> None:
    try:
        result = call(request, timeout=T)
        if stream:
            list(result)
        code = grpc.StatusCode.OK
    except grpc.RpcError as err:
        code = err.code()
        assert err.details(), "an error must say what was wrong"
    assert code in ALLOWED, (code, request)


@pytest.fixture(scope="module")
def health(channel: grpc.Channel) -> health_pb2_grpc.HealthStub:
    return health_pb2_grpc.HealthStub(channel)


def still_serving(stub: pb_grpc.RecommenderStub, health: health_pb2_grpc.HealthStub, running: RunningServer) -> None:
    assert health.Check(health_pb2.HealthCheckRequest(), timeout=T).status == health_pb2.HealthCheckResponse.SERVING
    ok = stub.SimilarTracks(pb.SimilarTracksRequest(seeds=[pb.Seed(track_id=running.holder.require().ids[0])]),
                            timeout=T)
    assert len(ok.results) == 10


@pytest.mark.slow  # 150 generated requests of each shape
def test_fuzz_similar_and_batch(running: RunningServer, stub: pb_grpc.RecommenderStub,
                                health: health_pb2_grpc.HealthStub) -> None:
    @FUZZ
    @given(similar_requests(running))
    def single(request: pb.SimilarTracksRequest) -> None:
        check(stub.SimilarTracks, request)

    @FUZZ
    @given(st.lists(similar_requests(running), max_size=4), st.integers(0, 300))
    def batch(queries: list[pb.SimilarTracksRequest], extra: int) -> None:
        padding = [pb.SimilarTracksRequest(seeds=[pb.Seed(track_id=running.holder.require().ids[0])])] * extra
        check(stub.BatchSimilarTracks, pb.BatchSimilarTracksRequest(queries=queries + padding))

    single()
    batch()
    still_serving(stub, health, running)


def test_fuzz_playlists(running: RunningServer, stub: pb_grpc.RecommenderStub,
                        health: health_pb2_grpc.HealthStub) -> None:
    sources = st.one_of(
        int64.map(lambda m: {"mood_id": m}), texts.map(lambda n: {"mood_name": n}),
        st.sampled_from([m.name for m in stub.ListMoods(pb.ListMoodsRequest(), timeout=T).moods]).map(
            lambda n: {"mood_name": n}),
        track_ids(running).map(lambda t: {"seed_track_id": t}),
        st.builds(lambda v, e: {"target": pb.MoodTarget(valence=v, energy=e)}, numbers, numbers),
        st.just({}))

    @FUZZ
    @given(sources, uint64, uint64, st.integers(0, 2**64 - 1), st.booleans(), st.booleans())
    def playlist(source: dict[str, Any], length: int, cap: int, shuffle: int, feats: bool, streamed: bool) -> None:
        request = pb.MoodPlaylistRequest(length=length, max_per_artist=cap, shuffle_seed=shuffle,
                                         include_features=feats, **source)
        if streamed:
            check(stub.StreamMoodPlaylist, request, stream=True)
        else:
            check(stub.MoodPlaylist, request)

    playlist()
    still_serving(stub, health, running)


def test_fuzz_classify_tracks_and_info(running: RunningServer, stub: pb_grpc.RecommenderStub,
                                       health: health_pb2_grpc.HealthStub) -> None:
    inputs = st.one_of(track_ids(running).map(lambda t: {"track_id": t}),
                       feature_maps().map(lambda f: {"features": pb.FeatureValues(values=f)}), st.just({}))

    @FUZZ
    @given(inputs, uint64, st.booleans(), texts)
    def classify(source: dict[str, Any], top_k: int, explain: bool, track_id: str) -> None:
        check(stub.ClassifyGenre, pb.ClassifyGenreRequest(top_k=top_k, explain=explain, **source))
        check(stub.GetTrack, pb.GetTrackRequest(track_id=track_id))

    classify()
    check(stub.ListMoods, pb.ListMoodsRequest())
    check(stub.ServerInfo, pb.ServerInfoRequest())
    still_serving(stub, health, running)


def test_oversized_requests_are_refused_by_size(running: RunningServer, stub: pb_grpc.RecommenderStub,
                                                health: health_pb2_grpc.HealthStub) -> None:
    huge = pb.SimilarTracksRequest(seeds=[pb.Seed(vector=pb.Vector(values=[1.0] * 1_100_000))])  # ~4.4 MB
    with pytest.raises(grpc.RpcError) as err:
        stub.SimilarTracks(huge, timeout=T)
    assert err.value.code() == grpc.StatusCode.RESOURCE_EXHAUSTED
    still_serving(stub, health, running)
