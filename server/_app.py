"""Server assembly: the servicer, health, reflection, interceptors, reload and shutdown."""

from __future__ import annotations

import dataclasses
import logging
import os
import signal
import threading
import time
from collections.abc import Callable
from concurrent import futures
from pathlib import Path
from typing import Any

import grpc
from grpc_health.v1 import health, health_pb2
from grpc_reflection.v1alpha import reflection

from engine import Bundle, CandidateSource, use_compiled_kernels, use_one_search_thread

from ._audio import AudioPool, AudioUnavailable
from ._bind import ServerStartError, check_bindable, read_tls_files
from ._generated.musicrec.v1 import recommender_pb2 as pb
from ._holder import BundleHolder, ReloadPolicy
from ._http import HttpFace, HttpOptions
from ._http_server import HttpServer, bind_http, require_web_extra
from ._interceptors import BearerAuth
from ._limits import MAX_MESSAGE_BYTES
from ._metrics import MetricsHttp, MetricsStartError, ServerMetrics
from ._observe import CallObserver
from ._pool import RpcPool
from ._register import add_service
from ._service import SERVER_VERSION, RecommenderServicer

log = logging.getLogger("musicrec.server")

SERVICE = pb.DESCRIPTOR.services_by_name["Recommender"].full_name
DEFAULT_MAX_CONCURRENT = 64


# Handler threads. The handlers are CPU-bound Python; with many threads they mostly fight over the
# GIL: measured at 16 concurrent clients on 2 cores, SimilarTracks reached 0.44-0.66 of the health
# floor's throughput with 72 threads and 0.79-0.86 with 4 (see benchmarks/RESULTS.md).
DEFAULT_WORKERS = 4
DEFAULT_SLOW_MS = 1000.0  # calls slower than this are logged as warnings (event slow_request)
# CPython runs a Python signal handler only in the main thread, but the kernel may hand a SIGTERM sent to
# the process to any of its threads (gRPC's event_engine pollers and timer, the handler pool: a dozen in
# all); the C handler on that thread only marks the signal pending, and a main thread asleep in an
# untimed lock wait is never woken to run it. Measured under CPU load (2 cores busy): about 1 SIGTERM in
# 50 went to a gRPC event_engine thread, and `musicrec serve` then waited in serve_forever until another
# signal happened to land on the main thread. So the main thread waits in slices this long, running
# pending handlers between them: a signal is acted on within this time, whichever thread took it.
SIGNAL_POLL_SECONDS = 0.1


@dataclasses.dataclass(frozen=True, kw_only=True)
class ServerOptions:
    # RPCs accepted at once, running or waiting for a handler thread; beyond it gRPC answers
    # RESOURCE_EXHAUSTED at once instead of queueing without bound. Health checks count too: a
    # saturated server is reported as such.
    max_concurrent: int = DEFAULT_MAX_CONCURRENT
    workers: int = DEFAULT_WORKERS
    read_tokens: tuple[str, ...] = ()
    admin_tokens: tuple[str, ...] = ()
    tls_cert: Path | None = None
    tls_key: Path | None = None
    watch_interval: float | None = None  # seconds between checks of the bundle path (a `current` link)
    # ReloadBundle paths must resolve inside it. Without it the root is the configured bundle's
    # directory and a path needs an admin token (see ReloadPolicy).
    bundle_root: Path | None = None
    # Prometheus /metrics on metrics_host:metrics_port (0 picks a free port); None: not exported, and
    # the per-call metric work is skipped.
    metrics_port: int | None = None
    metrics_host: str = "127.0.0.1"
    log_requests: bool = False  # one log line per call (event "request")
    slow_ms: float | None = DEFAULT_SLOW_MS  # None or 0: no slow-request log
    # Audio clips (server/_audio.py): worker processes, and clips analysed or waiting at once (more get
    # RESOURCE_EXHAUSTED). One worker leaves the other core of a 2-core machine to the fast RPCs.
    audio_workers: int = 1
    audio_max_clips: int = 4
    # The HTTP/JSON face and web console (server/_http.py) on http_host:http_port (0 picks a free
    # port); None: off. Needs the optional web extra.
    http_port: int | None = None
    http_host: str = "127.0.0.1"
    # Another candidate source per loaded bundle (server/_backend.py: Qdrant) and how often its health
    # is checked; health is NOT_SERVING while it cannot answer. None: the bundle's FAISS index.
    source_factory: Callable[[Bundle], CandidateSource] | None = None
    backend_check_interval: float = 2.0
    # One of several processes on one port (musicrec serve --processes, server/_replicas.py): the port is
    # bound with SO_REUSEPORT and a flat index's pages are shared (memory-mapped) between them.
    replica: bool = False


@dataclasses.dataclass
class RunningServer:
    server: grpc.Server
    port: int
    holder: BundleHolder
    health: health.HealthServicer
    metrics: ServerMetrics | None = None
    metrics_http: MetricsHttp | None = None  # serving /metrics, when exported
    audio: AudioPool | None = None  # worker processes for audio clips
    http: HttpServer | None = None  # the HTTP/JSON face and console, when served
    _end_drain_delay: threading.Event = dataclasses.field(default_factory=threading.Event, repr=False)
    stopping: threading.Event = dataclasses.field(default_factory=threading.Event, repr=False)

    @property
    def metrics_port(self) -> int | None:
        return self.metrics_http.port if self.metrics_http is not None else None

    @property
    def http_port(self) -> int | None:
        return self.http.port if self.http is not None else None

    def set_serving(self, serving: bool) -> None:
        status = health_pb2.HealthCheckResponse.SERVING if serving else health_pb2.HealthCheckResponse.NOT_SERVING
        for name in ("", SERVICE):
            self.health.set(name, status)
        if self.http is not None:  # GET /healthz says the same
            self.http.face.serving = serving

    def stop(self, grace: float = 5.0, drain_delay: float = 0.0) -> None:
        """Graceful: health goes NOT_SERVING, new calls are refused, calls in flight get ``grace`` s.

        With ``drain_delay`` the server first keeps answering for that long while health says
        NOT_SERVING, so load balancers, Kubernetes readiness and health-watching clients move away
        before calls are refused (``end_drain_delay`` cuts it short)."""
        self.stopping.set()  # the backend health loop stops setting health
        self.set_serving(False)
        if drain_delay > 0:  # in slices: the signal that ends it early is handled in this (the main) thread
            wait_handling_signals(self._end_drain_delay, drain_delay)
        self.holder.close()
        if self.http is not None:  # both faces stop taking calls now and give theirs the same grace
            self.http.shutdown(grace)
        self.server.stop(grace).wait()
        if self.http is not None:
            self.http.close()
        if self.audio is not None:
            self.audio.close()
        if self.metrics_http is not None:  # scraped until the drain is over
            self.metrics_http.close()

    def end_drain_delay(self) -> None:
        self._end_drain_delay.set()


def create_server(bundle: str | os.PathLike[str] | None, address: str = "127.0.0.1:0",
                  options: ServerOptions | None = None) -> RunningServer:
    """Bind ``address`` (port 0 picks a free port), load ``bundle`` (if given) and start serving.
    Returns a ``RunningServer`` (the server, its port, its bundle holder and the faces it serves). Raises
    ``ServerStartError`` for an address that cannot be bound or unusable TLS files, both checked before the
    (slow) bundle load, and ``BundleError`` for a bundle that cannot be loaded."""
    options = options or ServerOptions()
    credentials = _tls_credentials(options.tls_cert, options.tls_key)
    if not options.replica:  # replicas share a port their supervisor checked
        check_bindable(address)  # a port in use fails here, in milliseconds, before the bundle loads
    http_socket = None
    if options.http_port is not None:
        require_web_extra()
        http_socket = bind_http(options.http_host, options.http_port)
    use_one_search_thread()
    use_compiled_kernels()  # the new-track path's kernels (engine/_compiled.py); the numpy code if unavailable
    holder = BundleHolder(bundle, source_factory=options.source_factory, share_pages=options.replica)
    auth = None
    if options.read_tokens or options.admin_tokens:
        auth = BearerAuth(options.read_tokens, options.admin_tokens)
    metrics = ServerMetrics(holder, server_version=SERVER_VERSION)
    observer = None
    if options.metrics_port is not None or options.log_requests or options.slow_ms:
        observer = CallObserver(metrics, metrics_on=options.metrics_port is not None, log_requests=options.log_requests,
                                slow_seconds=options.slow_ms / 1e3 if options.slow_ms else None,
                                bundle_id=holder.current_version)
    # the observer first, so it also sees the calls auth refuses
    interceptors: list[grpc.ServerInterceptor] = [i for i in (observer, auth) if i is not None]
    reload_policy = ReloadPolicy.for_server(bundle, root=options.bundle_root,
                                            is_admin=auth.is_admin if auth and options.admin_tokens else None)
    # with an observer, a pool that also reports the calls gRPC drops before their handler runs (server/_pool.py)
    pool = RpcPool(observer, max_workers=options.workers, thread_name_prefix="rpc") if observer is not None \
        else futures.ThreadPoolExecutor(max_workers=options.workers, thread_name_prefix="rpc")
    server = grpc.server(
        pool,
        interceptors=interceptors,
        maximum_concurrent_rpcs=options.max_concurrent,
        options=[
            # a second server on the same port must fail, not share it silently (unless it is a replica)
            ("grpc.so_reuseport", 1 if options.replica else 0),
            ("grpc.max_receive_message_length", MAX_MESSAGE_BYTES),
            ("grpc.max_send_message_length", MAX_MESSAGE_BYTES),
        ],
    )
    if observer is not None:
        observer.watch_server(server)
    metrics.watch_server(server, options.max_concurrent)
    audio = AudioPool(options.audio_workers, options.audio_max_clips, metrics, handler_threads=options.workers)
    holder.on_loaded.append(audio.bundle_loaded)  # an audio bundle loaded later warms the workers too
    servicer = RecommenderServicer(holder, reload_policy, metrics=metrics, audio=audio)
    add_service(server, pb.DESCRIPTOR.services_by_name["Recommender"], pb, servicer)
    health_servicer = health.HealthServicer()
    # registered as the Recommender is: health takes calls without a token, so its bad bytes are refused alike
    add_service(server, health_pb2.DESCRIPTOR.services_by_name["Health"], health_pb2, health_servicer)
    reflection.enable_server_reflection(
        (SERVICE, health_pb2.DESCRIPTOR.services_by_name["Health"].full_name, reflection.SERVICE_NAME), server)
    if options.replica and bundle is not None:
        # a replica binds only once it can answer: the kernel hands a SO_REUSEPORT listener its share
        # of new connections as soon as it listens, even while its bundle is still loading
        holder.load()
    try:
        port = (server.add_secure_port(address, credentials) if credentials is not None
                else server.add_insecure_port(address))
    except RuntimeError:  # grpc's "Failed to bind"; check_bindable said why unless another process won a race
        port = 0
    if port == 0:
        if http_socket is not None:
            http_socket.close()
        raise ServerStartError(f"cannot listen on {address}: the address is in use or not available here")
    if bundle is not None and holder.current is None:
        try:
            holder.load()
        except BaseException:
            # A bound server only lets go of its port once started and stopped.
            server.start()
            server.stop(None).wait()
            if http_socket is not None:
                http_socket.close()
            raise
        if "audio" in holder.require().bundle.manifest:
            _warm_audio(audio)
    server.start()
    metrics_http = None
    if options.metrics_port is not None:
        try:
            metrics_http = metrics.serve_http(options.metrics_host, options.metrics_port)
        except OSError as exc:
            server.stop(None).wait()
            raise MetricsStartError(f"cannot serve metrics on {options.metrics_host}:{options.metrics_port}: "
                          f"{exc.strerror or exc}") from None
    running = RunningServer(server=server, port=port, holder=holder, health=health_servicer, metrics=metrics,
                            metrics_http=metrics_http, audio=audio)
    if http_socket is not None:  # the same servicer object, so both faces share one code path
        running.http = _start_http(servicer, auth, options, http_socket, observer)
    running.set_serving(holder.current is not None)
    if options.source_factory is not None:
        from ._backend import watch_backend

        watch_backend(running, options.backend_check_interval)
    if options.watch_interval and bundle is not None:
        holder.watch(options.watch_interval)
    return running


def _start_http(servicer: RecommenderServicer, auth: BearerAuth | None, options: ServerOptions,
                sock: Any, observer: CallObserver | None) -> HttpServer:
    face = HttpFace(servicer, auth, HttpOptions(max_concurrent=options.max_concurrent, workers=options.workers,
                                                max_message_bytes=MAX_MESSAGE_BYTES), observer=observer)
    http = HttpServer(face, sock)
    http.start()
    return http


def _warm_audio(audio: AudioPool) -> None:
    """An audio bundle: spawn the audio workers and pay librosa's JIT now, not in the first call."""
    try:
        audio.start(wait=True)
    except AudioUnavailable as exc:  # the audio extra is missing: everything else still serves
        log.warning("audio queries will be refused: %s", exc)


def _tls_credentials(cert: Path | None, key: Path | None) -> grpc.ServerCredentials | None:
    pem = read_tls_files(cert, key)
    return None if pem is None else grpc.ssl_server_credentials([(pem[1], pem[0])])


def wait_handling_signals(event: threading.Event, timeout: float | None = None) -> bool:
    """``event.wait(timeout)`` in slices of ``SIGNAL_POLL_SECONDS``, so that in the main thread the
    Python handler of a signal another thread received runs within that time (see the constant)."""
    deadline = None if timeout is None else time.monotonic() + timeout
    while True:
        step = SIGNAL_POLL_SECONDS if deadline is None else min(SIGNAL_POLL_SECONDS, deadline - time.monotonic())
        if step <= 0:
            return event.is_set()
        if event.wait(step):
            return True


def serve_forever(running: RunningServer, *, grace: float = 10.0, drain_delay: float = 0.0,
                  on_ready: Callable[[], None] | None = None) -> int:
    """Block until SIGTERM/SIGINT, then shut down gracefully (after ``drain_delay`` s of answering with
    health NOT_SERVING; a second signal ends that delay); SIGHUP reloads the configured bundle path.
    ``on_ready`` runs once the handlers are in place: announce the server there, so that a SIGTERM sent
    as soon as the announcement is read drains and exits 0 instead of killing the process (-15)."""
    done = threading.Event()

    def on_stop(signum: int, frame: Any) -> None:
        if done.is_set():
            running.end_drain_delay()
            return
        if drain_delay > 0:
            log.info("%s: health NOT_SERVING; still answering for %.0f s (--drain-delay) before shutting down",
                     signal.Signals(signum).name, drain_delay, extra={"event": "drain_delay"})
        log.info("%s: shutting down (health NOT_SERVING, %.0f s grace for calls in flight)",
                 signal.Signals(signum).name, grace, extra={"event": "shutdown"})
        done.set()

    def on_hup(signum: int, frame: Any) -> None:
        def reload() -> None:
            try:
                running.holder.load()
            except Exception as exc:
                log.error("SIGHUP reload refused, still serving the previous bundle: %s", exc,
                          extra={"event": "bundle_refused"})
        threading.Thread(target=reload, name="sighup-reload", daemon=True).start()

    signal.signal(signal.SIGTERM, on_stop)
    signal.signal(signal.SIGINT, on_stop)
    signal.signal(signal.SIGHUP, on_hup)
    if on_ready is not None:
        on_ready()
    wait_handling_signals(done)  # not done.wait(): see SIGNAL_POLL_SECONDS
    running.stop(grace, drain_delay=drain_delay)
    log.info("stopped", extra={"event": "stopped"})
    return 0
