"""What one request costs the server's Python, before and after a change: two git revisions side by side.

Each revision is exported (``git archive``) to a temporary directory and runs in its own worker process
(``PYTHONPATH`` = that tree) over the same bundle. A worker calls the servicer in-process, as the gRPC
handler does: request bytes -> ``FromString`` -> ``RecommenderServicer`` method (a stand-in context) ->
response bytes, timing each call. The driver alternates the two workers kind by kind and round by round
(the order flipped each round), so both see the same machine load; it reports medians per kind, the
difference in microseconds and the ratio, the means (a server's throughput follows the mean, which the
rare slow request moves: a by-id seed the neighbour table does not hold is searched live), and whether
the two revisions' answers are identical (every response compared, its ``took_ms`` cleared). Both
workers are pinned to one core, so a busier core elsewhere on the machine cannot favour one of them.
The health check's in-process cost is measured the same way as a reference.

Kinds: SimilarTracks by id (k 10), SimilarTracks by raw features (k 10), ClassifyGenre by raw features
(top 5), BatchSimilarTracks of 16 raw-feature queries (k 10; one request per 16 seeds). Seeds are
--queries catalog tracks drawn with seed 0; a feature seed sends the track's own raw values as if new.
One warm-up pass per kind fills the caches a running server has warm.

    python benchmarks/servicer_cost.py BUNDLE --before REV --after REV [--rounds 7] [--queries 400]
    python benchmarks/servicer_cost.py BUNDLE --before REV --after REV --after-bundle BUNDLE2

Both revisions must read the bundle's format version. ``--after-bundle`` gives the after worker another
bundle (the same catalog built by the after revision), for a change to what a build stores.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

KINDS = ("health", "similar-id", "similar-features", "classify-features", "batch-features")


# -- worker: runs inside one revision's tree ------------------------------------------------------
def _worker(bundle: str, queries: int, cpu: int) -> None:
    if cpu >= 0:  # both workers on one core: they take turns, so neither gets the quieter core
        os.sched_setaffinity(0, {cpu})
    import numpy as np
    from _timing import ServicerContext  # benchmarks/_timing.py, beside this script
    from grpc_health.v1 import health, health_pb2

    from engine import use_one_search_thread
    from server._generated.musicrec.v1 import recommender_pb2 as pb
    from server._holder import BundleHolder
    from server._service import RecommenderServicer

    use_one_search_thread()
    holder = BundleHolder(bundle)
    holder.load()
    rec = holder.require()
    if rec.bundle.classifier is not None:
        rec.bundle.classifier.booster_.set_param({"nthread": 1})
    svc = RecommenderServicer(holder)
    checker = health.HealthServicer()

    ctx = ServicerContext()
    rows = np.random.default_rng(0).choice(rec.n, size=min(queries, rec.n), replace=False)
    features = rec.bundle.tracks.features

    def values(r: int) -> pb.FeatureValues:
        return pb.FeatureValues(values={n: float(v) for n, v in zip(rec.feature_names, features[r], strict=True)})

    requests = {
        "health": (health_pb2.HealthCheckRequest, checker.Check,
                   [health_pb2.HealthCheckRequest().SerializeToString()] * len(rows)),
        "similar-id": (pb.SimilarTracksRequest, svc.SimilarTracks, [pb.SimilarTracksRequest(
            seeds=[pb.Seed(track_id=rec.ids[r])], k=10).SerializeToString() for r in rows]),
        "similar-features": (pb.SimilarTracksRequest, svc.SimilarTracks, [pb.SimilarTracksRequest(
            seeds=[pb.Seed(features=values(r))], k=10).SerializeToString() for r in rows]),
        "classify-features": (pb.ClassifyGenreRequest, svc.ClassifyGenre, [pb.ClassifyGenreRequest(
            features=values(r)).SerializeToString() for r in rows]),
        "batch-features": (pb.BatchSimilarTracksRequest, svc.BatchSimilarTracks, [pb.BatchSimilarTracksRequest(
            queries=[pb.SimilarTracksRequest(seeds=[pb.Seed(features=values(r))], k=10) for r in rows[i:i + 16]]
        ).SerializeToString() for i in range(0, len(rows) - 15, 16)]),
    }
    response_types = {"health": health_pb2.HealthCheckResponse, "similar-id": pb.SimilarTracksResponse,
                      "similar-features": pb.SimilarTracksResponse, "classify-features": pb.ClassifyGenreResponse,
                      "batch-features": pb.BatchSimilarTracksResponse}

    def run(kind: str) -> tuple[list[float], list[bytes]]:
        parse, method, raws = requests[kind]
        us, out = [], []
        clock = time.perf_counter
        for raw in raws:
            t0 = clock()
            response = method(parse.FromString(raw), ctx)
            data = response if isinstance(response, bytes) else response.SerializeToString()
            us.append((clock() - t0) * 1e6)
            out.append(data)
        return us, out

    def digest(kind: str, out: list[bytes]) -> str:
        h = hashlib.sha256()
        for data in out:
            msg = response_types[kind].FromString(data)
            if hasattr(msg, "took_ms"):
                msg.took_ms = 0.0
            if hasattr(msg, "stats"):
                msg.stats.took_ms = 0.0
            for part in getattr(msg, "responses", ()):  # a batch's answers
                part.stats.took_ms = 0.0
            h.update(msg.SerializeToString(deterministic=True))
        return h.hexdigest()

    for kind in KINDS:  # warm-up: caches a running server has filled
        run(kind)
    print(json.dumps({"ready": True}), flush=True)
    for line in sys.stdin:
        kind = line.strip()
        if not kind:
            break
        us, out = run(kind)
        print(json.dumps({"us": us, "digest": digest(kind, out)}), flush=True)


# -- driver ----------------------------------------------------------------------------------------
def _export(repo: Path, rev: str, into: Path) -> str:
    sha = subprocess.run(["git", "-C", str(repo), "rev-parse", rev], check=True, capture_output=True,
                         text=True).stdout.strip()
    into.mkdir(parents=True)
    archive = subprocess.run(["git", "-C", str(repo), "archive", sha], check=True, capture_output=True).stdout
    subprocess.run(["tar", "-x", "-C", str(into)], input=archive, check=True)
    return sha


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("bundle", type=Path)
    parser.add_argument("--before", help="git revision measured first (e.g. HEAD~1)")
    parser.add_argument("--after", help="git revision compared with it (e.g. HEAD)")
    parser.add_argument("--rounds", type=int, default=7)
    parser.add_argument("--queries", type=int, default=400)
    parser.add_argument("--after-bundle", type=Path, help="the after worker's bundle (default: BUNDLE)")
    parser.add_argument("--kinds", default=",".join(KINDS))
    parser.add_argument("--cpu", type=int, default=(os.cpu_count() or 1) - 1,
                        help="the core both workers are pinned to (-1: not pinned); default the last")
    parser.add_argument("--json", type=Path)
    parser.add_argument("--worker", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.worker:
        _worker(str(args.bundle), args.queries, args.cpu)
        return 0
    if not (args.before and args.after):
        parser.error("--before and --after are required")
    kinds = [k for k in args.kinds.split(",") if k]
    repo = Path(__file__).resolve().parents[1]
    with tempfile.TemporaryDirectory(prefix="servicer-cost-") as tmp:
        workers: dict[str, subprocess.Popen[str]] = {}
        shas: dict[str, str] = {}
        for label, rev in (("before", args.before), ("after", args.after)):
            tree = Path(tmp) / label
            shas[label] = _export(repo, rev, tree)
            env = {**os.environ, "PYTHONPATH": str(tree), "OMP_NUM_THREADS": "1"}
            bundle = args.after_bundle if label == "after" and args.after_bundle else args.bundle
            workers[label] = subprocess.Popen(
                [sys.executable, str(Path(__file__).resolve()), str(bundle.resolve()), "--worker",
                 "--queries", str(args.queries), "--cpu", str(args.cpu)], cwd=tree, env=env, stdin=subprocess.PIPE,
                stdout=subprocess.PIPE, text=True)
        for w in workers.values():
            assert w.stdout is not None
            json.loads(w.stdout.readline())  # ready
        samples: dict[str, dict[str, list[float]]] = {label: {k: [] for k in kinds} for label in workers}
        digests: dict[str, dict[str, set[str]]] = {label: {k: set() for k in kinds} for label in workers}
        for rnd in range(args.rounds):
            for kind in kinds:
                order = ("before", "after") if rnd % 2 == 0 else ("after", "before")
                for label in order:
                    w = workers[label]
                    assert w.stdin is not None and w.stdout is not None
                    w.stdin.write(kind + "\n")
                    w.stdin.flush()
                    reply = json.loads(w.stdout.readline())
                    samples[label][kind] += reply["us"]
                    digests[label][kind].add(reply["digest"])
            print(f"round {rnd + 1}/{args.rounds} done", file=sys.stderr, flush=True)
        for w in workers.values():
            assert w.stdin is not None
            w.stdin.close()
            w.wait()
    report: dict[str, Any] = {"bundle": str(args.bundle), "after_bundle": str(args.after_bundle or args.bundle),
                              "before": shas["before"], "after": shas["after"],
                              "rounds": args.rounds, "queries": args.queries, "machine": platform.platform(),
                              "load_average": os.getloadavg(), "kinds": {}}
    print(f"before {shas['before'][:10]}  after {shas['after'][:10]}  (in-process servicer cost, median us per "
          f"call over {args.rounds} alternating rounds of {args.queries} requests)")
    print(f"{'kind':20s} {'before':>9s} {'after':>9s} {'diff':>9s} {'after/before':>13s} {'mean before':>12s} "
          f"{'mean after':>11s}  answers")
    for kind in kinds:
        b, a = statistics.median(samples["before"][kind]), statistics.median(samples["after"][kind])
        mb, ma = statistics.fmean(samples["before"][kind]), statistics.fmean(samples["after"][kind])
        same = digests["before"][kind] == digests["after"][kind] and len(digests["after"][kind]) == 1
        report["kinds"][kind] = {"before_us": round(b, 1), "after_us": round(a, 1), "diff_us": round(a - b, 1),
                                 "ratio": round(a / b, 3), "mean_before_us": round(mb, 1),
                                 "mean_after_us": round(ma, 1), "identical_answers": same}
        print(f"{kind:20s} {b:9.1f} {a:9.1f} {a - b:+9.1f} {a / b:13.3f} {mb:12.1f} {ma:11.1f}  "
              f"{'identical' if same else 'DIFFER'}")
    print(f"machine: {platform.platform()}, {os.cpu_count()} cpus, load average "
          f"{' '.join(f'{x:.1f}' for x in os.getloadavg())}")
    print(f"command: python benchmarks/servicer_cost.py {args.bundle} --before {args.before} --after {args.after} "
          f"--rounds {args.rounds} --queries {args.queries}"
          + (f" --after-bundle {args.after_bundle}" if args.after_bundle else ""))
    if args.json:
        args.json.write_text(json.dumps(report, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
