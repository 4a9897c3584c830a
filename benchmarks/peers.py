"""Peer latency: musicrec vs the embedded vector databases a Python team would reach for instead.

The same PCA vectors (from one bundle) go into Milvus Lite (FLAT index, COSINE) and qdrant-client's
local mode (in memory, COSINE); the same query vectors (k=10, exact) go to each and to `musicrec serve`
(SimilarTracks with a vector seed; also by track id, its common call). Each system is measured
sequentially and with concurrent client threads in this process, one after the other, on this machine.
The peers stay out of musicrec's runtime dependencies: `pip install -e '.[peers]'`.

    python benchmarks/peers.py BUNDLE [--queries 300] [--duration 10] [--concurrency 16] [--json out.json]
"""

from __future__ import annotations

import argparse
import concurrent.futures
import json
import os
import platform
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import grpc
import numpy as np

from engine import load_bundle
from server._generated.musicrec.v1 import recommender_pb2 as pb
from server._generated.musicrec.v1 import recommender_pb2_grpc as pb_grpc
from server._spawn import start_server_process

K = 10


def measure(name: str, query: Callable[[int], Any], n_queries: int, duration: float,
            concurrency: int) -> dict[str, Any]:
    """Sequential latency over every query once, then closed-loop throughput with client threads."""
    for i in range(min(20, n_queries)):  # warm-up
        query(i)
    seq = []
    for i in range(n_queries):
        t0 = time.perf_counter()
        query(i)
        seq.append(time.perf_counter() - t0)
    lat: list[float] = []
    lock = threading.Lock()
    stop = time.perf_counter() + duration

    def client(worker: int) -> None:
        i, mine = worker, []
        while time.perf_counter() < stop:
            t0 = time.perf_counter()
            query(i % n_queries)
            mine.append(time.perf_counter() - t0)
            i += concurrency
        with lock:
            lat.extend(mine)

    t0 = time.perf_counter()
    with concurrent.futures.ThreadPoolExecutor(concurrency) as pool:
        list(pool.map(client, range(concurrency)))
    elapsed = time.perf_counter() - t0
    out = {
        "sequential_p50_ms": round(float(np.median(seq)) * 1e3, 3),
        "sequential_p99_ms": round(float(np.percentile(seq, 99)) * 1e3, 3),
        f"concurrent{concurrency}_p50_ms": round(float(np.median(lat)) * 1e3, 3),
        f"concurrent{concurrency}_p99_ms": round(float(np.percentile(lat, 99)) * 1e3, 3),
        f"concurrent{concurrency}_rps": round(len(lat) / elapsed, 1),
    }
    print(f"{name:<34} seq p50 {out['sequential_p50_ms']:8.3f} ms  p99 {out['sequential_p99_ms']:8.3f} ms   "
          f"x{concurrency}: {out[f'concurrent{concurrency}_rps']:8.0f} req/s  "
          f"p99 {out[f'concurrent{concurrency}_p99_ms']:8.3f} ms", file=sys.stderr, flush=True)
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("bundle", type=Path)
    parser.add_argument("--queries", type=int, default=300)
    parser.add_argument("--duration", type=float, default=10.0)
    parser.add_argument("--concurrency", type=int, default=16)
    parser.add_argument("--json", type=Path)
    args = parser.parse_args(argv)
    try:
        from pymilvus import DataType, MilvusClient
        from qdrant_client import QdrantClient, models
    except ImportError:
        print("the peers are an optional extra: pip install -e '.[peers]'", file=sys.stderr)
        return 2

    bundle = load_bundle(args.bundle)
    vectors = np.ascontiguousarray(bundle.vectors, dtype=np.float32)
    n, dim = vectors.shape
    rows = np.random.default_rng(0).choice(n, size=args.queries, replace=False)
    queries = vectors[rows]
    exact = bundle.index.search(queries, K)[1]
    results: dict[str, Any] = {}

    def agreement(found: list[list[int]]) -> float:
        return round(float(np.mean([len(set(f) & set(e)) / K for f, e in zip(found, exact.tolist(), strict=True)])), 4)

    with start_server_process(args.bundle) as (_, port), grpc.insecure_channel(f"127.0.0.1:{port}") as channel:
        stub = pb_grpc.RecommenderStub(channel)
        by_vector = [pb.SimilarTracksRequest(seeds=[pb.Seed(vector=pb.Vector(values=q.tolist()))], k=K)
                     for q in queries]
        by_id = [pb.SimilarTracksRequest(seeds=[pb.Seed(track_id=str(bundle.tracks.ids[r]))], k=K) for r in rows]
        results["musicrec (vector seed)"] = measure(
            "musicrec, vector seed", lambda i: stub.SimilarTracks(by_vector[i], timeout=30), args.queries,
            args.duration, args.concurrency)
        results["musicrec (track id)"] = measure(
            "musicrec, track id", lambda i: stub.SimilarTracks(by_id[i], timeout=30), args.queries,
            args.duration, args.concurrency)

    with tempfile.TemporaryDirectory() as tmp:
        t0 = time.perf_counter()
        milvus = MilvusClient(str(Path(tmp) / "milvus.db"))
        schema = MilvusClient.create_schema(auto_id=False)
        schema.add_field("id", DataType.INT64, is_primary=True)
        schema.add_field("v", DataType.FLOAT_VECTOR, dim=dim)
        params = milvus.prepare_index_params()
        params.add_index(field_name="v", index_type="FLAT", metric_type="COSINE")
        milvus.create_collection("tracks", schema=schema, index_params=params)
        for start in range(0, n, 10_000):
            milvus.insert("tracks", [{"id": i, "v": vectors[i].tolist()} for i in range(start, min(n, start + 10_000))])
        milvus.flush("tracks")
        milvus_load = time.perf_counter() - t0

        def milvus_query(i: int) -> list[int]:
            hits = milvus.search("tracks", data=[queries[i].tolist()], limit=K, anns_field="v", output_fields=["id"])
            return [int(h["id"]) for h in hits[0]]

        results["Milvus Lite (FLAT, COSINE)"] = {
            **measure("Milvus Lite", milvus_query, args.queries, args.duration, args.concurrency),
            "load_seconds": round(milvus_load, 1),
            "agreement_with_exact_top10": agreement([milvus_query(i) for i in range(args.queries)]),
        }
        milvus.close()

    t0 = time.perf_counter()
    qdrant = QdrantClient(":memory:")
    qdrant.create_collection("tracks", vectors_config=models.VectorParams(size=dim, distance=models.Distance.COSINE))
    qdrant.upload_collection("tracks", vectors=vectors, ids=list(range(n)))
    qdrant_load = time.perf_counter() - t0

    def qdrant_query(i: int) -> list[int]:
        return [int(p.id) for p in qdrant.query_points("tracks", query=queries[i], limit=K).points]

    results["qdrant-client local (COSINE)"] = {
        **measure("qdrant local", qdrant_query, args.queries, args.duration, args.concurrency),
        "load_seconds": round(qdrant_load, 1),
        "agreement_with_exact_top10": agreement([qdrant_query(i) for i in range(args.queries)]),
    }

    ours = results["musicrec (vector seed)"]["sequential_p50_ms"]
    conc = f"concurrent{args.concurrency}_rps"
    print(f"\npython benchmarks/peers.py {args.bundle} --queries {args.queries} --duration {args.duration} "
          f"--concurrency {args.concurrency}\n{time.strftime('%Y-%m-%d')}, {os.cpu_count()} cpus; {n:,} vectors of "
          f"{dim} dims; k={K}; clients are threads in this process\n")
    print(f"{'system':<30} {'seq p50 ms':>10} {'seq p99 ms':>10} {'x' + str(args.concurrency) + ' req/s':>12} "
          f"{'p50 vs musicrec':>15} {'req/s vs musicrec':>17}")
    for name, r in results.items():
        print(f"{name:<30} {r['sequential_p50_ms']:>10.3f} {r['sequential_p99_ms']:>10.3f} {r[conc]:>12.0f} "
              f"{r['sequential_p50_ms'] / ours:>15.1f}x {r[conc] / results['musicrec (vector seed)'][conc]:>16.3f}x")
    if args.json:
        args.json.write_text(json.dumps({
            "command": "python benchmarks/peers.py " + " ".join(sys.argv[1:]), "date": time.strftime("%Y-%m-%d"),
            "machine": {"cpus": os.cpu_count(), "platform": platform.platform()}, "vectors": n, "dim": dim, "k": K,
            "results": results}, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
