"""The web console's own endpoints (/console/api/, server/_console.py): query parameters out of their
range are 400 naming the parameter and the bound, never clamped to another value."""

from __future__ import annotations

import http.client
import json
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from server import RunningServer, ServerOptions

T = 10


@pytest.fixture(scope="module")
def server_options() -> ServerOptions:
    """The module's server (``running``, tests/conftest.py) with its HTTP face on a free port."""
    return ServerOptions(http_port=0)


def get(port: int, path: str) -> tuple[int, Any]:
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=T)
    try:
        conn.request("GET", f"/console/api/{path}")
        response = conn.getresponse()
        return response.status, json.loads(response.read())
    finally:
        conn.close()


@pytest.mark.parametrize(("path", "message"), [
    ("search?q=a&limit=0", "limit: must be 1 or more, got 0"),
    ("search?q=a&limit=-3", "limit: must be 1 or more, got -3"),
    ("search?q=a&limit=101", "limit: must be at most 100, got 101"),
    ("search?q=a&limit=ten", "limit: 'ten' is not a whole number"),
    ("search?q=" + "x" * 201, "q: 201 characters; a search is at most 200 characters and 20 different words of "
                              "a track's name or artists"),
    ("search?q=" + "+".join(f"w{i}" for i in range(21)), "q: 21 different words; a search is at most 200 characters "
                                                         "and 20 different words of a track's name or artists"),
    ("search?q=" + "+".join(["a"] * 4000), "q: 7,999 characters; a search is at most 200 characters and 20 different "
                                          "words of a track's name or artists"),
    ("map?max_points=0", "max_points: must be 1 or more, got 0"),
    ("map?max_points=-20000", "max_points: must be 1 or more, got -20000"),
    ("map?max_points=1.5", "max_points: '1.5' is not a whole number"),
    ("search?q=a&limit=1_0", "limit: '1_0' is not a whole number in plain digits 0-9"),
    ("search?q=a&limit=%2B5", "limit: '+5' is not a whole number in plain digits 0-9"),
    ("search?q=a&limit=%EF%BC%95", "limit: '５' is not a whole number in plain digits 0-9"),  # full-width 5
    ("map?max_points=%D9%A3", "max_points: '٣' is not a whole number in plain digits 0-9"),  # Arabic-Indic 3
    # more digits than int() reads: was "'9999...' is not a whole number"
    ("map?max_points=" + "9" * 4301, "max_points: a number of 4,301 digits is too large"),
    ("map?max_points=-" + "9" * 4301, "max_points: a negative number of 4,301 digits is too small"),
    ("search?q=a&limit=" + "9" * 4000, "limit: must be at most 100, got 999999999999... (4,000 digits)"),
])
def test_parameters_out_of_range_are_400_naming_the_bound(running: RunningServer, path: str, message: str) -> None:
    status, answer = get(running.http_port, path)
    assert status == 400 == answer["error"]["code"] and answer["error"]["status"] == "INVALID_ARGUMENT"
    assert answer["error"]["message"] == message


def test_every_value_in_range_is_taken_as_given(running: RunningServer) -> None:
    rec = running.holder.require()
    for limit in (1, 7, 100):
        status, answer = get(running.http_port, f"search?q=a&limit={limit}")
        assert status == 200 and len(answer["tracks"]) == min(limit, answer["total"])
    status, answer = get(running.http_port, "search?q=a")
    assert status == 200 and len(answer["tracks"]) == min(20, answer["total"])  # the default
    for max_points in (1, rec.n, 10 * rec.n):
        status, answer = get(running.http_port, f"map?max_points={max_points}")
        assert status == 200 and answer["total"] == rec.n
    assert get(running.http_port, f"map?max_points={rec.n}")[1]["shown"] == rec.n


def test_a_map_sample_holds_exactly_max_points_and_every_mood_it_can() -> None:
    """max_points is a maximum the client can rely on (a floor of 200 per mood once gave 1,600 points for 1);
    every mood shows while max_points holds one of each, and the larger moods get more."""
    from server._console import MIN_PER_MOOD, _sample

    labels = np.repeat(np.arange(8), [5000, 3000, 900, 400, 150, 40, 8, 2])
    for max_points in (1, 5, 8, 9, 100, 1000, 2000, 9000, len(labels) - 1):
        rows = _sample(labels, max_points)
        assert len(rows) == max_points and len(np.unique(rows)) == max_points and np.all(np.diff(rows) > 0)
        counts = np.bincount(labels[rows], minlength=8)
        if max_points >= 8:
            assert np.all(counts >= 1)
        if max_points >= 8 * MIN_PER_MOOD:
            assert np.all(counts >= np.minimum(MIN_PER_MOOD, np.bincount(labels)))
            assert counts[0] > counts[1] > counts[2] > counts[3]
    assert np.array_equal(_sample(labels, 1000), _sample(labels, 1000))  # a fixed sample
    assert len(_sample(labels, len(labels))) == len(labels)


def test_maps_of_many_sizes_do_not_pile_up(running: RunningServer) -> None:
    """Each size drawn is kept for the next asker, but only the newest few: a client stepping through
    max_points cannot grow the server's memory; sizes from the catalog's up are one map."""
    from server._console import MAPS_KEPT

    rec = running.holder.require()
    assert running.http is not None
    maps = running.http.face.console._maps
    for max_points in range(1, MAPS_KEPT + 6):
        assert get(running.http_port, f"map?max_points={max_points}")[0] == 200
    assert list(maps[rec]) == list(range(6, MAPS_KEPT + 6))  # the newest sizes, oldest first
    for max_points in (rec.n, rec.n + 1, 10 * rec.n):
        assert get(running.http_port, f"map?max_points={max_points}")[0] == 200
    assert list(maps[rec])[-1] == rec.n and len(maps[rec]) == MAPS_KEPT


def test_a_search_up_to_its_bounds_is_answered_and_repeated_words_count_once(running: RunningServer) -> None:
    """q is at most 200 characters and 20 different words (an 8 KB q of 4,000 words held the HTTP face for
    seconds); a word typed again is tested once, and the ranking still sees the query as typed."""
    status, one = get(running.http_port, "search?q=a")
    assert status == 200
    status, repeated = get(running.http_port, "search?q=" + "+".join(["a"] * 100))  # 199 characters, one word
    assert status == 200 and repeated["total"] == one["total"] and repeated["query"] == " ".join(["a"] * 100)
    status, twenty = get(running.http_port, "search?q=" + "+".join(f"w{i}" for i in range(20)))
    assert status == 200 and twenty["total"] == 0
    status, exact = get(running.http_port, "search?q=" + "a" * 200)
    assert status == 200 and exact["total"] == 0
    # a track is found by its id too (a GTZAN-layout catalog has no names to search)
    some_id = running.holder.require().ids[7]
    status, by_id = get(running.http_port, f"search?q={some_id}")
    assert status == 200 and some_id in [t["track_id"] for t in by_id["tracks"]]


@pytest.mark.parametrize(("path", "message"), [
    ("search?q=a&limit=5&limit=50", "limit: given twice; give each parameter at most once"),
    ("search?q=a&q=b", "q: given twice; give each parameter at most once"),
    ("map?max_points=1&max_points=2&max_points=3", "max_points: given 3 times; give each parameter at most once"),
    ("search?q=a&limt=5", "unknown parameter 'limt'; this endpoint takes: q, limit"),
    ("map?max_point=10", "unknown parameter 'max_point'; this endpoint takes: max_points"),
    ("map?limit=10", "unknown parameter 'limit'; this endpoint takes: max_points"),
    ("bundle?verbose=1", "unknown parameter 'verbose'; this endpoint takes no parameters"),
    ("report.html?fresh", "unknown parameter 'fresh'; this endpoint takes no parameters"),
])
def test_repeated_and_unknown_parameters_are_400_naming_them(running: RunningServer, path: str, message: str) -> None:
    """A second value (which one was meant?) or a mistyped name was answered as if it were not there."""
    status, answer = get(running.http_port, path)
    assert status == 400 == answer["error"]["code"] and answer["error"]["status"] == "INVALID_ARGUMENT"
    assert answer["error"]["message"] == message


def test_the_parameters_each_endpoint_takes_are_still_taken(running: RunningServer) -> None:
    for path in ("search?q=a&limit=3", "search?q=a", "search", "map?max_points=5", "map", "bundle"):
        assert get(running.http_port, path)[0] == 200, path


def test_a_manifest_its_reports_cannot_read_is_data_loss_naming_it(bundle_dir: Path, tmp_path: Path,
                                                                     caplog: pytest.LogCaptureFixture) -> None:
    """A served bundle's manifest edited after the build: the RPCs do not read its figures, so the server serves
    it, but the console's report cannot be drawn. It was Starlette's plain-text 500 with a traceback in the log."""
    import shutil

    from tests._serving import serving

    edited = tmp_path / "edited"
    shutil.copytree(bundle_dir, edited)
    manifest = json.loads((edited / "manifest.json").read_text(encoding="utf-8"))
    manifest["metrics"]["genre"]["top1"] = "most"  # the text report's figure, and so the page's too
    (edited / "manifest.json").write_text(json.dumps(manifest), encoding="utf-8")
    with serving(edited, ServerOptions(http_port=0)) as served, caplog.at_level("ERROR", "musicrec.server"):
        for path in ("bundle", "report.html"):
            status, answer = get(served.server.http_port, path)
            assert status == 500 == answer["error"]["code"] and answer["error"]["status"] == "DATA_LOSS", path
            assert answer["error"]["message"].startswith(f"{edited / 'manifest.json'}: the report cannot read it")
        assert get(served.server.http_port, "search?q=a")[0] == 200  # the rest of the console still answers
    logged = [r for r in caplog.records if r.name == "musicrec.server" and r.levelname == "ERROR"]
    assert len(logged) == 2 and all("the report cannot read it" in r.getMessage() for r in logged)
    assert all(r.exc_info and isinstance(r.exc_info[1].__cause__, ValueError) for r in logged)  # why, for a bug report
