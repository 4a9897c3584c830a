"""The HTTP face's headers: every line of a header is read (a second Content-Type or Content-Encoding line was
never seen), the console's map is gzip only when Accept-Encoding allows it, and the bearer scheme is read in any
case. (Request bodies: tests/server/test_http_bodies.py.)"""

from __future__ import annotations

import gzip
import http.client
import json

import grpc
import pytest

from server import RunningServer, ServerOptions
from server._generated.musicrec.v1 import recommender_pb2 as pb
from server._generated.musicrec.v1 import recommender_pb2_grpc as pb_grpc
from server._interceptors import bearer_token

from .test_http import T

TOKEN = "reader-token"


@pytest.fixture(scope="module")
def server_options() -> ServerOptions:
    """The module's server (``running``, tests/conftest.py): its HTTP face on a free port, behind a read token."""
    return ServerOptions(http_port=0, read_tokens=(TOKEN,))


def send(port: int, verb: str, path: str, lines: list[tuple[str, str]], body: bytes = b"",
         ) -> tuple[int, http.client.HTTPMessage, bytes]:
    """A request with exactly the header ``lines`` given (a name may repeat), and its answer as sent."""
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=T)
    try:
        conn.putrequest(verb, path, skip_accept_encoding=True)
        for name, value in [*lines, ("Content-Length", str(len(body)))]:
            conn.putheader(name, value)
        conn.endheaders(body)
        response = conn.getresponse()
        return response.status, response.headers, response.read()
    finally:
        conn.close()


AUTH = ("Authorization", f"Bearer {TOKEN}")


def test_a_second_content_encoding_line_is_read(running: RunningServer) -> None:
    """``identity`` then ``gzip`` on two lines is ``identity, gzip``, 415 as on one line: the second line was
    never seen, so the gzip body was parsed as text (400 "not UTF-8")."""
    lines = [AUTH, ("Content-Type", "application/json"), ("Content-Encoding", "identity"), ("Content-Encoding", "gzip")]
    status, _, answer = send(running.http_port, "POST", "/v1/ListMoods", lines, gzip.compress(b"{}"))
    error = json.loads(answer)["error"]
    assert status == 415 == error["code"] and error["status"] == "UNSUPPORTED_MEDIA_TYPE"
    assert "Content-Encoding 'identity, gzip' is not supported" in error["message"]
    # one line, as before
    status, _, answer = send(running.http_port, "POST", "/v1/ListMoods", [*lines[:2], ("Content-Encoding", "identity")],
                             b"{}")
    assert status == 200, answer


@pytest.mark.parametrize("second", ["application/xml", "application/json"])
def test_a_second_content_type_line_is_415(running: RunningServer, second: str) -> None:
    """Two Content-Type lines: which one is the body? The first one was taken (JSON, then XML, was read as JSON)."""
    lines = [AUTH, ("Content-Type", "application/json"), ("Content-Type", second)]
    status, _, answer = send(running.http_port, "POST", "/v1/ListMoods", lines, b"{}")
    error = json.loads(answer)["error"]
    assert status == 415 == error["code"] and error["status"] == "UNSUPPORTED_MEDIA_TYPE"
    assert error["message"].startswith(f"Content-Type is given 2 times ('application/json', {second!r})")


@pytest.mark.parametrize(("lines", "gzipped"), [
    (["gzip"], True),
    (["gzip, deflate, br, zstd"], True),  # what browsers send
    (["GZIP"], True),  # codings are case-insensitive
    (["gzip;q=0.5"], True),
    (["*"], True),
    (["deflate", "gzip"], True),  # a second line counts
    (["x-gzip"], True),  # gzip's old name (RFC 9110 8.4.1.3)
    (["gzip;q=0"], False),  # was gzip: a substring test
    (["gzip; q=0.000"], False),
    (["nogzip"], False),  # was gzip: a substring test
    (["*;q=0"], False),
    (["*, gzip;q=0"], False),  # * does not stand for a coding named apart
    (["gzip;q=0", "*"], False),
    (["deflate, br"], False),
    ([""], False),  # an empty header wants no coding
    ([], False),
])
def test_the_map_is_gzip_only_when_accept_encoding_allows_it(running: RunningServer, lines: list[str],
                                                             gzipped: bool) -> None:
    status, headers, body = send(running.http_port, "GET", "/console/api/map?max_points=50",
                                 [AUTH, *(("Accept-Encoding", line) for line in lines)])
    assert status == 200, body
    assert headers.get("Content-Encoding") == ("gzip" if gzipped else None)
    assert "Accept-Encoding" in headers.get("Vary", "")
    assert json.loads(gzip.decompress(body) if gzipped else body)["shown"] == 50


@pytest.mark.parametrize("header", [f"bearer {TOKEN}", f"BEARER {TOKEN}", f"Bearer   {TOKEN}", f"bEaReR {TOKEN}"])
def test_the_bearer_scheme_is_read_in_any_case_on_both_faces(running: RunningServer, stub: pb_grpc.RecommenderStub,
                                                             header: str) -> None:
    """Auth schemes are case-insensitive (RFC 9110 11.1): ``bearer TOKEN`` was 401 on HTTP and UNAUTHENTICATED on
    gRPC, which reads its metadata with the same rule."""
    status, _, answer = send(running.http_port, "POST", "/v1/ListMoods",
                             [("Authorization", header), ("Content-Type", "application/json")], b"{}")
    assert status == 200, answer
    assert stub.ListMoods(pb.ListMoodsRequest(), metadata=[("authorization", header)], timeout=T).moods


@pytest.mark.parametrize("header", [TOKEN, f"Bearer{TOKEN}", f"Basic {TOKEN}", "Bearer ", f"Bearer x{TOKEN}"])
def test_what_is_not_the_bearer_scheme_and_the_token_is_still_401(running: RunningServer,
                                                                  stub: pb_grpc.RecommenderStub, header: str) -> None:
    status, headers, _ = send(running.http_port, "POST", "/v1/ListMoods",
                              [("Authorization", header), ("Content-Type", "application/json")], b"{}")
    assert status == 401 and headers["WWW-Authenticate"].startswith("Bearer")
    with pytest.raises(grpc.RpcError) as caught:
        stub.ListMoods(pb.ListMoodsRequest(), metadata=[("authorization", header)], timeout=T)
    assert caught.value.code() == grpc.StatusCode.UNAUTHENTICATED


def test_bearer_token_takes_the_rest_of_the_header_as_the_token() -> None:
    assert bearer_token([("authorization", "bearer  a b")]) == b"a b"
    assert bearer_token([("authorization", "Bearer")]) == b""
    assert bearer_token(None) == b""


def test_two_authorization_lines_or_entries_are_refused_on_both_faces(running: RunningServer,
                                                                      stub: pb_grpc.RecommenderStub) -> None:
    """Which of two tokens counts is not for the server to guess: HTTP took the first line, gRPC the last entry."""
    for lines in ([("Authorization", f"Bearer {TOKEN}"), ("Authorization", "Bearer wrong")],
                  [("Authorization", "Bearer wrong"), ("Authorization", f"Bearer {TOKEN}")]):
        status, _, _ = send(running.http_port, "POST", "/v1/ListMoods",
                            [*lines, ("Content-Type", "application/json")], b"{}")
        assert status == 401
        with pytest.raises(grpc.RpcError) as caught:
            stub.ListMoods(pb.ListMoodsRequest(), metadata=[(k.lower(), v) for k, v in lines], timeout=T)
        assert caught.value.code() == grpc.StatusCode.UNAUTHENTICATED


def test_two_grpc_timeout_lines_are_400(running: RunningServer) -> None:
    lines = [AUTH, ("Content-Type", "application/json"), ("Grpc-Timeout", "1S"), ("Grpc-Timeout", "100S")]
    status, _, answer = send(running.http_port, "POST", "/v1/ListMoods", lines, b"{}")
    assert status == 400 and json.loads(answer)["error"]["message"] == "Grpc-Timeout is given 2 times: send it once"
