"""Candidate sources side by side on the same vectors: FAISS (flat, in-process), Qdrant local mode
(qdrant-client's pure-Python engine) and Qdrant Edge (qdrant-edge-py: the Rust engine in-process,
one shard), each with the filter pushed down where it can take it.

Per source and filter: the median time of one first fetch (``nearest(vector, 264 + exclusions)``,
what a similar-track query asks its source first) and of a whole ``Recommender.similar`` (k=10,
the neighbour table off so every query searches), over the same query tracks, one at a time, one
thread. Recall@10 of each answer against FAISS flat is printed beside it.

    .venv/bin/python benchmarks/backends.py BUNDLE --queries 50
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import platform
import statistics
import sys
import tempfile
import time
import warnings
from pathlib import Path
from typing import Any

import numpy as np
from _timing import each_us  # benchmarks/_timing.py

from engine import Recommender, Seed, SimilarQuery, TrackFilter, load_bundle, use_one_search_thread

FILTERS: dict[str, TrackFilter] = {
    "none": TrackFilter(),
    "genre": TrackFilter(include_genres=["__first__"]),
    "range+explicit": TrackFilter(ranges={"tempo": (90.0, 140.0)}, explicit=False),
}


def median_ms(fn: Any, items: list[Any]) -> tuple[float, list[Any]]:
    times, out = each_us(fn, items)
    return round(statistics.median(times) / 1e3, 3), out


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("bundle", type=Path)
    ap.add_argument("--queries", type=int, default=50)
    ap.add_argument("--sources", default="faiss-flat,qdrant-local,qdrant-edge",
                    help="comma-separated subset (faiss-flat is always run: it is the reference)")
    ap.add_argument("--json", dest="json_out", type=Path)
    args = ap.parse_args()
    use_one_search_thread()
    bundle = dataclasses.replace(load_bundle(args.bundle), neighbours=None)
    genre = bundle.tracks.genre_names[0]
    filters = {k: dataclasses.replace(f, include_genres=[genre]) if f.include_genres else f for k, f in FILTERS.items()}
    rows = np.random.default_rng(0).choice(len(bundle.vectors), size=args.queries, replace=False).tolist()
    sources: dict[str, Recommender] = {"faiss-flat": Recommender(bundle)}
    setup: dict[str, float] = {}
    tmp = tempfile.mkdtemp(prefix="backends-")
    wanted = set(args.sources.split(","))
    try:
        if "qdrant-local" not in wanted:
            raise ImportError("not asked for")
        from qdrant_client import QdrantClient

        from engine.qdrant import QdrantSource, publish_bundle

        t0 = time.perf_counter()
        client = QdrantClient(":memory:")
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # local mode warns above 20k points
            publish_bundle(bundle, client, alias="bench")
        setup["qdrant-local"] = round(time.perf_counter() - t0, 1)
        sources["qdrant-local"] = Recommender(bundle, source=QdrantSource(client, bundle, alias="bench"))
    except ImportError as exc:
        print(f"qdrant local mode skipped: {exc}", file=sys.stderr)
    try:
        if "qdrant-edge" not in wanted:
            raise ImportError("not asked for")
        from engine.qdrant import EdgeSource

        t0 = time.perf_counter()
        edge = EdgeSource.create(bundle, Path(tmp) / "edge")
        setup["qdrant-edge"] = round(time.perf_counter() - t0, 1)
        sources["qdrant-edge"] = Recommender(bundle, source=edge)  # type: ignore[arg-type]
    except ImportError as exc:
        print(f"qdrant edge skipped: {exc}", file=sys.stderr)
    results: list[dict[str, Any]] = []
    reference: dict[str, list[list[int]]] = {}
    for name, rec in sources.items():
        for r in rows[:3]:  # warm-up, untimed (first calls build caches, page in the index)
            rec.similar(SimilarQuery(seeds=[Seed(track_id=rec.ids[r])], k=10, genre_weight=0.0))
        for fname, f in filters.items():
            queries = [SimilarQuery(seeds=[Seed(track_id=rec.ids[r])], k=10, genre_weight=0.0, filter=f) for r in rows]
            plans = [rec._similar.plan(q, "") for q in queries]
            fetch = rec._similar.block + 64 + 1

            def first_fetch(plan: Any, rec: Recommender = rec, fetch: int = fetch) -> Any:
                src = plan.source
                if getattr(src, "pushes_filters", False):
                    return src.nearest(plan.vector, fetch, plan.row_filter)
                got = src.nearest(plan.vector, fetch)
                return got[plan.row_filter.mask(got, rec.view.song[got])]

            fetch_ms, _ = median_ms(first_fetch, plans)
            query_ms, answers = median_ms(rec.similar, queries)
            got = [a.rows.tolist() for a in answers]
            if name == "faiss-flat":
                reference[fname] = got
            want = reference[fname]
            recall = sum(len(set(a) & set(b)) for a, b in zip(got, want, strict=True)) / max(1, sum(map(len, want)))
            results.append({"source": name, "filter": fname, "first_fetch_ms_p50": fetch_ms,
                            "similar_ms_p50": query_ms, "recall_at_10_vs_faiss": round(recall, 4)})
            print(f"{name:13s} {fname:15s} first fetch {fetch_ms:9.3f} ms   similar {query_ms:9.3f} ms   "
                  f"recall@10 {recall:.3f}", flush=True)
    out = {"bundle": str(args.bundle), "tracks": len(bundle.vectors), "queries": args.queries, "setup_seconds": setup,
           "results": results, "machine": {"cpus": os.cpu_count(), "platform": platform.platform(),
                                            "load_average": os.getloadavg()},
           "command": " ".join(["benchmarks/backends.py", *sys.argv[1:]])}
    if args.json_out:
        args.json_out.write_text(json.dumps(out, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
