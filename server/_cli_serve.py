"""``musicrec serve``: serve a bundle over gRPC (and, when asked, HTTP/JSON and metrics).

The parser is built by every ``musicrec`` command, so this module imports no grpc, protobuf or
engine at the top: ``cmd_serve`` loads them when it runs, after the checks that need none of them
(ports, TLS files, flag combinations) have had their say.
"""

from __future__ import annotations

import argparse
import os
import sys
import threading
from pathlib import Path
from typing import Any

from ._cli_numbers import MAX_PROCESSES, int_from, number_in, seconds, wait_seconds

# --workers: handler threads (and as many for the HTTP face). The pool starts a thread only as calls
# arrive, but a burst would start all of them, each with its own stack, and the handlers are GIL-bound
# Python (4 is the measured best on 2 cores). 1024 leaves room for a big server whose handlers mostly
# wait (on a Qdrant backend, on audio workers) and refuses a typo that would start thousands.
MAX_WORKERS = 1024
PORT = int_from(0, 65535)  # 0: a free port
MAX_ACCEPTED = 1_000_000  # RPCs accepted at once, audio clips at once, Qdrant's ef: only refuses typos
SLOW_START_NOTICE_SECONDS = 3.0  # a start this long says what it is waiting for
EVERY_ADDRESS = ("0.0.0.0", "::")  # a port bound on these is taken on every address of its family


def listen_host(text: str) -> str:
    """A --host, --http-host or --metrics-host value, without brackets: ``::1`` and ``[::1]`` are the
    same host, and each face writes the address it binds in its own way (gRPC's ``[::1]:PORT``)."""
    bare = text[1:-1] if text.startswith("[") and text.endswith("]") else text
    if not bare:
        raise argparse.ArgumentTypeError("empty; give an address to listen on (127.0.0.1: this machine only, "
                                         "0.0.0.0: every IPv4 address, '::': every IPv6 one)")
    return bare


def bearer_token(text: str) -> str:
    """A --token or --admin-token value: one a client can send as ``authorization: Bearer <token>``.
    An empty one (an unset $TOKEN in a script), or one with a character gRPC metadata cannot carry (a
    token file's carriage return, a non-ASCII letter: clients fail with "Illegal header value"),
    matches no call, so the server would refuse them all. The messages never echo the token."""
    if not text:
        raise argparse.ArgumentTypeError("empty (an unset variable?); a server with an empty token refuses every "
                                         "call")
    return header_safe_token(text)


def header_safe_token(text: str) -> str:
    """``text`` if gRPC metadata can carry it: printable ASCII (clients send it, ``musicrec query`` and
    ``health`` too). The message never echoes the token."""
    bad = next((i for i, c in enumerate(text) if not " " <= c <= "~"), None)
    if bad is not None:
        kind = "a control" if ord(text[bad]) < 128 else "a non-ASCII"
        raise argparse.ArgumentTypeError(f"character {bad + 1} of the token is {kind} character; a bearer token is "
                                         "printable ASCII (gRPC metadata carries nothing else)")
    return text


def add_parser(sub: Any) -> None:
    p = sub.add_parser("serve", help="serve a bundle over gRPC",
                       description="Serve a bundle (or a `current` symlink, with --watch) over gRPC: "
                                   "musicrec.v1.Recommender, grpc.health.v1.Health and server reflection.")
    p.add_argument("--bundle", type=Path, required=True, help="bundle directory or a symlink to one")
    p.add_argument("--bundle-root", type=Path, metavar="DIR",
                   help="ReloadBundle PATH must lie under DIR (default: the directory holding the bundle, and "
                        "then only with an admin token)")
    p.add_argument("--host", type=listen_host, default="127.0.0.1",
                   help="address to bind (default 127.0.0.1; 0.0.0.0 for all)")
    p.add_argument("--port", type=PORT, default=50051, help="gRPC port (default 50051; 0 picks a free one)")
    p.add_argument("--max-concurrent", type=int_from(1, MAX_ACCEPTED), default=64,
                   help="RPCs accepted at once (running or queued); more get RESOURCE_EXHAUSTED (default 64)")
    p.add_argument("--workers", type=int_from(1, MAX_WORKERS), default=4,
                   help=f"handler threads, 1 to {MAX_WORKERS} (default 4, measured best on 2 cores; without the "
                        "compiled kernels, 16 gave mostly new-track traffic +60%% on one process, as more such calls "
                        "wait and are ranked together, but 5-13%% less with --processes 2; not measured with the "
                        "kernels on, which rank such calls one at a time: see benchmarks/RESULTS.md)")
    p.add_argument("--processes", type=int_from(1, MAX_PROCESSES), default=1, metavar="N",
                   help="N server processes on one port (SO_REUSEPORT), each with --workers threads, sharing a flat "
                        "index's pages; a supervisor forwards signals and restarts a process that dies (default 1)")
    p.add_argument("--replica", action="store_true", help=argparse.SUPPRESS)  # set by the --processes supervisor
    p.add_argument("--audio-workers", type=int_from(1, MAX_PROCESSES), default=1,
                   help="processes analysing audio clips (default 1; warmed at start for an audio bundle)")
    p.add_argument("--audio-max-clips", type=int_from(1, MAX_ACCEPTED), default=4,
                   help="audio clips analysed or waiting at once; more get RESOURCE_EXHAUSTED (default 4, and "
                        "never more than --workers - 1, so one handler thread stays free: 3 with the default 4 "
                        "workers, as the start-up log says)")
    p.add_argument("--watch", type=number_in(0.1, 1e6, unit="seconds", zero_is_off=True), metavar="SECONDS",
                   help="re-check the bundle path this often and hot-reload when it points elsewhere (0 = off)")
    p.add_argument("--grace", type=wait_seconds, default=10.0,
                   help="seconds calls in flight get on shutdown (default 10)")
    p.add_argument("--drain-delay", type=wait_seconds, default=0.0, metavar="S",
                   help="on SIGTERM, first keep answering for S seconds with health NOT_SERVING, so load balancers "
                        "stop sending calls before they are refused (default 0; a second signal ends the delay)")
    p.add_argument("--token", type=bearer_token, action="append", default=[],
                   help="require this bearer token (repeatable)")
    p.add_argument("--admin-token", type=bearer_token, action="append", default=[],
                   help="bearer token that may also reload")
    p.add_argument("--tls-cert", type=Path, help="serve gRPC over TLS with this PEM certificate (chain), with "
                   "--tls-key")
    p.add_argument("--tls-key", type=Path, help="the certificate's PEM private key")
    w = p.add_argument_group("HTTP/JSON and web console (the web extra)")
    w.add_argument("--http-port", type=PORT, metavar="PORT",
                   help="also serve every RPC as POST /v1/<Method> (JSON) and the web console at http://HOST:PORT/ "
                        "(0 picks a free port; default: off)")
    w.add_argument("--http-host", type=listen_host, metavar="HOST", help="address for the HTTP port (default: --host)")
    v = p.add_argument_group("vector backend (docs/SCALING.md)")
    v.add_argument("--backend", choices=("faiss", "qdrant"), default="faiss",
                   help="where similar-track candidates come from: the bundle's FAISS index (default) or the Qdrant "
                        "collection `musicrec publish` wrote for this bundle (needs the qdrant extra)")
    v.add_argument("--qdrant-url", metavar="URL", help="Qdrant server, e.g. http://qdrant:6333")
    v.add_argument("--qdrant-path", type=Path, metavar="DIR", help="Qdrant local mode on disk (for tests)")
    v.add_argument("--qdrant-alias", metavar="NAME", help="alias to read (default musicrec)")
    v.add_argument("--qdrant-api-key-env", metavar="VAR", help="read the Qdrant API key from this variable")
    v.add_argument("--qdrant-timeout", type=seconds, metavar="S",
                   help="seconds per Qdrant request, whole seconds rounded up (default 2)")
    v.add_argument("--qdrant-hnsw-ef", type=int_from(1, MAX_ACCEPTED), metavar="N",
                   help="a Qdrant server's HNSW search breadth")
    o = p.add_argument_group("operating (README: Operating)")
    o.add_argument("--metrics-port", type=PORT, metavar="PORT",
                   help="serve Prometheus metrics on http://HOST:PORT/metrics (default: off)")
    o.add_argument("--metrics-host", type=listen_host, metavar="HOST",
                   help="address for the metrics endpoint (default: --host)")
    o.add_argument("--log-format", choices=("json", "text"),
                   help="one JSON object per line, or text (default: text on a terminal, JSON otherwise)")
    o.add_argument("--log-requests", action="store_true", help="log one line per call (event 'request')")
    o.add_argument("--slow-ms", type=number_in(0, 1e9, unit="milliseconds", over_low=True, zero_is_off=True),
                   default=1000.0, metavar="MS",
                   help="log calls slower than this as warnings (event 'slow_request'; default 1000, 0 = off)")
    p.set_defaults(func=cmd_serve)


def cmd_serve(args: argparse.Namespace) -> int:
    from ._bind import ServerStartError, check_bindable, host_port, read_tls_files

    if problem := _flags_problem(args):
        print(f"musicrec serve: error: {problem}", file=sys.stderr)
        return 2
    if args.backend == "qdrant":  # the rules publish follows too (engine.qdrant.QdrantTarget), in one process
        try:
            _qdrant_target(args)
        except (ImportError, ValueError) as exc:
            print(f"musicrec serve: error: {exc}", file=sys.stderr)
            return 2
    try:  # at once: before grpc, the engine and the bundle take seconds to load
        read_tls_files(args.tls_cert, args.tls_key)
        if not args.replica:  # replicas bind a port their supervisor checked, beside each other
            check_bindable(host_port(args.host, args.port))
        if args.http_port is not None:
            check_bindable(host_port(args.http_host or args.host, args.http_port), port_flag="--http-port",
                           host_flag="--http-host")
        for port in _metrics_ports(args):
            check_bindable(host_port(args.metrics_host or args.host, port), port_flag="--metrics-port",
                           host_flag="--metrics-host")
    except ServerStartError as exc:
        print(f"musicrec serve: error: {exc}", file=sys.stderr)
        return 2

    import logging

    if args.processes > 1:
        from ._logging import configure as configure_logging
        from ._replicas import run_replicas

        configure_logging(args.log_format)
        return run_replicas(args)

    from engine import BundleError, compiled_kernels_status

    from ._app import ServerOptions, create_server, serve_forever
    from ._logging import configure as configure_logging

    configure_logging(args.log_format)
    source_factory = None
    if args.backend == "qdrant":
        try:
            source_factory = _qdrant_factory(args)
        except Exception as exc:  # a missing extra, bad flags, a local-mode path another process holds
            print(f"musicrec serve: error: {exc}", file=sys.stderr)
            return 2
    options = ServerOptions(max_concurrent=args.max_concurrent, workers=args.workers, read_tokens=tuple(args.token),
                            admin_tokens=tuple(args.admin_token), tls_cert=args.tls_cert, tls_key=args.tls_key,
                            watch_interval=args.watch, bundle_root=args.bundle_root,
                            metrics_port=args.metrics_port, metrics_host=args.metrics_host or args.host,
                            log_requests=args.log_requests, slow_ms=args.slow_ms or None,
                            audio_workers=args.audio_workers, audio_max_clips=args.audio_max_clips,
                            http_port=args.http_port, http_host=args.http_host or args.host,
                            source_factory=source_factory, replica=args.replica)
    import importlib.util

    # a load and the kernels' first compile say nothing for up to half a minute: past a few seconds, say why
    notice = threading.Timer(SLOW_START_NOTICE_SECONDS, logging.getLogger("musicrec.server").info, args=(
        "still starting: loading bundle %s%s", args.bundle, " and readying the compiled kernels (the first start "
        "after an install compiles them: about 30 s)" if importlib.util.find_spec("numba") is not None else ""))
    notice.daemon = True
    notice.start()
    try:
        running = create_server(args.bundle, host_port(args.host, args.port), options)
    except (ServerStartError, BundleError, OSError) as exc:  # address, TLS files, any failure to load the bundle
        print(f"musicrec serve: error: {exc}", file=sys.stderr)
        return 2
    finally:
        notice.cancel()

    def announce() -> None:  # after the signal handlers: whoever reads "serving" may send SIGTERM at once
        rec = running.holder.require()
        logging.getLogger("musicrec.server").info(
            "serving musicrec.v1.Recommender on %s%s (bundle %s: %d tracks, %d moods, %d genres, %s index)",
            host_port(args.host, running.port), " with TLS" if args.tls_cert else "", rec.bundle.version, rec.n,
            len(rec.moods()), len(rec.genre_names), rec.bundle.manifest["metrics"]["index"]["kind"])
        logging.getLogger("musicrec.server").info(
            "compiled kernels for queries about new tracks: %s", compiled_kernels_status(),
            extra={"event": "compiled_kernels", "fields": {"compiled_kernels": compiled_kernels_status()}})
        if args.backend == "qdrant":
            state = getattr(rec.source, "error", None) or f"collection {getattr(rec.source, 'collection', None)}"
            logging.getLogger("musicrec.server").info(
                "similar-track candidates from Qdrant %s, alias %s: %s",
                args.qdrant_url or f"local mode at {args.qdrant_path}", _qdrant_alias(args), state,
                extra={"event": "backend", "fields": {"backend": "qdrant", "alias": _qdrant_alias(args)}})
        if running.http_port is not None:
            logging.getLogger("musicrec.server").info(
                "HTTP/JSON (POST /v1/<Method>) and the web console on http://%s/",
                host_port(options.http_host, running.http_port),
                extra={"event": "http_serving", "fields": {"http_port": running.http_port}})
        if running.metrics_port is not None:
            logging.getLogger("musicrec.server").info(
                "metrics on http://%s/metrics", host_port(options.metrics_host, running.metrics_port),
                extra={"event": "metrics_serving", "fields": {"metrics_port": running.metrics_port}})

    return serve_forever(running, grace=args.grace, drain_delay=args.drain_delay, on_ready=announce)


# The --qdrant-* flags with a default (the alias: engine.qdrant.DEFAULT_ALIAS) are parsed as None, so that
# _flags_problem sees one given at its default value (args stay as parsed: a --processes replica checks them again)
QDRANT_TIMEOUT = 2.0
# how serve spells the Qdrant target's options (engine.qdrant.QdrantTarget.problem names them)
QDRANT_FLAGS = {"url": "--qdrant-url", "path": "--qdrant-path", "alias": "--qdrant-alias",
                "api_key_env": "--qdrant-api-key-env", "timeout": "--qdrant-timeout", "hnsw_ef": "--qdrant-hnsw-ef"}


def _qdrant_alias(args: argparse.Namespace) -> str:
    from engine.qdrant import DEFAULT_ALIAS

    return DEFAULT_ALIAS if args.qdrant_alias is None else str(args.qdrant_alias)


def _flags_problem(args: argparse.Namespace) -> str | None:
    """Why these flags together would be ignored, contradict each other or clash, or None. Checked
    before anything loads; the messages never echo a token."""
    if args.backend != "qdrant":  # else they would be ignored: the candidates come from FAISS all the same
        given = [flag for flag, value in (
            ("--qdrant-url", args.qdrant_url), ("--qdrant-path", args.qdrant_path),
            ("--qdrant-alias", args.qdrant_alias), ("--qdrant-api-key-env", args.qdrant_api_key_env),
            ("--qdrant-timeout", args.qdrant_timeout), ("--qdrant-hnsw-ef", args.qdrant_hnsw_ef))
            if value is not None]
        if given:
            return (f"{', '.join(given)} apply with --backend qdrant only (the default backend is the bundle's FAISS "
                    "index); add --backend qdrant, or leave them out")
    alone = [f"{host_flag} without {port_flag}" for host_flag, host, port_flag, port in (
        ("--http-host", args.http_host, "--http-port", args.http_port),
        ("--metrics-host", args.metrics_host, "--metrics-port", args.metrics_port))
        if host is not None and port is None]
    if alone:  # else ignored: the face is off without its port
        return f"{', '.join(alone)}: the host applies to that port only; add the port, or leave the host out"
    if set(args.token) & set(args.admin_token):
        return ("the same token is given as --token and --admin-token; an admin token may already read, so give it "
                "once, as --admin-token")
    if args.bundle_root is not None:
        if not args.bundle_root.is_dir():
            return f"--bundle-root {args.bundle_root}: not a directory"
        root, bundle = os.path.realpath(args.bundle_root), os.path.realpath(args.bundle)
        if not Path(bundle).is_relative_to(root):  # ReloadBundle would refuse the bundle's own path
            return (f"--bundle {args.bundle} is outside --bundle-root {args.bundle_root} (symlinks resolved: {bundle} "
                    f"is not under {root}); give a root that holds the bundle")
    faces = [("--port", args.host, {args.port}), ("--metrics-port", args.metrics_host or args.host,
                                                  set(_metrics_ports(args)))]
    if args.http_port is not None:
        faces.insert(1, ("--http-port", args.http_host or args.host, {args.http_port}))
    for i, (flag, host, ports) in enumerate(faces):
        for other_flag, other_host, other_ports in faces[i + 1:]:
            shared = sorted((ports & other_ports) - {0})  # 0 picks a free port: never a clash
            if shared and (host == other_host or host in EVERY_ADDRESS or other_host in EVERY_ADDRESS):
                also = (f" (with --processes {args.processes}, metrics go on --metrics-port and the ports after it, "
                        f"one per process)" if "--metrics-port" in (flag, other_flag) and args.processes > 1 else "")
                return f"{flag} and {other_flag} both take port {shared[0]}{also}; give each its own port"
    if args.processes > 1 and args.backend == "qdrant" and args.qdrant_path is not None:
        return ("--qdrant-path (Qdrant local mode) opens its directory in one process only; use --qdrant-url with "
                "--processes")
    if args.processes > 1 and args.http_port is not None:
        return "--http-port is not available with --processes yet; run the HTTP face in its own musicrec serve"
    return None


def _metrics_ports(args: argparse.Namespace) -> list[int]:
    """The metrics ports this command binds: --metrics-port, and one more per process with --processes."""
    if args.metrics_port is None:
        return []
    return list(range(args.metrics_port, args.metrics_port + args.processes)) if args.metrics_port else [0]


def _qdrant_target(args: argparse.Namespace) -> Any:
    """The Qdrant target of ``--backend qdrant`` (an ``engine.qdrant.QdrantTarget``), checked by the rules publish
    and add follow too, and a local store checked to exist: a ValueError says what is wrong, an ImportError that the
    qdrant extra is missing."""
    if (args.qdrant_url is None) == (args.qdrant_path is None):
        raise ValueError("--backend qdrant needs exactly one of --qdrant-url URL or --qdrant-path DIR")
    try:
        from engine.qdrant import QdrantTarget
    except ImportError as exc:
        from engine import install_hint
        raise ImportError(f"--backend qdrant needs the qdrant extra ({install_hint('qdrant')}): {exc}") from None
    target = QdrantTarget(url=args.qdrant_url, path=args.qdrant_path, alias=_qdrant_alias(args),
                          api_key_env=args.qdrant_api_key_env, timeout=args.qdrant_timeout, hnsw_ef=args.qdrant_hnsw_ef)
    if (problem := target.problem(QDRANT_FLAGS)) is not None:
        raise ValueError(problem)
    if args.qdrant_path is not None and not (args.qdrant_path / "meta.json").is_file():
        # a mistyped path was created as an empty store, and the server ran NOT_SERVING without saying why
        what = "is a file" if args.qdrant_path.is_file() else "holds no Qdrant local store" \
            if args.qdrant_path.is_dir() else "does not exist"
        raise ValueError(f"--qdrant-path {args.qdrant_path}: {what}; musicrec publish BUNDLE --qdrant-path DIR "
                         "writes one")
    return target


def _qdrant_factory(args: argparse.Namespace) -> Any:
    target = _qdrant_target(args)
    from ._backend import QdrantBackend

    return QdrantBackend(target=target, timeout=QDRANT_TIMEOUT).source_factory()
