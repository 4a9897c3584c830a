"""What refusing unknown fields costs a gRPC request: the Recommender's deserializer (server/_register.py) against
protobuf's own ``FromString``, side by side in one run.

Three ways to read the same request bytes, per round in rotated order (``_timing.rotated``), each timed over
``--calls`` calls (best of 3 inside a round):

    parse     cls.FromString(data): what gRPC's generated code does, no check
    checked   the server's decoder: parse, then the message's size before and after dropping its unknown fields
              (the same: there were none)
    walked    parse, then the walk that names an unknown field (``unknown_field``): what the decoder does only when
              the sizes differ (a request with unknown fields)

on two requests: a SimilarTracks by track id (``plain``), and one with a filter, a range, a feature seed and a
second seed (``filtered``). Reported: each way's median microseconds per call over the rounds, and the medians of
the per-round ratios to ``parse``.

    python benchmarks/request_checks.py [--rounds 15] [--calls 20000] [--json out.json]
"""

from __future__ import annotations

import argparse
import statistics
import time
from pathlib import Path

from _timing import paired, report_run, rotated

from server._generated.musicrec.v1 import recommender_pb2 as pb
from server._register import decoder, unknown_field


def requests() -> dict[str, bytes]:
    plain = pb.SimilarTracksRequest(k=10, seeds=[pb.Seed(track_id="LBDGd4yMnLKgRVS8Br5d5J")])
    filtered = pb.SimilarTracksRequest(k=10, seeds=[pb.Seed(track_id="LBDGd4yMnLKgRVS8Br5d5J"), pb.Seed(
        features=pb.FeatureValues(values={"energy": 0.5, "tempo": 120.0}))])
    filtered.filter.include_genres.append("pop")
    filtered.filter.ranges["tempo"].min = 90.0
    return {"plain": plain.SerializeToString(), "filtered": filtered.SerializeToString()}


def per_call_us(fn: object, data: bytes, calls: int) -> float:
    best = float("inf")
    for _ in range(3):
        t0 = time.perf_counter()
        for _ in range(calls):
            fn(data)  # type: ignore[operator]
        best = min(best, (time.perf_counter() - t0) / calls * 1e6)
    return best


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rounds", type=int, default=15)
    parser.add_argument("--calls", type=int, default=20_000)
    parser.add_argument("--json", type=Path)
    args = parser.parse_args()
    parse = pb.SimilarTracksRequest.FromString
    ways = {"parse": parse, "checked": decoder(pb.SimilarTracksRequest),
            "walked": lambda data: unknown_field(parse(data))}
    facts: dict[str, object] = {}
    for name, data in requests().items():
        times: dict[str, list[float]] = {way: [] for way in ways}
        for r in range(args.rounds):
            for way in rotated(list(ways), r):
                times[way].append(per_call_us(ways[way], data, args.calls))
        medians = {way: round(statistics.median(t), 3) for way, t in times.items()}
        ratios = {f"{way}/parse": paired(times[way], times["parse"])["median"] for way in ways if way != "parse"}
        facts[name] = {"bytes": len(data), "median_us": medians, "ratios": ratios}
        print(f"{name} ({len(data)} bytes): " + ", ".join(f"{w} {us:.3f} us" for w, us in medians.items())
              + "; " + ", ".join(f"{k} {v:.2f}x" for k, v in ratios.items()))
    report_run("request_checks.py", None, args.json, facts)


if __name__ == "__main__":
    main()
