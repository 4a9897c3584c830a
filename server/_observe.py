"""``CallObserver``: the interceptor that measures and logs every RPC (metrics, request log, slow log); calls
over the HTTP face (server/_http.py) reach it as ``HttpCall``s, counted in the same series and logged with
``"face": "http"``.

It is the outermost interceptor, so it also sees calls that auth refuses. Cheap by construction:
the wrapped handler of a method is built once and reused while gRPC hands out the same handler;
the metric children of a method and status code are bound once (``MethodSeries``); a log line's
fields (peer, bundle id, request id) are gathered only when a line is written.

gRPC answers RESOURCE_EXHAUSTED over ``--max-concurrent`` without calling any handler, but only
after the interceptors chose one, so the observer counts those calls by making gRPC's own comparison
on gRPC's own count (see ``_metrics.server_state``).
"""

from __future__ import annotations

import json
import logging
import os
import threading
import time
from collections.abc import Callable, Iterator
from typing import Any

import grpc

from ._metrics import MethodSeries, ServerMetrics, server_state

requests_log = logging.getLogger("musicrec.requests")
# ``ran`` is set on a handler thread when a call's handler starts (server/_pool.py reads it after the call's task)
handled = threading.local()

OK, UNKNOWN, DEADLINE_EXCEEDED = grpc.StatusCode.OK, grpc.StatusCode.UNKNOWN, grpc.StatusCode.DEADLINE_EXCEEDED
CANCELLED, RESOURCE_EXHAUSTED = grpc.StatusCode.CANCELLED, grpc.StatusCode.RESOURCE_EXHAUSTED
UNIMPLEMENTED = grpc.StatusCode.UNIMPLEMENTED
# statuses that mean a bug or lost data: logged as warnings even when fast
_SERVER_FAULTS = frozenset({grpc.StatusCode.INTERNAL, UNKNOWN, grpc.StatusCode.DATA_LOSS})
REQUEST_ID_KEY = "x-request-id"
MAX_REQUEST_ID = 128
MAX_LOGGED_DETAILS = 200


def request_id(metadata: Any) -> str:
    """The caller's ``x-request-id`` (cut to 128 characters), or a new random one."""
    for key, value in metadata or ():
        if key == REQUEST_ID_KEY and isinstance(value, str) and value:
            return value[:MAX_REQUEST_ID]
    return os.urandom(8).hex()


# Calls whose seconds are their job: ReloadBundle loads and verifies a whole bundle (seconds for the
# Spotify one), and says so in its own bundle_loaded / bundle_refused line, so it is no slow_request
_EXPECTED_SLOW = ("/ReloadBundle",)


class CallObserver(grpc.ServerInterceptor):
    """Metrics (when ``metrics_on``), one log line per call (``log_requests``) and a warning for
    calls slower than ``slow_seconds`` (None: no slow log)."""

    def __init__(self, metrics: ServerMetrics, *, metrics_on: bool, log_requests: bool = False,
                 slow_seconds: float | None = None, bundle_id: Callable[[], str | None] = lambda: None) -> None:
        self.metrics = metrics
        self.metrics_on = metrics_on
        self.log_requests = log_requests
        self.slow_seconds = slow_seconds if slow_seconds is not None else float("inf")
        self.bundle_id = bundle_id
        self._state: Any = None
        # method -> (the handler gRPC gave, our wrapper of it, its series)
        self._wrapped: dict[str, tuple[grpc.RpcMethodHandler, grpc.RpcMethodHandler, MethodSeries]] = {}

    def watch_server(self, server: grpc.Server) -> None:
        """Count calls over the server's concurrency limit (call before the server takes calls)."""
        self._state = server_state(server)

    # -- gRPC's entry point: runs on gRPC's polling thread, once per call, before any handler

    def intercept_service(self, continuation: Callable[..., Any], details: grpc.HandlerCallDetails) -> Any:
        handler = continuation(details)
        if handler is None:  # gRPC answers UNIMPLEMENTED; the name is the caller's, so not a label
            self._refused(self.metrics.unknown, UNIMPLEMENTED, details)
            return None
        entry = self._wrapped.get(details.method)
        if entry is None or entry[0] is not handler:
            series = self.metrics.series(details.method)
            entry = (handler, self._wrap(handler, series, details.method.lstrip("/")), series)
            # replaced, never resized under a reader (only this thread writes it); a handler made
            # per call (auth's refusals) just gets wrapped again next time
            self._wrapped = {**self._wrapped, details.method: entry}
        state = self._state
        if state is not None and state.maximum_concurrent_rpcs is not None \
                and state.active_rpc_count >= state.maximum_concurrent_rpcs:
            series = entry[2]
            if self.metrics_on:
                series.shed.inc()
            self._refused(series, RESOURCE_EXHAUSTED, details)
            return handler  # gRPC refuses the call right after this returns
        return entry[1]

    def _refused(self, series: MethodSeries, code: grpc.StatusCode, details: grpc.HandlerCallDetails) -> None:
        """A call gRPC itself answers without a handler: counted, and logged with the request log."""
        if self.metrics_on:
            series.bind(code)[0].inc()
        if self.log_requests:
            self._log(logging.INFO, "request", f"{series.labels[0]}/{series.labels[1]}", code, 0.0, None,
                      details.invocation_metadata, None)

    # -- per call, on a handler thread

    def _finish(self, series: MethodSeries, rpc: str, context: grpc.ServicerContext, seconds: float,
                failed: bool, cancelled: bool = False) -> None:
        code = context.code() or (CANCELLED if cancelled else UNKNOWN if failed else OK)
        self._record(series, rpc, code, seconds, context)

    def dropped(self, event: Any, state: Any, behavior: Any, seconds: float) -> None:
        """A call gRPC dropped before ``behavior``, its handler, ran (server/_pool.py): its deadline passed, or its
        client cancelled, while it waited ``seconds`` for a handler thread or for its request (or gRPC answered it
        UNIMPLEMENTED, its request missing). Counted and logged as a finished call with its wait; not in the
        handler-time histogram."""
        series, rpc = getattr(behavior, "observed", (None, None))
        if series is None:  # not a handler this observer wrapped
            return
        passed = event.call_details.deadline <= time.time()
        code = UNIMPLEMENTED if getattr(state, "statused", False) else DEADLINE_EXCEEDED if passed else CANCELLED
        if self.metrics_on:
            series.in_flight.inc()  # (_record counts it out)
        peer = event.call.peer()
        self._record(series, rpc, code, seconds, None, face="grpc", timed=False, http=(
            peer.decode("utf-8", "replace") if isinstance(peer, bytes) else str(peer), event.invocation_metadata,
            "the call ended before its handler ran (waiting for a thread, or for its request)", passed))

    def _record(self, series: MethodSeries, rpc: str, code: grpc.StatusCode, seconds: float,
                context: grpc.ServicerContext | None, *, http: tuple[str, Any, str | None, bool] | None = None,
                shed: bool = False, face: str = "http", timed: bool = True) -> None:
        """A finished call in the metrics (timed unless shed: gRPC times no shed call either) and, when it is to be
        logged, the request log. A gRPC call's facts come from its ``context`` (read only when needed); an HTTP
        call's as ``http`` = (peer, metadata, details, whether its deadline passed)."""
        if self.metrics_on:
            series.in_flight.dec()
            children = series.by_code.get(code) or series.bind(code)
            children[0].inc()
            if shed:
                series.shed.inc()
            elif timed:  # (a call no handler ran is not in the handler-time histogram)
                children[1].observe(seconds)
            passed = http[3] if http is not None else context is not None and context.time_remaining() <= 0
            if code is DEADLINE_EXCEEDED or passed:
                series.deadline_exceeded.inc()
        slow = seconds >= self.slow_seconds and not rpc.endswith(_EXPECTED_SLOW)
        if slow or self.log_requests or code in _SERVER_FAULTS:
            level = logging.WARNING if slow or code in _SERVER_FAULTS else logging.INFO
            event = "slow_request" if slow else "request"
            if http is not None:
                self._log(level, event, rpc, code, seconds, http[0], http[1], http[2], face=face)
            elif context is not None:
                self._log(level, event, rpc, code, seconds, context, context.invocation_metadata(),
                          context.details())

    # -- a call over the HTTP face (server/_http.py): the same RPC, counted in the same series

    def http_started(self, full_method: str) -> None:
        if self.metrics_on:
            self.metrics.series(full_method).in_flight.inc()

    def http_finished(self, full_method: str, code: grpc.StatusCode, seconds: float, *, metadata: Any, peer: str,
                      details: str | None, deadline_passed: bool, shed: bool = False) -> None:
        """As ``_finish`` for a gRPC call (after ``http_started``), logged with ``"face": "http"``."""
        self._record(self.metrics.series(full_method), full_method.lstrip("/"), code, seconds, None,
                     http=(peer, metadata, details, deadline_passed), shed=shed)

    def _log(self, level: int, event: str, rpc: str, code: grpc.StatusCode, seconds: float,
             context: grpc.ServicerContext | str | None, metadata: Any, details: Any, face: str = "grpc") -> None:
        if not requests_log.isEnabledFor(level):
            return
        peer = context if isinstance(context, str) or context is None else context.peer()
        fields: dict[str, Any] = {
            "rpc": rpc, "face": face, "status": code.name, "duration_ms": round(seconds * 1e3, 3),
            "peer": peer, "bundle_id": self.bundle_id(), "request_id": request_id(metadata)}
        if details and code is not OK:
            text = details.decode("utf-8", "replace") if isinstance(details, bytes) else str(details)
            fields["error"] = text[:MAX_LOGGED_DETAILS]
        requests_log.log(level, "%s %s %.2f ms", rpc, code.name, seconds * 1e3,
                         extra={"event": event, "fields": fields})

    def _wrap(self, handler: grpc.RpcMethodHandler, series: MethodSeries, rpc: str) -> grpc.RpcMethodHandler:
        perf = time.perf_counter
        finish = self._finish
        in_flight = series.in_flight.inc if self.metrics_on else _nothing

        def unary(behavior: Callable[..., Any]) -> Callable[..., Any]:
            def observed(request: Any, context: grpc.ServicerContext) -> Any:
                handled.ran = True
                in_flight()
                failed = True
                started = perf()
                try:
                    response = behavior(request, context)
                    failed = False
                    return response
                finally:
                    finish(series, rpc, context, perf() - started, failed)
            return observed

        def streaming(behavior: Callable[..., Iterator[Any]]) -> Callable[..., Iterator[Any]]:
            def observed(request: Any, context: grpc.ServicerContext) -> Iterator[Any]:
                handled.ran = True  # (on the first next(), which gRPC makes on this thread)
                in_flight()
                failed, cancelled = True, False
                started = perf()
                try:
                    yield from behavior(request, context)
                    failed = False
                except GeneratorExit:  # gRPC stopped asking: the client went away or its deadline passed
                    cancelled = True
                    raise
                finally:
                    finish(series, rpc, context, perf() - started, failed, cancelled)
            return observed

        def named(observed: Any) -> Any:
            observed.observed = (series, rpc)  # what ``dropped`` counts a call under whose handler never ran
            return observed

        kw = {"request_deserializer": handler.request_deserializer,
              "response_serializer": handler.response_serializer}
        if handler.unary_unary:
            return grpc.unary_unary_rpc_method_handler(named(unary(handler.unary_unary)), **kw)
        if handler.unary_stream:
            return grpc.unary_stream_rpc_method_handler(named(streaming(handler.unary_stream)), **kw)
        if handler.stream_unary:
            return grpc.stream_unary_rpc_method_handler(named(unary(handler.stream_unary)), **kw)
        return grpc.stream_stream_rpc_method_handler(named(streaming(handler.stream_stream)), **kw)


def _nothing() -> None:
    return None


class HttpCall:
    """One /v1 call as the request log and metrics see it (``CallObserver.http_*``): started when routed to a
    method, finished once with its status (a stream's when it ends)."""

    __slots__ = ("context", "deferred", "done", "method", "observer", "request", "started")

    def __init__(self, observer: CallObserver | None, method: str, request: Any) -> None:
        self.observer, self.method, self.request = observer, method, request  # a Starlette Request
        self.context: Any = None  # the call's HttpContext once its request parsed (server/_http_json.py)
        self.deferred = self.done = False
        self.started = time.perf_counter()
        if observer is not None:
            observer.http_started(method)

    def finish_with(self, response: Any) -> None:
        """Finish with a Starlette response's status: its JSON error body names the gRPC status."""
        if self.observer is None:
            return
        code, details = grpc.StatusCode.OK, None
        if response.status_code != 200:
            body = json.loads(bytes(response.body))["error"]
            code = _GRPC_CODES.get(body["status"]) or _BY_HTTP.get(response.status_code, grpc.StatusCode.UNKNOWN)
            details = body["message"]
        self.finish(code, details, shed=code is grpc.StatusCode.RESOURCE_EXHAUSTED and response.status_code == 429)

    def finish(self, code: grpc.StatusCode, details: str | None, *, shed: bool = False) -> None:
        if self.done or self.observer is None:
            return
        self.done = True
        client = self.request.client
        peer = f"http:{client.host}:{client.port}" if client is not None else "http"
        passed = self.context is not None and self.context.time_remaining() == 0
        request_id = self.request.headers.get(REQUEST_ID_KEY)
        self.observer.http_finished(self.method, code, time.perf_counter() - self.started,
                                    metadata=[(REQUEST_ID_KEY, request_id)] if request_id else (), peer=peer,
                                    details=details, deadline_passed=passed, shed=shed)


_GRPC_CODES = {c.name: c for c in grpc.StatusCode}
# the framing's own errors, which no gRPC status names: counted under the status gRPC would give the same input
_BY_HTTP = {415: grpc.StatusCode.INVALID_ARGUMENT, 404: grpc.StatusCode.NOT_FOUND}
