"""The web console's own endpoints, under /console/api/ on the HTTP port (server/_http.py).

Everything the console shows comes from the Recommender RPCs over ``/v1/<Method>``, except what the
contract has no call for, which lives here, HTTP-only and documented in the README:

- ``GET /console/api/search?q=TEXT&limit=N``: tracks whose name, artists or id contain every word of
  TEXT (case-insensitive; TEXT at most 200 characters and 20 different words, else 400), names (ids where a
  track has no name) starting with TEXT first, at most N (1 to 100, default 20);
  ``{"query", "total", "tracks": [Track]}``, each track the proto's Track JSON. Search by name is a
  console aid, not part of the recommendation contract: gRPC clients hold their own catalog ids, and
  a proto change would move every client's generated code for a typing aid (it stays additive if it
  ever earns an RPC).
- ``GET /console/api/map?max_points=N``: the bundle's stored mood map (engine/_moodmap.py) as
  columns ``x``, ``y``, ``mood``, ``id``, ``name``, ``artists`` (N from 1, default 20,000: a catalog of
  at most N tracks whole, a larger one as a fixed sample of exactly N, 200 of each mood (an equal share of N
  when that is smaller, so every mood shows while N holds one of each) and the rest in proportion; the
  newest MAPS_KEPT sizes drawn are kept per bundle),
  plus the moods, the axis labels and the projection method; 404 for a bundle without a map.
- ``GET /console/api/bundle``: what the console needs of the bundle beyond the RPCs: ``{"bundle_version",
  "genres": every genre name (for the filters), "report": the build report's text, "report_html":
  whether report.html can be drawn}``.
- ``GET /console/api/report.html``: the report with pictures (engine/_htmlreport.py; the report
  extra), drawn once per bundle; 501 without matplotlib.
- both reports: 500 DATA_LOSS naming the manifest when a figure in it cannot be read (edited or damaged; the
  RPCs serve the bundle all the same, as they do not read those figures).

Auth is the same bearer token rule as the RPCs (any read token); errors have the same JSON shape. A
parameter that is not a whole number in its range is 400 INVALID_ARGUMENT naming it and the bound; so
is a parameter given twice, and one the endpoint does not take (naming the ones it does).
"""

from __future__ import annotations

import argparse
import gzip
import logging
import re
import threading
import weakref
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

import grpc
import numpy as np

from engine import BundleIntegrityError, Recommender, bundle_report_html, format_report

from . import _convert as conv
from ._cli_numbers import int_from
from ._holder import NoBundle

if TYPE_CHECKING:
    from starlette.requests import Request
    from starlette.responses import Response

    from ._holder import BundleHolder
    from ._http import HttpFace

log = logging.getLogger("musicrec.server")

DEFAULT_SEARCH = 20
MAX_SEARCH = 100
MAX_SEARCH_CHARS = 200  # a search's q: longer ones, or with more different words, are 400
MAX_SEARCH_WORDS = 20
DEFAULT_MAP_POINTS = 20_000
MIN_PER_MOOD = 200
MAPS_KEPT = 4  # drawn maps kept per bundle (each a few MB gzipped): the console asks for one size


class ConsoleApi:
    def __init__(self, holder: BundleHolder, face: HttpFace) -> None:
        self.holder = holder
        self.face = face
        # per live bundle; a reloaded bundle gets its own, the old one is dropped with it
        self._haystacks: weakref.WeakKeyDictionary[Recommender, list[tuple[str, str]]] = weakref.WeakKeyDictionary()
        self._maps: weakref.WeakKeyDictionary[Recommender, dict[int, bytes]] = weakref.WeakKeyDictionary()
        self._maps_lock = threading.Lock()
        self._reports: weakref.WeakKeyDictionary[Recommender, str | BundleIntegrityError] = weakref.WeakKeyDictionary()
        self._report_lock = threading.Lock()  # one drawing at a time: it takes seconds of CPU

    def routes(self) -> list[Any]:
        from starlette.routing import Route

        return [Route("/console/api/search", self._search), Route("/console/api/map", self._map),
                Route("/console/api/bundle", self._bundle), Route("/console/api/report.html", self._report_html)]

    async def _guarded(self, request: Request, fn: Any, *args: Any) -> Any:
        """``fn(rec, *args)`` in the face's pool after the auth check; errors as the RPCs answer them."""
        from ._http_json import CallAborted

        refused = self.face.refusal(request, request.url.path)
        if refused is not None:
            return refused
        try:
            return await self.face.run(self._with_bundle, fn, *args)
        except CallAborted as exc:
            return self.face.error(exc.code, exc.message)
        except NoBundle as exc:
            return self.face.error(grpc.StatusCode.UNAVAILABLE, str(exc))
        except BundleIntegrityError as exc:  # the serving bundle's manifest, edited or damaged: its report cannot
            # be read (the RPCs do not read its figures); with the cause's traceback, in case it is a bug after all
            log.error("console %s: %s", request.url.path, exc, exc_info=exc)
            return self.face.error(grpc.StatusCode.DATA_LOSS, str(exc))

    def _with_bundle(self, fn: Any, *args: Any) -> Any:
        return fn(self.holder.require(), *args)

    # -- search ------------------------------------------------------------------------------------
    async def _search(self, request: Request) -> Response:
        try:
            params = _params(request, "q", "limit")
            query = params.get("q", "")
            limit = _whole(params, "limit", DEFAULT_SEARCH, low=1, high=MAX_SEARCH)
            words = _search_words(query)
        except ValueError as exc:
            return self.face.error(grpc.StatusCode.INVALID_ARGUMENT, str(exc))
        return await self._guarded(request, self._search_in, query, words, limit)

    def _search_in(self, rec: Recommender, query: str, words: list[str], limit: int) -> Response:
        from starlette.responses import JSONResponse

        from ._http_json import message_dict

        haystack = self._haystacks.get(rec)
        if haystack is None:
            haystack = self._haystacks.setdefault(rec, [  # a catalog without names (GTZAN's) is found by id
                (str(name or track_id).casefold(), f"{name} {' '.join(artists)} {track_id}".casefold())
                for name, artists, track_id in zip(rec.names, rec.artists, rec.ids, strict=True)])
        if not words:
            return JSONResponse({"query": query, "total": 0, "tracks": []})
        whole = " ".join(query.casefold().split())  # as typed, repeats kept: names starting with it come first
        hits = [i for i, (_, text) in enumerate(haystack) if all(w in text for w in words)]
        hits.sort(key=lambda i: (not haystack[i][0].startswith(whole), whole not in haystack[i][0],
                                 len(haystack[i][0]), i))
        tracks = [message_dict(conv.track_pb(rec, i)) for i in hits[:limit]]
        return JSONResponse({"query": query, "total": len(hits), "tracks": tracks})

    # -- map ---------------------------------------------------------------------------------------
    async def _map(self, request: Request) -> Response:
        try:  # no upper end: a number above the catalog's size shows every track
            max_points = _whole(_params(request, "max_points"), "max_points", DEFAULT_MAP_POINTS, low=1)
        except ValueError as exc:
            return self.face.error(grpc.StatusCode.INVALID_ARGUMENT, str(exc))
        gzipped = _accepts_gzip(request.headers.getlist("accept-encoding"))
        return await self._guarded(request, self._map_of, max_points, gzipped)

    def _map_of(self, rec: Recommender, max_points: int, gzipped: bool) -> Response:
        from starlette.responses import Response

        mood_map = rec.bundle.mood_map
        if mood_map is None:
            return self.face.error(grpc.StatusCode.NOT_FOUND, "this bundle was built before mood maps were stored; "
                                                              "rebuild it (musicrec index) to see the map")
        max_points = min(max_points, rec.n)  # every size from the catalog's up is the same map
        with self._maps_lock:
            body = self._maps.setdefault(rec, {}).get(max_points)
        if body is None:
            body = gzip.compress(_map_json(rec, max_points).encode(), compresslevel=5)
            with self._maps_lock:  # the newest MAPS_KEPT sizes: a client varying max_points cannot grow memory
                cache = self._maps.setdefault(rec, {})
                cache[max_points] = body
                while len(cache) > MAPS_KEPT:
                    del cache[next(iter(cache))]
        headers = {"Vary": "Accept-Encoding"}
        if gzipped:
            return Response(body, media_type="application/json", headers={**headers, "Content-Encoding": "gzip"})
        return Response(gzip.decompress(body), media_type="application/json", headers=headers)

    # -- report ------------------------------------------------------------------------------------
    async def _bundle(self, request: Request) -> Response:
        try:
            _params(request)
        except ValueError as exc:
            return self.face.error(grpc.StatusCode.INVALID_ARGUMENT, str(exc))
        return await self._guarded(request, self._bundle_facts)

    def _bundle_facts(self, rec: Recommender) -> Response:
        from starlette.responses import JSONResponse

        return JSONResponse({"bundle_version": rec.bundle.version, "genres": list(rec.genre_names),
                             "report": format_report(rec.bundle.manifest, moods=rec.moods(),
                                                    where=str(rec.bundle.path / "manifest.json")),
                             "report_html": _has_matplotlib()})

    async def _report_html(self, request: Request) -> Response:
        try:
            _params(request)
        except ValueError as exc:
            return self.face.error(grpc.StatusCode.INVALID_ARGUMENT, str(exc))
        if not _has_matplotlib():
            return self.face.error(grpc.StatusCode.UNIMPLEMENTED, "the report with pictures needs matplotlib on the "
                                                                  "server (musicrec's report extra)")
        return await self._guarded(request, self._report_page)

    def _report_page(self, rec: Recommender) -> Response:
        from starlette.responses import HTMLResponse

        with self._report_lock:
            page = self._reports.get(rec)
            if page is None:
                try:
                    page = self._reports[rec] = bundle_report_html(rec.bundle)
                except BundleIntegrityError as exc:  # it will not read better next time: not drawn again
                    page = self._reports[rec] = exc
            if isinstance(page, BundleIntegrityError):  # a new one each time: a re-raise would grow its traceback
                raise BundleIntegrityError(str(page)) from page.__cause__
        return HTMLResponse(page)


def _params(request: Request, *names: str) -> dict[str, str]:
    """The query parameters of ``request``, each one of ``names`` and given at most once; ValueError
    naming the parameter otherwise. A mistyped name (``limt``) or a second value (``limit=5&limit=50``:
    which one was meant?) would otherwise be answered as if it were not there."""
    counts: dict[str, int] = {}
    for key, _ in request.query_params.multi_items():
        if key not in names:
            takes = f"this endpoint takes: {', '.join(names)}" if names else "this endpoint takes no parameters"
            raise ValueError(f"unknown parameter {key[:100]!r}; {takes}")
        counts[key] = counts.get(key, 0) + 1
    for key, count in counts.items():
        if count > 1:
            times = "twice" if count == 2 else f"{count} times"
            raise ValueError(f"{key}: given {times}; give each parameter at most once")
    return dict(request.query_params)


_QVALUE = re.compile(r"0(?:\.[0-9]{0,3})?|1(?:\.0{0,3})?")  # RFC 9110's qvalue: 0 to 1, at most 3 decimals


def _accepts_gzip(lines: Sequence[str]) -> bool:
    """Whether ``Accept-Encoding`` (all of its lines) lets the answer be gzip (RFC 9110 12.5.3): codings compared
    case-insensitively, ``x-gzip`` as gzip's old name, ``q=0`` refusing one, ``*`` standing for gzip unless gzip
    is named. A q that is not a qvalue counts as a refusal: the uncompressed answer is never wrong. Absent or
    empty: uncompressed. (A substring test sent gzip to ``gzip;q=0`` and to ``nogzip``.)"""
    gzip_q: list[float] = []
    any_q: list[float] = []
    for line in lines:
        for item in line.split(","):
            coding, *params = (part.strip() for part in item.split(";"))
            q = 1.0
            for param in params:
                name, _, value = param.partition("=")
                if name.strip().lower() == "q":
                    q = float(value.strip()) if _QVALUE.fullmatch(value.strip()) else 0.0
            if coding.lower() in ("gzip", "x-gzip"):
                gzip_q.append(q)
            elif coding == "*":
                any_q.append(q)
    qs = gzip_q or any_q  # gzip named: its own q decides; a refusal among several wins
    return bool(qs) and min(qs) > 0


def _whole(params: Mapping[str, str], name: str, default: int, *, low: int, high: int | None = None) -> int:
    """Query parameter ``name`` as a whole number in ``low..high`` (``high`` None: no upper end), or
    ``default`` when absent; ValueError naming the parameter and the bound it broke otherwise (the
    flags' own check, server/_cli_numbers.py): a value out of range is refused, never clamped."""
    text = params.get(name)
    if text is None:
        return default
    try:
        return int_from(low, high)(text)
    except argparse.ArgumentTypeError as exc:
        raise ValueError(f"{name}: {exc}") from None


def _search_words(query: str) -> list[str]:
    """The different words of a search, each tested against every track: ValueError (400) for a
    query over MAX_SEARCH_CHARS characters or MAX_SEARCH_WORDS different words, which would hold
    the HTTP face's threads for seconds each and only ever match nothing."""
    bounds = (f"a search is at most {MAX_SEARCH_CHARS} characters and {MAX_SEARCH_WORDS} different words "
              "of a track's name or artists")
    if len(query) > MAX_SEARCH_CHARS:
        raise ValueError(f"q: {len(query):,} characters; {bounds}")
    words = list(dict.fromkeys(query.casefold().split()))
    if len(words) > MAX_SEARCH_WORDS:
        raise ValueError(f"q: {len(words):,} different words; {bounds}")
    return words


def _map_json(rec: Recommender, max_points: int) -> str:
    import json

    mood_map = rec.bundle.mood_map
    assert mood_map is not None
    labels = rec.bundle.moods.labels_
    rows = _sample(labels, max_points)
    xy = mood_map.xy[rows]
    x_label, y_label = mood_map.axis_labels()
    return json.dumps({
        "total": rec.n, "shown": len(rows), "method": mood_map.method, "axes": [x_label, y_label],
        # float64 first: float32 values rounded as float32 still print with float64's digits (6.071599960327148)
        "x": np.round(xy[:, 0].astype(np.float64), 4).tolist(), "y": np.round(xy[:, 1].astype(np.float64), 4).tolist(),
        "mood": labels[rows].tolist(), "id": [rec.ids[i] for i in rows.tolist()],
        "name": [rec.names[i] for i in rows.tolist()], "artists": [", ".join(rec.artists[i]) for i in rows.tolist()],
        "moods": [{"mood_id": c["id"], "name": c["name"], "size": c["size"]} for c in rec.moods()],
    }, ensure_ascii=False, separators=(",", ":"))


def _sample(labels: np.ndarray, max_points: int) -> np.ndarray:
    """Every row when they fit; else a fixed sample of exactly ``max_points`` rows, sorted: each mood gets
    MIN_PER_MOOD (or an equal share of ``max_points`` when that is smaller, so the smallest moods still show),
    and the rest goes to the moods in proportion to the tracks they have left, the last few rows to the
    largest remainders."""
    n = len(labels)
    if n <= max_points:
        return np.arange(n)
    moods, sizes = np.unique(labels, return_counts=True)
    floor = np.minimum(sizes, min(MIN_PER_MOOD, max_points // len(moods)))
    left = sizes - floor
    share = (max_points - floor.sum()) * left / left.sum()  # left.sum() > 0: n > max_points >= floor.sum()
    want = floor + np.floor(share).astype(np.int64)
    short = max_points - int(want.sum())
    want[np.argsort(-(share - np.floor(share)), kind="stable")[:short]] += 1
    rng = np.random.default_rng(0)
    keep = [rng.choice(np.flatnonzero(labels == mood), size=int(k), replace=False)
            for mood, k in zip(moods, want, strict=True)]
    return np.sort(np.concatenate(keep))


def _has_matplotlib() -> bool:
    import importlib.util

    return importlib.util.find_spec("matplotlib") is not None
