"""The HTTP/JSON face's request bodies: malformed ones are 400 naming the problem, other declared types 415,
oversized ones 413, and a body refused before it is read is drained so the client gets the answer; no body gets a
500. (How RPCs and errors map between the faces: tests/server/test_http.py.)"""

from __future__ import annotations

import http.client
import json
import socket
import urllib.error
import urllib.request

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from server import RunningServer, ServerOptions
from server._http_json import METHODS

from .test_http import T, post


@pytest.fixture(scope="module")
def server_options() -> ServerOptions:
    """The module's server (``running``, tests/conftest.py) with its HTTP face on a free port."""
    return ServerOptions(max_concurrent=16, http_port=0)


@pytest.mark.parametrize(("body", "words"), [
    (b"{", "not valid JSON"),
    (b"[1, 2]", "must be a JSON object"),
    (b"null", "must be a JSON object"),
    (b'"text"', "must be a JSON object"),
    (b'{"bogus": 1}', "SimilarTracksRequest has no field 'bogus'; its fields: seeds, negative_seeds, targets"),
    # the field names as the proto and the README spell them, not the JSON mapping's camelCase
    (b'{"seeds": [{"trackid": "x"}]}', "SimilarTracksRequest.seeds[0] has no field 'trackid'; its fields: track_id,"),
    (b'{"genreWeight": "x"}', "SimilarTracksRequest.genre_weight must be a number, not the text 'x'"),
    (b'{"k": "ten"}', "SimilarTracksRequest.k must be a number, not the text 'ten'"),
    (b'{"k": -1}', "Failed to parse k field"),
    (b'{"k": 1.5}', "Couldn't parse integer"),
    (b'{"seeds": {"track_id": "x"}}', "SimilarTracksRequest.seeds must be a JSON array, not an object"),
    # what protobuf's ParseDict let through or worded as its own internals (an audit, 2026-12-07)
    (b'{"filter": {"includeGenres": ["jazz"], "include_genres": ["edm"]}}',  # the first was dropped
     "SimilarTracksRequest.filter.include_genres is given twice, as 'includeGenres' and 'include_genres'"),
    (b'{"filter": []}', "SimilarTracksRequest.filter must be a JSON object (a Filter), not an array"),  # was accepted
    (b'{"filter": "jazz"}', "SimilarTracksRequest.filter must be a JSON object (a Filter), not a string"),
    (b'{"filter": {"ranges": {"tempo": []}}}', "SimilarTracksRequest.filter.ranges['tempo'] must be a JSON object"),
    (b'{"filter": {"ranges": []}}', "SimilarTracksRequest.filter.ranges must be a JSON object (a map), not an array"),
    (b'{"k": "1_0"}', "SimilarTracksRequest.k must be a number, not the text '1_0'"),  # was read as 10
    (b'{"seeds": [null]}', "SimilarTracksRequest.seeds[0] is null"),
    (b'{"seeds": [{"features": {"values": {"energy": null}}}]}',
     "SimilarTracksRequest.seeds[0].features.values['energy'] is null"),
    (b'{"seeds": [{"track_id": 7}]}', "Failed to parse"),
    (b'{"k": 1, "k": 2}', "duplicate JSON key 'k'"),
    (b"\xff\xfe{}", "not UTF-8"),
    (b"[" * 100_000 + b"]" * 100_000, "nests too deeply"),
    (b'{"filter": {"ranges": {"tempo": {"min": "fast"}}}}',
     "SimilarTracksRequest.filter.ranges['tempo'].min must be a number, not the text 'fast'"),
    # true/false in a number field: Python's bool is an int, so ParseDict read true as 1.0 (2026-12 review)
    (b'{"seeds": [{"track_id": "x"}], "k": 3, "diversity": true}',
     "SimilarTracksRequest.diversity must be a number, not true/false"),
    (b'{"genre_weight": false}', "SimilarTracksRequest.genre_weight must be a number, not true/false"),
    (b'{"target_weight": true}', "SimilarTracksRequest.target_weight must be a number, not true/false"),
    (b'{"targets": {"energy": true}}', "SimilarTracksRequest.targets['energy'] must be a number, not true/false"),
    (b'{"seeds": [{"features": {"values": {"energy": false}}}]}',
     "SimilarTracksRequest.seeds[0].features.values['energy'] must be a number, not true/false"),
    (b'{"seeds": [{"vector": {"values": [0.5, true]}}]}',
     "SimilarTracksRequest.seeds[0].vector.values[1] must be a number, not true/false"),
    (b'{"filter": {"ranges": {"tempo": {"min": true}}}}',
     "SimilarTracksRequest.filter.ranges['tempo'].min must be a number, not true/false"),
    (b'{"filter": {"ranges": {"tempo": {"max": false}}}}',
     "SimilarTracksRequest.filter.ranges['tempo'].max must be a number, not true/false"),
    (b'{"k": true}', "SimilarTracksRequest.k must be a number, not true/false"),
    # a bytes field given what is not base64 text: was "object of type 'int' has no len()", or "!!" an empty clip
    (b'{"seeds": [{"audio": 123}]}', "SimilarTracksRequest.seeds[0].audio must be base64 text, not a number"),
    (b'{"seeds": [{"audio": [1, 2]}]}', "SimilarTracksRequest.seeds[0].audio must be base64 text, not an array"),
    (b'{"seeds": [{"audio": true}]}', "SimilarTracksRequest.seeds[0].audio must be base64 text, not true/false"),
    (b'{"seeds": [{"audio": "!!"}]}', "SimilarTracksRequest.seeds[0].audio must be base64 text: '!' (character 0)"),
    (b'{"seeds": [{"audio": "QQ==QQ=="}]}', "SimilarTracksRequest.seeds[0].audio must be base64 text: '=' only pads"),
    (b'{"seeds": [{"audio": "QUJDR"}]}', "SimilarTracksRequest.seeds[0].audio must be base64 text: 5 characters"),
    # a line break passed the check, then protobuf counted it into the padding ("Incorrect padding")
    (b'{"seeds": [{"audio": "QUJD\\nQQ"}]}', "SimilarTracksRequest.seeds[0].audio must be base64 text: '\\n' (character 4)"),
    # a number longer than the field holds: was Python's advice to call sys.set_int_max_str_digits(), or a 500
    (b'{"k": ' + b"9" * 5000 + b"}",
     "SimilarTracksRequest.k is out of range for a uint64 field: 999999999999... (5,000 digits)"),
    (b'{"k": "' + b"9" * 5000 + b'"}',
     "SimilarTracksRequest.k is out of range for a uint64 field: 999999999999... (5,000 digits)"),
    (b'{"diversity": -' + b"9" * 5000 + b"}",
     "SimilarTracksRequest.diversity is out of range for a double field: -99999999999... (5,000 digits)"),
    (b'{"diversity": ' + b"9" * 309 + b"}",  # under int()'s limit, over a double's: OverflowError, a 500
     "SimilarTracksRequest.diversity is out of range for a double field: 999999999999... (309 digits)"),
    (b'{"diversity": "1e400"}', "SimilarTracksRequest.diversity is out of range for a double field: 1e400"),  # was inf
    (b'{"seeds": [{"vector": {"values": [1e39]}}]}', "SimilarTracksRequest.seeds[0].vector.values[0] is out of range "
                                                     "for a float field: 1e+39"),
    (b'{"seeds": [{"vector": {"values": [1' + b"0" * 39 + b"]}}]}",  # was inf
     "SimilarTracksRequest.seeds[0].vector.values[0] is out of range for a float field: 100000000000... (40 digits)"),
    (b"9" * 5000, "must be a JSON object (a SimilarTracksRequest), not a number"),
    # read as 0.0 by json, and so as k 0, "unset": 10 results
    (b'{"k": 1e-400}', "SimilarTracksRequest.k must be an integer, not 1e-400"),
])
def test_malformed_bodies_are_400_with_a_message(running: RunningServer, body: bytes, words: str) -> None:
    status, _, answer = post(running.http_port, "SimilarTracks", body)
    error = json.loads(answer)["error"]
    assert status == 400 == error["code"] and error["status"] == "INVALID_ARGUMENT"
    assert words in error["message"]


@pytest.mark.parametrize("content_type", ["application/xml", "application/jsonx", "multipart/form-data; boundary=x",
                                          "text/html; charset=utf-8"])
def test_a_body_declared_as_not_json_is_415(running: RunningServer, content_type: str) -> None:
    status, _, answer = post(running.http_port, "ServerInfo", b"<info/>", headers={"Content-Type": content_type})
    error = json.loads(answer)["error"]
    assert status == 415 == error["code"] and error["status"] == "UNSUPPORTED_MEDIA_TYPE"
    assert f"Content-Type {content_type.split(';')[0]!r}" in error["message"]
    assert "send the request as application/json" in error["message"]


@pytest.mark.parametrize("content_type", ["application/json", "application/json; charset=utf-8",
                                          "Application/JSON;charset=UTF-8", "application/vnd.musicrec.v1+json", None,
                                          "application/x-www-form-urlencoded", "text/plain;charset=UTF-8",
                                          # RFC 8259: a charset has no effect (Apache HttpClient's default)
                                          "text/plain; charset=ISO-8859-1"])
def test_json_and_the_types_clients_send_json_under_are_read_as_json(running: RunningServer,
                                                                      content_type: str | None) -> None:
    """curl -d declares form data and a browser's fetch of a string text/plain: both were read as JSON
    before the face looked at Content-Type, and still are (a body that is not JSON is the usual 400)."""
    status, _, answer = post(running.http_port, "ServerInfo", b"{}", headers={"Content-Type": content_type})
    assert status == 200, answer
    status, _, answer = post(running.http_port, "ServerInfo", b"<info/>", headers={"Content-Type": content_type})
    assert status == 400 and json.loads(answer)["error"]["status"] == "INVALID_ARGUMENT"


def test_huge_bodies_are_413(running: RunningServer) -> None:
    big = b'{"seeds": [' + b",".join([b'{"track_id": "' + b"x" * 1000 + b'"}'] * 7000) + b"]}"
    status, _, answer = post(running.http_port, "SimilarTracks", big)
    error = json.loads(answer)["error"]
    assert status == 413 == error["code"] and error["status"] == "RESOURCE_EXHAUSTED" and "over the" in error["message"]
    # under the body limit but over gRPC's 4 MiB message limit once parsed
    ids = b",".join([b'{"track_id": "' + b"y" * 60_000 + b'"}'] * 80)
    status, _, answer = post(running.http_port, "SimilarTracks", b'{"seeds": [' + ids + b"]}")
    assert status == 413 and "as a protobuf message" in json.loads(answer)["error"]["message"]
    # a chunked body (no Content-Length) is cut off as it arrives
    conn = http.client.HTTPConnection("127.0.0.1", running.http_port, timeout=T)
    conn.request("POST", "/v1/SimilarTracks", body=iter([b"{" + b" " * (1 << 20)] * 8), encode_chunked=True)
    response = conn.getresponse()
    assert response.status == 413
    conn.close()


def urlopen(port: int, path: str, body: bytes, content_type: str = "application/json") -> tuple[int, bytes]:
    """POST with urllib, which sends the whole body before it reads any answer."""
    request = urllib.request.Request(f"http://127.0.0.1:{port}{path}", data=body, headers={"Content-Type": content_type})
    try:
        with urllib.request.urlopen(request, timeout=T) as response:
            return response.status, response.read()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read()


@pytest.mark.parametrize("size_mb", [7, 30])
def test_a_body_refused_unread_is_answered_to_a_client_still_sending_it(running: RunningServer, size_mb: int) -> None:
    """Answered before its body was read, a request's connection used to be reset under a client still sending
    (urllib lost the 413 of a 7 MB body). The server now reads and drops the body first (up to 64 MiB), on every
    path (server/_http_drain.py)."""
    body = b'{"seeds": [' + b" " * (size_mb << 20) + b"]}"
    status, answer = urlopen(running.http_port, "/v1/SimilarTracks", body)
    assert status == 413 and "over the" in json.loads(answer)["error"]["message"]
    status, answer = urlopen(running.http_port, "/v1/SimilarTracks", body, content_type="text/csv")
    assert status == 415 and json.loads(answer)["error"]["status"] == "UNSUPPORTED_MEDIA_TYPE"
    status, answer = urlopen(running.http_port, "/v1/NoSuchMethod", body)
    assert status == 404 and "SimilarTracks" in json.loads(answer)["error"]["message"]
    status, _ = urlopen(running.http_port, "/healthz", body)  # a route that takes no body: Starlette's 405
    assert status == 405
    status, _ = urlopen(running.http_port, "/index.html", body)  # the console's files take GET and HEAD
    assert status == 405


def test_a_client_waiting_for_100_continue_is_refused_without_being_asked_for_its_body(
        running: RunningServer) -> None:
    """The drain must not invite an upload it would throw away: the first line back is the 413, not "100 Continue"."""
    with socket.create_connection(("127.0.0.1", running.http_port), timeout=T) as sock:
        sock.sendall(b"POST /v1/SimilarTracks HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
                     b"Content-Length: 31457280\r\nExpect: 100-continue\r\n\r\n")
        first = sock.makefile("rb").readline()
    assert first.startswith(b"HTTP/1.1 413 "), first


JSON_VALUES = st.recursive(st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=20),
                           lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=12), inner,
                                                                                         max_size=4), max_leaves=12)
FIELDS = ["seeds", "negative_seeds", "targets", "filter", "k", "offset", "diversity", "genre_weight", "track_id",
          "mood_id", "mood_name", "target", "length", "features", "top_k", "explain", "queries", "path"]


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(method=st.sampled_from([m for m in METHODS if m != "ReloadBundle"]),
       body=st.one_of(st.binary(max_size=64), st.dictionaries(st.sampled_from(FIELDS), JSON_VALUES, max_size=4)
                      .map(lambda d: json.dumps(d).encode())))
def test_arbitrary_bodies_never_get_a_500(running: RunningServer, method: str, body: bytes) -> None:
    status, _, answer = post(running.http_port, method, body)
    assert status in (200, 400, 404), answer
    if status != 200:
        assert json.loads(answer)["error"]["message"]
