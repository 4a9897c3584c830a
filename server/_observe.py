"""``CallObserver``: the interceptor that measures and logs every RPC (metrics, request log, slow log).

It is the outermost interceptor, so it also sees calls that auth refuses. Cheap by construction:
the wrapped handler of a method is built once and reused while gRPC hands out the same handler;
the metric children of a method and status code are bound once (``MethodSeries``); a log line's
fields (peer, bundle id, request id) are gathered only when a line is written.

gRPC answers RESOURCE_EXHAUSTED over ``--max-concurrent`` without calling any handler, but only
after the interceptors chose one, so the observer counts those calls by making gRPC's own comparison
on gRPC's own count (see ``_metrics.server_state``).
"""

from __future__ import annotations

import logging
import os
import time
from collections.abc import Callable, Iterator
from typing import Any

import grpc

from ._metrics import MethodSeries, ServerMetrics, server_state

requests_log = logging.getLogger("musicrec.requests")

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
        if self.metrics_on:
            series.in_flight.dec()
            children = series.by_code.get(code) or series.bind(code)
            children[0].inc()
            children[1].observe(seconds)
            if code is DEADLINE_EXCEEDED or context.time_remaining() <= 0:
                series.deadline_exceeded.inc()
        slow = seconds >= self.slow_seconds and not rpc.endswith(_EXPECTED_SLOW)
        if slow or self.log_requests or code in _SERVER_FAULTS:
            level = logging.WARNING if slow or code in _SERVER_FAULTS else logging.INFO
            self._log(level, "slow_request" if slow else "request", rpc, code, seconds, context,
                      context.invocation_metadata(), context.details())

    def _log(self, level: int, event: str, rpc: str, code: grpc.StatusCode, seconds: float,
             context: grpc.ServicerContext | None, metadata: Any, details: Any) -> None:
        if not requests_log.isEnabledFor(level):
            return
        fields: dict[str, Any] = {
            "rpc": rpc, "status": code.name, "duration_ms": round(seconds * 1e3, 3),
            "peer": context.peer() if context is not None else None, "bundle_id": self.bundle_id(),
            "request_id": request_id(metadata)}
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

        kw = {"request_deserializer": handler.request_deserializer,
              "response_serializer": handler.response_serializer}
        if handler.unary_unary:
            return grpc.unary_unary_rpc_method_handler(unary(handler.unary_unary), **kw)
        if handler.unary_stream:
            return grpc.unary_stream_rpc_method_handler(streaming(handler.unary_stream), **kw)
        if handler.stream_unary:
            return grpc.stream_unary_rpc_method_handler(unary(handler.stream_unary), **kw)
        return grpc.stream_stream_rpc_method_handler(streaming(handler.stream_stream), **kw)


def _nothing() -> None:
    return None
