"""The HTTP/JSON face of musicrec.v1.Recommender, and the web console beside it (``serve --http-port``).

One contract, two faces: every Recommender RPC is ``POST /v1/<Method>`` with the request and the
response as the proto's own messages in protobuf's canonical JSON mapping (``json_format``), so no
second schema can drift. A call runs the very servicer method gRPC runs (server/_service.py), with
an ``HttpContext`` standing in for grpc's ``ServicerContext``: the same conversion (server/_convert.py),
engine call, validation, limits and status for every error. What differs is only the framing
(server/_http_json.py; this module holds the routes, server/_http_server.py the uvicorn server around them):

- request JSON: field names as in the .proto (``track_id``) or lowerCamelCase (``trackId``); an
  unknown field, a wrong type, malformed JSON or a body that is not a JSON object is 400
  INVALID_ARGUMENT naming the problem; an empty body is the empty message. A body is read as JSON
  when its Content-Type is JSON (``application/json``, ``application/*+json``), ``text/plain`` or
  form data (what browsers' fetch and ``curl -d`` send by default), or none; any other declared type,
  or a Content-Type given twice, is 415 UNSUPPORTED_MEDIA_TYPE (_http_json.unsupported_media_type). A body over
  ``max_body_bytes`` is 413 before it is parsed, and a parsed message larger than gRPC's own message
  limit is 413 too (status RESOURCE_EXHAUSTED, as gRPC answers it), so the same messages reach the
  servicer on both faces. A body refused unread is read and dropped before the answer, up to 64 MiB
  (server/_http_drain.py), so a client that sends it all before reading gets the answer, not a reset connection.
- response JSON: the proto's field names, every field present (zero values included), 64-bit
  integers as strings (the JSON mapping's rule).
- errors: ``{"error": {"code": <http>, "status": "<grpc code name>", "message": "..."}}`` with the
  HTTP status of ``HTTP_STATUS`` (Google's API mapping, which grpc-gateway follows; FAILED_PRECONDITION
  is 400 there, not 412: 412 belongs to HTTP's own conditional headers, which this API has none of).
  Routing errors too: a path under ``/v1`` or ``/console/api/`` that is not there is 404 NOT_FOUND, and a
  verb a path does not take is 405 METHOD_NOT_ALLOWED with ``Allow`` (only a missing console file,
  which a browser asked for, is Starlette's plain-text 404).
- ``StreamMoodPlaylist`` answers ``application/x-ndjson``: one PlaylistEntry per line as it is
  chosen. An error before the first entry is an ordinary error response; one after it (the status
  line is gone by then) ends the stream with a line ``{"error": {...}}`` (server/_http_stream.py).
- auth: ``Authorization: Bearer <token>``, checked by the gRPC interceptor's own rule
  (``BearerAuth.refusal``); 401 carries ``WWW-Authenticate: Bearer``.
- deadline: an optional ``Grpc-Timeout`` header in gRPC's format (``500m``, ``2S``), as grpc-gateway
  forwards it; once it passes the call answers 504 DEADLINE_EXCEEDED at once (the handler is marked cancelled
  and stops where it checks), and a stream it cuts ends with an error line.
- nothing else of the request is read, so nothing is ignored: a query string on ``/v1/<Method>`` is 400, a
  ``Content-Encoding`` other than identity 415.
- ``GET /healthz``: the gRPC health service's overall status, 200 SERVING or 503 NOT_SERVING.
- observed as gRPC calls are: the same metric series and request log (``HttpCall``, server/_observe.py).
- shutdown beside gRPC's (server/_http_server.py): new calls 503, calls in flight get the same grace, and one
  still running at its end is answered 503 UNAVAILABLE (a stream whose entries have begun is cut there).
- concurrency: at most ``max_concurrent`` HTTP calls run or wait at once (the gRPC limit's size,
  counted separately: gRPC's count lives inside grpc); more get 429 at once.

It never slows the gRPC path: uvicorn runs its own event loop in one thread of its own, and the
calls run in a small thread pool of their own; an idle console costs the gRPC handlers nothing
(measured side by side in benchmarks/RESULTS.md). Starlette and uvicorn are the optional ``web``
extra, imported only when an HTTP port is asked for.
"""

from __future__ import annotations

import asyncio
import dataclasses
import functools
import logging
import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import TYPE_CHECKING, Any

import grpc

from ._http_drain import DrainUnreadBody
from ._http_json import (
    HTTP_STATUS,
    METHODS,
    SERVICE,
    STATUS_NAMES,
    BadRequest,
    CallAborted,
    HttpContext,
    message_json,
    parse_grpc_timeout,
    parse_request,
    unsupported_media_type,
)
from ._http_stream import ndjson_response
from ._limits import MAX_MESSAGE_BYTES
from ._observe import CallObserver, HttpCall

if TYPE_CHECKING:
    from starlette.requests import Request
    from starlette.responses import Response

    from ._http_json import Method
    from ._interceptors import BearerAuth
    from ._service import RecommenderServicer

log = logging.getLogger("musicrec.server")

CONSOLE_DIR = Path(__file__).resolve().parent / "console"


@dataclasses.dataclass(frozen=True, kw_only=True)
class HttpOptions:
    max_concurrent: int = 64
    workers: int = 4
    max_message_bytes: int = MAX_MESSAGE_BYTES
    # The JSON of a message is larger than its protobuf encoding (bytes fields are base64, 4/3 the
    # size), so the body limit leaves room for a largest message and ``max_message_bytes`` decides.
    max_body_bytes: int = 6 * 1024 * 1024


class HttpFace:
    """The Starlette application: ``/v1/<Method>``, ``/console/api/...`` and the console's files."""

    def __init__(self, servicer: RecommenderServicer, auth: BearerAuth | None, options: HttpOptions, *,
                 observer: CallObserver | None = None) -> None:
        from starlette.applications import Starlette
        from starlette.routing import Mount, Route
        from starlette.staticfiles import StaticFiles

        from ._console import ConsoleApi

        self.servicer = servicer
        self.auth = auth
        self.options = options
        self.observer = observer  # metrics and the request log, as for gRPC calls (server/_observe.py)
        self.serving = False  # what the gRPC health service says (RunningServer.set_serving): GET /healthz
        self.closing = False  # shutting down: a new call is 503 while the calls in flight finish
        self.pool = ThreadPoolExecutor(max_workers=options.workers, thread_name_prefix="http")
        self._slots = threading.BoundedSemaphore(options.max_concurrent)
        self.console = ConsoleApi(servicer.holder, self)
        self.app = Starlette(routes=[
            Route("/healthz", self._health, methods=["GET", "HEAD"]),
            Route("/v1", self._list_methods, methods=["GET"]),
            Route("/v1/{method}", self._call, methods=["GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"]),
            *self.console.routes(),
            Mount("/", StaticFiles(directory=CONSOLE_DIR, html=True), name="console"),
        ], exception_handlers={404: self._routing_error, 405: self._routing_error})
        self.asgi = DrainUnreadBody(self.app)  # what uvicorn serves (server/_http_server.py)

    # -- plumbing shared with the console API ----------------------------------------------------
    def error(self, code: grpc.StatusCode | int, message: str, *, http: int | None = None) -> Response:
        from starlette.responses import JSONResponse

        status = HTTP_STATUS.get(code, 500) if isinstance(code, grpc.StatusCode) else code
        if http is not None:
            status = http
        name = code.name if isinstance(code, grpc.StatusCode) else STATUS_NAMES.get(status, "UNKNOWN")
        headers = {"WWW-Authenticate": 'Bearer realm="musicrec"'} if status == 401 else None
        return JSONResponse({"error": {"code": status, "status": name, "message": message}}, status_code=status,
                            headers=headers)

    def refusal(self, request: Request, method_path: str) -> Response | None:
        """The auth answer for ``request`` as a call of ``method_path``, or None when allowed."""
        if self.auth is None:
            return None
        refused = self.auth.refusal(method_path, _metadata(request))
        return None if refused is None else self.error(*refused)

    async def run(self, fn: Callable[..., Any], *args: Any, deadline_of: HttpContext | None = None) -> Any:
        """``fn(*args)`` in the face's thread pool, under the concurrency limit (429 beyond it). With the
        ``deadline_of`` a call's context with a deadline, the answer is 504 DEADLINE_EXCEEDED once it passes, as gRPC
        answers its own clients, and the call is marked cancelled (its work stops where it checks). The slot
        is held until ``fn`` returns, even when the answer went earlier."""
        self.take_slot()
        try:
            done = asyncio.get_running_loop().run_in_executor(self.pool, functools.partial(fn, *args))
        except BaseException:
            self.release_slot()
            raise
        done.add_done_callback(lambda _: self.release_slot())
        remaining = None if deadline_of is None else deadline_of.time_remaining()
        try:
            return await asyncio.wait_for(asyncio.shield(done), remaining)
        except TimeoutError:
            deadline_of.cancelled = True  # type: ignore[union-attr]
            done.add_done_callback(_ended_late)
            raise CallAborted(grpc.StatusCode.DEADLINE_EXCEEDED, "the deadline (Grpc-Timeout) passed before the "
                                                                 "call finished") from None

    def take_slot(self) -> None:
        """One of the ``max_concurrent`` slots, or the call's refusal: 503 while stopping, 429 when all are taken."""
        if self.closing:
            raise CallAborted(grpc.StatusCode.UNAVAILABLE, "the server is shutting down; retry on another server")
        if not self._slots.acquire(blocking=False):
            raise CallAborted(grpc.StatusCode.RESOURCE_EXHAUSTED,
                              f"more than {self.options.max_concurrent} HTTP calls at once; retry shortly")

    def release_slot(self) -> None:
        self._slots.release()

    async def _routing_error(self, request: Request, exc: Exception) -> Response:
        """Starlette's own 404 and 405 (no route, a verb the route does not take) in the error shape of
        every other answer, for the clients that read it: a 405 on any path (only scripts send verbs
        other than GET and HEAD; browsers navigating do not) and a 404 under the API's paths. A 404
        among the console's files goes to a browser, which shows Starlette's plain "Not Found"."""
        from starlette.exceptions import HTTPException
        from starlette.responses import PlainTextResponse

        assert isinstance(exc, HTTPException)
        path = request.url.path
        shown = path if len(path) <= 100 else path[:100] + "..."
        if exc.status_code == 405:
            # the route's own verbs: the console's files (Mount "/") match every path, so Starlette's
            # exception may come from them rather than from the route the path names
            from starlette.routing import Match, Route

            verbs = None
            for route in self.app.routes:
                match, child = route.matches(request.scope) if isinstance(route, Route) else (Match.NONE, {})
                if match is Match.PARTIAL:
                    if route.endpoint == self._call:  # a verb it does not list (TRACE): as _call answers GET
                        misrouted = self._misrouted(child["path_params"]["method"], request.method)
                        if misrouted is not None:
                            return misrouted
                    verbs = route.methods
                    break
            if verbs is None:
                if _under_api(path):  # no route of the API: only the console's files' catch-all said 405
                    return self._not_found(path, shown)
                verbs = {m.strip() for m in (exc.headers or {}).get("Allow", "GET, HEAD").split(",")}
            allowed = ", ".join(sorted(verbs))
            response = self.error(405, f"{shown} takes {allowed}, not {request.method[:20]}")
            response.headers["Allow"] = allowed
            return response
        if _under_api(path):
            return self._not_found(path, shown)
        return PlainTextResponse(str(exc.detail), status_code=exc.status_code)

    def _not_found(self, path: str, shown: str) -> Response:
        if path == "/v1" or path.startswith("/v1/"):
            return self.error(404, f"no path {shown}: an RPC is POST /v1/<Method> with one of the methods "
                                   f"{', '.join(METHODS)} (GET /v1 lists them)")
        endpoints = ", ".join(route.path for route in self.console.routes())
        return self.error(404, f"no endpoint {shown}; the console's endpoints are {endpoints}")

    async def _health(self, request: Request) -> Response:
        """The gRPC health service's overall status for HTTP load balancers: 200 SERVING, else 503 NOT_SERVING
        (no bundle loaded, the candidate backend down, or draining before a stop). Open to every caller, as
        gRPC's health service is."""
        from starlette.responses import JSONResponse

        # (a query string is read past: a probe may add one of its own, and must not read the server as down)
        serving = self.serving and not self.closing
        return JSONResponse({"status": "SERVING" if serving else "NOT_SERVING"}, status_code=200 if serving else 503)

    # -- /v1 --------------------------------------------------------------------------------------
    async def _list_methods(self, request: Request) -> Response:
        from starlette.responses import JSONResponse

        if (refused := self._no_query(request, "GET /v1")) is not None:
            return refused
        return JSONResponse({"service": SERVICE.full_name, "methods": [
            {"name": m.name, "path": f"/v1/{m.name}", "http_method": "POST", "request": m.request.DESCRIPTOR.full_name,
             "response": m.response.DESCRIPTOR.full_name, "streaming": m.streaming} for m in METHODS.values()]})

    def _no_query(self, request: Request, what: str, advice: str = "") -> Response | None:
        """400 for a query string where none is read: a request must not run as if its parameter were absent."""
        if not request.query_params:
            return None
        names = ", ".join(sorted({k[:40] for k in request.query_params}))
        return self.error(grpc.StatusCode.INVALID_ARGUMENT, f"{what} reads no query parameters (got {names}){advice}")

    def _misrouted(self, name: str, verb: str) -> Response | None:
        """404 for a method the service has not, 405 for a verb other than POST; None when routed."""
        method = METHODS.get(name)
        if method is None:
            return self.error(404, f"no method {name!r} in {SERVICE.full_name}; "
                                   f"the methods are {', '.join(METHODS)} (GET /v1 lists them)")
        if verb != "POST":
            response = self.error(405, f"/v1/{method.name} takes POST with a JSON {method.request.DESCRIPTOR.name}")
            response.headers["Allow"] = "POST"
            return response
        return None

    async def _call(self, request: Request) -> Response:
        misrouted = self._misrouted(request.path_params["method"], request.method)
        if misrouted is not None:
            return misrouted
        method = METHODS[request.path_params["method"]]
        call = HttpCall(self.observer, method.path, request)
        try:
            response = await self._answer(request, method, call)
        except asyncio.CancelledError:  # the server's grace ran out (RunningServer.stop): gRPC cancels its own
            call.finish(grpc.StatusCode.UNAVAILABLE, "the server stopped before the call finished")
            return self.error(grpc.StatusCode.UNAVAILABLE, "the server stopped before the call finished; retry")
        if not call.deferred:
            call.finish_with(response)
        return response

    async def _answer(self, request: Request, method: Method, call: HttpCall) -> Response:
        refused = self.refusal(request, method.path)
        if refused is not None:
            return refused
        if (refused := self._no_query(request, f"/v1/{method.name}", "; send every field in the JSON body")) \
                is not None:
            return refused
        # every line of each header: headers.get() reads the first, so a second line was never seen (a second
        # Content-Type read as JSON, a gzip body after "Content-Encoding: identity" parsed as text)
        types = request.headers.getlist("content-type")
        unsupported = unsupported_media_type(types[0] if types else None)
        if len(types) > 1:
            unsupported = (f"Content-Type is given {len(types)} times ({', '.join(repr(t[:60]) for t in types[:3])}): "
                           "send it once, as application/json")
        coding = ", ".join(v.strip() for v in request.headers.getlist("content-encoding") if v.strip()).lower()
        if unsupported is None and coding not in ("", "identity"):
            unsupported = f"Content-Encoding {coding[:40]!r} is not supported: send the request body uncompressed"
        if unsupported is not None:  # before the body is read: it is not parsed as JSON
            return self.error(415, unsupported)
        try:
            timeouts = request.headers.getlist("grpc-timeout")
            if len(timeouts) > 1:  # which one the caller meant is not for the server to guess
                raise BadRequest(400, f"Grpc-Timeout is given {len(timeouts)} times: send it once")
            deadline_s = parse_grpc_timeout(timeouts[0] if timeouts else None)
            message = parse_request(await self._body(request), method.request, self.options.max_message_bytes)
        except BadRequest as exc:  # gRPC itself answers RESOURCE_EXHAUSTED for a message over its limit
            code = grpc.StatusCode.RESOURCE_EXHAUSTED if exc.http == 413 else grpc.StatusCode.INVALID_ARGUMENT
            return self.error(code, exc.message, http=exc.http)
        context = call.context = HttpContext(_metadata(request),
                                             None if deadline_s is None else time.monotonic() + deadline_s)
        handler = getattr(self.servicer, method.name)
        try:
            if method.streaming:
                return await ndjson_response(self, handler, message, context, call)
            result = await self.run(handler, message, context, deadline_of=context)
        except CallAborted as exc:
            return self.error(exc.code, exc.message)
        except Exception:
            log.exception("internal error in the HTTP face (/v1/%s)", method.name)
            return self.error(grpc.StatusCode.INTERNAL, "internal error; it was logged on the server")
        from starlette.responses import Response

        if isinstance(result, bytes):  # the servicer's prebuilt SimilarTracksResponse (server/_wire.py)
            result = method.response.FromString(result)
        return Response(message_json(result), media_type="application/json")

    async def _body(self, request: Request) -> bytes:
        limit = self.options.max_body_bytes
        declared = request.headers.get("content-length")
        if declared is not None and declared.isdigit() and int(declared) > limit:
            raise BadRequest(413, f"the request body is {int(declared):,} bytes, over the {limit:,}-byte limit")
        chunks, size = [], 0
        async for chunk in request.stream():
            size += len(chunk)
            if size > limit:
                raise BadRequest(413, f"the request body is over the {limit:,}-byte limit")
            chunks.append(chunk)
        return b"".join(chunks)

    def close(self) -> None:
        self.pool.shutdown(wait=False, cancel_futures=True)


def _ended_late(future: asyncio.Future[Any]) -> None:
    """How a call answered at its deadline ends, which nobody awaits: its CallAborted (it saw it was cancelled) is
    expected; any other exception is logged as an internal error is. Unread, each was an asyncio "Future exception
    was never retrieved" error with its traceback in the log, one per call whose deadline passed."""
    if future.cancelled():
        return
    exc = future.exception()
    if exc is not None and not isinstance(exc, CallAborted):
        log.error("internal error in the HTTP face, after the call's deadline had been answered", exc_info=exc)


def _metadata(request: Request) -> list[tuple[str, str]]:
    """Every Authorization line, as gRPC metadata carries repeated keys: two are refused (``bearer_token``)."""
    return [("authorization", header) for header in request.headers.getlist("authorization")]


def _under_api(path: str) -> bool:
    return path == "/v1" or path.startswith(("/v1/", "/console/api/")) or path == "/console/api"
