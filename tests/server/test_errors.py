"""Every documented error status, with a message naming the field."""

from __future__ import annotations

from pathlib import Path

import grpc
import pytest

from engine import FeatureSchema, Preprocessor, Recommender
from server import RunningServer, ServerOptions, create_server
from server._generated.musicrec.v1 import recommender_pb2 as pb
from server._generated.musicrec.v1 import recommender_pb2_grpc as pb_grpc

from .conftest import Blocker

# the test bundle's vector dimension: PCA keeps every component by default, so one per transformed feature
DIM = len(Preprocessor(feature_names=FeatureSchema().feature_columns, transforms=FeatureSchema().transforms)
          .transformed_names)

T = 10
INVALID = grpc.StatusCode.INVALID_ARGUMENT


def call_error(fn: object, request: object, **kw: object) -> grpc.RpcError:
    with pytest.raises(grpc.RpcError) as info:
        result = fn(request, timeout=kw.pop("timeout", T), **kw)  # type: ignore[operator]
        if hasattr(result, "__iter__") and not hasattr(result, "ListFields"):
            list(result)
    return info.value


def seed_id(running: RunningServer) -> str:
    return running.holder.require().ids[0]


def features(running: RunningServer, **override: float) -> dict[str, float]:
    rec = running.holder.require()
    values = {n: rec.features_of(0)[n] for n in rec.feature_names}
    values.update(override)
    return values


@pytest.mark.parametrize(
    ("build", "code", "message"),
    [
        (lambda r: pb.SimilarTracksRequest(), INVALID, "seeds: at least one seed is required"),
        (lambda r: pb.SimilarTracksRequest(seeds=[pb.Seed(track_id=seed_id(r))], k=5000), INVALID, "k: must be 1..1000"),
        (lambda r: pb.SimilarTracksRequest(seeds=[pb.Seed()]), INVALID, "seeds[0]: give exactly one of"),
        (lambda r: pb.SimilarTracksRequest(seeds=[pb.Seed(features=pb.FeatureValues(values={"energyy": 1}))]),
         INVALID, "unknown feature(s) 'energyy'"),
        (lambda r: pb.SimilarTracksRequest(seeds=[pb.Seed(features=pb.FeatureValues(values={"energy": 1}))]),
         INVALID, "missing feature(s)"),
        (lambda r: pb.SimilarTracksRequest(seeds=[pb.Seed(features=pb.FeatureValues(
            values=features(r, tempo=float("nan"))))]), INVALID, "['tempo'] must be finite"),
        (lambda r: pb.SimilarTracksRequest(seeds=[pb.Seed(vector=pb.Vector(values=[0.0] * DIM))]), INVALID,
         "zero vector"),
        (lambda r: pb.SimilarTracksRequest(seeds=[pb.Seed(vector=pb.Vector(values=[1.0] * 3))]), INVALID,
         f"has 3 values, but the bundle's vectors have {DIM}"),
        (lambda r: pb.SimilarTracksRequest(seeds=[pb.Seed(vector=pb.Vector(values=[float("inf")] * DIM))]), INVALID,
         "finite"),
        (lambda r: pb.SimilarTracksRequest(seeds=[pb.Seed(track_id=seed_id(r))],
                                           filter=pb.Filter(include_genres=["polka"])), INVALID, "unknown genre"),
        (lambda r: pb.SimilarTracksRequest(seeds=[pb.Seed(track_id=seed_id(r))],
                                           filter=pb.Filter(ranges={"loudness": pb.Range(min=1, max=0)})),
         INVALID, "filter.ranges['loudness']"),
        (lambda r: pb.SimilarTracksRequest(seeds=[pb.Seed(track_id="no-such-track")]), grpc.StatusCode.NOT_FOUND,
         "'no-such-track' is not in the catalog"),
    ],
)
def test_similar_tracks_errors(running: RunningServer, stub: pb_grpc.RecommenderStub, build: object,
                               code: grpc.StatusCode, message: str) -> None:
    err = call_error(stub.SimilarTracks, build(running))  # type: ignore[operator]
    assert err.code() == code
    assert message in err.details()


def test_other_rpc_errors(running: RunningServer, stub: pb_grpc.RecommenderStub) -> None:
    cases = [
        (stub.MoodPlaylist, pb.MoodPlaylistRequest(mood_name="no such mood"), INVALID, "unknown mood"),
        (stub.MoodPlaylist, pb.MoodPlaylistRequest(mood_id=999), INVALID, "mood_id: unknown mood 999"),
        (stub.MoodPlaylist, pb.MoodPlaylistRequest(), INVALID, "give exactly one of"),
        (stub.MoodPlaylist, pb.MoodPlaylistRequest(mood_id=0, length=100000), INVALID, "length: must be 1..500"),
        (stub.StreamMoodPlaylist, pb.MoodPlaylistRequest(mood_name="nope"), INVALID, "unknown mood"),
        (stub.MoodPlaylist, pb.MoodPlaylistRequest(seed_track_id="nope"), grpc.StatusCode.NOT_FOUND, "'nope'"),
        (stub.ClassifyGenre, pb.ClassifyGenreRequest(), INVALID, "exactly one of track_id or features"),
        (stub.ClassifyGenre, pb.ClassifyGenreRequest(track_id=seed_id(running), top_k=500), INVALID, "top_k"),
        (stub.ClassifyGenre, pb.ClassifyGenreRequest(features=pb.FeatureValues(values={"x": 1})), INVALID,
         "unknown feature"),
        (stub.GetTrack, pb.GetTrackRequest(track_id="nope"), grpc.StatusCode.NOT_FOUND, "'nope'"),
        (stub.GetTrack, pb.GetTrackRequest(), INVALID, "track_id: required"),
        (stub.BatchSimilarTracks, pb.BatchSimilarTracksRequest(), INVALID, "at least one query"),
        (stub.BatchSimilarTracks, pb.BatchSimilarTracksRequest(queries=[pb.SimilarTracksRequest(
            seeds=[pb.Seed(track_id=seed_id(running))]), pb.SimilarTracksRequest()]), INVALID, "queries[1].seeds"),
    ]
    for fn, request, code, message in cases:
        err = call_error(fn, request)
        assert (err.code(), message in err.details()) == (code, True), (request, err.details())


def test_a_batch_query_over_its_own_k_limit_is_named(running: RunningServer, stub: pb_grpc.RecommenderStub) -> None:
    """BatchSimilarTracks reported one query's k = 5000 as the batch's depth; it names queries[i].k, in
    SimilarTracks' words for the same k."""
    seed = pb.Seed(track_id=seed_id(running))
    err = call_error(stub.BatchSimilarTracks, pb.BatchSimilarTracksRequest(queries=[
        pb.SimilarTracksRequest(seeds=[seed]), pb.SimilarTracksRequest(seeds=[seed], k=5000)]))
    assert err.code() == INVALID and err.details() == "queries[1].k: must be 1..1000, got 5000"
    single = call_error(stub.SimilarTracks, pb.SimilarTracksRequest(seeds=[seed], k=5000))
    assert single.details() == "k: must be 1..1000, got 5000"


def test_unexpected_errors_are_internal_never_unknown(
    running: RunningServer, stub: pb_grpc.RecommenderStub, monkeypatch: pytest.MonkeyPatch
) -> None:
    def boom(self: Recommender, query: object, **kwargs: object) -> None:  # the servicer also passes deadline=
        raise RuntimeError("a bug")

    monkeypatch.setattr(Recommender, "similar", boom)
    err = call_error(stub.SimilarTracks, pb.SimilarTracksRequest(seeds=[pb.Seed(track_id=seed_id(running))]))
    assert err.code() == grpc.StatusCode.INTERNAL and "RuntimeError" in err.details()


def test_no_bundle_is_unavailable() -> None:
    srv = create_server(None, "127.0.0.1:0")
    try:
        with grpc.insecure_channel(f"127.0.0.1:{srv.port}") as ch:
            err = call_error(pb_grpc.RecommenderStub(ch).ServerInfo, pb.ServerInfoRequest())
            assert err.code() == grpc.StatusCode.UNAVAILABLE
    finally:
        srv.stop(0)


def test_over_the_limit_is_resource_exhausted_without_waiting_for_a_slot(bundle_dir: Path, blocking: Blocker) -> None:
    srv = create_server(bundle_dir, "127.0.0.1:0", ServerOptions(max_concurrent=2))
    try:
        with grpc.insecure_channel(f"127.0.0.1:{srv.port}") as ch:
            stub = pb_grpc.RecommenderStub(ch)
            request = pb.SimilarTracksRequest(seeds=[pb.Seed(track_id=srv.holder.require().ids[0])])
            held = [stub.SimilarTracks.future(request, timeout=T) for _ in range(2)]
            for _ in range(2):
                assert blocking.entered.acquire(timeout=T)
            err = call_error(stub.SimilarTracks, request)
            assert err.code() == grpc.StatusCode.RESOURCE_EXHAUSTED and "limit" in err.details()
            blocking.release.set()
            assert all(len(f.result().results) == 10 for f in held)
            assert len(stub.SimilarTracks(request, timeout=T).results) == 10  # slots were released
    finally:
        srv.stop(0)


def test_deadline_is_honoured(running: RunningServer, stub: pb_grpc.RecommenderStub, blocking: Blocker) -> None:
    err = call_error(stub.SimilarTracks, pb.SimilarTracksRequest(seeds=[pb.Seed(track_id=seed_id(running))]),
                     timeout=0.3)
    assert err.code() == grpc.StatusCode.DEADLINE_EXCEEDED
