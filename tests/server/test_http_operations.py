"""The HTTP face as an operator runs it: deadlines that pass while a call works, a health endpoint for HTTP load
balancers, the metrics and request log of its calls, a stop that gives its calls the same grace as gRPC's, and
the parts of a request it does not read refused rather than ignored."""

from __future__ import annotations

import gzip
import http.client
import io
import json
import logging
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

import server._service
from server import RunningServer, ServerOptions, create_server
from server._logging import JsonFormatter
from tests._serving import serving

from .conftest import Blocker, wait_until
from .test_http import post, request
from .test_metrics import Scrape

T = 10


@pytest.fixture(scope="module")
def server_options() -> ServerOptions:
    """The module's server (``running``, tests/conftest.py) with its HTTP face on a free port."""
    return ServerOptions(max_concurrent=16, http_port=0)


def first_id(srv: RunningServer) -> str:
    return str(srv.holder.require().ids[0])


def test_a_deadline_that_passes_while_the_call_works_is_504_at_once(running: RunningServer,
                                                                    blocking: Blocker) -> None:
    # the answer used to wait for the handler and come back 200, long after the client's Grpc-Timeout
    status, _, body = post(running.http_port, "SimilarTracks", {"seeds": [{"track_id": first_id(running)}]},
                           headers={"Grpc-Timeout": "300m"})
    assert status == 504, body
    assert json.loads(body)["error"] == {"code": 504, "status": "DEADLINE_EXCEEDED", "message":
                                         "the deadline (Grpc-Timeout) passed before the call finished"}
    # answered while the handler was still held: it never finished, so the answer did not wait for it
    assert blocking.entered.acquire(blocking=False) and not blocking.release.is_set()
    blocking.release.set()


def test_a_stream_cut_by_its_deadline_ends_with_an_error_line(running: RunningServer,
                                                              monkeypatch: pytest.MonkeyPatch) -> None:
    original = server._service.conv.playlist_entry_pb
    made: list[int] = []

    def second_waits(*args: object, **kwargs: object) -> object:
        made.append(1)
        if len(made) == 2:
            time.sleep(2.5)  # past the 2 s deadline: the servicer then stops choosing, quietly
        return original(*args, **kwargs)

    monkeypatch.setattr(server._service.conv, "playlist_entry_pb", second_waits)
    status, _, body = post(running.http_port, "StreamMoodPlaylist", {"mood_id": 0, "length": 40},
                           headers={"Grpc-Timeout": "2S"})
    lines = [json.loads(line) for line in body.decode().splitlines()]
    assert status == 200 and len(lines) == 2 and "position" in lines[0], lines
    assert lines[1] == {"error": {"code": 504, "status": "DEADLINE_EXCEEDED",
                                  "message": "the deadline (Grpc-Timeout) passed before the playlist was complete"}}
    monkeypatch.setattr(server._service.conv, "playlist_entry_pb", original)
    status, _, body = post(running.http_port, "StreamMoodPlaylist", {"mood_id": 0, "length": 40},
                           headers={"Grpc-Timeout": "20S"})
    assert status == 200 and all("position" in json.loads(line) for line in body.decode().splitlines())


def test_a_deadline_that_passes_before_the_first_entry_is_an_ordinary_504(running: RunningServer,
                                                                          monkeypatch: pytest.MonkeyPatch) -> None:
    # the status line went out first: a 200 holding one error line
    original = server._service.conv.playlist_entry_pb

    def slow(*args: object, **kwargs: object) -> object:
        time.sleep(0.6)
        return original(*args, **kwargs)

    monkeypatch.setattr(server._service.conv, "playlist_entry_pb", slow)
    status, headers, body = post(running.http_port, "StreamMoodPlaylist", {"mood_id": 0, "length": 5},
                                 headers={"Grpc-Timeout": "300m"})
    assert status == 504 and headers["content-type"] == "application/json", body
    assert json.loads(body)["error"]["status"] == "DEADLINE_EXCEEDED"


def test_healthz_says_what_the_grpc_health_service_says(running: RunningServer) -> None:
    status, headers, body = request(running.http_port, "GET", "/healthz")
    assert status == 200 and headers["content-type"] == "application/json" and json.loads(body) == {
        "status": "SERVING"}
    with serving(None, ServerOptions(http_port=0)) as served:  # no bundle loaded
        status, _, body = request(served.server.http_port, "GET", "/healthz")
        assert status == 503 and json.loads(body) == {"status": "NOT_SERVING"}


@pytest.mark.parametrize(("path", "headers", "code", "words"), [
    ("/v1/SimilarTracks?k=1", {}, 400, "/v1/SimilarTracks reads no query parameters (got k); send every field in"),
    ("/v1/GetTrack?track_id=x&track_id=y", {}, 400, "reads no query parameters (got track_id)"),
    ("/v1/SimilarTracks", {"Content-Encoding": "gzip"}, 415, "Content-Encoding 'gzip' is not supported: send the "
                                                             "request body uncompressed"),
    ("/v1/SimilarTracks", {"Content-Encoding": "br"}, 415, "Content-Encoding 'br' is not supported"),
])
def test_what_the_face_does_not_read_is_refused_not_ignored(running: RunningServer, path: str,
                                                            headers: dict[str, str], code: int, words: str) -> None:
    body = json.dumps({"seeds": [{"track_id": first_id(running)}], "k": 3}).encode()
    if headers.get("Content-Encoding") == "gzip":
        body = gzip.compress(body)
    conn = http.client.HTTPConnection("127.0.0.1", running.http_port, timeout=T)
    try:
        conn.request("POST", path, body=body, headers={"Content-Type": "application/json", **headers})
        response = conn.getresponse()
        status, answer = response.status, json.loads(response.read())
    finally:
        conn.close()
    assert status == code and words in answer["error"]["message"], answer


def test_the_method_list_refuses_parameters_and_the_health_check_reads_past_them(running: RunningServer) -> None:
    status, _, body = request(running.http_port, "GET", "/v1?x=1")
    assert status == 400 and "reads no query parameters (got x)" in json.loads(body)["error"]["message"], body
    # a load balancer's probe may add a parameter of its own (a cache buster): it must not read as down
    status, _, body = request(running.http_port, "GET", "/healthz?ts=1")
    assert status == 200 and json.loads(body) == {"status": "SERVING"}


@pytest.mark.parametrize("path", ["/v1/SimilarTracks/", "/v1/", "/v1/SimilarTracks/extra", "/console/api/search/",
                                  "/console/api/nope/x"])
def test_a_post_to_an_api_path_that_is_not_there_is_404_not_405(running: RunningServer, path: str) -> None:
    # the console's files' catch-all answered 405 with "Allow: GET, HEAD", which no verb could use
    status, headers, body = request(running.http_port, "POST", path)
    assert status == 404 and "allow" not in headers and json.loads(body)["error"]["status"] == "NOT_FOUND"


@pytest.fixture
def observed(bundle_dir: Path) -> Iterator[tuple[RunningServer, io.StringIO]]:
    out = io.StringIO()
    handler = logging.StreamHandler(out)
    handler.setFormatter(JsonFormatter())
    log = logging.getLogger("musicrec.requests")
    log.addHandler(handler)
    old_level, log.level = log.level, logging.INFO
    srv = create_server(bundle_dir, "127.0.0.1:0", ServerOptions(metrics_port=0, log_requests=True, http_port=0,
                                                                 max_concurrent=1))
    try:
        yield srv, out
    finally:
        srv.stop(0)
        log.removeHandler(handler)
        log.setLevel(old_level)


def test_http_calls_are_counted_and_logged_as_the_same_rpcs(observed: tuple[RunningServer, io.StringIO],
                                                            blocking: Blocker) -> None:
    # they reached neither the metrics nor the request log: an operator saw only the gRPC face's traffic
    srv, out = observed
    port = srv.http_port
    ok = {"seeds": [{"track_id": first_id(srv)}], "k": 3}
    blocking.release.set()
    assert post(port, "SimilarTracks", ok, headers={"x-request-id": "abc-123"})[0] == 200
    assert post(port, "SimilarTracks", {"k": -1})[0] == 400
    assert post(port, "GetTrack", {"track_id": "no-such-id"})[0] == 404
    assert post(port, "StreamMoodPlaylist", {"mood_id": 99999})[0] == 400  # counted by its status, not CANCELLED
    assert blocking.entered.acquire(blocking=False)  # the first call's entry, so the next acquire waits for the held one
    blocking.release.clear()
    held = threading.Thread(target=post, args=(port, "SimilarTracks", ok))
    held.start()
    assert blocking.entered.acquire(timeout=T)
    try:
        assert post(port, "ListMoods", b"")[0] == 429  # over --max-concurrent 1: shed
    finally:
        blocking.release.set()
        held.join(T)
    assert srv.metrics_port
    scrape = Scrape(srv.metrics_port)
    assert scrape.rpc("musicrec_rpc_requests_total", "SimilarTracks", "OK") == 2
    assert scrape.rpc("musicrec_rpc_requests_total", "SimilarTracks", "INVALID_ARGUMENT") == 1
    assert scrape.rpc("musicrec_rpc_requests_total", "GetTrack", "NOT_FOUND") == 1
    assert scrape.rpc("musicrec_rpc_requests_total", "StreamMoodPlaylist", "INVALID_ARGUMENT") == 1
    assert scrape.rpc("musicrec_rpc_requests_total", "StreamMoodPlaylist", "CANCELLED", default=0) == 0
    assert scrape.rpc("musicrec_rpc_requests_total", "ListMoods", "RESOURCE_EXHAUSTED") == 1
    assert scrape.rpc("musicrec_rpc_shed_total", "ListMoods") == 1
    assert scrape.rpc("musicrec_rpc_duration_seconds_count", "SimilarTracks", "OK") == 2
    assert scrape.rpc("musicrec_rpc_in_flight", "SimilarTracks") == 0
    wait_until(lambda: out.getvalue().count('"event": "request"') >= 6, "the request log's lines")
    lines = [json.loads(line) for line in out.getvalue().splitlines()]
    first = next(line for line in lines if line.get("request_id") == "abc-123")
    assert first["face"] == "http" and first["rpc"] == "musicrec.v1.Recommender/SimilarTracks"
    assert first["status"] == "OK" and first["peer"].startswith("http:127.0.0.1:")
    assert {(line["rpc"].rpartition("/")[2], line["status"]) for line in lines if line.get("face") == "http"} == {
        ("SimilarTracks", "OK"), ("SimilarTracks", "INVALID_ARGUMENT"), ("GetTrack", "NOT_FOUND"),
        ("StreamMoodPlaylist", "INVALID_ARGUMENT"), ("ListMoods", "RESOURCE_EXHAUSTED")}


def test_a_stop_gives_http_calls_the_grace_then_answers_503_json(bundle_dir: Path, blocking: Blocker) -> None:
    # uvicorn's own 2 s ran out first, whatever --grace said, and the calls left got a plain-text 500
    srv = create_server(bundle_dir, "127.0.0.1:0", ServerOptions(http_port=0))
    port, ok = srv.http_port, {"seeds": [{"track_id": first_id(srv)}]}
    answers: list[tuple[int, bytes]] = []
    calls = [threading.Thread(target=lambda: answers.append(post(port, "SimilarTracks", ok)[::2]))
             for _ in range(2)]
    for call in calls:
        call.start()
    for _ in calls:
        assert blocking.entered.acquire(timeout=T)
    stopping = threading.Thread(target=srv.stop, kwargs={"grace": 0.5})
    stopping.start()
    wait_until(lambda: srv.http is not None and srv.http.face.closing, "the HTTP face to stop taking calls")
    for call in calls:
        call.join(T)
    stopping.join(T)
    blocking.release.set()
    assert not stopping.is_alive() and len(answers) == 2
    for status, body in answers:
        assert status == 503, body
        assert json.loads(body)["error"] == {"code": 503, "status": "UNAVAILABLE", "message":
                                             "the server stopped before the call finished; retry"}


def test_small_answers_say_what_they_mean(running: RunningServer) -> None:
    status, _, body = post(running.http_port, "ListMoods", {"x": 1})
    assert status == 400 and json.loads(body)["error"]["message"].endswith(
        "ListMoodsRequest has no field 'x'; it has no fields")  # it ended "its fields: " and nothing
    status, _, body = request(running.http_port, "GET", "/console/api/map")
    xy = json.loads(body)["x"] + json.loads(body)["y"]
    assert status == 200 and xy and all(v == round(v, 4) and len(repr(v)) <= 12 for v in xy)  # not float32's digits


def test_a_stream_running_at_the_end_of_the_grace_is_cut_without_a_traceback(
        bundle_dir: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture) -> None:
    # uvicorn logged "Exception in ASGI application" with a CancelledError traceback at every such stop
    original = server._service.conv.playlist_entry_pb

    def slow(*args: object, **kwargs: object) -> object:
        time.sleep(0.2)
        return original(*args, **kwargs)

    monkeypatch.setattr(server._service.conv, "playlist_entry_pb", slow)
    srv = create_server(bundle_dir, "127.0.0.1:0", ServerOptions(http_port=0))
    got: list[object] = []

    def read() -> None:
        conn = http.client.HTTPConnection("127.0.0.1", srv.http_port or 0, timeout=T)
        try:
            conn.request("POST", "/v1/StreamMoodPlaylist", body=json.dumps({"mood_id": 0, "length": 100}))
            response = conn.getresponse()
            got.append(response.status)
            got.append(response.read())
        except http.client.IncompleteRead as exc:
            got.append(exc.partial)
        finally:
            conn.close()

    reader = threading.Thread(target=read)
    reader.start()
    wait_until(lambda: bool(got), "the stream's status line")
    with caplog.at_level(logging.ERROR):
        srv.stop(grace=0.5)
    reader.join(T)
    assert got[0] == 200 and len(got) == 2
    assert 0 < len(bytes(got[1]).decode().splitlines()) < 100  # cut: fewer entries than asked for
    assert "Exception in ASGI application" not in caplog.text and "Traceback" not in caplog.text
