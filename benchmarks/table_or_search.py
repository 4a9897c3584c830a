"""What the neighbour table buys "more like this" by id: in-process ``Recommender.similar`` by track id
(k=10, the bundle's defaults), read from the table and searched in the index, per bundle.

Large catalogs are built without a table (``index.neighbours_max_tracks``), so their by-id queries
search; this shows what that costs. One search thread, 400 random catalog tracks per bundle, the
variants alternating over ``--rounds`` rounds; medians and p90 in microseconds. Times compare only
within one run (benchmarks/README.md).

    python benchmarks/table_or_search.py BUNDLE [BUNDLE ...] [--rounds 5] [--queries 400]
"""

from __future__ import annotations

import argparse
import dataclasses
import statistics
import time

import numpy as np

from engine import Recommender, Seed, SimilarQuery, load_bundle, use_one_search_thread


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("bundles", nargs="+")
    ap.add_argument("--rounds", type=int, default=5)
    ap.add_argument("--queries", type=int, default=400)
    args = ap.parse_args()
    use_one_search_thread()
    runs = []
    for path in args.bundles:
        bundle = load_bundle(path)
        picks = np.random.default_rng(0).choice(len(bundle.tracks.ids), min(args.queries, len(bundle.tracks.ids)),
                                                replace=False)
        queries = [SimilarQuery(seeds=[Seed(track_id=str(bundle.tracks.ids[i]))], k=10) for i in picks]
        label = f"{path} ({len(bundle.tracks.ids):,} tracks, {bundle.manifest['metrics']['index']['kind']})"
        if bundle.neighbours is not None:
            runs.append((f"{label}: table", Recommender(bundle), queries))
        runs.append((f"{label}: index search", Recommender(dataclasses.replace(bundle, neighbours=None)), queries))
    times: dict[str, list[float]] = {name: [] for name, _, _ in runs}
    for _ in range(args.rounds):
        for name, rec, queries in runs:
            for q in queries:
                t0 = time.perf_counter()
                rec.similar(q)
                times[name].append((time.perf_counter() - t0) * 1e6)
    for name, us in times.items():
        print(f"{name}: median {statistics.median(us):.0f} us, p90 {np.percentile(us, 90):.0f} us")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
