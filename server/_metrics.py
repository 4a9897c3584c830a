"""Prometheus metrics of one server: RPCs (by method and status), shedding, deadlines, the loaded
bundle, reloads, audio extraction, and the standard process/GC collectors, in a registry of its own
(so two servers in one process, as in the tests, never share counts).

Every name follows Prometheus conventions: ``musicrec_`` prefix, the unit as suffix, ``_total`` on
counters, and labels of bounded cardinality only (gRPC service, method and status code; a method the
server does not have is counted as ``unknown``, so a client cannot invent label values).

RPC series are updated by ``server._observe.CallObserver`` through children bound once per method
and status code (see ``MethodSeries``), so a call costs a few lock-protected increments and no label
lookups. Bundle and reload series are read from the ``BundleHolder`` at scrape time.

Audio queries (server/_audio.py) record into two objects that exist whether or not metrics are
exported (unexported they cost the same and nobody reads them), so audio code never checks a flag:
``audio_queue_depth`` goes up by one for each clip that takes an audio slot and down when the slot
is released (so it is the clips accepted and not yet answered: waiting for a worker process or
being analysed, at most ``--audio-max-clips``); ``audio_extraction_seconds`` observes each clip's
decoding + feature extraction as the handler waits for it. Clips refused past the audio limit are
``musicrec_rpc_requests_total{grpc_code="RESOURCE_EXHAUSTED"}`` of their RPC.
"""

from __future__ import annotations

import datetime as dt
import platform
import socket
import socketserver
import threading
import time
from collections.abc import Callable, Iterable, Iterator
from typing import TYPE_CHECKING, Any
from wsgiref.simple_server import WSGIRequestHandler, WSGIServer, make_server

import grpc
from prometheus_client import (
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    PlatformCollector,
    ProcessCollector,
    disable_created_metrics,
    make_wsgi_app,
)
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, InfoMetricFamily, Metric
from prometheus_client.gc_collector import GCCollector
from prometheus_client.registry import Collector

if TYPE_CHECKING:
    from ._holder import BundleHolder

# Server-side handling time. The floor of a call on this machine is ~0.5 ms end to end and a
# SimilarTracks handler runs ~50-150 us, so the low buckets are 50 us apart; the top ones cover the
# deepest pages and batches (seconds) and the 10 s default client deadline.
RPC_BUCKETS = (0.00005, 0.0001, 0.00015, 0.0002, 0.0003, 0.0005, 0.00075, 0.001, 0.0025, 0.005, 0.01, 0.025,
               0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)
# One clip's decoding + extraction: tens of milliseconds for a few seconds of audio, tens of seconds
# for a long upload.
AUDIO_BUCKETS = (0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0)

UNKNOWN_METHOD = ("unknown", "unknown")

# No ``_created`` series beside every counter and histogram: Prometheus does not need them, and they
# would double the text of every scrape. (The switch is the client library's, per process.)
disable_created_metrics()
_CODES = {c: c.name for c in grpc.StatusCode}


def split_method(full: str) -> tuple[str, str]:
    """``"/musicrec.v1.Recommender/SimilarTracks"`` -> ("musicrec.v1.Recommender", "SimilarTracks")."""
    service, _, method = full.lstrip("/").rpartition("/")
    return (service, method) if service and method else UNKNOWN_METHOD


class MethodSeries:
    """The children of one method, bound once: in flight, shed, deadline misses, and per status code
    the request counter and duration histogram (OK bound at once, other codes on first use)."""

    __slots__ = ("_lock", "_metrics", "by_code", "deadline_exceeded", "in_flight", "labels", "shed")

    def __init__(self, metrics: ServerMetrics, service: str, method: str, *, bind_ok: bool = True) -> None:
        self._metrics = metrics
        self._lock = threading.Lock()
        self.labels = (service, method)
        self.in_flight = metrics.rpc_in_flight.labels(service, method)
        self.shed = metrics.rpc_shed.labels(service, method)
        self.deadline_exceeded = metrics.rpc_deadline_exceeded.labels(service, method)
        self.by_code: dict[grpc.StatusCode, tuple[Any, Any]] = {}
        if bind_ok:
            self.bind(grpc.StatusCode.OK)

    def bind(self, code: grpc.StatusCode) -> tuple[Any, Any]:
        """(requests counter child, duration histogram child) of ``code``."""
        with self._lock:
            children = self.by_code.get(code)
            if children is None:
                labels = (*self.labels, _CODES[code])
                children = (self._metrics.rpc_requests.labels(*labels), self._metrics.rpc_duration.labels(*labels))
                self.by_code = {**self.by_code, code: children}  # readers never see a dict being resized
            return children


class ServerMetrics:
    """The metric objects of one server and the registry they are exported from."""

    def __init__(self, holder: BundleHolder | None = None, *, server_version: str = "") -> None:
        self.registry = CollectorRegistry()
        r = self.registry
        rpc = ("grpc_service", "grpc_method")
        self.rpc_requests = Counter(
            "musicrec_rpc_requests", "RPCs finished, by final status code (calls shed or refused by auth included)",
            (*rpc, "grpc_code"), registry=r)
        self.rpc_duration = Histogram(
            "musicrec_rpc_duration_seconds", "Time from a handler's start to its return, by status code (server "
            "side: excludes queueing for a handler thread and the network; shed calls are not observed)",
            (*rpc, "grpc_code"), buckets=RPC_BUCKETS, registry=r)
        self.rpc_in_flight = Gauge("musicrec_rpc_in_flight", "RPCs running on a handler thread now", rpc,
                                   registry=r)
        self.rpc_shed = Counter(
            "musicrec_rpc_shed", "RPCs refused with RESOURCE_EXHAUSTED because --max-concurrent calls were already "
            "accepted (running or queued)", rpc, registry=r)
        self.rpc_deadline_exceeded = Counter(
            "musicrec_rpc_deadline_exceeded", "RPCs whose client deadline had passed when the server finished them "
            "(whatever status the handler set)", rpc, registry=r)
        self.audio_extraction_seconds = Histogram(
            "musicrec_audio_extraction_seconds", "Decoding + feature extraction of one audio clip",
            buckets=AUDIO_BUCKETS, registry=r)
        self.audio_queue_depth = Gauge("musicrec_audio_queue_depth", "Audio clips accepted and not answered yet "
                                       "(waiting for a worker process or being analysed)", registry=r)
        self.new_track_batch = Histogram(
            "musicrec_new_track_batch_queries", "SimilarTracks queries about new tracks taken in one pass "
            "(server/_combine.py; ranked together without the compiled kernels): 1 while such calls do not "
            "overlap; more handler threads (--workers) let more wait "
            "together", buckets=(1, 2, 4, 8, 16, 32, 64), registry=r)
        self._live = _LiveCollector(holder, server_version)
        r.register(self._live)
        ProcessCollector(registry=r)
        PlatformCollector(registry=r)
        GCCollector(registry=r)
        self._series: dict[str, MethodSeries] = {}
        self._series_lock = threading.Lock()
        self.unknown = MethodSeries(self, *UNKNOWN_METHOD, bind_ok=False)  # never OK: the server has no handler

    def series(self, full_method: str) -> MethodSeries:
        """The series of a method the server has (call it only for methods with a handler)."""
        found = self._series.get(full_method)
        if found is None:
            with self._series_lock:
                found = self._series.get(full_method)
                if found is None:
                    found = MethodSeries(self, *split_method(full_method))
                    self._series = {**self._series, full_method: found}
        return found

    def watch_server(self, server: grpc.Server, max_concurrent: int | None) -> None:
        """Report the calls gRPC has accepted (running or queued) beside the limit, read at scrape."""
        self._live.server_state = server_state(server)
        self._live.max_concurrent = max_concurrent

    def serve_http(self, host: str, port: int) -> MetricsHttp:
        """Serve ``/metrics`` (Prometheus text format) on ``host:port`` (0 picks a free port) in a daemon thread."""
        family, *_, sockaddr = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE)[0]

        class Server(socketserver.ThreadingMixIn, WSGIServer):
            address_family = family
            daemon_threads = True

        httpd = make_server(sockaddr[0], port, metrics_only(make_wsgi_app(self.registry)), Server,
                            handler_class=_QuietHandler)
        thread = threading.Thread(target=httpd.serve_forever, name="metrics-http", daemon=True)
        thread.start()
        return MetricsHttp(httpd, thread)


Wsgi = Callable[[dict[str, Any], Callable[..., Any]], Iterable[bytes]]


def metrics_only(app: Wsgi) -> Wsgi:
    """``app`` (prometheus_client's exposition) at ``GET``/``HEAD /metrics`` only. The client library
    answers any path with the metrics, refuses HEAD and filters on ``?name[]=``; a scrape config with
    a wrong path or a stray query must fail visibly instead of passing with other data."""

    def plain(start_response: Callable[..., Any], status: str, text: str, *extra: tuple[str, str]) -> list[bytes]:
        body = text.encode()
        start_response(status, [("Content-Type", "text/plain; charset=utf-8"), ("Content-Length", str(len(body))),
                                *extra])
        return [body]

    def serve(environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
        method = environ["REQUEST_METHOD"]
        if environ.get("PATH_INFO") != "/metrics":
            return plain(start_response, "404 Not Found", "not found: the metrics are at /metrics\n")
        if method not in ("GET", "HEAD"):
            return plain(start_response, "405 Method Not Allowed", f"{method} /metrics: use GET or HEAD\n",
                         ("Allow", "GET, HEAD"))
        if environ.get("QUERY_STRING"):
            return plain(start_response, "400 Bad Request", "/metrics takes no query string\n")
        if method == "GET":
            return app(environ, start_response)
        answer: list[Any] = []
        body = b"".join(app({**environ, "REQUEST_METHOD": "GET"}, lambda *a: answer.extend(a)))
        status, headers = answer[0], answer[1]
        start_response(status, [*headers, ("Content-Length", str(len(body)))])
        return []

    return serve


class _QuietHandler(WSGIRequestHandler):
    def log_message(self, format: str, *args: Any) -> None:
        """Scrapes are not logged: one line on stderr per scrape would drown the server's own log."""


class MetricsStartError(OSError):
    """The metrics endpoint cannot listen where asked (``musicrec serve`` exits 2 naming it)."""


class MetricsHttp:
    def __init__(self, httpd: Any, thread: threading.Thread) -> None:
        self._httpd = httpd
        self._thread = thread
        self.port: int = httpd.server_port

    def close(self) -> None:
        self._httpd.shutdown()
        self._httpd.server_close()
        self._thread.join(timeout=5)


def server_state(server: grpc.Server) -> Any:
    """gRPC's own state of a sync server, or None when this gRPC keeps it elsewhere.

    The concurrency limit (``maximum_concurrent_rpcs``) is enforced inside gRPC, which answers
    RESOURCE_EXHAUSTED without ever calling a handler, so the only way to count those calls is to
    look where gRPC looks: its accepted-call count, read under the same lock and just before gRPC
    makes the same comparison (interceptors run inside that section). These are private names;
    tests/server/test_metrics.py fails on a gRPC that renames them, rather than shed calls going
    uncounted quietly.
    """
    state = getattr(server, "_state", None)
    if state is None or not hasattr(state, "active_rpc_count") or not hasattr(state, "maximum_concurrent_rpcs"):
        return None
    return state


def _created_timestamp(created_at: str) -> float | None:
    try:
        when = dt.datetime.fromisoformat(created_at)
    except (TypeError, ValueError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=dt.UTC)
    return when.timestamp()


class _LiveCollector(Collector):
    """Series read at scrape time: the loaded bundle, reloads, accepted calls, build facts."""

    def __init__(self, holder: BundleHolder | None, server_version: str) -> None:
        self.holder = holder
        self.server_state: Any = None
        self.max_concurrent: int | None = None
        self.server_version = server_version

    def collect(self) -> Iterable[Metric]:
        yield InfoMetricFamily("musicrec_server", "Server build facts",
                               value={"version": self.server_version, "grpc_version": grpc.__version__,
                                      "python_version": platform.python_version()})
        yield from self._accepted()
        if self.holder is not None:
            yield from self._bundle(self.holder)

    def _accepted(self) -> Iterator[Metric]:
        state = self.server_state
        if state is None:
            return
        yield GaugeMetricFamily("musicrec_rpc_accepted", "RPCs gRPC has accepted now, running or queued for a handler "
                                "thread (health checks included); beyond musicrec_rpc_max_concurrent calls are shed",
                                value=state.active_rpc_count)
        if self.max_concurrent is not None:
            yield GaugeMetricFamily("musicrec_rpc_max_concurrent", "The --max-concurrent limit",
                                    value=self.max_concurrent)

    def _bundle(self, holder: BundleHolder) -> Iterator[Metric]:
        rec = holder.current
        yield GaugeMetricFamily("musicrec_bundle_loaded", "1 when a bundle is being served", value=rec is not None)
        if rec is not None:
            m = rec.bundle.manifest
            created_at = str(m.get("created_at", ""))
            yield InfoMetricFamily("musicrec_bundle", "The bundle being served",
                                   value={"bundle_id": rec.bundle.version, "tracks": str(rec.n),
                                          "format_version": str(m.get("format_version")), "created_at": created_at})
            created = _created_timestamp(created_at)
            if created is not None:
                yield GaugeMetricFamily("musicrec_bundle_created_timestamp_seconds",
                                        "When the bundle being served was built (Unix time)", value=created)
                yield GaugeMetricFamily("musicrec_bundle_age_seconds", "Seconds since the bundle being served was "
                                        "built", value=max(0.0, time.time() - created))
        loads = CounterMetricFamily("musicrec_bundle_loads", "Bundle loads since start (the first one included), by "
                                    "result: loaded (swapped in) or refused (the previous bundle kept serving)",
                                    labels=("result",))
        loads.add_metric(("loaded",), holder.loaded)
        loads.add_metric(("refused",), holder.refused)
        yield loads
        last = holder.last_load
        if last is not None:
            yield GaugeMetricFamily("musicrec_bundle_last_load_successful", "1 when the last load attempt swapped its "
                                    "bundle in, 0 when it was refused", value=last.ok)
            yield GaugeMetricFamily("musicrec_bundle_last_load_duration_seconds",
                                    "How long the last load attempt took (verify + load)", value=last.seconds)
            yield GaugeMetricFamily("musicrec_bundle_last_load_timestamp_seconds",
                                    "When the last load attempt finished (Unix time)", value=last.finished_at)
