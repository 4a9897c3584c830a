"""Server latency against its own floor: the server issue's speed targets, measured.

Starts `musicrec serve` on a bundle in its own process, then runs `musicrec bench` twice:
sequential (1 client) and 16 concurrent clients (2 client processes), each time alternating the
floor (grpc.health.v1 Check) with SimilarTracks by id (k=10), SimilarTracks on raw features (k=10:
no precomputed list, so a search, a classification and the genre re-ranking) and ClassifyGenre on
raw features.

    python benchmarks/server_latency.py BUNDLE [--rounds 5] [--duration 5] [--json out.json]
    python benchmarks/server_latency.py BUNDLE --processes 2 --connections 4   # one port, 2 servers

With ``--processes N`` the server is N processes on one port (``musicrec serve --processes``). The kernel
hands each connection to one server process by a hash of the connection, so give the client processes
several connections each (``--connections``; with 4 connections in all and 2 servers, all 4 land on one
server 1 time in 8, so 8 or more are safer).

Goals: SimilarTracks by id p50 <= 1.15x the floor sequentially and >= 0.7x its throughput at 16
clients (one-ranking issue); SimilarTracks and ClassifyGenre by raw features p50 <= 2x the floor and
>= 0.5x its throughput at 16 clients (new-track path issue).
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import grpc

from server._bench import Load, compare
from server._bench_report import format_report
from server._generated.musicrec.v1 import recommender_pb2 as pb
from server._generated.musicrec.v1 import recommender_pb2_grpc as pb_grpc
from server._spawn import start_server_process


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("bundle", type=Path)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--duration", type=float, default=5.0)
    parser.add_argument("--warmup", type=float, default=1.0)
    parser.add_argument("--workers", type=int, default=4, help="server handler threads")
    parser.add_argument("--processes", type=int, default=1, help="server processes on the one port")
    parser.add_argument("--client-processes", type=int, default=2, help="client processes of the 16-client phase")
    parser.add_argument("--connections", type=int, default=1, help="connections per client process")
    parser.add_argument("--json", type=Path)
    args = parser.parse_args(argv)
    if min(args.processes, args.client_processes, args.workers, args.connections) < 1:
        parser.error("--processes, --client-processes, --workers and --connections must be at least 1")

    results = {}
    serve = ["--workers", str(args.workers)] + (["--processes", str(args.processes)] if args.processes > 1 else [])
    with start_server_process(args.bundle, *serve) as (_, port):
        address = f"127.0.0.1:{port}"
        with grpc.insecure_channel(address) as channel:  # what served: the kernels' state (ServerInfo)
            kernels = pb_grpc.RecommenderStub(channel).ServerInfo(pb.ServerInfoRequest(), timeout=60).compiled_kernels
        print(f"compiled kernels: {kernels}", file=sys.stderr)
        for label, concurrency, processes in (("sequential", 1, 1), ("concurrent16", 16, args.client_processes)):
            print(f"== {label}", file=sys.stderr)
            report = compare(address, [(("similar", 1.0),), (("similar-features", 1.0),),
                                        (("classify-features", 1.0),)],
                             Load(concurrency=concurrency, warmup=args.warmup, duration=args.duration,
                                  connections=args.connections),
                             processes=processes, rounds=args.rounds,
                             progress=lambda m: print(m, file=sys.stderr, flush=True))
            results[label] = report
            print(format_report(report), "\n")
    seq, conc = results["sequential"]["rpcs"], results["concurrent16"]["rpcs"]
    # (label, rpc, measure, how it compares, goal): the one-ranking and new-track-path issues' goals
    goals = [
        ("SimilarTracks by id, p50 vs floor (sequential)", "similar", "p50_vs_floor", "<=", 1.15, seq),
        ("SimilarTracks by id, throughput vs floor (16 clients)", "similar", "throughput_vs_floor", ">=", 0.7, conc),
        ("ClassifyGenre by features, p50 vs floor (sequential)", "classify-features", "p50_vs_floor", "<=", 2.0, seq),
        ("ClassifyGenre by features, throughput vs floor (16 clients)", "classify-features", "throughput_vs_floor",
         ">=", 0.5, conc),
        ("SimilarTracks by features, p50 vs floor (sequential)", "similar-features", "p50_vs_floor", "<=", 2.0, seq),
        ("SimilarTracks by features, throughput vs floor (16 clients)", "similar-features", "throughput_vs_floor",
         ">=", 0.5, conc),
    ]
    verdict = {}
    print(f"command: python benchmarks/server_latency.py {args.bundle} --rounds {args.rounds} "
          f"--duration {args.duration} --workers {args.workers} --processes {args.processes} "
          f"--client-processes {args.client_processes} --connections {args.connections}; compiled kernels: {kernels}")
    for label, rpc, measure, op, goal, table in goals:
        value = table[rpc][measure]
        met = value <= goal if op == "<=" else value >= goal
        verdict[f"{rpc} {measure} ({'sequential' if table is seq else '16 clients'})"] = {
            "value": float(value), "goal": f"{op} {goal}", "met": bool(met)}
        print(f"{label:62s} {value:5.2f}  (goal {op} {goal}: {'met' if met else 'NOT met'})")
    if args.json:
        server = {"processes": args.processes, "workers": args.workers, "client_processes": args.client_processes,
                  "connections_per_client_process": args.connections, "compiled_kernels": kernels}
        args.json.write_text(json.dumps({"server": server, "verdict": verdict, **results}, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
