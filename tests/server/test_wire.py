from __future__ import annotations

from engine._query import Seed, SimilarQuery
from server import RunningServer
from server import _convert as conv
from server._generated.musicrec.v1 import recommender_pb2 as pb
from server._wire import TrackBytes, similar_response_bytes


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


def test_requests_from_the_wire_take_the_fast_path(running: RunningServer) -> None:
    rec = running.holder.require()
    q = conv.similar_query_from_pb(pb.SimilarTracksRequest(seeds=[pb.Seed(track_id=rec.ids[0])], k=10))
    assert rec._table_row(q) == 0 and q.filter.is_empty()
    filtered = conv.similar_query_from_pb(pb.SimilarTracksRequest(seeds=[pb.Seed(track_id=rec.ids[0])],
                                                                  filter=pb.Filter(explicit=False)))
    assert not filtered.filter.is_empty()
