"""Where a served request's CPU goes: the server process's CPU per call against the servicer's own
cost in-process, warm and with the CPU caches flushed between calls.

The new-track path's goals are ratios to the health check's round trip and throughput, and the
in-process servicer (``servicer_cost.py``) costs a small part of them; this says how much CPU one call
really takes inside ``musicrec serve`` (every thread of the process, from /proc, one client, calls one
after another), and whether the gap to the in-process figure is the machine's caches: the same
servicer called in-process in a tight loop (warm), then with a 64 MiB buffer read between calls
(what a busy server's other work does to the caches, exaggerated), and every 4 and 16 calls (what
running the calls that wait together back to back would keep warm). Kinds: the health check,
SimilarTracks by id, SimilarTracks and ClassifyGenre by raw features (a catalog track's values, as if
new). Seeds drawn with seed 0; CPU in microseconds per call.

    python benchmarks/server_cpu.py BUNDLE [--requests 2000] [--json out.json]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import re
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import grpc
import numpy as np
from _timing import ServicerContext, cpu_seconds  # benchmarks/_timing.py
from grpc_health.v1 import health_pb2, health_pb2_grpc

from server._generated.musicrec.v1 import recommender_pb2 as pb
from server._generated.musicrec.v1 import recommender_pb2_grpc as pb_grpc

KINDS = ("health", "similar-id", "similar-features", "classify-features")


def requests(bundle: Path, n: int) -> tuple[dict[str, list[Any]], Any]:
    from server._holder import BundleHolder

    holder = BundleHolder(bundle)
    holder.load()
    rec = holder.require()
    rows = np.random.default_rng(0).choice(rec.n, size=min(n, rec.n), replace=False)
    features = rec.bundle.tracks.features

    def values(r: int) -> pb.FeatureValues:
        return pb.FeatureValues(values={k: float(v) for k, v in zip(rec.feature_names, features[r], strict=True)})

    return {
        "health": [health_pb2.HealthCheckRequest()] * len(rows),
        "similar-id": [pb.SimilarTracksRequest(seeds=[pb.Seed(track_id=rec.ids[r])], k=10) for r in rows],
        "similar-features": [pb.SimilarTracksRequest(seeds=[pb.Seed(features=values(r))], k=10) for r in rows],
        "classify-features": [pb.ClassifyGenreRequest(features=values(r), top_k=5) for r in rows],
    }, holder


def served(bundle: Path, reqs: dict[str, list[Any]]) -> dict[str, float]:
    """Server CPU (every thread) per call, one client calling sequentially, after a warm-up pass."""
    cmd = [str(Path(sys.executable).with_name("musicrec")), "serve", "--bundle", str(bundle), "--port", "0"]
    out: dict[str, float] = {}
    with subprocess.Popen(cmd, stderr=subprocess.PIPE, text=True) as proc:
        try:
            assert proc.stderr is not None
            while not (m := re.search(r"serving musicrec.v1.Recommender on [\d.]+:(\d+)", proc.stderr.readline())):
                if proc.poll() is not None:
                    raise RuntimeError("musicrec serve exited before serving")
            with grpc.insecure_channel(f"127.0.0.1:{m.group(1)}") as channel:
                stub, health = pb_grpc.RecommenderStub(channel), health_pb2_grpc.HealthStub(channel)
                call = {"health": health.Check, "similar-id": stub.SimilarTracks,
                        "similar-features": stub.SimilarTracks, "classify-features": stub.ClassifyGenre}
                for kind in KINDS:
                    for r in reqs[kind][:200]:
                        call[kind](r)
                    before = cpu_seconds(proc.pid)
                    for r in reqs[kind]:
                        call[kind](r)
                    out[kind] = (cpu_seconds(proc.pid) - before) / len(reqs[kind]) * 1e6
        finally:
            proc.terminate()
            proc.wait(timeout=30)
    return out


def in_process(holder: Any, reqs: dict[str, list[Any]], flush_every: int) -> dict[str, float]:
    """The servicer's CPU per call in this process (request bytes -> response bytes), one thread; the
    caches flushed before every ``flush_every``-th call (0: never): calls in groups, as a server that
    handled the requests waiting together one after another would run them."""
    from grpc_health.v1 import health

    from engine import use_one_search_thread
    from server._service import RecommenderServicer

    use_one_search_thread()
    svc, checker = RecommenderServicer(holder), health.HealthServicer()

    ctx = ServicerContext()
    method = {"health": checker.Check, "similar-id": svc.SimilarTracks, "similar-features": svc.SimilarTracks,
              "classify-features": svc.ClassifyGenre}
    junk = np.ones(64 * 1024 * 1024 // 8)
    out = {}
    for kind in KINDS:
        raws = [r.SerializeToString() for r in reqs[kind]]
        parse = type(reqs[kind][0])
        for raw in raws[:200]:
            method[kind](parse.FromString(raw), ctx)
        cpu = 0.0
        for i, raw in enumerate(raws):
            if flush_every and i % flush_every == 0:
                junk.sum()
            t0 = time.thread_time()
            response = method[kind](parse.FromString(raw), ctx)
            if not isinstance(response, bytes):
                response.SerializeToString()
            cpu += time.thread_time() - t0
        out[kind] = cpu / len(raws) * 1e6
    return out


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("bundle", type=Path)
    ap.add_argument("--requests", type=int, default=2000)
    ap.add_argument("--groups", type=lambda v: [int(g) for g in v.split(",") if g], default=[4, 16],
                    help="also flush the caches only every G calls, for each G (default 4,16)")
    ap.add_argument("--json", dest="json_out", type=Path)
    args = ap.parse_args()
    reqs, holder = requests(args.bundle, args.requests)
    rows = {"served": served(args.bundle, reqs), "in-process, warm": in_process(holder, reqs, 0),
            "in-process, caches flushed": in_process(holder, reqs, 1)}
    for group in args.groups:
        rows[f"flushed every {group} calls"] = in_process(holder, reqs, group)
    print(f"{'CPU us per call':28s}" + "".join(f"{k:>20s}" for k in KINDS))
    for label, row in rows.items():
        print(f"{label:28s}" + "".join(f"{row[k]:20.0f}" for k in KINDS))
    result = {"cpu_us_per_call": rows, "requests": args.requests,
              "machine": {"cpus": os.cpu_count(), "platform": platform.platform(), "load_average": os.getloadavg()},
              "command": "python benchmarks/server_cpu.py " + " ".join(sys.argv[1:])}
    print(f"command: {result['command']}\nmachine: {result['machine']}")
    if args.json_out:
        args.json_out.write_text(json.dumps(result, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
