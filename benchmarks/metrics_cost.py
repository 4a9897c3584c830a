"""What operating costs: SimilarTracks latency with metrics on and off, side by side in one run.

Starts one `musicrec serve` per variant on the same bundle, all at once, and measures SimilarTracks by
track id (k=10, seeds drawn through the API) against each in turn, round after round, rotating the
order every round so that drift on a shared machine hits every variant alike:

    bare      --slow-ms 0          no interceptor at all (the server before metrics and logs)
    default   (no flag)            the slow-request log only: the interceptor, no metric updates
    metrics   --metrics-port PORT  metrics on (what the container runs)

Each round sends the same number of requests to each variant, so besides latency it reports the
server's CPU time per call (the sum over its threads, from /proc/PID/task/*/schedstat), which other
load on a shared machine disturbs far less than wall-clock latency does.

It first times the interceptor alone in this process (thread CPU time per call of a trivial handler,
bare and wrapped, best of 7 repeats): the cost itself, free of gRPC and of the machine's other load.

Reported per variant: the median over rounds of each round's p50 and of its CPU per call (and pooled
p90/p99); and per round the paired ratios, metrics / default and metrics / bare, with their median.
Target (issue 12): metrics p50 within 5% of metrics off. Afterwards the metrics server is scraped,
to show it counted every call.

    python benchmarks/metrics_cost.py BUNDLE [--rounds 20] [--requests 2000] [--concurrency 1] [--json out.json]
"""

from __future__ import annotations

import argparse
import json
import multiprocessing as mp
import os
import platform
import statistics
import sys
import time
import urllib.request
from collections import Counter
from contextlib import ExitStack
from pathlib import Path
from typing import Any

from _timing import cpu_seconds, free_port, paired, rotated  # benchmarks/_timing.py
from prometheus_client.parser import text_string_to_metric_families

from server._bench import Load, PhaseResult, Workload, _init_worker, discover, run_phase
from server._spawn import start_server_process

VARIANTS: dict[str, tuple[str, ...]] = {"bare": ("--slow-ms", "0"), "default": (), "metrics": ("--metrics-port",)}
TARGET = 1.05


def interceptor_cpu_us(calls: int = 50_000, repeats: int = 7) -> dict[str, float]:
    """Thread CPU microseconds per call added by CallObserver around a trivial handler (best of ``repeats``)."""
    import grpc

    from server._metrics import ServerMetrics
    from server._observe import CallObserver

    class Context:  # what the observer asks of a finished call
        def code(self) -> None:
            return None

        def time_remaining(self) -> float:
            return 10.0

        def details(self) -> None:
            return None

    class Details:
        method = "/musicrec.v1.Recommender/SimilarTracks"
        invocation_metadata = ()

    handler = grpc.unary_unary_rpc_method_handler(lambda request, context: b"")
    context, details = Context(), Details()

    def best(call: Any) -> float:
        times = []
        for _ in range(repeats):
            t0 = time.thread_time()
            for _ in range(calls):
                call()
            times.append((time.thread_time() - t0) / calls * 1e6)
        return min(times)

    bare = best(lambda: (lambda d: handler)(details).unary_unary(None, context))
    out = {"bare_us": round(bare, 3)}
    for label, on in (("observer_us", False), ("observer_with_metrics_us", True)):
        observer = CallObserver(ServerMetrics(None), metrics_on=on, slow_seconds=1.0)
        out[label] = round(best(lambda o=observer: o.intercept_service(lambda d: handler, details)
                                .unary_unary(None, context)) - bare, 3)
    return out


def scraped_count(port: int) -> float:
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=10) as response:
        text = response.read().decode()
    for family in text_string_to_metric_families(text):
        for s in family.samples:
            if s.name == "musicrec_rpc_requests_total" and s.labels.get("grpc_method") == "SimilarTracks" \
                    and s.labels.get("grpc_code") == "OK":
                return s.value
    return 0.0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("bundle", type=Path)
    parser.add_argument("--rounds", type=int, default=20)
    parser.add_argument("--requests", type=int, default=2000, help="requests per variant and round")
    parser.add_argument("--warmup", type=float, default=2.0, help="seconds of uncounted load per variant, once")
    parser.add_argument("--concurrency", type=int, default=1, help="closed-loop clients (default 1: sequential)")
    parser.add_argument("--processes", type=int, default=0, help="client processes (default 1, or 2 from 8 clients)")
    parser.add_argument("--workers", type=int, default=4, help="server handler threads")
    parser.add_argument("--json", type=Path)
    args = parser.parse_args(argv)
    processes = args.processes or (2 if args.concurrency >= 8 else 1)
    metrics_port = free_port()
    micro = interceptor_cpu_us()
    print(f"interceptor alone, CPU per call: +{micro['observer_us']:.2f} us (slow log only), "
          f"+{micro['observer_with_metrics_us']:.2f} us (metrics on)", file=sys.stderr)

    with ExitStack() as stack:
        ports: dict[str, int] = {}
        pids: dict[str, int] = {}
        for name, flags in VARIANTS.items():
            extra = (*flags, str(metrics_port)) if name == "metrics" else flags
            proc, ports[name] = stack.enter_context(start_server_process(args.bundle, "--workers", str(args.workers),
                                                                         *extra))
            pids[name] = proc.pid
            print(f"started {name}: 127.0.0.1:{ports[name]} {' '.join(extra)}", file=sys.stderr)
        ids, feats, moods = discover(f"127.0.0.1:{ports['bare']}")
        load = Load(concurrency=args.concurrency, warmup=0.0, duration=None, requests=args.requests)
        names = list(VARIANTS)
        rounds: list[dict[str, PhaseResult]] = []
        cpu_us: dict[str, list[float]] = {n: [] for n in names}
        ctx = mp.get_context("spawn")
        counter = ctx.Value("q", 0)
        _init_worker(counter)
        pool = stack.enter_context(ctx.Pool(processes, initializer=_init_worker, initargs=(counter,))) \
            if processes > 1 else None
        warm = Load(concurrency=args.concurrency, warmup=args.warmup, duration=0.1)
        for name in names:  # once: connections, caches, the first calls of each method
            run_phase(f"127.0.0.1:{ports[name]}", Workload(mix=(("similar", 1.0),), track_ids=ids, feature_rows=feats,
                                                           mood_ids=moods, seed=10_000), warm, processes=processes,
                      pool=pool, counter=counter)
        for r in range(args.rounds):
            order = rotated(names, r)
            results: dict[str, PhaseResult] = {}
            for name in order:
                workload = Workload(mix=(("similar", 1.0),), track_ids=ids, feature_rows=feats, mood_ids=moods,
                                    seed=r)
                before = cpu_seconds(pids[name])
                results[name] = run_phase(f"127.0.0.1:{ports[name]}", workload, load, processes=processes,
                                          pool=pool, counter=counter)["similar"]
                cpu_us[name].append((cpu_seconds(pids[name]) - before) / args.requests * 1e6)
            rounds.append(results)
            p50 = {n: results[n].summary()["p50_us"] for n in names}
            print(f"round {r + 1}/{args.rounds} ({' '.join(order)}): " +
                  "  ".join(f"{n} p50 {p50[n]:.0f} us, cpu {cpu_us[n][-1]:.0f} us" for n in names) +
                  f"  metrics/default {p50['metrics'] / p50['default']:.3f}", file=sys.stderr, flush=True)
        counted = scraped_count(metrics_port)

    report: dict[str, Any] = {
        "command": "python benchmarks/metrics_cost.py " + " ".join(sys.argv[1:] if argv is None else argv),
        "machine": {"cpus": os.cpu_count(), "platform": platform.platform(), "python": sys.version.split()[0]},
        "date": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "rounds": args.rounds, "requests_per_round": args.requests, "concurrency": args.concurrency,
        "processes": processes,
        "variants": {n: " ".join(VARIANTS[n]) for n in names}, "interceptor_cpu_per_call": micro,
        "results": {}, "ratios": {},
    }
    for name in names:
        pooled = PhaseResult(rpc="similar", concurrency=args.concurrency, processes=processes,
                             latencies_ms=[x for rd in rounds for x in rd[name].latencies_ms],
                             errors=sum((rd[name].errors for rd in rounds), Counter()),
                             seconds=sum(rd[name].seconds for rd in rounds)).summary()
        round_p50 = [rd[name].summary()["p50_us"] for rd in rounds]
        report["results"][name] = {"median_round_p50_us": statistics.median(round_p50), "round_p50_us": round_p50,
                                   "p90_us": pooled["p90_us"], "p99_us": pooled["p99_us"],
                                   "median_round_cpu_us_per_call": round(statistics.median(cpu_us[name]), 1),
                                   "round_cpu_us_per_call": [round(x, 1) for x in cpu_us[name]],
                                   "requests": pooled["requests"], "errors": pooled["errors"]}
    for a, b in (("metrics", "default"), ("metrics", "bare"), ("default", "bare")):
        p50 = {n: [rd[n].summary()["p50_us"] for rd in rounds] for n in (a, b)}
        report["ratios"][f"p50 {a}/{b}"] = paired(p50[a], p50[b])
        report["ratios"][f"cpu {a}/{b}"] = paired(cpu_us[a], cpu_us[b])
    metrics_requests = report["results"]["metrics"]["requests"]
    report["metrics_scraped_similar_ok"] = counted

    print(f"SimilarTracks by id, k=10, {args.concurrency} client(s) in {processes} process(es); {args.rounds} rounds "
          f"x {args.requests} requests per variant, order rotated; {os.cpu_count()} cpus, {platform.platform()}")
    print(f"{'variant':<8} {'p50 us':>8} {'p90':>8} {'p99':>8} {'server cpu us/call':>19} {'errors':>7}  flags")
    for name in names:
        s = report["results"][name]
        print(f"{name:<8} {s['median_round_p50_us']:>8.0f} {s['p90_us']:>8.0f} {s['p99_us']:>8.0f} "
              f"{s['median_round_cpu_us_per_call']:>19.1f} {sum(s['errors'].values()):>7}  {report['variants'][name]}")
    print("(p50 and cpu: median over rounds; p90/p99 pool every round; cpu = the server's threads, per call)")
    for key, r in report["ratios"].items():
        print(f"{key}: median of per-round ratios {r['median']:.3f} (min {r['min']:.3f}, max {r['max']:.3f})")
    verdict = report["ratios"]["p50 metrics/default"]["median"]
    print(f"metrics on vs off, p50: {verdict:.3f}  (target <= {TARGET}); server CPU per call: "
          f"{report['ratios']['cpu metrics/default']['median']:.3f}")
    print(f"the interceptor alone (in-process, thread CPU per call, best of 7): +{micro['observer_us']:.2f} us "
          f"slow log only, +{micro['observer_with_metrics_us']:.2f} us with metrics")
    print(f"the metrics server counted {counted:.0f} SimilarTracks OK (measured {metrics_requests}, plus warm-up)")
    print(f"command: {report['command']}")
    if args.json:
        args.json.write_text(json.dumps(report, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
