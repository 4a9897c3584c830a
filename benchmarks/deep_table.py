"""The neighbour table's deeper entries on an existing bundle, without a rebuild: a copy of BUNDLE (files
symlinked) whose table this revision's build function recomputes for the tracks the bundle answered live,
then every such track's by-id answer from the new entry checked against the live query's.

A build of this revision stores the same table (entries the first fetch settles are the same function's
output as before; engine/_table.py ``first_blocks(..., deeper=...)`` adds the rest), so the copy is what
``benchmarks/servicer_cost.py BUNDLE --before REV --after REV --after-bundle OUT`` compares against.
Probabilities re-ranking the table are the shipped model's on the tracks' features, as the build of a
bundle without stored probabilities computes them.

    python benchmarks/deep_table.py BUNDLE OUT [--check 300]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import time
from pathlib import Path

import numpy as np

from engine import Recommender, Seed, SimilarQuery, load_bundle, use_one_search_thread
from engine._arrays import load_npz, save_npz
from engine._bundle import sha256_file
from engine._ranking import Scoring
from engine._rerank import GenreAgreement
from engine._table import first_blocks, first_fetch, nearest_candidates
from engine._view import CatalogView


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("bundle", type=Path)
    parser.add_argument("out", type=Path)
    parser.add_argument("--check", type=int, default=300, help="tracks whose query is timed, live against table")
    args = parser.parse_args(argv)
    use_one_search_thread()
    bundle = load_bundle(args.bundle)
    view, table, tracks = CatalogView(bundle), bundle.neighbours, bundle.tracks
    if table is None or bundle.classifier is None:
        print(f"{args.bundle}: no neighbour table or no classifier", file=sys.stderr)
        return 2
    live_rows = np.flatnonzero(table.consumed < 0)
    t0 = time.perf_counter()
    candidates = nearest_candidates(bundle.index, view.vectors[live_rows], first_fetch(view.n, table.block))
    proba = bundle.classifier.predict_proba(view.model_inputs(tracks.features[live_rows])) \
        if table.genre_weight > 0 else None
    scoring = Scoring(genre_weight=table.genre_weight,
                      agreement=GenreAgreement(tracks.genre_indptr, tracks.genre_codes, len(tracks.genre_names)))
    fresh = first_blocks(view.vectors, view.song, candidates, scoring, proba, table.block, table.rows.shape[1],
                         live_rows, deeper=lambda v, fetch: nearest_candidates(bundle.index, v, fetch))
    seconds = time.perf_counter() - t0
    arrays = load_npz(args.bundle / "neighbours.npz")
    for key in ("rows", "scores", "consumed", "lengths"):
        arrays[key][live_rows] = fresh[key][live_rows]
    args.out.mkdir(parents=True)
    for name in os.listdir(args.bundle):
        if name not in ("neighbours.npz", "manifest.json"):
            (args.out / name).symlink_to((args.bundle / name).resolve())
    save_npz(args.out / "neighbours.npz", arrays)
    manifest = json.loads((args.bundle / "manifest.json").read_text())
    manifest["files"]["neighbours.npz"] = sha256_file(args.out / "neighbours.npz")
    manifest["metrics"]["index"].setdefault("neighbour_table", {})["tracks_answered_live"] = \
        int((arrays["consumed"] < 0).sum())
    (args.out / "manifest.json").write_text(json.dumps(manifest, indent=2))

    deep = load_bundle(args.out)
    assert deep.neighbours is not None
    now_table = live_rows[deep.neighbours.consumed[live_rows] >= 0]
    print(f"tracks answered live: {len(live_rows):,} of {view.n:,} -> {int((deep.neighbours.consumed < 0).sum()):,} "
          f"({seconds:.1f} s to compute their entries)")
    live, fast = Recommender(bundle), Recommender(deep)
    mismatches = 0
    for row in now_table.tolist():
        for k in (10, deep.neighbours.rows.shape[1]):
            q = SimilarQuery(seeds=[Seed(track_id=live.ids[row])], k=k)
            a, b = live.similar(q), fast.similar(q)
            mismatches += not (a.rows.tolist() == b.rows.tolist() and a.scores.tolist() == b.scores.tolist()
                               and (a.examined, a.filtered, a.exhausted) == (b.examined, b.filtered, b.exhausted))
    print(f"their by-id answers (k 10 and {deep.neighbours.rows.shape[1]}) from the table against the live query: "
          f"{len(now_table):,} tracks, {mismatches} different")
    live_us, table_us = [], []
    for row in now_table[:args.check].tolist():  # alternating, one process
        q = SimilarQuery(seeds=[Seed(track_id=live.ids[row])], k=10)
        t1 = time.perf_counter()
        live.similar(q)
        t2 = time.perf_counter()
        fast.similar(q)
        t3 = time.perf_counter()
        live_us.append((t2 - t1) * 1e6)
        table_us.append((t3 - t2) * 1e6)
    if live_us:
        print(f"a by-id query (k 10) on such a track, median over {len(live_us)}: "
              f"live {statistics.median(live_us):.1f} us, table {statistics.median(table_us):.1f} us")
    print(f"command: python benchmarks/deep_table.py {args.bundle} {args.out} --check {args.check}")
    return 1 if mismatches else 0


if __name__ == "__main__":
    sys.exit(main())
