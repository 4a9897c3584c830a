"""One ranking over the wire: concatenated SimilarTracks pages equal one call, and equal the engine."""

from __future__ import annotations

import grpc
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from engine import DeadlineExceeded
from server import RunningServer
from server._convert import similar_query_from_pb
from server._generated.musicrec.v1 import recommender_pb2 as pb
from server._generated.musicrec.v1 import recommender_pb2_grpc as pb_grpc
from server._service import _status_of

T = 10


def requests(running: RunningServer) -> st.SearchStrategy[tuple[pb.SimilarTracksRequest, int, int]]:
    rec = running.holder.require()
    genres = list(rec.genre_names)
    seed = st.integers(0, rec.n - 1).map(lambda r: pb.Seed(track_id=rec.ids[r]))
    filters = st.builds(
        lambda inc, exc, explicit, tempo: pb.Filter(
            include_genres=inc, exclude_genres=exc,
            ranges={"tempo": pb.Range(min=90.0, max=140.0)} if tempo else {},
            **({} if explicit is None else {"explicit": explicit})),
        st.lists(st.sampled_from(genres), max_size=3), st.lists(st.sampled_from(genres), max_size=2),
        st.sampled_from([None, True, False]), st.booleans(),
    ).filter(lambda f: not set(f.include_genres) & set(f.exclude_genres))  # a genre in both is refused
    request = st.builds(
        lambda seeds, f, weight, diversity, cap: pb.SimilarTracksRequest(
            seeds=seeds, filter=f, diversity=diversity, max_per_artist=cap,
            **({} if weight is None else {"genre_weight": weight})),
        st.lists(seed, min_size=1, max_size=2), filters, st.sampled_from([None, 0.0, 0.5]),
        st.sampled_from([0.0, 0.0, 0.5]), st.sampled_from([0, 0, 1, 2]))
    return st.tuples(request, st.integers(5, 50), st.integers(1, 230))


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(data=st.data())
def test_pages_over_grpc_are_slices_of_one_ranking(running: RunningServer, stub: pb_grpc.RecommenderStub,
                                                   data: st.DataObject) -> None:
    request, size, depth = data.draw(requests(running))
    whole_request = pb.SimilarTracksRequest()
    whole_request.CopyFrom(request)
    whole_request.k = depth
    whole = stub.SimilarTracks(whole_request, timeout=T)
    got: list[str] = []
    for offset in range(0, depth, size):
        page = pb.SimilarTracksRequest()
        page.CopyFrom(request)
        page.k, page.offset = min(size, depth - offset), offset
        got += [r.track.track_id for r in stub.SimilarTracks(page, timeout=T).results]
    assert got == [r.track.track_id for r in whole.results]
    assert len(set(got)) == len(got)
    rec = running.holder.require()
    direct = rec.similar(similar_query_from_pb(whole_request))
    assert got == [rec.ids[r] for r in direct.rows.tolist()]


def test_a_deadline_inside_the_ranking_maps_to_deadline_exceeded() -> None:
    # the engine stops its loops at the deadline the servicer hands it (tests/engine/test_pipeline.py)
    code, message = _status_of(DeadlineExceeded("deadline exceeded while ranking"))
    assert code == grpc.StatusCode.DEADLINE_EXCEEDED and "deadline" in message
