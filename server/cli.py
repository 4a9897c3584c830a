"""``musicrec serve`` and ``musicrec query``. grpc is imported inside the commands, so building the
argument parser (which ``musicrec index`` also does) never loads it."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

from ._table import output_width, table


def add_parsers(sub: Any) -> None:
    p = sub.add_parser("serve", help="serve a bundle over gRPC",
                       description="Serve a bundle (or a `current` symlink, with --watch) over gRPC: "
                                   "musicrec.v1.Recommender, grpc.health.v1.Health and server reflection.")
    p.add_argument("--bundle", type=Path, required=True, help="bundle directory or a symlink to one")
    p.add_argument("--bundle-root", type=Path, metavar="DIR",
                   help="ReloadBundle PATH must lie under DIR (default: the directory holding the bundle, and "
                        "then only with an admin token)")
    p.add_argument("--host", default="127.0.0.1", help="address to bind (default 127.0.0.1; 0.0.0.0 for all)")
    p.add_argument("--port", type=int, default=50051)
    p.add_argument("--max-concurrent", type=int, default=64,
                   help="RPCs accepted at once (running or queued); more get RESOURCE_EXHAUSTED (default 64)")
    p.add_argument("--workers", type=int, default=4, help="handler threads (default 4; see benchmarks/RESULTS.md)")
    p.add_argument("--processes", type=int, default=1, metavar="N",
                   help="N server processes on one port (SO_REUSEPORT), each with --workers threads, sharing a flat "
                        "index's pages; a supervisor forwards signals and restarts a process that dies (default 1)")
    p.add_argument("--replica", action="store_true", help=argparse.SUPPRESS)  # set by the --processes supervisor
    p.add_argument("--audio-workers", type=int, default=1,
                   help="processes analysing audio clips (default 1; warmed at start for an audio bundle)")
    p.add_argument("--audio-max-clips", type=int, default=4,
                   help="audio clips analysed or waiting at once; more get RESOURCE_EXHAUSTED (default 4)")
    p.add_argument("--watch", type=float, metavar="SECONDS",
                   help="re-check the bundle path this often and hot-reload when it points elsewhere")
    p.add_argument("--grace", type=float, default=10.0, help="seconds calls in flight get on shutdown")
    p.add_argument("--drain-delay", type=float, default=0.0, metavar="S",
                   help="on SIGTERM, first keep answering for S seconds with health NOT_SERVING, so load balancers "
                        "stop sending calls before they are refused (default 0; a second signal ends the delay)")
    p.add_argument("--token", action="append", default=[], help="require this bearer token (repeatable)")
    p.add_argument("--admin-token", action="append", default=[], help="bearer token that may also reload")
    p.add_argument("--tls-cert", type=Path)
    p.add_argument("--tls-key", type=Path)
    w = p.add_argument_group("HTTP/JSON and web console (the web extra)")
    w.add_argument("--http-port", type=int, metavar="PORT",
                   help="also serve every RPC as POST /v1/<Method> (JSON) and the web console at http://HOST:PORT/ "
                        "(0 picks a free port; default: off)")
    w.add_argument("--http-host", metavar="HOST", help="address for the HTTP port (default: --host)")
    v = p.add_argument_group("vector backend (docs/SCALING.md)")
    v.add_argument("--backend", choices=("faiss", "qdrant"), default="faiss",
                   help="where similar-track candidates come from: the bundle's FAISS index (default) or the Qdrant "
                        "collection `musicrec publish` wrote for this bundle (needs the qdrant extra)")
    v.add_argument("--qdrant-url", metavar="URL", help="Qdrant server, e.g. http://qdrant:6333")
    v.add_argument("--qdrant-path", type=Path, metavar="DIR", help="Qdrant local mode on disk (tests, one machine)")
    v.add_argument("--qdrant-alias", default="musicrec", metavar="NAME", help="alias to read (default musicrec)")
    v.add_argument("--qdrant-api-key-env", metavar="VAR", help="read the Qdrant API key from this variable")
    v.add_argument("--qdrant-timeout", type=float, default=2.0, metavar="S",
                   help="seconds per Qdrant request (default 2)")
    v.add_argument("--qdrant-hnsw-ef", type=int, metavar="N", help="a Qdrant server's HNSW search breadth")
    o = p.add_argument_group("operating (README: Operating)")
    o.add_argument("--metrics-port", type=int, metavar="PORT",
                   help="serve Prometheus metrics on http://HOST:PORT/metrics (default: off)")
    o.add_argument("--metrics-host", metavar="HOST", help="address for the metrics endpoint (default: --host)")
    o.add_argument("--log-format", choices=("json", "text"),
                   help="one JSON object per line, or text (default: text on a terminal, JSON otherwise)")
    o.add_argument("--log-requests", action="store_true", help="log one line per call (event 'request')")
    o.add_argument("--slow-ms", type=float, default=1000.0, metavar="MS",
                   help="log calls slower than this as warnings (event 'slow_request'; default 1000, 0 = off)")
    p.set_defaults(func=cmd_serve)

    q = sub.add_parser("query", help="ask a running server (readable tables, or --json)",
                       description="Ask a running server. --address, --json, --token and --timeout may come "
                                   "before or after the query: musicrec query similar ID --address HOST:PORT.")
    _query_options(q, defaults=True)
    shared = argparse.ArgumentParser(add_help=False)
    _query_options(shared, defaults=False)
    qs = q.add_subparsers(dest="query", metavar="QUERY", required=True)
    s = qs.add_parser("similar", help="tracks similar to seed track ids or audio files", parents=[shared])
    s.add_argument("track_ids", nargs="*")
    s.add_argument("--audio", action="append", default=[], type=Path, metavar="FILE",
                   help="an audio file as a seed (repeatable; bundles built from musicrec extract output)")
    s.add_argument("--not", dest="negative", action="append", default=[], metavar="ID", help="less like this")
    s.add_argument("-k", type=_int_from(1), default=10, help="results per page (default 10)")
    s.add_argument("--offset", type=_int_from(0), default=0, help="skip this many of the ranking (paging)")
    s.add_argument("--genre", action="append", default=[], help="only these genres")
    s.add_argument("--exclude-genre", action="append", default=[])
    s.add_argument("--target", action="append", default=[], type=_name_value, metavar="NAME=VALUE",
                   help="e.g. energy=0.8 (repeatable)")
    s.add_argument("--max-per-artist", type=_int_from(0), default=0)
    s.add_argument("--diversity", type=_number, default=0.0, help="0..1: MMR diversity (default 0)")
    s.add_argument("--genre-weight", type=_number, help="0..1: how much genre agreement counts (default: the "
                   "bundle's; 0 = audio cosine only)")
    p2 = qs.add_parser("playlist", help="a mood playlist", parents=[shared])
    src = p2.add_mutually_exclusive_group(required=True)
    src.add_argument("--mood-id", type=_int_from(0))
    src.add_argument("--mood", help="mood id, name, or words of its name, e.g. 'calm acoustic' (see: musicrec "
                                    "query moods)")
    src.add_argument("--seed", help="seed track id")
    src.add_argument("--target", type=_valence_energy, metavar="VALENCE,ENERGY", help="e.g. 0.3,0.2")
    p2.add_argument("--length", type=_int_from(1), default=20)
    p2.add_argument("--shuffle", type=_int_from(0), default=0, help="shuffle seed")
    c = qs.add_parser("classify", help="genre probabilities for a track id or feature values", parents=[shared])
    c.add_argument("track_id", nargs="?")
    c.add_argument("--audio", type=Path, metavar="FILE", help="classify an audio file")
    c.add_argument("--features", type=_name_values, metavar="NAME=VALUE,...")
    c.add_argument("--top", type=_int_from(1), default=5)
    c.add_argument("--explain", action="store_true")
    qs.add_parser("moods", help="list the moods", parents=[shared])
    qs.add_parser("info", help="bundle and server information", parents=[shared])
    t = qs.add_parser("track", help="one track", parents=[shared])
    t.add_argument("track_id")
    r = qs.add_parser("reload", help="re-read the server's configured bundle, or load PATH once (admin token "
                      "when auth is on; PATH under the server's --bundle-root)", parents=[shared])
    r.add_argument("path", nargs="?", default="")
    q.set_defaults(func=cmd_query)

    b = sub.add_parser("bench", help="measure a server's latency and throughput against its own floor",
                       description="Closed-loop load against any address. Each RPC is measured alternately with "
                                   "grpc.health.v1 Check (the floor) on the same server, and reported in "
                                   "microseconds and as ratios to the floor.")
    b.add_argument("--address", default="127.0.0.1:50051")
    b.add_argument("--rpc", action="append", choices=[r for r in _rpcs() if r != "health"],
                   help="RPC to measure in a phase of its own (repeatable; default: similar)")
    b.add_argument("--mix", action="append", default=[], metavar="RPC=WEIGHT,...",
                   help="a phase sending a weighted mix "
                        "(e.g. similar=6,similar-features=2,batch=1,playlist=1,classify=1)")
    b.add_argument("--concurrency", type=int,
                   help="closed loop: concurrent clients (default 1: sequential); "
                        "open loop: most requests in flight (default 64)")
    b.add_argument("--rate", type=float, help="open loop: send this many requests/s on a fixed schedule")
    b.add_argument("--requests", type=int, help="measured requests per phase and round (instead of --duration)")
    b.add_argument("--processes", type=int, default=0, help="client processes (default: 1, or 2 from 8 clients)")
    b.add_argument("--rounds", type=int, default=3, help="alternating rounds per RPC (default 3)")
    b.add_argument("--duration", type=float, default=5.0, help="measured seconds per round (default 5)")
    b.add_argument("--warmup", type=float, default=1.0, help="uncounted seconds before each round (default 1)")
    b.add_argument("-k", type=int, default=10)
    b.add_argument("--seed", type=int, default=0, help="random seed for the seed tracks drawn (default 0)")
    b.add_argument("--token", help="bearer token")
    b.add_argument("--json", dest="json_out", help="also write the report as JSON here")
    b.add_argument("--html", dest="html_out", metavar="FILE",
                   help="also write the report with latency histograms and percentile curves against the floor "
                        "(one self-contained HTML file; needs the report extra, matplotlib)")
    b.set_defaults(func=cmd_bench)

    from ._probe import EXIT_CODES_HELP

    h = sub.add_parser("health", help="probe a server's grpc.health.v1 status (exit 0 when SERVING)",
                       description="One grpc.health.v1.Health/Check, for container HEALTHCHECKs and Kubernetes "
                                   "exec probes. Prints the status.", epilog=EXIT_CODES_HELP)
    h.add_argument("address", help="HOST:PORT")
    h.add_argument("--service", default="", help="a service name, e.g. musicrec.v1.Recommender (default: the server)")
    h.add_argument("--timeout", type=float, default=5.0, metavar="S", help="deadline in seconds (default 5)")
    h.add_argument("--token", help="bearer token (health checks need none on musicrec; for proxies that do)")
    h.add_argument("--tls", action="store_true", help="use TLS with the system's root certificates")
    h.add_argument("--tls-ca", type=Path, metavar="FILE", help="use TLS, trusting this CA certificate (PEM)")
    h.add_argument("--tls-server-name", metavar="NAME", help="expect this name in the server certificate")
    h.set_defaults(func=cmd_health)


def _query_options(p: argparse.ArgumentParser, *, defaults: bool) -> None:
    """The options of every query, accepted before and after its name. After it they default to
    SUPPRESS: a subcommand's defaults would otherwise replace a value given before its name."""
    def d(value: Any) -> Any:
        return value if defaults else argparse.SUPPRESS

    p.add_argument("--address", default=d("127.0.0.1:50051"), help="server HOST:PORT (default 127.0.0.1:50051)")
    p.add_argument("--json", action="store_true", default=d(False),
                   help="print the response as JSON (ServerInfo's counts_json and metrics_json decoded)")
    p.add_argument("--token", default=d(None), help="bearer token")
    p.add_argument("--timeout", type=_number, default=d(10.0), help="deadline in seconds (default 10)")
    p.add_argument("--wait", type=_number, default=d(0.0), metavar="SECONDS",
                   help="wait up to SECONDS for a server that is still starting (default: fail at once)")


def _int_from(low: int) -> Any:
    """An argparse type: a whole number >= ``low`` (argparse prefixes the flag to the message)."""
    def whole(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"{text!r} is not a whole number") from None
        if value < low:
            raise argparse.ArgumentTypeError(f"must be {low} or more, got {value}")
        return value
    return whole


def _number(text: str) -> float:
    try:
        return float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text.strip()!r} is not a number") from None


def _name_value(text: str) -> tuple[str, float]:
    name, sep, value = text.partition("=")
    if not sep or not name.strip():
        raise argparse.ArgumentTypeError(f"expected NAME=VALUE (e.g. energy=0.8), got {text!r}")
    try:
        return name.strip(), float(value)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{value.strip()!r} is not a number (in {text!r})") from None


def _name_values(text: str) -> dict[str, float]:
    return dict(_name_value(item) for item in text.split(",") if item.strip())


def _valence_energy(text: str) -> tuple[float, float]:
    parts = text.split(",")
    if len(parts) != 2:
        raise argparse.ArgumentTypeError(f"expected VALENCE,ENERGY (two numbers 0..1, e.g. 0.3,0.2), got {text!r}")
    return _number(parts[0]), _number(parts[1])


def _rpcs() -> tuple[str, ...]:
    return ("health", "similar", "similar-features", "batch", "playlist", "classify", "classify-features")


def cmd_bench(args: argparse.Namespace) -> int:
    import grpc

    from ._bench import RPCS, Load, compare, format_report, parse_mix

    assert set(_rpcs()) == set(RPCS)
    try:
        phases = [((r, 1.0),) for r in (args.rpc or ([] if args.mix else ["similar"]))]
        phases += [parse_mix(m) for m in args.mix]
        if args.rate is not None and args.rate <= 0:
            raise ValueError("--rate must be > 0")
    except ValueError as exc:
        print(f"musicrec bench: error: {exc}", file=sys.stderr)
        return 2
    if args.html_out:
        try:
            import matplotlib  # noqa: F401  (checked before minutes of load, not after)
        except ImportError:
            print("musicrec bench: error: --html needs matplotlib: pip install 'musicrec[report]'", file=sys.stderr)
            return 2
    concurrency = args.concurrency or (64 if args.rate else 1)
    processes = args.processes or (2 if concurrency >= 8 or (args.rate or 0) >= 2000 else 1)
    load = Load(concurrency=concurrency, rate=args.rate, warmup=args.warmup,
                duration=None if args.requests else args.duration, requests=args.requests)
    metadata = (("authorization", f"Bearer {args.token}"),) if args.token else None
    samples: dict[str, list[float]] = {}
    try:
        report = compare(args.address, phases, load, processes=processes, rounds=args.rounds, k=args.k,
                         seed=args.seed, metadata=metadata, progress=lambda m: print(m, file=sys.stderr, flush=True),
                         samples=samples)
    except grpc.RpcError as err:
        print(f"musicrec bench: {args.address}: {err.code().name}: {err.details()}", file=sys.stderr)
        return 1
    report["command"] = "musicrec " + " ".join(sys.argv[1:]) if sys.argv[1:2] == ["bench"] else "musicrec bench"
    print(format_report(report))
    if args.json_out:
        Path(args.json_out).write_text(json.dumps(report, indent=2) + "\n")
    if args.html_out:
        from ._bench_html import bench_report_html

        Path(args.html_out).write_text(bench_report_html(report, samples), encoding="utf-8")
        print(f"wrote {args.html_out}", file=sys.stderr)
    return 0


def cmd_health(args: argparse.Namespace) -> int:
    from ._probe import main

    return main(args.address, service=args.service, timeout=args.timeout, token=args.token, tls=args.tls,
                tls_ca=args.tls_ca, tls_server_name=args.tls_server_name)


def cmd_serve(args: argparse.Namespace) -> int:
    from ._bind import ServerStartError, check_bindable, read_tls_files

    if args.processes < 1:
        print(f"musicrec serve: error: --processes must be at least 1, got {args.processes}", file=sys.stderr)
        return 2
    if args.processes > 1 and args.backend == "qdrant" and args.qdrant_path is not None:
        print("musicrec serve: error: --qdrant-path (Qdrant local mode) opens its directory in one process only; "
              "use --qdrant-url with --processes", file=sys.stderr)
        return 2
    if args.processes > 1 and args.http_port is not None:
        print("musicrec serve: error: --http-port is not available with --processes yet; run the HTTP face in "
              "its own musicrec serve", file=sys.stderr)
        return 2
    try:  # at once: before grpc, the engine and the bundle take seconds to load
        read_tls_files(args.tls_cert, args.tls_key)
        if not args.replica:  # replicas bind a port their supervisor checked, beside each other
            check_bindable(f"{args.host}:{args.port}")
        if args.http_port is not None:
            check_bindable(f"{args.http_host or args.host}:{args.http_port}")
    except ServerStartError as exc:
        print(f"musicrec serve: error: {exc}", file=sys.stderr)
        return 2

    import logging

    if args.processes > 1:
        from ._logging import configure as configure_logging
        from ._replicas import run_replicas

        configure_logging(args.log_format)
        return run_replicas(args)

    from engine import BundleError

    from ._app import ServerOptions, create_server, serve_forever
    from ._logging import configure as configure_logging

    configure_logging(args.log_format)
    if args.bundle_root is not None and not args.bundle_root.is_dir():
        print(f"musicrec serve: error: --bundle-root {args.bundle_root}: not a directory", file=sys.stderr)
        return 2
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
    try:
        running = create_server(args.bundle, f"{args.host}:{args.port}", options)
    except (ServerStartError, BundleError, OSError) as exc:  # address, TLS files, any failure to load the bundle
        print(f"musicrec serve: error: {exc}", file=sys.stderr)
        return 2
    rec = running.holder.require()
    logging.getLogger("musicrec.server").info(
        "serving musicrec.v1.Recommender on %s:%d%s (bundle %s: %d tracks, %d moods, %d genres, %s index)",
        args.host, running.port, " with TLS" if args.tls_cert else "", rec.bundle.version, rec.n,
        len(rec.moods()), len(rec.genre_names), rec.bundle.manifest["metrics"]["index"]["kind"])
    if args.backend == "qdrant":
        state = getattr(rec.source, "error", None) or f"collection {getattr(rec.source, 'collection', None)}"
        logging.getLogger("musicrec.server").info(
            "similar-track candidates from Qdrant %s, alias %s: %s",
            args.qdrant_url or f"local mode at {args.qdrant_path}", args.qdrant_alias, state,
            extra={"event": "backend", "fields": {"backend": "qdrant", "alias": args.qdrant_alias}})
    if running.http_port is not None:
        logging.getLogger("musicrec.server").info(
            "HTTP/JSON (POST /v1/<Method>) and the web console on http://%s:%d/", options.http_host,
            running.http_port, extra={"event": "http_serving", "fields": {"http_port": running.http_port}})
    if running.metrics_port is not None:
        logging.getLogger("musicrec.server").info(
            "metrics on http://%s:%d/metrics", options.metrics_host, running.metrics_port,
            extra={"event": "metrics_serving", "fields": {"metrics_port": running.metrics_port}})
    return serve_forever(running, grace=args.grace, drain_delay=args.drain_delay)


def _qdrant_factory(args: argparse.Namespace) -> Any:
    import os

    if (args.qdrant_url is None) == (args.qdrant_path is None):
        raise ValueError("--backend qdrant needs exactly one of --qdrant-url URL or --qdrant-path DIR")
    api_key = os.environ.get(args.qdrant_api_key_env) if args.qdrant_api_key_env else None
    if args.qdrant_api_key_env and not api_key:
        raise ValueError(f"--qdrant-api-key-env {args.qdrant_api_key_env}: the variable is not set")
    try:
        from ._backend import QdrantBackend
        backend = QdrantBackend(url=args.qdrant_url, path=args.qdrant_path, alias=args.qdrant_alias, api_key=api_key,
                                timeout=args.qdrant_timeout, hnsw_ef=args.qdrant_hnsw_ef)
        return backend.source_factory()
    except ImportError as exc:
        raise ImportError(f"--backend qdrant needs the qdrant extra (pip install 'musicrec[qdrant]'): {exc}") from None


def cmd_query(args: argparse.Namespace) -> int:
    import grpc

    from ._generated.musicrec.v1 import recommender_pb2 as pb
    from ._generated.musicrec.v1 import recommender_pb2_grpc as pb_grpc

    metadata = (("authorization", f"Bearer {args.token}"),) if args.token else None
    try:
        with grpc.insecure_channel(args.address) as channel:
            if args.wait > 0:  # a starting server binds its port first and answers once its bundle is loaded
                try:
                    grpc.channel_ready_future(channel).result(timeout=args.wait)
                except grpc.FutureTimeoutError:
                    print(f"musicrec query: no server answered at {args.address} within --wait {args.wait:g} s",
                          file=sys.stderr)
                    return 1
            stub = pb_grpc.RecommenderStub(channel)
            call = {"timeout": args.timeout, "metadata": metadata}
            response = _run_query(args, stub, pb, call)
    except grpc.RpcError as err:
        hint = ""
        if err.code() == grpc.StatusCode.UNAVAILABLE:
            hint = f" (is a server running at {args.address}? start one with musicrec serve, or give --address)"
        print(f"musicrec query: {err.code().name}: {err.details()}{hint}", file=sys.stderr)
        return 1
    except ValueError as exc:
        print(f"musicrec query: error: {exc}", file=sys.stderr)
        return 2
    if args.json:
        print(json.dumps(response_json(response), indent=2, ensure_ascii=False))
    else:
        print(format_response(args.query, response, output_width()))
    return 0


def response_json(response: Any) -> dict[str, Any]:
    """The message as JSON (proto field names), with the JSON that ServerInfo carries as strings
    (``counts_json``, ``metrics_json``) decoded in place as ``counts`` and ``metrics``."""
    from google.protobuf import json_format

    out = json_format.MessageToDict(response, preserving_proto_field_name=True)
    for field in ("counts_json", "metrics_json"):
        if field in out:
            out[field.removesuffix("_json")] = json.loads(out.pop(field))
    return out


def audio_clip(path: Path) -> bytes:
    """A file's bytes for Seed.audio. A file over the 3 MiB limit is decoded here and sent as mono
    FLAC at the extractor's rate (what the server would analyse anyway), which needs the audio extra."""
    from ._limits import MAX_AUDIO_BYTES

    try:
        data = path.read_bytes()
    except OSError as exc:
        raise ValueError(f"--audio {path}: {exc.strerror or exc}") from None
    if len(data) <= MAX_AUDIO_BYTES:
        return data
    try:
        import io

        import soundfile as sf

        from engine.audio import ExtractorParams, decode
    except ImportError:
        raise ValueError(f"--audio {path}: {len(data):,} bytes, over the {MAX_AUDIO_BYTES:,}-byte limit; install "
                         "the audio extra to have it shrunk, or send a shorter or compressed clip") from None
    decoded = decode(data, ExtractorParams().sample_rate, name=str(path))
    buf = io.BytesIO()
    sf.write(buf, decoded.y, decoded.sr, format="FLAC", subtype="PCM_16")
    if buf.tell() > MAX_AUDIO_BYTES:
        raise ValueError(f"--audio {path}: {decoded.seconds:.0f} s is too long even as mono FLAC "
                         f"({buf.tell():,} bytes); send a shorter clip")
    return buf.getvalue()


def _run_query(args: argparse.Namespace, stub: Any, pb: Any, call: dict[str, Any]) -> Any:
    if args.query == "similar":
        if not args.track_ids and not args.audio:
            raise ValueError("similar needs seed track ids or --audio FILE")
        request = pb.SimilarTracksRequest(
            seeds=[pb.Seed(track_id=t) for t in args.track_ids] + [pb.Seed(audio=audio_clip(f)) for f in args.audio],
            negative_seeds=[pb.Seed(track_id=t) for t in args.negative], k=args.k, offset=args.offset,
            targets=dict(args.target), max_per_artist=args.max_per_artist, diversity=args.diversity,
            filter=pb.Filter(include_genres=args.genre, exclude_genres=args.exclude_genre))
        if args.genre_weight is not None:
            request.genre_weight = args.genre_weight
        return stub.SimilarTracks(request, **call)
    if args.query == "playlist":
        request = pb.MoodPlaylistRequest(length=args.length, shuffle_seed=args.shuffle)
        if args.mood_id is not None:
            request.mood_id = args.mood_id
        elif args.mood:
            request.mood_name = args.mood
        elif args.seed:
            request.seed_track_id = args.seed
        else:
            valence, energy = args.target
            request.target.CopyFrom(pb.MoodTarget(valence=valence, energy=energy))
        return stub.MoodPlaylist(request, **call)
    if args.query == "classify":
        request = pb.ClassifyGenreRequest(top_k=args.top, explain=args.explain)
        if args.features:
            request.features.values.update(args.features)
        elif args.audio:
            request.audio = audio_clip(args.audio)
        elif args.track_id:
            request.track_id = args.track_id
        else:
            raise ValueError("classify needs a track id, --features or --audio FILE")
        return stub.ClassifyGenre(request, **call)
    if args.query == "moods":
        return stub.ListMoods(pb.ListMoodsRequest(), **call)
    if args.query == "info":
        return stub.ServerInfo(pb.ServerInfoRequest(), **call)
    if args.query == "track":
        return stub.GetTrack(pb.GetTrackRequest(track_id=args.track_id), **call)
    return stub.ReloadBundle(pb.ReloadBundleRequest(path=args.path), **call)


CORE_LEGEND = "~ before a mood: the track is not a core member of it (its nearest core tracks chose the mood)"


def _track_cells(t: Any) -> list[str]:
    return [t.name, ", ".join(t.artists), ", ".join(t.genres), ("" if t.mood_core else "~") + t.mood_name]


def _tracks_table(headers: list[str], rows: list[list[str]], tracks: list[Any], right: tuple[int, ...],
                  width: int | None) -> list[str]:
    """A table of tracks (the last four columns of ``headers`` are track, artists, genres, mood), with
    the legend of the ~ marker when a row has one."""
    first = len(headers) - 4
    lines = table(headers, rows, right=right, flexible=range(first, first + 4), width=width)
    if any(not t.mood_core for t in tracks):
        lines.append(CORE_LEGEND)
    return lines


def format_response(kind: str, r: Any, width: int | None = None) -> str:
    """Readable tables for people, at most ``width`` characters wide; --json gives the full message."""
    lines: list[str] = []
    if kind == "similar":
        tracks = [s.track for s in r.results]
        lines += _tracks_table(["score", "track", "artists", "genres", "mood"],
                               [[f"{s.score:.3f}", *_track_cells(s.track)] for s in r.results], tracks, (0,), width)
        st = r.stats
        lines.append(f"{len(r.results)} results in {st.took_ms:.2f} ms; {st.candidates_examined} candidates examined, "
                     f"{st.candidates_filtered} filtered" + ("; fewer than asked (filters)" if st.exhausted else ""))
        if r.unknown_seed_ids:
            lines.append(f"unknown seed ids skipped: {', '.join(r.unknown_seed_ids)}")
    elif kind == "playlist":
        lines.append(f"mood {r.mood.mood_id}: {r.mood.name} ({r.mood.size:,} tracks)")
        tempo = any("tempo" in e.track.features for e in r.entries)
        rows = [[f"{e.position + 1}", *([f"{e.track.features['tempo']:.0f}"] if tempo else []), *_track_cells(e.track)]
                for e in r.entries]
        lines += _tracks_table(["#", *(["tempo"] if tempo else []), "track", "artists", "genres", "mood"], rows,
                               [e.track for e in r.entries], (0, 1) if tempo else (0,), width)
    elif kind == "classify":
        lines += [f"{g.probability:6.1%}  {g.genre}" for g in r.genres]
        if r.families:
            lines.append("families: " + ", ".join(f"{f.genre} {f.probability:.1%}" for f in r.families))
        if r.known_genres:
            lines.append(f"catalog genres: {', '.join(r.known_genres)}")
        if r.contributions:
            lines.append(f"why '{r.genres[0].genre}' (log-odds; bias {r.bias:+.3f}):")
            lines += [f"  {c.contribution:+.3f}  {c.feature}" for c in r.contributions]
    elif kind == "moods":
        lines += table(["id", "mood", "tracks", "core", "top genres"],
                       [[str(m.mood_id), m.name, f"{m.size:,}", f"{m.core_size:,}",
                         ", ".join(g.genre for g in m.top_genres)] for m in r.moods],
                       right=(0, 2, 3), flexible=(1, 4), width=width)
        lines.append("core: tracks at the mood's dense centre; the others were assigned by their nearest core tracks")
    elif kind == "info":
        lines += [f"bundle {r.bundle_version} ({r.bundle_path})", f"{r.tracks:,} tracks, {r.genres} genres, "
                  f"{r.moods} moods, {r.index_kind} index of {r.vector_dimension} dims; up {r.uptime_seconds:.0f} s",
                  f"features: {', '.join(r.feature_names)}"]
    elif kind == "track":
        t = r.track
        lines += [f"{t.name} by {', '.join(t.artists)} ({', '.join(t.genres)})",
                  f"mood {t.mood_id}: {t.mood_name}" + ("" if t.mood_core else " (not a core member)")]
        lines += [f"  {k:<18} {v:g}" for k, v in sorted(t.features.items())]
    else:
        lines.append(f"bundle {r.bundle_version}" + (" (changed)" if r.changed else " (unchanged)"))
    return "\n".join(lines)


def demo_queries(bundle: Path) -> str:
    """Serve ``bundle`` on a free local port and ask it one of each query over a real channel."""
    import grpc

    from ._app import create_server
    from ._generated.musicrec.v1 import recommender_pb2 as pb
    from ._generated.musicrec.v1 import recommender_pb2_grpc as pb_grpc

    running = create_server(bundle, "127.0.0.1:0")
    try:
        with grpc.insecure_channel(f"127.0.0.1:{running.port}") as channel:
            stub = pb_grpc.RecommenderStub(channel)
            info = stub.ServerInfo(pb.ServerInfoRequest(), timeout=10)
            seed = running.holder.require().ids[0]
            track = stub.GetTrack(pb.GetTrackRequest(track_id=seed), timeout=10).track
            similar = stub.SimilarTracks(pb.SimilarTracksRequest(seeds=[pb.Seed(track_id=seed)], k=5), timeout=10)
            moods = stub.ListMoods(pb.ListMoodsRequest(), timeout=10)
            playlist = stub.MoodPlaylist(pb.MoodPlaylistRequest(seed_track_id=seed, length=6,
                                                                include_features=True), timeout=10)
            width = output_width()
            mood_lines = format_response("moods", moods, width).splitlines()  # header, moods, legend
            out = [f"served on 127.0.0.1:{running.port}: {format_response('info', info)}", ""]
            if info.genres:
                genre = stub.ClassifyGenre(pb.ClassifyGenreRequest(track_id=seed, top_k=3, explain=True), timeout=10)
            out += [f"SimilarTracks to '{track.name}' by {', '.join(track.artists)} ({', '.join(track.genres)}):",
                    format_response("similar", similar, width), "",
                    "ListMoods (first 5):", "\n".join(mood_lines[:6] + mood_lines[-1:]), "",
                    "MoodPlaylist from the same seed:", format_response("playlist", playlist, width)]
            if info.genres:
                contributions = list(genre.contributions)[:4]
                del genre.contributions[:]
                genre.contributions.extend(contributions)
                out += ["", "ClassifyGenre (top 3, with the 4 strongest feature contributions):",
                        format_response("classify", genre)]
            return "\n".join(out)
    finally:
        running.stop(grace=1.0)
