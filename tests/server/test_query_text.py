"""What `musicrec query --json` prints, and text arguments a request cannot carry, refused naming the option
(health's and bench's too: the same argparse types, server/_cli_args.py)."""

from __future__ import annotations

import json

import pytest

from musicrec.cli import main
from server import RunningServer
from tests.server.test_query_cli import error_of


def test_query_json_prints_fields_at_their_zero_value(running: RunningServer,
                                                      capsys: pytest.CaptureFixture[str]) -> None:
    """--json left out position 0, mood_id 0 and transition 0.0, which the HTTP face prints
    (server/_http_json.py): a script reading entries[0]["position"] got a KeyError."""
    assert main(["query", "playlist", "--mood-id", "0", "--length", "3", "--json",
                 "--address", f"127.0.0.1:{running.port}"]) == 0
    playlist = json.loads(capsys.readouterr().out)
    assert playlist["mood"]["mood_id"] == 0 and playlist["entries"][0]["position"] == 0
    assert "transition" in playlist["entries"][0]
    track = next(t for t in playlist["entries"] if t["track"]["mood_id"] == 0)["track"]
    assert main(["query", "track", track["track_id"], "--json", "--address", f"127.0.0.1:{running.port}"]) == 0
    assert json.loads(capsys.readouterr().out)["track"]["mood_id"] == 0


NOT_UTF8 = "\udcff"  # how Python hands over an argument holding the byte 0xff in a UTF-8 locale


@pytest.mark.parametrize(("argv", "option"), [
    (["health", "h:1", "--service", NOT_UTF8], "--service"),
    (["health", "h:1", "--tls", "--tls-server-name", NOT_UTF8], "--tls-server-name"),
    (["query", "track", NOT_UTF8], "track_id"),
    (["query", "classify", "a" + NOT_UTF8], "track_id"),
    (["query", "similar", NOT_UTF8], "track_ids"),
    (["query", "similar", "ID", "--not", NOT_UTF8], "--not"),
    (["query", "similar", "ID", "--genre", NOT_UTF8], "--genre"),
    (["query", "similar", "ID", "--exclude-genre", "rock" + NOT_UTF8], "--exclude-genre"),
    (["query", "similar", "ID", "--target", NOT_UTF8 + "=1"], "--target"),
    (["query", "playlist", "--mood", "sad " + NOT_UTF8], "--mood"),
    (["query", "playlist", "--seed", NOT_UTF8], "--seed"),
    (["query", "reload", NOT_UTF8], "path"),
    (["query", "classify", "--features", NOT_UTF8 + "=1"], "--features"),
    (["query", "info", "--tls", "--tls-server-name", NOT_UTF8], "--tls-server-name"),
    (["bench", "--tls", "--tls-server-name", NOT_UTF8], "--tls-server-name"),
])
def test_text_that_is_not_utf8_is_refused_naming_its_option(argv: list[str], option: str,
                                                            capsys: pytest.CaptureFixture[str]) -> None:
    """Before: health exited 70 (UnicodeEncodeError in grpc), and query exited 2 with "'utf-8' codec can't
    encode character '\\udcff'", naming no option."""
    err = error_of(capsys, *argv)
    assert f"argument {option}: not valid UTF-8 text" in err and "codec" not in err



def test_classify_without_top_asks_for_the_servers_default(monkeypatch: pytest.MonkeyPatch,
                                                           capsys: pytest.CaptureFixture[str]) -> None:
    """It always sent top_k 5, which a bundle of fewer than 5 genres refused ("--top: must be 1..4, got 5"); top_k 0
    is the server's default: 5, or every genre of a bundle with fewer."""
    from server._generated.musicrec.v1 import recommender_pb2 as pb
    from server._generated.musicrec.v1 import recommender_pb2_grpc as pb_grpc

    asked = []

    class Stub:
        def __init__(self, channel: object) -> None:
            pass

        def ClassifyGenre(self, request: pb.ClassifyGenreRequest, **kwargs: object) -> pb.ClassifyGenreResponse:
            asked.append(request.top_k)
            return pb.ClassifyGenreResponse(genres=[pb.GenreProbability(genre="folk", probability=1.0)])

    monkeypatch.setattr(pb_grpc, "RecommenderStub", Stub)
    for extra in ([], ["--top", "3"]):
        assert main(["query", "classify", "ID", "--address", "127.0.0.1:1", *extra]) == 0
    assert asked == [0, 3]
