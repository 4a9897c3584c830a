"""What the one pipeline costs a "more like this" query against the fast path it replaced.

In one process, alternating query by query: ``Recommender.similar`` (plan: the same validation as
every query, then the walk over the neighbour table's head) against the table walk the three-path
query layer used for unfiltered single-track queries (a copy of ``_walk_table`` at d45bdfd: no
validation beyond the id, no filter, cap or statistics machinery), over the same table rows.

    python benchmarks/pipeline_cost.py BUNDLE [--queries 2000]
"""

from __future__ import annotations

import argparse
import platform
import statistics
import sys
from pathlib import Path

import numpy as np
from _timing import side_by_side_us  # benchmarks/_timing.py

from engine import Recommender, Seed, SimilarQuery, load_bundle, use_one_search_thread


def old_walk(rec: Recommender, track_id: str, k: int) -> tuple[np.ndarray, np.ndarray]:
    """The removed fast path, as it was (minus its stats object): skip the seed's song and repeated songs."""
    table = rec.bundle.neighbours
    row = rec.bundle.row_of[track_id]
    songs = rec.view.song_list
    seen = {songs[row]}
    rows: list[int] = []
    scores: list[float] = []
    head = 2 * k
    for cand, score in zip(table.rows[row, :head].tolist(), table.scores[row, :head].tolist(), strict=True):
        if cand < 0:
            break
        if songs[cand] in seen:
            continue
        seen.add(songs[cand])
        rows.append(cand)
        scores.append(score)
        if len(rows) == k:
            break
    return np.asarray(rows, dtype=np.int64), np.asarray(scores, dtype=np.float32)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("bundle", type=Path)
    parser.add_argument("--queries", type=int, default=2000)
    args = parser.parse_args(argv)
    use_one_search_thread()  # as the server does
    rec = Recommender(load_bundle(args.bundle))
    rng = np.random.default_rng(0)
    ids = [rec.ids[r] for r in rng.choice(rec.n, size=args.queries, replace=False)]
    queries = [(tid, SimilarQuery(seeds=[Seed(track_id=tid)], k=10)) for tid in ids]
    us = side_by_side_us({"new": lambda q: rec.similar(q[1]), "old": lambda q: old_walk(rec, q[0], 10)}, queries)
    new, old = statistics.median(us["new"]), statistics.median(us["old"])
    print(f"one pipeline (plan + table walk): {new:7.1f} us median")
    print(f"old fast path (table walk only):  {old:7.1f} us median")
    print(f"difference: {new - old:+.1f} us per query ({len(ids)} queries, alternating, one process)")
    print(f"command: python benchmarks/pipeline_cost.py {args.bundle} --queries {args.queries}")
    print(f"machine: {platform.platform()}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
