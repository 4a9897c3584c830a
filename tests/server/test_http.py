"""The HTTP/JSON face: every RPC answers the same as over gRPC, every error maps to its HTTP code with
the same message, routing (404, 405), deadlines and limits. (Request bodies: tests/server/test_http_bodies.py.)"""

from __future__ import annotations

import gc
import http.client
import json
import logging
import socket
import threading
from pathlib import Path
from typing import Any

import grpc
import pytest
from google.protobuf import json_format

from engine import Recommender
from server import RunningServer, ServerOptions, create_server
from server._generated.musicrec.v1 import recommender_pb2 as pb
from server._generated.musicrec.v1 import recommender_pb2_grpc as pb_grpc
from server._http_json import HTTP_STATUS, METHODS, message_dict
from tests._serving import serving

from .conftest import Blocker, wait_until

T = 10
TIMING = {"took_ms", "uptime_seconds"}  # differ between any two calls, whichever face


def post(port: int, method: str, body: bytes | str | dict[str, Any] | None = None, *, token: str | None = None,
         headers: dict[str, str | None] | None = None, verb: str = "POST") -> tuple[int, dict[str, str], bytes]:
    """``headers`` add to or replace the default ``Content-Type: application/json``; None leaves one out."""
    if isinstance(body, dict):
        body = json.dumps(body)
    if isinstance(body, str):
        body = body.encode()
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=T)
    try:
        sent = {k: v for k, v in {"Content-Type": "application/json", **(headers or {})}.items() if v is not None}
        if token is not None:
            sent["Authorization"] = f"Bearer {token}"
        conn.request(verb, f"/v1/{method}", body=body, headers=sent)
        response = conn.getresponse()
        return response.status, {k.lower(): v for k, v in response.getheaders()}, response.read()
    finally:
        conn.close()


def strip(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: strip(v) for k, v in value.items() if k not in TIMING}
    if isinstance(value, list):
        return [strip(v) for v in value]
    return value


@pytest.fixture(scope="module")
def server_options() -> ServerOptions:
    """The module's server (``running``, tests/conftest.py) with its HTTP face on a free port."""
    return ServerOptions(max_concurrent=16, http_port=0)


def both(running: RunningServer, stub: pb_grpc.RecommenderStub, method: str, request: Any) -> tuple[Any, Any]:
    """The answer of each face, as JSON-like dicts without timings."""
    call = getattr(stub, method)
    if METHODS[method].streaming:
        via_grpc = [message_dict(m) for m in call(request, timeout=T)]
        status, headers, body = post(running.http_port, method, json_format.MessageToJson(request))
        assert status == 200, body
        assert headers["content-type"].startswith("application/x-ndjson")
        via_http = [json.loads(line) for line in body.decode().splitlines()]
    else:
        via_grpc = message_dict(call(request, timeout=T))
        status, headers, body = post(running.http_port, method, json_format.MessageToJson(request))
        assert status == 200, body
        assert headers["content-type"] == "application/json"
        via_http = json.loads(body)
    return strip(via_grpc), strip(via_http)


def requests(rec: Recommender) -> list[tuple[str, Any]]:
    """At least one request of every RPC, with most options set."""
    first, second = rec.ids[0], rec.ids[1]
    values = {n: rec.features_of(5)[n] for n in rec.feature_names}
    genre = rec.genres[0][0]
    return [
        ("SimilarTracks", pb.SimilarTracksRequest(seeds=[pb.Seed(track_id=first)], k=7)),
        ("SimilarTracks", pb.SimilarTracksRequest(
            seeds=[pb.Seed(track_id=first), pb.Seed(features=pb.FeatureValues(values=values))],
            negative_seeds=[pb.Seed(track_id=second)], targets={"energy": 0.8}, target_weight=0.3, k=5, offset=3,
            max_per_artist=1, diversity=0.3, genre_weight=0.0, include_features=True,
            filter=pb.Filter(include_genres=[genre], explicit=False, ranges={"tempo": pb.Range(min=60)},
                             exclude_track_ids=[second], mood_ids=[0, 1, 2]))),
        ("SimilarTracks", pb.SimilarTracksRequest(seeds=[pb.Seed(track_id="nope"), pb.Seed(track_id=first)],
                                                  skip_unknown_seeds=True, k=3)),
        ("BatchSimilarTracks", pb.BatchSimilarTracksRequest(queries=[
            pb.SimilarTracksRequest(seeds=[pb.Seed(track_id=i)], k=4) for i in (first, second)])),
        ("ListMoods", pb.ListMoodsRequest()),
        ("MoodPlaylist", pb.MoodPlaylistRequest(mood_id=0, length=8, include_features=True)),
        ("MoodPlaylist", pb.MoodPlaylistRequest(seed_track_id=first, length=6, shuffle_seed=3)),
        ("MoodPlaylist", pb.MoodPlaylistRequest(target=pb.MoodTarget(valence=0.3, energy=0.2), length=5)),
        ("MoodPlaylist", pb.MoodPlaylistRequest(mood_name=rec.moods()[1]["name"], length=5, max_per_artist=1)),
        ("StreamMoodPlaylist", pb.MoodPlaylistRequest(mood_id=1, length=9)),
        ("ClassifyGenre", pb.ClassifyGenreRequest(track_id=first, top_k=3, explain=True)),
        ("ClassifyGenre", pb.ClassifyGenreRequest(features=pb.FeatureValues(values=values))),
        ("GetTrack", pb.GetTrackRequest(track_id=second)),
        ("ServerInfo", pb.ServerInfoRequest()),
        ("ReloadBundle", pb.ReloadBundleRequest()),
    ]


def test_every_rpc_answers_the_same_over_both_faces(running: RunningServer, stub: pb_grpc.RecommenderStub) -> None:
    cases = requests(running.holder.require())
    assert {m for m, _ in cases} == set(METHODS)  # a new RPC must be added here
    for method, request in cases:
        via_grpc, via_http = both(running, stub, method, request)
        assert via_http == via_grpc, method


def test_json_uses_the_proto_names_and_prints_zero_values(running: RunningServer) -> None:
    rec = running.holder.require()
    status, _, body = post(running.http_port, "SimilarTracks", {"seeds": [{"trackId": rec.ids[0]}], "k": 2})
    assert status == 200
    answer = json.loads(body)
    track = answer["results"][0]["track"]
    assert {"track_id", "mood_id", "mood_core", "features"} <= set(track)  # zero values too (mood 0, {})
    assert answer["stats"]["exhausted"] is False
    # lowerCamelCase and proto names are both accepted on the way in
    assert post(running.http_port, "SimilarTracks", {"seeds": [{"track_id": rec.ids[0]}], "k": 2})[0] == 200


def test_an_empty_body_is_the_empty_message(running: RunningServer) -> None:
    status, _, body = post(running.http_port, "ServerInfo", b"")
    assert status == 200 and json.loads(body)["tracks"] == running.holder.require().n


def grpc_error(call: Any, request: Any, **kw: Any) -> grpc.RpcError:
    with pytest.raises(grpc.RpcError) as info:
        result = call(request, timeout=kw.pop("timeout", T), **kw)
        if not hasattr(result, "ListFields"):
            list(result)
    return info.value


def assert_same_error(port: int, stub: pb_grpc.RecommenderStub, method: str, request: Any,
                      code: grpc.StatusCode, *, token: str | None = None, http: int | None = None) -> dict[str, Any]:
    metadata = (("authorization", f"Bearer {token}"),) if token else None
    err = grpc_error(getattr(stub, method), request, metadata=metadata)
    assert err.code() == code, err.details()
    status, headers, body = post(port, method, json_format.MessageToJson(request), token=token)
    error = json.loads(body)["error"]
    assert status == (http or HTTP_STATUS[code]) == error["code"]
    assert error["status"] == code.name
    assert error["message"] == err.details()
    assert headers["content-type"] == "application/json"
    return headers


def test_request_errors_map_to_their_http_codes(running: RunningServer, stub: pb_grpc.RecommenderStub) -> None:
    rec = running.holder.require()
    cases = [
        ("SimilarTracks", pb.SimilarTracksRequest(seeds=[pb.Seed(track_id=rec.ids[0])], k=5000),
         grpc.StatusCode.INVALID_ARGUMENT),
        ("SimilarTracks", pb.SimilarTracksRequest(), grpc.StatusCode.INVALID_ARGUMENT),
        ("SimilarTracks", pb.SimilarTracksRequest(seeds=[pb.Seed(track_id="no-such-track")]),
         grpc.StatusCode.NOT_FOUND),
        ("GetTrack", pb.GetTrackRequest(track_id="no-such-track"), grpc.StatusCode.NOT_FOUND),
        ("MoodPlaylist", pb.MoodPlaylistRequest(mood_name="no such mood"), grpc.StatusCode.INVALID_ARGUMENT),
        ("StreamMoodPlaylist", pb.MoodPlaylistRequest(mood_id=999), grpc.StatusCode.INVALID_ARGUMENT),
        ("ClassifyGenre", pb.ClassifyGenreRequest(features=pb.FeatureValues(values={"energy": 1})),
         grpc.StatusCode.INVALID_ARGUMENT),
        # a path reload is off without --bundle-root or an admin token
        ("ReloadBundle", pb.ReloadBundleRequest(path="/tmp"), grpc.StatusCode.PERMISSION_DENIED),
    ]
    for method, request, code in cases:
        assert_same_error(running.http_port, stub, method, request, code)


def test_auth_errors_map_to_401_and_403(bundle_dir: Path) -> None:
    options = ServerOptions(http_port=0, read_tokens=("reader",), admin_tokens=("admin",),
                            bundle_root=bundle_dir.parent)
    with serving(bundle_dir, options) as served:
        port, stub = served.server.http_port, served.stub
        headers = assert_same_error(port, stub, "ListMoods", pb.ListMoodsRequest(), grpc.StatusCode.UNAUTHENTICATED)
        assert headers["www-authenticate"].startswith("Bearer")
        assert_same_error(port, stub, "StreamMoodPlaylist", pb.MoodPlaylistRequest(mood_id=0),
                          grpc.StatusCode.UNAUTHENTICATED, token="wrong")
        assert_same_error(port, stub, "ReloadBundle", pb.ReloadBundleRequest(),
                          grpc.StatusCode.PERMISSION_DENIED, token="reader")
        # a bundle that cannot be loaded: FAILED_PRECONDITION is 400 (see server/_http.py)
        broken = bundle_dir.parent / "not-a-bundle"
        broken.mkdir(exist_ok=True)
        assert_same_error(port, stub, "ReloadBundle", pb.ReloadBundleRequest(path=str(broken)),
                          grpc.StatusCode.FAILED_PRECONDITION, token="admin", http=400)
        assert post(port, "ListMoods", b"", token="reader")[0] == 200
        assert post(port, "ReloadBundle", b"", token="admin")[0] == 200


def test_no_bundle_is_503() -> None:
    with serving(None, ServerOptions(http_port=0)) as served:
        assert_same_error(served.server.http_port, served.stub, "ServerInfo", pb.ServerInfoRequest(),
                          grpc.StatusCode.UNAVAILABLE)


def test_a_bug_is_500_internal(running: RunningServer, stub: pb_grpc.RecommenderStub,
                               monkeypatch: pytest.MonkeyPatch) -> None:
    def broken(self: Recommender) -> Any:
        raise RuntimeError("boom")

    monkeypatch.setattr(Recommender, "moods", broken)
    assert_same_error(running.http_port, stub, "ListMoods", pb.ListMoodsRequest(), grpc.StatusCode.INTERNAL)


def test_deadline_is_504(running: RunningServer, blocking: Blocker, caplog: pytest.LogCaptureFixture) -> None:
    blocking.release.set()  # no blocking needed: a deadline already passed is refused before any work
    with caplog.at_level(logging.ERROR):
        for method, request in [("SimilarTracks", {"seeds": [{"track_id": running.holder.require().ids[0]}]}),
                                ("GetTrack", {"track_id": "x"})]:
            status, _, body = post(running.http_port, method, request, headers={"Grpc-Timeout": "0n"})
            assert status == 504 and json.loads(body)["error"]["status"] == "DEADLINE_EXCEEDED"
        face = running.http.face  # type: ignore[union-attr]
        wait_until(lambda: face._slots._value == face.options.max_concurrent, "the handlers to end")
        gc.collect()  # an unread future's "exception was never retrieved" is logged when it is collected
    # each such call logged asyncio's "Future exception was never retrieved" with a traceback
    assert not [r for r in caplog.records if r.levelno >= logging.ERROR], caplog.text
    status, _, body = post(running.http_port, "ListMoods", b"", headers={"Grpc-Timeout": "soon"})
    assert status == 400 and "Grpc-Timeout" in json.loads(body)["error"]["message"]


def test_over_the_concurrency_limit_is_429(bundle_dir: Path, blocking: Blocker) -> None:
    with serving(bundle_dir, ServerOptions(max_concurrent=1, http_port=0)) as served:
        srv = served.server
        try:
            request = {"seeds": [{"track_id": srv.holder.require().ids[0]}]}
            first: list[int] = []
            held = threading.Thread(target=lambda: first.append(post(srv.http_port, "SimilarTracks", request)[0]))
            held.start()
            assert blocking.entered.acquire(timeout=T)
            status, _, body = post(srv.http_port, "ListMoods", b"")
            assert status == 429 and json.loads(body)["error"]["status"] == "RESOURCE_EXHAUSTED"
            blocking.release.set()
            held.join(T)
            assert first == [200]
            wait_until(lambda: post(srv.http_port, "ListMoods", b"")[0] == 200, "the slot to be free again")
        finally:
            blocking.release.set()


def test_wrong_verbs_and_unknown_methods(running: RunningServer) -> None:
    status, headers, body = post(running.http_port, "ListMoods", verb="GET")
    assert status == 405 and headers["allow"] == "POST" and "takes POST" in json.loads(body)["error"]["message"]
    status, _, body = post(running.http_port, "Nope", b"{}")
    assert status == 404 and "SimilarTracks" in json.loads(body)["error"]["message"]
    conn = http.client.HTTPConnection("127.0.0.1", running.http_port, timeout=T)
    conn.request("GET", "/v1")
    listing = json.loads(conn.getresponse().read())
    conn.close()
    assert [m["name"] for m in listing["methods"]] == list(METHODS)


def test_an_http_port_in_use_is_refused_before_the_bundle_loads(bundle_dir: Path, running: RunningServer) -> None:
    from server import ServerStartError

    with pytest.raises(ServerStartError, match="in use"):
        create_server(bundle_dir, "127.0.0.1:0", ServerOptions(http_port=running.http_port))


def test_the_http_socket_says_tcp_so_responses_are_not_held_back() -> None:
    """asyncio turns Nagle off (TCP_NODELAY) on accepted connections only when the listening socket's
    proto is IPPROTO_TCP; without it each JSON answer waited ~40 ms for a delayed ACK."""

    from server._http_server import bind_http

    sock = bind_http("127.0.0.1", 0)
    try:
        assert sock.proto == socket.IPPROTO_TCP
    finally:
        sock.close()


@pytest.mark.parametrize("argv", [["serve", "--help"], ["bench", "--help"]], ids=" ".join)
def test_help_loads_no_web_or_plotting_module(argv: list[str]) -> None:
    from tests.test_entrypoint import loaded, run_main

    code, modules, printed = run_main(argv)
    assert code == 0 and ("--http-port" in printed or "--html" in printed)
    assert loaded(modules, ("starlette", "uvicorn", "matplotlib")) == []


def request(port: int, verb: str, path: str) -> tuple[int, dict[str, str], bytes]:
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=T)
    try:
        conn.request(verb, path)
        response = conn.getresponse()
        return response.status, {k.lower(): v for k, v in response.getheaders()}, response.read()
    finally:
        conn.close()


@pytest.mark.parametrize(("verb", "path", "allow", "message"), [
    ("POST", "/v1", "GET, HEAD", "/v1 takes GET, HEAD, not POST"),
    ("TRACE", "/v1/SimilarTracks", "POST", "/v1/SimilarTracks takes POST with a JSON SimilarTracksRequest"),
    ("POST", "/console/api/search", "GET, HEAD", "/console/api/search takes GET, HEAD, not POST"),
    ("DELETE", "/console/api/bundle", "GET, HEAD", "/console/api/bundle takes GET, HEAD, not DELETE"),
    ("POST", "/", "GET, HEAD", "/ takes GET, HEAD, not POST"),
    ("PUT", "/console.js", "GET, HEAD", "/console.js takes GET, HEAD, not PUT"),
])
def test_a_verb_a_path_does_not_take_is_405_json_with_allow(running: RunningServer, verb: str, path: str,
                                                            allow: str, message: str) -> None:
    """Starlette answered these in plain text ("Method Not Allowed"), unlike every other error of the face."""
    status, headers, body = request(running.http_port, verb, path)
    assert status == 405 and headers["allow"] == allow and headers["content-type"] == "application/json"
    assert json.loads(body) == {"error": {"code": 405, "status": "METHOD_NOT_ALLOWED", "message": message}}


@pytest.mark.parametrize(("path", "words"), [
    ("/v1/SimilarTracks/extra", "no path /v1/SimilarTracks/extra: an RPC is POST /v1/<Method> with one of the "
                                "methods SimilarTracks, "),
    ("/console/api/serch", "no endpoint /console/api/serch; the console's endpoints are /console/api/search, "
                           "/console/api/map, /console/api/bundle, /console/api/report.html"),
    ("/console/api/", "no endpoint /console/api/; the console's endpoints are /console/api/search, "),
])
def test_an_api_path_that_is_not_there_is_404_json(running: RunningServer, path: str, words: str) -> None:
    status, headers, body = request(running.http_port, "GET", path)
    assert status == 404 and headers["content-type"] == "application/json"
    error = json.loads(body)["error"]
    assert error["code"] == 404 and error["status"] == "NOT_FOUND" and error["message"].startswith(words)


def test_a_console_file_that_is_not_there_stays_a_plain_404_for_the_browser(running: RunningServer) -> None:
    status, headers, body = request(running.http_port, "GET", "/no-such-page.html")
    assert status == 404 and headers["content-type"].startswith("text/plain") and body == b"Not Found"
    status, headers, _ = request(running.http_port, "GET", "/")
    assert status == 200 and headers["content-type"].startswith("text/html")


def test_a_verb_no_route_lists_gets_the_rpcs_own_answer(running: RunningServer) -> None:
    status, _, body = request(running.http_port, "TRACE", "/v1/Nope")
    assert status == 404 and json.loads(body)["error"]["message"].startswith("no method 'Nope' in musicrec.v1")
