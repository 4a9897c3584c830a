from __future__ import annotations

import dataclasses

import numpy as np

from engine import Seed, SimilarQuery
from server import RunningServer
from server import _convert as conv
from server._generated.musicrec.v1 import recommender_pb2 as pb
from server._wire import TrackBytes, batch_response_bytes, similar_response_bytes


def test_hand_assembled_response_parses_to_the_same_message(running: RunningServer) -> None:
    rec = running.holder.require()
    cache = TrackBytes(rec.n)
    for i in range(0, 300, 7):
        result = rec.similar(SimilarQuery(seeds=[Seed(track_id=rec.ids[i]), Seed(track_id="missing")], k=12,
                                          skip_unknown_seeds=True))
        wire = pb.SimilarTracksResponse.FromString(similar_response_bytes(cache, rec, result))
        built = conv.similar_response(rec, result, features=False)
        assert wire == built
        assert similar_response_bytes(cache, rec, result) == built.SerializeToString()


def test_zero_and_negative_zero_scores_serialize_like_protobuf(running: RunningServer) -> None:
    # proto3 leaves a +0.0 scalar out of the wire; the hand-built bytes once wrote it anyway
    rec = running.holder.require()
    cache = TrackBytes(rec.n)
    result = rec.similar(SimilarQuery(seeds=[Seed(track_id=rec.ids[3])], k=4))
    for scores in ([0.0, 0.5, -0.0, 0.0], [-0.0, -0.0, 0.0, 1.0]):
        zeroed = dataclasses.replace(result, scores=np.asarray(scores, dtype=np.float32))
        built = conv.similar_response(rec, zeroed, features=False)
        assert similar_response_bytes(cache, rec, zeroed) == built.SerializeToString()


def test_requests_from_the_wire_reach_the_neighbour_table(running: RunningServer) -> None:
    rec = running.holder.require()
    search = rec._similar
    q = conv.similar_query_from_pb(pb.SimilarTracksRequest(seeds=[pb.Seed(track_id=rec.ids[0])], k=10))
    assert search.plan(q, "").table_row == 0
    filtered = conv.similar_query_from_pb(pb.SimilarTracksRequest(seeds=[pb.Seed(track_id=rec.ids[0])],
                                                                  filter=pb.Filter(explicit=False)))
    assert search.plan(filtered, "").table_row is None


def test_a_hand_assembled_batch_response_is_protobuf_s_own(running: RunningServer) -> None:
    rec = running.holder.require()
    cache = TrackBytes(rec.n)
    features = dict(zip(rec.feature_names, rec.bundle.tracks.features[9].tolist(), strict=True))
    results = rec.similar_batch([SimilarQuery(seeds=[Seed(track_id=rec.ids[i])], k=5) for i in range(0, 40, 4)]
                                + [SimilarQuery(seeds=[Seed(features=features)], k=3)])
    for took in (0.0, 1.25):
        built = pb.BatchSimilarTracksResponse(
            responses=[conv.similar_response(rec, r, features=False) for r in results], took_ms=took)
        assert batch_response_bytes(cache, rec, results, took) == built.SerializeToString()
