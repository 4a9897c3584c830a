"""Does the HTTP/JSON face slow the gRPC path? gRPC SimilarTracks with and without --http-port, side by side.

Starts two `musicrec serve` processes on the same bundle, one plain and one with `--http-port 0` (the
HTTP face and console up, idle), and measures each in turn, round after round, rotating the order every
round so that drift on the shared machine hits both alike: per server and round, its floor
(grpc.health.v1 Check) and then gRPC SimilarTracks by track id (k=10), the same number of requests each,
one client. Besides latency it reports the server's CPU time per SimilarTracks call (all its threads,
benchmarks/_timing.py's ``cpu_seconds``), which the machine's other load disturbs far less than wall time.

Then, on the server with the HTTP face, the same SimilarTracks requests over HTTP/JSON (POST
/v1/SimilarTracks, one keep-alive connection) against gRPC, to show what the JSON face itself costs.

    python benchmarks/http_face.py BUNDLE [--rounds 12] [--requests 1000] [--json out.json]

Reported: per server, medians over rounds of the SimilarTracks p50, its floor's p50, their ratio and
the CPU per call; and the medians of the paired per-round ratios, with / without (1.00 = no cost).
"""

from __future__ import annotations

import argparse
import http.client
import json
import os
import platform
import re
import statistics
import sys
import time
from contextlib import ExitStack
from pathlib import Path
from typing import Any

import numpy as np
from _timing import cpu_seconds, rotated  # benchmarks/_timing.py

from server._bench import Load, Workload, discover, run_phase
from server._spawn import start_server_process

VARIANTS: dict[str, tuple[str, ...]] = {"grpc only": (), "with --http-port": ("--http-port", "0")}


def http_port_of(proc: Any) -> int:
    """The HTTP port a `musicrec serve --http-port 0` logs right after its gRPC address."""
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        match = re.search(r"web console on http://[\d.]+:(\d+)/", proc.stderr.readline())
        if match:
            return int(match.group(1))
    raise TimeoutError("the server did not log its HTTP port")


def http_latencies_us(port: int, ids: tuple[str, ...], requests: int) -> list[float]:
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    out = []
    for i in range(requests):
        body = json.dumps({"seeds": [{"track_id": ids[i % len(ids)]}], "k": 10})
        t0 = time.perf_counter()
        conn.request("POST", "/v1/SimilarTracks", body=body, headers={"Content-Type": "application/json"})
        response = conn.getresponse()
        response.read()
        out.append((time.perf_counter() - t0) * 1e6)
        if response.status != 200:
            raise RuntimeError(f"HTTP {response.status} from /v1/SimilarTracks")
    conn.close()
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("bundle", type=Path)
    parser.add_argument("--rounds", type=int, default=12)
    parser.add_argument("--requests", type=int, default=1000, help="requests per server, phase and round")
    parser.add_argument("--json", type=Path)
    args = parser.parse_args(argv)
    say = lambda m: print(m, file=sys.stderr, flush=True)  # noqa: E731

    names = list(VARIANTS)
    rows: dict[str, list[dict[str, float]]] = {n: [] for n in names}
    with ExitStack() as stack:
        ports, pids = {}, {}
        for name, flags in VARIANTS.items():
            proc, ports[name] = stack.enter_context(start_server_process(args.bundle, *flags))
            pids[name] = proc.pid
            if flags:
                http_port = http_port_of(proc)
        ids, feats, moods = discover(f"127.0.0.1:{ports[names[0]]}")

        def phase(name: str, rpc: str, seed: int, load: Load) -> Any:
            workload = Workload(mix=((rpc, 1.0),), track_ids=ids, feature_rows=feats, mood_ids=moods, seed=seed)
            return run_phase(f"127.0.0.1:{ports[name]}", workload, load, processes=1)[rpc]

        for name in names:  # once: connections, caches, the first calls
            for rpc in ("health", "similar"):
                phase(name, rpc, 10_000, Load(warmup=2.0, duration=0.1))
        load = Load(warmup=0.0, duration=None, requests=args.requests)
        for r in range(args.rounds):
            order = rotated(names, r)
            for name in order:
                floor = phase(name, "health", r, load).summary()["p50_us"]
                before = cpu_seconds(pids[name])
                similar = phase(name, "similar", r, load).summary()["p50_us"]
                cpu = (cpu_seconds(pids[name]) - before) / args.requests * 1e6
                rows[name].append({"similar_p50_us": similar, "floor_p50_us": floor, "ratio": similar / floor,
                                   "cpu_us_per_call": cpu})
            a, b = (rows[n][-1] for n in names)
            say(f"round {r + 1}/{args.rounds}: " + "  ".join(
                f"{n}: p50 {rows[n][-1]['similar_p50_us']:.0f} us / floor {rows[n][-1]['floor_p50_us']:.0f} us = "
                f"{rows[n][-1]['ratio']:.2f}, cpu {rows[n][-1]['cpu_us_per_call']:.0f} us" for n in names)
                + f"  paired {b['ratio'] / a['ratio']:.2f}")
        grpc_us = [x * 1e3 for x in phase(names[1], "similar", 99, load).latencies_ms]
        http_us = http_latencies_us(http_port, ids, args.requests)

    def med(name: str, key: str) -> float:
        return statistics.median(row[key] for row in rows[name])

    paired = {key: [w[key] / g[key] for g, w in zip(rows[names[0]], rows[names[1]], strict=True)]
              for key in ("ratio", "similar_p50_us", "cpu_us_per_call")}
    summary: dict[str, Any] = {n: {k: round(med(n, k), 3 if k == "ratio" else 1)
                                   for k in ("similar_p50_us", "floor_p50_us", "ratio", "cpu_us_per_call")}
                               for n in names}
    summary["paired_with_over_without"] = {k: round(statistics.median(v), 3) for k, v in paired.items()}
    summary["paired_ratio_quartiles"] = [round(float(q), 3) for q in np.percentile(paired["ratio"], [25, 75])]
    summary["http_json_p50_us"] = round(float(np.percentile(http_us, 50)), 1)
    summary["grpc_p50_us_same_server"] = round(float(np.percentile(grpc_us, 50)), 1)
    command = f"python benchmarks/http_face.py {args.bundle} --rounds {args.rounds} --requests {args.requests}"
    machine = {"cpus": os.cpu_count(), "platform": platform.platform(), "python": sys.version.split()[0],
               "load_average_after": [round(x, 1) for x in os.getloadavg()]}
    print(f"command: {command}")
    print(f"machine: {machine['cpus']} cpus, {machine['platform']}; load average after {machine['load_average_after']}")
    print(f"{'server':<18} {'SimilarTracks p50':>18} {'floor p50':>10} {'p50/floor':>10} {'CPU/call':>9}   "
          f"(medians of {args.rounds} rotated rounds of {args.requests} requests, 1 client; us)")
    for name in names:
        s = summary[name]
        print(f"{name:<18} {s['similar_p50_us']:>18.0f} {s['floor_p50_us']:>10.0f} {s['ratio']:>10.2f} "
              f"{s['cpu_us_per_call']:>9.0f}")
    p = summary["paired_with_over_without"]
    print(f"with / without, median of paired rounds: p50/floor {p['ratio']:.2f} (quartiles "
          f"{summary['paired_ratio_quartiles'][0]:.2f}-{summary['paired_ratio_quartiles'][1]:.2f}), "
          f"p50 {p['similar_p50_us']:.2f}, CPU per call {p['cpu_us_per_call']:.2f}  (1.00 = no cost)")
    print(f"over HTTP/JSON: SimilarTracks p50 {summary['http_json_p50_us']:.0f} us vs gRPC "
          f"{summary['grpc_p50_us_same_server']:.0f} us on the same server ({args.requests} requests each)")
    if args.json:
        args.json.write_text(json.dumps({"command": command, "machine": machine, "summary": summary, "rounds": rows},
                                        indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
