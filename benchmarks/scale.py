"""Scale: index build time, memory per track, single-query latency and recall@10, by catalog size.

Synthetic catalogs with the planted genre/artist structure of the synthetic generator (vectorized, so
millions of rows are generated in seconds), run through the real preprocessing (transforms, standardize,
PCA, normalize) and the real index builders. For each size and index type: build seconds (2 threads),
index bytes per track (the serialized index), p50/p99 single-query latency (1 thread, as the server
searches), and recall@10 against exact search on the same queries.

    python benchmarks/scale.py [--sizes 1000000,5000000] [--kinds flat,hnsw,ivf,ivfpq] [--queries 500]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import sys
import time
from pathlib import Path

import faiss
import numpy as np

from engine import FeatureSchema, IndexConfig, Preprocessor, build_index
from engine.evaluation import synthetic_features


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sizes", default="1000000,5000000")
    parser.add_argument("--kinds", default="flat,hnsw,ivf,ivfpq")
    parser.add_argument("--queries", type=int, default=500)
    parser.add_argument("--json", type=Path)
    args = parser.parse_args(argv)
    sizes = [int(s) for s in args.sizes.split(",")]
    kinds = args.kinds.split(",")
    schema = FeatureSchema()
    rows = []
    for n in sizes:
        t0 = time.perf_counter()
        raw, _ = synthetic_features(n, seed=0)
        prep = Preprocessor(feature_names=schema.feature_columns, transforms=schema.transforms).fit(raw)
        vectors = np.ascontiguousarray(prep.embed(raw))
        del raw
        prep_s = time.perf_counter() - t0
        rng = np.random.default_rng(1)
        q = vectors[rng.choice(n, size=args.queries, replace=False)]
        truth = None
        print(f"n={n:,}: features + preprocessing {prep_s:.1f} s, {vectors.shape[1]} dims", file=sys.stderr,
              flush=True)
        for kind in kinds:
            faiss.omp_set_num_threads(2)
            t0 = time.perf_counter()
            index = build_index(vectors, IndexConfig(kind=kind))
            build_s = time.perf_counter() - t0
            size = faiss.serialize_index(index).nbytes
            faiss.omp_set_num_threads(1)
            lat, found = [], []
            for row in q:
                t1 = time.perf_counter()
                _, ids = index.search(row[None, :], 10)
                lat.append(time.perf_counter() - t1)
                found.append(ids[0])
            if kind == "flat":
                truth = np.array(found)
            recall = (float(np.mean([len(set(f) & set(t)) / 10 for f, t in zip(found, truth, strict=True)]))
                      if truth is not None else float("nan"))
            row = {"tracks": n, "kind": kind, "build_seconds": round(build_s, 1),
                   "index_bytes_per_track": round(size / n, 1), "p50_ms": round(float(np.median(lat)) * 1e3, 3),
                   "p99_ms": round(float(np.percentile(lat, 99)) * 1e3, 3), "recall_at_10": round(recall, 4),
                   "peak_rss_mib": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024)}
            rows.append(row)
            print(json.dumps(row), file=sys.stderr, flush=True)
            del index
    print(f"\npython benchmarks/scale.py --sizes {args.sizes} --kinds {args.kinds} --queries {args.queries}")
    print(f"{time.strftime('%Y-%m-%d')}, {os.cpu_count()} cpus, {platform.platform()}\n")
    print(f"{'tracks':>10} {'index':<6} {'build s':>8} {'bytes/track':>12} {'p50 ms':>8} {'p99 ms':>8} "
          f"{'recall@10':>10}")
    for r in rows:
        print(f"{r['tracks']:>10,} {r['kind']:<6} {r['build_seconds']:>8.1f} {r['index_bytes_per_track']:>12.1f} "
              f"{r['p50_ms']:>8.3f} {r['p99_ms']:>8.3f} {r['recall_at_10']:>10.4f}")
    if args.json:
        args.json.write_text(json.dumps({"command": "python benchmarks/scale.py " + " ".join(sys.argv[1:]),
                                         "date": time.strftime("%Y-%m-%d"), "cpus": os.cpu_count(),
                                         "rows": rows}, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
