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

from engine import Recommender, Seed, SimilarQuery, TrackFilter, load_bundle, use_one_search_thread
from engine._ranking import RowFilter


class EdgeSource:
    """Qdrant Edge (qdrant-edge-py) as a candidate source: the Rust engine, one shard on disk."""

    pushes_filters = True

    def __init__(self, bundle: Any, path: Path) -> None:
        import qdrant_edge as qe

        from engine.qdrant import point_batches
        from engine.qdrant._publish import numeric_key

        self.qe, self.numeric_key = qe, numeric_key
        dim = bundle.vectors.shape[1]
        self.shard = qe.EdgeShard.create(str(path), qe.EdgeConfig(
            vectors=qe.EdgeVectorParams(size=dim, distance=qe.Distance.Cosine)))
        for name, kind in (("genres", qe.PayloadSchemaType.Keyword), ("song", qe.PayloadSchemaType.Integer),
                           ("mood", qe.PayloadSchemaType.Integer), ("explicit", qe.PayloadSchemaType.Integer),
                           ("num.tempo", qe.PayloadSchemaType.Float)):
            self.shard.update(qe.UpdateOperation.create_field_index(name, kind))
        for batch in point_batches(bundle, 2048):
            self.shard.update(qe.UpdateOperation.upsert_points([
                qe.Point(id=i, vector=v, payload=p) for i, v, p in zip(batch.ids, batch.vectors, batch.payloads,
                                                                       strict=True)]))
        self.shard.optimize()
        self.genre_names = bundle.tracks.genre_names

    def _filter(self, f: RowFilter | None) -> Any:
        qe = self.qe
        if f is None:
            return None
        must, must_not = [], []
        if f.exclude_rows.size:
            must_not.append(qe.HasIdCondition(set(f.exclude_rows.tolist())))
        if f.exclude_songs.size:
            must_not.append(qe.FieldCondition("song", match=qe.MatchAny(f.exclude_songs.tolist())))
        if f.include_codes.size:
            must.append(qe.FieldCondition("genres", match=qe.MatchAny([self.genre_names[c] for c in f.include_codes])))
        if f.exclude_codes.size:
            must_not.append(qe.FieldCondition("genres", match=qe.MatchAny(
                [self.genre_names[c] for c in f.exclude_codes])))
        if f.explicit is not None:
            must.append(qe.FieldCondition("explicit", match=qe.MatchValue(int(f.explicit[1]))))
        for name, (_, lo, hi) in zip(f.range_names, f.ranges, strict=False):
            key = self.numeric_key(name)
            if key is not None:
                must.append(qe.FieldCondition(key, range=qe.RangeFloat(
                    gte=None if lo == -np.inf else float(lo), lte=None if hi == np.inf else float(hi))))
        if f.moods is not None:
            must.append(qe.FieldCondition("mood", match=qe.MatchAny(f.moods[1].tolist())))
        return qe.Filter(must=must or None, must_not=must_not or None)

    def nearest(self, vector: np.ndarray, n: int, row_filter: RowFilter | None = None) -> np.ndarray:
        qe = self.qe
        points = self.shard.query(qe.QueryRequest(limit=n, query=qe.Query.Nearest(vector.astype(np.float32).tolist()),
                                                  filter=self._filter(row_filter), with_payload=False))
        return np.fromiter((int(p.id) for p in points), dtype=np.int64, count=len(points))


FILTERS: dict[str, TrackFilter] = {
    "none": TrackFilter(),
    "genre": TrackFilter(include_genres=["__first__"]),
    "range+explicit": TrackFilter(ranges={"tempo": (90.0, 140.0)}, explicit=False),
}


def median_ms(fn: Any, items: list[Any]) -> tuple[float, list[Any]]:
    times, out = [], []
    for item in items:
        t0 = time.perf_counter()
        out.append(fn(item))
        times.append(time.perf_counter() - t0)
    return round(statistics.median(times) * 1e3, 3), out


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("bundle", type=Path)
    ap.add_argument("--queries", type=int, default=50)
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
    try:
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
        print(f"qdrant-client not installed: {exc}", file=sys.stderr)
    try:
        t0 = time.perf_counter()
        edge = EdgeSource(bundle, Path(tmp) / "edge")
        setup["qdrant-edge"] = round(time.perf_counter() - t0, 1)
        sources["qdrant-edge"] = Recommender(bundle, source=edge)  # type: ignore[arg-type]
    except ImportError as exc:
        print(f"qdrant-edge-py not installed: {exc}", file=sys.stderr)
    results: list[dict[str, Any]] = []
    reference: dict[str, list[list[int]]] = {}
    for name, rec in sources.items():
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
