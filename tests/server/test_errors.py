"""Every documented error status, with a message naming the field."""

from __future__ import annotations

import math
from pathlib import Path

import grpc
import pytest

from engine import FeatureSchema, Preprocessor, Recommender
from server import RunningServer, ServerOptions, create_server
from server._generated.musicrec.v1 import recommender_pb2 as pb
from server._generated.musicrec.v1 import recommender_pb2_grpc as pb_grpc
from server._http_json import CallAborted, HttpContext
from server._service import CallDeadline, RecommenderServicer

from .conftest import Blocker, wait_until

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
        (stub.ClassifyGenre, pb.ClassifyGenreRequest(), INVALID, "input: give exactly one of track_id, features or audio"),
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


def test_a_batch_querys_seed_errors_name_the_query(running: RunningServer, stub: pb_grpc.RecommenderStub) -> None:
    """Errors of the conversion from protobuf named no query ("seeds: audio seeds are ..."), where the engine's
    own errors name ``queries[i]``; and a seed of no kind names every kind the call takes."""
    ok = pb.SimilarTracksRequest(seeds=[pb.Seed(track_id=seed_id(running))])
    cases = [(pb.SimilarTracksRequest(seeds=[pb.Seed(audio=b"RIFF")]),
              "queries[1].seeds[0].audio: audio seeds are accepted by SimilarTracks only (not in BatchSimilarTracks)"),
             (pb.SimilarTracksRequest(seeds=[pb.Seed(track_id=seed_id(running))], negative_seeds=[pb.Seed()]),
              "queries[1].negative_seeds[0]: give exactly one of track_id, features or vector")]
    for bad, message in cases:
        err = call_error(stub.BatchSimilarTracks, pb.BatchSimilarTracksRequest(queries=[ok, bad]))
        assert (err.code(), err.details()) == (INVALID, message)
    err = call_error(stub.SimilarTracks, pb.SimilarTracksRequest(seeds=[pb.Seed(track_id=seed_id(running)), pb.Seed()]))
    assert (err.code(), err.details()) == (INVALID, "seeds[1]: give exactly one of track_id, features, vector or audio")


# field 1 (2 for the playlist's mood_name) as a string that is not UTF-8, then a field cut short
@pytest.mark.parametrize(("method", "streams", "bad"), [
    ("musicrec.v1.Recommender/GetTrack", False, b"\x0a\x02\xc3\x28"),
    ("musicrec.v1.Recommender/SimilarTracks", False, b"\x0a\x10abc"),
    ("musicrec.v1.Recommender/StreamMoodPlaylist", True, b"\x12\x02\xc3\x28"),
    ("grpc.health.v1.Health/Check", False, b"\x0a\x02\xff\xfe"),  # health takes calls without a token
    ("grpc.health.v1.Health/Watch", True, b"\x0a\x02\xff\xfe")])
def test_request_bytes_that_are_not_the_message_are_invalid_argument(channel: grpc.Channel, method: str,
                                                                     streams: bool, bad: bytes) -> None:
    """gRPC's own deserializer raised on them: INTERNAL ("a bug"), a traceback in the log, the call uncounted
    (tests/server/test_metrics.py counts them now)."""
    call = (channel.unary_stream if streams else channel.unary_unary)(f"/{method}")
    err = call_error(call, bad)
    assert err.code() == INVALID, err.details()
    assert err.details().startswith(f"the request is not a valid {method.split('/')[0].rsplit('.', 1)[0]}."), \
        err.details()


def _varint(n: int) -> bytes:
    out = b""
    while n > 0x7F:
        out, n = out + bytes([n & 0x7F | 0x80]), n >> 7
    return out + bytes([n])


def test_fields_the_message_has_not_are_refused_not_dropped(
        running: RunningServer, stub: pb_grpc.RecommenderStub, channel: grpc.Channel) -> None:
    """Protobuf keeps a field it does not know aside, and one sent with another wire type than its own, and the method
    never saw them: a newer client's filter answered unfiltered, a ``k`` sent as fixed32 answered 10 results, and
    an over-wide ``k`` was cut to its low 32 bits (2**32 + 3 gave 3). The HTTP face refused all of these already."""
    ok = pb.SimilarTracksRequest(seeds=[pb.Seed(track_id=seed_id(running))], k=3).SerializeToString()
    assert len(stub.SimilarTracks(pb.SimilarTracksRequest.FromString(ok), timeout=T).results) == 3
    similar = channel.unary_unary("/musicrec.v1.Recommender/SimilarTracks")
    cases = [
        (ok + _varint(99 << 3) + _varint(1), "no field number 99 at its top level (this server's SimilarTracksRequest "
                                              "has fields [1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12])"),
        (ok + _varint(5 << 3 | 2) + _varint(2) + _varint(7 << 3) + _varint(1), "no field number 7 in filter "
                                                                                 "(this server's Filter has fields"),
        (ok + _varint(5 << 3 | 2) + _varint(2) + _varint(1 << 3) + _varint(1),
         "filter.include_genres (field 1) came as wire type 0, not as its type (string) is sent"),
        (ok + _varint(6 << 3 | 5) + (5).to_bytes(4, "little"), "k (field 6) came as wire type 5"),
        (ok + _varint(2 << 3 | 2) + _varint(2) + _varint(9 << 3) + _varint(1), "no field number 9 in negative_seeds[0]"),
        (ok + _varint(6 << 3) + _varint(2**32 + 3), "k: must be 1..1000, got 4294967299"),
    ]
    for data, message in cases:
        err = call_error(similar, data)
        assert err.code() == INVALID and message in err.details(), err.details()
    # bytes encoded otherwise than protobuf encodes them are walked, and pass: a field given twice is protobuf's
    # merge (the last k wins), a default given explicitly is the default
    assert len(pb.SimilarTracksResponse.FromString(similar(ok + _varint(6 << 3) + _varint(5), timeout=T)).results) == 5
    assert len(pb.SimilarTracksResponse.FromString(similar(ok + _varint(9 << 3 | 1) + bytes(8), timeout=T)).results) == 3
    playlist = channel.unary_unary("/musicrec.v1.Recommender/MoodPlaylist")
    err = call_error(playlist, _varint(1 << 3) + _varint(2**32 + 1))  # mood 1 in its low 32 bits
    assert (err.code(), "unknown mood 4294967297" in err.details()) == (INVALID, True), err.details()
    classify = channel.unary_unary("/musicrec.v1.Recommender/ClassifyGenre")
    err = call_error(classify, pb.ClassifyGenreRequest(track_id=seed_id(running)).SerializeToString()
                     + _varint(3 << 3) + _varint(2**32 + 2))
    assert (err.code(), "top_k: must be 1.." in err.details()) == (INVALID, True), err.details()


def test_an_answer_over_the_message_limit_is_refused_on_both_faces(
        running: RunningServer, stub: pb_grpc.RecommenderStub, monkeypatch: pytest.MonkeyPatch) -> None:
    """gRPC failed such an answer itself after the work (RESOURCE_EXHAUSTED to the client, OK in the server's log and
    metrics), and the HTTP face sent it whole: now both say INVALID_ARGUMENT, with the size and what to ask instead."""
    import server._service

    monkeypatch.setattr(server._service, "MAX_MESSAGE_BYTES", 2_000)  # the test bundle's answers are small
    seed = pb.Seed(track_id=seed_id(running))
    big = [(stub.SimilarTracks, pb.SimilarTracksRequest(seeds=[seed], k=100, include_features=True)),
           (stub.SimilarTracks, pb.SimilarTracksRequest(seeds=[seed], k=100)),
           (stub.BatchSimilarTracks, pb.BatchSimilarTracksRequest(queries=[pb.SimilarTracksRequest(seeds=[seed], k=100)])),
           (stub.MoodPlaylist, pb.MoodPlaylistRequest(mood_id=0, length=100, include_features=True))]
    for fn, request in big:
        err = call_error(fn, request)
        assert err.code() == INVALID, err.details()
        assert "bytes, over the 2,000-byte message limit: " in err.details()
    context = HttpContext((), None)
    servicer = RecommenderServicer(running.holder)
    with pytest.raises(CallAborted) as aborted:
        servicer.SimilarTracks(pb.SimilarTracksRequest(seeds=[seed], k=100), context)
    assert aborted.value.code == INVALID and "message limit" in aborted.value.message
    assert stub.SimilarTracks(pb.SimilarTracksRequest(seeds=[seed], k=3), timeout=T).results  # small ones pass


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


class _Cancels:
    """Recommender.similar as the servicer calls it, with the client's cancel arriving as ranking
    starts; counts the engine's candidate blocks fetched (its work)."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch, context: HttpContext) -> None:
        import engine._ranking

        self.blocks = 0
        self.deadlines: list[object] = []
        original, next_block = Recommender.similar, engine._ranking.Survivors.next_block

        def similar(rec: Recommender, query: object, **kwargs: object) -> object:
            self.deadlines.append(kwargs.get("deadline"))
            context.cancelled = True  # grpc runs the call's callbacks: the client cancelled
            return original(rec, query, **kwargs)  # type: ignore[arg-type]

        def counted(survivors: object) -> object:
            self.blocks += 1
            return next_block(survivors)  # type: ignore[arg-type]

        monkeypatch.setattr(Recommender, "similar", similar)
        monkeypatch.setattr(engine._ranking.Survivors, "next_block", counted)


def _not_from_the_table(running: RunningServer) -> pb.SimilarTracksRequest:
    return pb.SimilarTracksRequest(seeds=[pb.Seed(track_id=seed_id(running))], diversity=0.5)  # ranked live


def test_a_cancelled_call_stops_ranking_with_cancelled(running: RunningServer, monkeypatch: pytest.MonkeyPatch) -> None:
    """A client's cancel stopped nothing: only a deadline reached the engine. The call's end (grpc's
    add_callback) now makes the engine's own deadline check stop it, before its first block."""
    context = HttpContext([], None)  # grpc's ServicerContext as the HTTP face stands in for it: no deadline
    cancels = _Cancels(monkeypatch, context)
    with pytest.raises(CallAborted) as err:
        RecommenderServicer(running.holder).SimilarTracks(_not_from_the_table(running), context)
    assert (err.value.code, err.value.message) == (grpc.StatusCode.CANCELLED,
                                                   "the client cancelled the call; ranking stopped")
    assert len(cancels.deadlines) == 1 and cancels.blocks == 0


def test_a_call_cancelled_before_it_is_ranked_is_not_ranked(running: RunningServer,
                                                            monkeypatch: pytest.MonkeyPatch) -> None:
    context = HttpContext([], None)
    context.cancelled = True
    cancels = _Cancels(monkeypatch, context)
    servicer = RecommenderServicer(running.holder)
    for call, request in ((servicer.SimilarTracks, _not_from_the_table(running)),
                          (servicer.BatchSimilarTracks, pb.BatchSimilarTracksRequest(queries=[
                              _not_from_the_table(running)]))):
        with pytest.raises(CallAborted) as err:
            call(request, context)
        assert (err.value.code, err.value.message) == (grpc.StatusCode.CANCELLED,
                                                       "the client cancelled the call before it was ranked")
    assert cancels.deadlines == [] and cancels.blocks == 0


def test_a_call_ended_by_its_deadline_stays_deadline_exceeded(running: RunningServer,
                                                              monkeypatch: pytest.MonkeyPatch) -> None:
    """grpc runs the same callbacks when a deadline ends the call: that is no cancel."""

    class Expired(HttpContext):
        def time_remaining(self) -> float | None:
            return 0.0 if self.cancelled else 60.0  # the call ends when its deadline has come

    context = Expired([], None)
    cancels = _Cancels(monkeypatch, context)
    with pytest.raises(CallAborted) as err:
        RecommenderServicer(running.holder).SimilarTracks(_not_from_the_table(running), context)
    assert err.value.code == grpc.StatusCode.DEADLINE_EXCEEDED and cancels.blocks == 0


def test_a_grpc_clients_cancel_reaches_the_engines_deadline(running: RunningServer, stub: pb_grpc.RecommenderStub,
                                                           monkeypatch: pytest.MonkeyPatch) -> None:
    """Over a real channel: the client cancels while the call is held before ranking; grpc's callback
    marks the deadline the engine was given, and the ranking ends at its first check."""
    import threading

    from engine import DeadlineExceeded

    original = Recommender.similar
    entered, release = threading.Event(), threading.Event()
    seen: list[object] = []

    def held(rec: Recommender, query: object, **kwargs: object) -> object:
        seen.append(kwargs["deadline"])
        entered.set()
        release.wait(T)
        try:
            return original(rec, query, **kwargs)  # type: ignore[arg-type]
        except DeadlineExceeded as exc:
            seen.append(exc)
            raise

    monkeypatch.setattr(Recommender, "similar", held)
    call = stub.SimilarTracks.future(_not_from_the_table(running), timeout=60)
    try:
        assert entered.wait(T)
        call.cancel()
        deadline = seen[0]
        assert isinstance(deadline, CallDeadline)
        wait_until(lambda: deadline.ended, "the server to see the cancel")
        assert deadline.cancelled
    finally:
        release.set()
    wait_until(lambda: len(seen) == 2, "the ranking to stop")
    assert isinstance(seen[1], DeadlineExceeded)


def test_the_engines_deadline_check_sees_the_calls_end() -> None:
    from engine import DeadlineExceeded, deadline_passed
    from engine._ranking import check_deadline

    for at in (None, math.inf):  # no limit, and an instant no clock reaches: only the call's end passes them
        deadline = CallDeadline(at)
        check_deadline(deadline)  # not passed
        deadline.end(cancelled=True)
        with pytest.raises(DeadlineExceeded):
            check_deadline(deadline)
    # a deadline whose instant is behind the clock has passed, as a plain float's does
    assert deadline_passed(CallDeadline(100.0), now=100.5) and deadline_passed(100.0, now=100.5)
    assert not deadline_passed(CallDeadline(100.0), now=99.5) and not deadline_passed(None)


def test_deadline_is_honoured(running: RunningServer, stub: pb_grpc.RecommenderStub, blocking: Blocker) -> None:
    err = call_error(stub.SimilarTracks, pb.SimilarTracksRequest(seeds=[pb.Seed(track_id=seed_id(running))]),
                     timeout=0.3)
    assert err.code() == grpc.StatusCode.DEADLINE_EXCEEDED
