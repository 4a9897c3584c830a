"""New-track queries ranked together (engine/_similar_many.py) against one at a time, in-process.

Seeds are catalog tracks' own raw feature values sent as if new (k 10, the bundle's defaults). For each
batch size B, the same --queries queries are answered by ``Recommender.similar_many`` in groups of B and
by ``Recommender.similar`` one by one, the two alternating round by round on one thread, FAISS on one
thread as the server runs it; every answer of the two paths is compared (rows, scores, counts). Medians
of the per-query cost over rounds.

``--threads``: the other question, what the same one-at-a-time queries cost when 1, 4 or 16 threads call
the engine at once, as a gRPC server's handler threads do, with and without a lock that lets one engine
call run at a time (queries per second and process CPU per query).

    python benchmarks/similar_many.py BUNDLE [--queries 1024] [--rounds 3] [--sizes 1,2,4,8,16] [--threads]
        [--compiled] [--min-together N]

``--compiled`` turns on the compiled kernels (engine/_compiled.py) as the server does. ``--min-together N``
ranks groups of N or more together whatever the engine's own threshold (``min_together``), so that the
batched path's cost is measured at every size.
"""

from __future__ import annotations

import argparse
import json
import platform
import statistics
import sys
import threading
import time
from pathlib import Path

import numpy as np

from engine import (
    Recommender,
    Seed,
    SimilarQuery,
    _similar_many,
    compiled_kernels_status,
    load_bundle,
    use_compiled_kernels,
    use_one_search_thread,
)


def same(a: object, b: object) -> bool:
    return (np.array_equal(a.rows, b.rows) and np.array_equal(a.scores, b.scores)  # type: ignore[attr-defined]
            and (a.examined, a.filtered) == (b.examined, b.filtered))  # type: ignore[attr-defined]


def sizes(rec: Recommender, queries: list[SimilarQuery], batch_sizes: list[int], rounds: int) -> dict[str, object]:
    out: dict[str, object] = {}
    mismatches = 0
    for b in batch_sizes:
        together, alone = [], []
        for _ in range(rounds):
            t = time.perf_counter()
            many = [r for s in range(0, len(queries), b) for r in rec.similar_many(queries[s:s + b])]
            together.append((time.perf_counter() - t) / len(queries) * 1e6)
            t = time.perf_counter()
            one = [rec.similar(q) for q in queries]
            alone.append((time.perf_counter() - t) / len(queries) * 1e6)
            mismatches += sum(not same(x, y) for x, y in zip(many, one, strict=True))
        out[str(b)] = {"together_us": statistics.median(together), "one_at_a_time_us": statistics.median(alone),
                       "ratio": statistics.median(together) / statistics.median(alone)}
        print(f"B={b:3d}: together {statistics.median(together):7.1f} us/query, one at a time "
              f"{statistics.median(alone):7.1f} us/query, ratio {out[str(b)]['ratio']:.2f}", flush=True)  # type: ignore[index]
    out["answers_different"] = mismatches
    print(f"answers different: {mismatches}")
    return out


def threads(rec: Recommender, queries: list[SimilarQuery], seconds: float, rounds: int) -> dict[str, object]:
    lock = threading.Lock()

    def run(n: int, locked: bool) -> tuple[float, float]:
        counts = [0] * n
        stop = time.perf_counter() + seconds

        def work(i: int) -> None:
            j = i
            while time.perf_counter() < stop:
                if locked:
                    with lock:
                        rec.similar(queries[j % len(queries)])
                else:
                    rec.similar(queries[j % len(queries)])
                j += n
                counts[i] += 1

        workers = [threading.Thread(target=work, args=(i,)) for i in range(n)]
        cpu = time.process_time()
        for w in workers:
            w.start()
        for w in workers:
            w.join()
        done = sum(counts)
        return done / seconds, (time.process_time() - cpu) / done * 1e6

    out: dict[str, object] = {}
    for n, locked in ((1, False), (4, False), (16, False), (4, True), (16, True)):
        runs = [run(n, locked) for _ in range(rounds)]
        label = f"{n} threads" + (", one engine call at a time" if locked else "")
        qps, cpu = statistics.median(r[0] for r in runs), statistics.median(r[1] for r in runs)
        out[label] = {"queries_per_s": qps, "cpu_us_per_query": cpu}
        print(f"{label:40s} {qps:7.0f} queries/s  {cpu:7.0f} us CPU per query", flush=True)
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("bundle", type=Path)
    parser.add_argument("--queries", type=int, default=1024)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--sizes", default="1,2,4,8,16")
    parser.add_argument("--threads", action="store_true", help="also the engine called from several threads")
    parser.add_argument("--seconds", type=float, default=3.0, help="per --threads run")
    parser.add_argument("--compiled", action="store_true", help="the compiled kernels on, as in the server")
    parser.add_argument("--min-together", type=int, help="rank groups of this many or more together")
    parser.add_argument("--json", type=Path)
    args = parser.parse_args(argv)
    use_one_search_thread()
    if args.compiled and not use_compiled_kernels():
        parser.error(f"--compiled: the kernels are {compiled_kernels_status()}")
    if args.min_together is not None:
        _similar_many.MIN_TOGETHER = _similar_many.MIN_TOGETHER_COMPILED = args.min_together
    rec = Recommender(load_bundle(args.bundle))
    rows = np.random.default_rng(1).choice(rec.n, size=min(args.queries, rec.n), replace=False)
    features = rec.bundle.tracks.features
    queries = [SimilarQuery(seeds=[Seed(features=dict(zip(rec.feature_names, features[r].tolist(), strict=True)))],
                            k=10) for r in rows]
    for q in queries[:64]:  # warm-up
        rec.similar(q)
    report: dict[str, object] = {"sizes": sizes(rec, queries, [int(b) for b in args.sizes.split(",")], args.rounds)}
    if args.threads:
        report["threads"] = threads(rec, queries, args.seconds, args.rounds)
    report["compiled_kernels"] = compiled_kernels_status()
    report["command"] = "python benchmarks/similar_many.py " + " ".join(sys.argv[1:] if argv is None else argv)
    report["machine"] = platform.platform()
    if args.json:
        args.json.write_text(json.dumps(report, indent=1))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
