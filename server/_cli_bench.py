"""``musicrec bench``: closed- or open-loop load against any address, measured against the
server's own floor (server/_bench.py does the work; grpc is imported when the command runs)."""

from __future__ import annotations

import argparse
import json
import os
import sys
from typing import Any

from ._cli_args import (  # the same checks and TLS options as query's and health's
    add_tls_options,
    client_address,
    client_tls,
    client_token,
    unavailable_hint,
)
from ._cli_numbers import MAX_PROCESSES, int_from, int_in, number_in, seconds, wait_seconds
from ._limits import MAX_K

# Upper ends that only refuse typos, far above any run measured here (32 clients, 2 processes, 4
# connections): each client is an asyncio task holding a request, each connection a TCP connection
# to the server (and each process, MAX_PROCESSES, a Python interpreter with its own grpc channels).
MAX_CLIENTS = 100_000
MAX_CONNECTIONS = 1024
# Open loop: the requests/s one client process can pace. A grpc.aio call costs a Python client tens of
# microseconds of CPU or more (on 2 cores shared with the server, one process at --rate 10000 made a quarter
# of its sends and counted the rest as CLIENT_BACKLOG); above this the schedule measures the client alone.
MAX_RATE_PER_PROCESS = 10_000
DURATION = 5.0  # seconds per round without --duration or --requests
FAILURE_SHARE = "1%"  # server/_bench.py FAILURE_THRESHOLD, as the help says it (cmd_bench asserts they agree)

EXIT_CODES_HELP = (f"exit status: 0 measured; 1 the server could not be reached, more than {FAILURE_SHARE} of a "
                   "phase's calls failed (RESOURCE_EXHAUSTED: saturated; UNAVAILABLE: gone; CLIENT_BACKLOG: the "
                   "client behind its open-loop schedule), so its latencies and ratios are not comparable, a phase "
                   "where no call succeeded, or a --json/--html file that could not be written; 2 bad arguments; "
                   "130 interrupted (Ctrl-C)")


def add_parser(sub: Any) -> None:
    b = sub.add_parser("bench", help="measure a server's latency and throughput against its own floor",
                       description="Closed- or open-loop load against any address. Each RPC is measured "
                                   "alternately with grpc.health.v1 Check (the floor) on the same server, and "
                                   "reported in microseconds, as the share of its calls that failed, and as ratios "
                                   f"to the floor; when more than {FAILURE_SHARE} of a phase's calls failed, the "
                                   "report says its ratios are not comparable and the exit status is 1.",
                       epilog=EXIT_CODES_HELP)
    b.add_argument("--address", type=client_address, default="127.0.0.1:50051",
                   help="the server to measure, HOST:PORT (default 127.0.0.1:50051)")
    b.add_argument("--rpc", action="append", choices=[r for r in _rpcs() if r != "health"],
                   help="RPC to measure in a phase of its own (repeatable; default: similar)")
    b.add_argument("--mix", action="append", default=[], metavar="RPC=WEIGHT,...",
                   help="a phase sending a weighted mix "
                        "(e.g. similar=6,similar-features=2,batch=1,playlist=1,classify=1)")
    b.add_argument("--concurrency", type=int_from(1, MAX_CLIENTS),
                   help="closed loop: concurrent clients (default 1: sequential); "
                        "open loop: most requests in flight (default 64)")
    b.add_argument("--rate", type=number_in(0, MAX_RATE_PER_PROCESS * MAX_PROCESSES, unit="requests per second",
                                            over_low=True),
                   help="open loop: send this many requests/s on a fixed schedule (at most "
                        f"{MAX_RATE_PER_PROCESS:,} per client process); a send the client cannot make on time, or "
                        "with --concurrency calls in flight, counts as a failed call (CLIENT_BACKLOG)")
    b.add_argument("--requests", type=int_from(1),
                   help="measured requests per phase and round (instead of --duration)")
    b.add_argument("--processes", type=int_from(0, MAX_PROCESSES), default=0,
                   help="client processes (default: 2 from 8 clients or --rate 2000, else 1)")
    b.add_argument("--connections", type=int_from(1, MAX_CONNECTIONS), default=1,
                   help="connections per client process (default 1); a server of several processes on one port "
                        "(serve --processes) is handed connections, not calls, so give it several")
    b.add_argument("--rounds", type=int_from(1), default=3, help="alternating rounds per RPC (default 3)")
    b.add_argument("--duration", type=seconds, help="measured seconds per round (default 5; not with --requests)")
    b.add_argument("--warmup", type=wait_seconds, default=1.0, help="uncounted seconds before each round (default 1)")
    b.add_argument("-k", type=int_in(1, MAX_K), default=10,
                   help=f"results per similar-tracks call, 1..{MAX_K} (default 10)")
    b.add_argument("--seed", type=int_from(0), default=0, help="random seed for the seed tracks drawn (default 0)")
    b.add_argument("--token", type=client_token, help="bearer token")
    add_tls_options(b)
    b.add_argument("--json", dest="json_out", type=report_file, metavar="FILE",
                   help="also write the report as JSON to this file ('-': stdout, and the text report to stderr)")
    b.add_argument("--html", dest="html_out", type=report_file, metavar="FILE",
                   help="also write the report with latency histograms and percentile curves against the floor "
                        "(one self-contained HTML file; needs the report extra, matplotlib; '-': stdout, and the "
                        "text report to stderr)")
    b.set_defaults(func=cmd_bench)


def report_file(text: str) -> str:
    """A --json or --html file: an empty name (an unset variable?) would write nothing without a word."""
    if not text:
        raise argparse.ArgumentTypeError("empty; give a file name, or '-' for standard output")
    return text


def _rpcs() -> tuple[str, ...]:
    return ("health", "similar", "similar-features", "batch", "playlist", "classify", "classify-features")


def cmd_bench(args: argparse.Namespace) -> int:
    import grpc

    from ._bench import FAILURE_THRESHOLD, RPCS, BenchError, Load, compare, parse_mix, phases_problem, processes_used
    from ._bench_report import format_report

    assert set(_rpcs()) == set(RPCS) and f"{FAILURE_THRESHOLD:.0%}" == FAILURE_SHARE
    phases = [((r, 1.0),) for r in (args.rpc or ([] if args.mix else ["similar"]))]
    for mix in args.mix:
        try:
            phases.append(parse_mix(mix))
        except ValueError as exc:
            print(f"musicrec bench: error: --mix {mix!r}: {exc}", file=sys.stderr)
            return 2
    if (problem := phases_problem(phases)) is not None:
        print(f"musicrec bench: error: {problem}", file=sys.stderr)
        return 2
    if args.requests is not None and args.duration is not None:  # else --duration would be ignored
        print("musicrec bench: error: --requests and --duration are alternatives (a count or a time per round); "
              "give one", file=sys.stderr)
        return 2
    if (problem := _outputs_problem(args)) is not None:  # before minutes of load, not after
        code, said = problem
        print(f"musicrec bench: error: {said}", file=sys.stderr)
        return code
    if args.html_out:
        try:
            import matplotlib  # noqa: F401  (checked before minutes of load, not after)
        except ImportError:
            from engine import install_hint
            print(f"musicrec bench: error: --html needs matplotlib: {install_hint('report')}", file=sys.stderr)
            return 2
    try:
        tls = client_tls(args.tls, args.tls_ca, args.tls_server_name)
    except ValueError as exc:
        print(f"musicrec bench: error: {exc}", file=sys.stderr)
        return 2
    concurrency = args.concurrency or (64 if args.rate else 1)
    processes = args.processes or (2 if concurrency >= 8 or (args.rate or 0) >= 2000 else 1)
    load = Load(concurrency=concurrency, rate=args.rate, warmup=args.warmup,
                duration=None if args.requests else args.duration or DURATION, requests=args.requests,
                connections=args.connections)
    used = processes_used(processes, load)
    if args.rate and args.rate > MAX_RATE_PER_PROCESS * used:
        print(f"musicrec bench: error: --rate {args.rate:g}: more than a client can pace, at most "
              f"{MAX_RATE_PER_PROCESS:,} requests/s per client process ({used} here, at most one per client of "
              f"--concurrency {concurrency}: {MAX_RATE_PER_PROCESS * used:,} requests/s); give more --processes "
              "or a lower --rate", file=sys.stderr)
        return 2
    metadata = (("authorization", f"Bearer {args.token}"),) if args.token else None
    samples: dict[str, list[float]] = {}
    try:
        report = compare(args.address, phases, load, processes=processes, rounds=args.rounds, k=args.k,
                         seed=args.seed, metadata=metadata, progress=lambda m: print(m, file=sys.stderr, flush=True),
                         samples=samples, tls=tls)
    except grpc.RpcError as err:
        details = err.details() or ""
        hint = unavailable_hint(args.address, details, tls) if err.code() == grpc.StatusCode.UNAVAILABLE else ""
        print(f"musicrec bench: {args.address}: {err.code().name}: {details}{hint}", file=sys.stderr)
        return 1
    except BenchError as exc:
        print(f"musicrec bench: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:  # the client processes were ended on the way out of compare
        print("musicrec bench: interrupted; nothing was reported or written", file=sys.stderr)
        return 130
    report["command"] = "musicrec " + " ".join(sys.argv[1:]) if sys.argv[1:2] == ["bench"] else "musicrec bench"
    # with --json - or --html -, standard output holds that file alone
    text_out = sys.stderr if "-" in (args.json_out, args.html_out) else sys.stdout
    print(format_report(report), file=text_out, flush=True)
    written = True
    for flag, path, text in (("--json", args.json_out, lambda: json.dumps(report, indent=2) + "\n"),
                             ("--html", args.html_out, lambda: _html(report, samples))):
        if path == "-":
            sys.stdout.write(text())
            sys.stdout.flush()
        elif path:
            from engine import write_output

            try:
                write_output(path, text())  # whole or not at all: a full disk leaves an earlier report as it was
            except OSError as exc:
                print(f"musicrec bench: error: {flag} {path}: cannot write it ({exc.strerror or exc}); the results "
                      "above were printed but not written", file=sys.stderr)
                written = False
            else:
                print(f"wrote {path}", file=sys.stderr)
    # an RPC none of whose calls succeeded has no latency: its zeros and ratios measure nothing
    failed = [f"{rpc} ({', '.join(f'{code} x{n}' for code, n in s['errors'].items()) or 'no calls measured'})"
              for rpc, s in report["rpcs"].items() if s["requests"] == 0]
    if failed:
        print(f"musicrec bench: error: no call succeeded for {'; '.join(failed)}: its latencies and ratios above "
              "measure nothing", file=sys.stderr)
    elif report["not_comparable"]:
        print(f"musicrec bench: error: more than {FAILURE_SHARE} of the calls failed for "
              f"{', '.join(report['not_comparable'])}: the latencies and ratios above are not comparable "
              "(see the report)", file=sys.stderr)
    return 0 if written and not failed and not report["not_comparable"] else 1


def _html(report: dict[str, Any], samples: dict[str, list[float]]) -> str:
    from ._bench_report import bench_report_html

    return bench_report_html(report, samples)


def _outputs_problem(args: argparse.Namespace) -> tuple[int, str] | None:
    """The exit status and why --json or --html cannot be written there, or None: 2 for the two flags in conflict,
    1 for a file that cannot be written (engine.output_file_problem, as for the indexer's report files, which exit
    1 too; a missing parent directory is created when the file is written)."""
    if args.json_out == "-" and args.html_out == "-":
        return 2, "--json - and --html - both name standard output; give a file to one of them"
    outputs = [(flag, path) for flag, path in (("--json", args.json_out), ("--html", args.html_out))
               if path and path != "-"]
    if len(outputs) == 2 and os.path.realpath(outputs[0][1]) == os.path.realpath(outputs[1][1]):
        return 2, f"--json and --html name the same file ({outputs[0][1]}); one would overwrite the other"
    if outputs:
        from engine import output_file_problem  # (the engine only when a file is asked for: seconds to import)

        for flag, path in outputs:
            if (problem := output_file_problem(path)) is not None:
                return 1, f"{flag} {path}: {problem}"
    return None
