"""Where the time of a query about a new track goes: SimilarTracks and ClassifyGenre seeded by raw
feature values, stage by stage, in-process on one thread (no gRPC), beside "more like this" by id.

Stages, as the server runs them: parse (protobuf -> engine query), plan (validate, transform,
embed), classify (the seed's genre probabilities), search (the candidate source's first fetch; the
new-track source returns it ordered with its cosines), survivors (exact cosines and order where the
source did not give them, filter, one listing per song), score (genre agreement, sort), select
(artist cap / MMR walk, page), serialize (response bytes). Seeds are catalog tracks' own feature
values, sent as if new. Medians over --queries seeds, each stage timed separately.

    python benchmarks/new_track_path.py BUNDLE [--queries 500] [--compiled] [--json out.json]

``--compiled`` turns on the compiled kernels (engine/_compiled.py) as the server does; without it the
numpy code runs.
"""

from __future__ import annotations

import argparse
import json
import platform
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
from _timing import timed_us  # benchmarks/_timing.py

from engine import Recommender, compiled_kernels_status, load_bundle, use_compiled_kernels, use_one_search_thread
from engine.evaluation import Selector, Survivors
from server import _convert as conv
from server._generated.musicrec.v1 import recommender_pb2 as pb
from server._wire import TrackBytes, similar_response_bytes


class _Fetched:
    pushes_filters = False

    def __init__(self, rows: np.ndarray) -> None:
        self.rows = rows

    def nearest(self, vector: np.ndarray, n: int) -> np.ndarray:
        return self.rows[:n]


class _Scored:
    """A source that scores its own rows (engine/_candidates.py ProbedSource), replayed."""

    pushes_filters = False

    def __init__(self, scored: tuple[np.ndarray, np.ndarray]) -> None:
        self.rows, self.cos = scored

    def scored(self, vector: np.ndarray, n: int) -> tuple[np.ndarray, np.ndarray]:
        return self.rows[:n], self.cos[:n]


def stages(rec: Recommender, request: pb.SimilarTracksRequest, wire: TrackBytes,
           before: Callable[[], object] = lambda: None) -> dict[str, float]:
    """Each stage timed once; ``before()`` runs ahead of each (``--cold``: the caches flushed)."""
    search = rec._similar
    view = rec.view
    us: dict[str, float] = {}
    before()
    us["parse"], query = timed_us(lambda: conv.similar_query_from_pb(request))
    before()
    us["plan"], plan = timed_us(lambda: search.plan(query, ""))
    before()
    us["classify"], affinity = timed_us(lambda: search._affinity(plan))
    fetch = Survivors(plan.source, view.n, view.vectors, view.song, plan.vector, plan.row_filter,
                      search.block).fetch_size(0)
    before()
    # the survivors stage on the rows just fetched (its own search is the line below); a source that
    # scores its rows hands them over ordered and scored (the new-track source), the others as rows
    replay: Any
    if hasattr(plan.source, "scored"):
        us["search"], scored = timed_us(lambda: plan.source.scored(plan.vector, fetch))
        replay = _Scored(scored)
    else:
        us["search"], rows = timed_us(lambda: plan.source.nearest(plan.vector, fetch))
        replay = _Fetched(rows)
    survivors = Survivors(replay, view.n, view.vectors, view.song, plan.vector, plan.row_filter, search.block)
    before()
    us["survivors"], block = timed_us(lambda: survivors.next_block())
    before()
    us["score"], ranked = timed_us(lambda: plan.scoring.sorted_block(block, affinity))
    select = Selector(need=query.k, cap=query.max_per_artist, diversity=query.diversity, artists=view.artists,
                      vectors=view.vectors, deadline=None)
    before()
    us["select"], _ = timed_us(lambda: select.feed(*ranked))
    result = search._page(plan, select, block.consumed, 0, time.perf_counter())
    before()
    us["serialize"], _ = timed_us(lambda: similar_response_bytes(wire, rec, result))
    before()
    us["whole (one call)"], _ = timed_us(lambda: similar_response_bytes(wire, rec, rec.similar(query)))
    return us


def agreement_with_exact(rec: Recommender, rows: np.ndarray) -> dict[str, float]:
    """Top-10 overlap of feature-seeded answers through the new-track index and through exact
    search, and genre-precision@10 of each (results of the seed's own song left out). The seeds
    are catalog tracks the classifier was trained on, so these precisions compare the two
    searches with each other; held-out figures are in the build report and quality.py."""
    import dataclasses

    from engine import Seed, SimilarQuery

    exact = Recommender(dataclasses.replace(rec.bundle, new_track_index=None))
    genres = rec.bundle.tracks.genre_matrix()
    overlap, prec_fast, prec_exact = [], [], []
    for r in rows.tolist():
        values = dict(zip(rec.feature_names, rec.bundle.tracks.features[r].tolist(), strict=True))
        q = SimilarQuery(seeds=[Seed(features=values)], k=20)
        a = [x for x in rec.similar(q).rows.tolist() if rec.view.song_list[x] != rec.view.song_list[r]][:10]
        b = [x for x in exact.similar(q).rows.tolist() if rec.view.song_list[x] != rec.view.song_list[r]][:10]
        overlap.append(len(set(a) & set(b)) / max(len(b), 1))
        prec_fast.append(genres[np.ix_(a, genres[r].nonzero()[0])].any(axis=1).mean())
        prec_exact.append(genres[np.ix_(b, genres[r].nonzero()[0])].any(axis=1).mean())
    return {"queries": len(rows), "top10_overlap": round(float(np.mean(overlap)), 4),
            "genre_precision_at_10_new_track_index": round(float(np.mean(prec_fast)), 4),
            "genre_precision_at_10_exact": round(float(np.mean(prec_exact)), 4)}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("bundle", type=Path)
    parser.add_argument("--queries", type=int, default=500)
    parser.add_argument("--cold", action="store_true",
                        help="read a 64 MiB buffer before each stage (and each whole call): every stage with its code "
                             "and data out of the CPU caches, as a served call finds them (benchmarks/server_cpu.py)")
    parser.add_argument("--compiled", action="store_true", help="the compiled kernels on, as in the server")
    parser.add_argument("--json", type=Path)
    args = parser.parse_args(argv)
    junk = np.ones(64 * 1024 * 1024 // 8)
    before: Callable[[], object] = junk.sum if args.cold else (lambda: None)
    use_one_search_thread()
    rec = Recommender(load_bundle(args.bundle))
    if args.compiled:
        use_compiled_kernels()
        rec.warm_compiled()
    if rec.bundle.classifier is not None:
        rec.bundle.classifier.booster_.set_param({"nthread": 1})
    wire = TrackBytes(rec.n)
    rng = np.random.default_rng(0)
    rows = rng.choice(rec.n, size=min(args.queries, rec.n), replace=False)
    report: dict[str, Any] = {"bundle": str(args.bundle), "tracks": rec.n, "queries": len(rows), "cold": args.cold,
                              "index": rec.bundle.manifest["metrics"]["index"]["kind"],
                              "compiled_kernels": compiled_kernels_status()}
    for label, make in (
        ("SimilarTracks by features", lambda r: pb.SimilarTracksRequest(
            seeds=[pb.Seed(features=pb.FeatureValues(values={n: float(v) for n, v in zip(
                rec.feature_names, rec.bundle.tracks.features[r], strict=True)}))], k=10)),
        ("SimilarTracks by id", lambda r: pb.SimilarTracksRequest(seeds=[pb.Seed(track_id=rec.ids[r])], k=10)),
    ):
        for r in rows[:20]:
            stages(rec, make(r), wire)  # warm caches
        samples: dict[str, list[float]] = {}
        for r in rows:
            for stage, us in stages(rec, make(r), wire, before).items():
                samples.setdefault(stage, []).append(us)
        report[label] = {stage: round(statistics.median(v), 1) for stage, v in samples.items()}
    classify: list[float] = []
    for r in rows:
        values = {n: float(v) for n, v in zip(rec.feature_names, rec.bundle.tracks.features[r], strict=True)}
        request = pb.ClassifyGenreRequest(features=pb.FeatureValues(values=values))
        before()
        classify.append(timed_us(lambda request=request: conv.classification_pb(rec.classify(
            features=dict(request.features.values), top_k=request.top_k)).SerializeToString())[0])
    report["ClassifyGenre by features"] = {"whole (one call)": round(statistics.median(classify), 1)}
    if rec.bundle.new_track_index is not None:
        report["approximate vs exact"] = agreement_with_exact(rec, rows)
    if "approximate vs exact" in report:
        print("== the new-track index against exact search, same queries:", report["approximate vs exact"])
    for label in ("SimilarTracks by features", "SimilarTracks by id", "ClassifyGenre by features"):
        print(f"== {label} (median microseconds, one thread)")
        for stage, us in report[label].items():
            print(f"  {stage:18s} {us:9.1f}")
    print(f"command: python benchmarks/new_track_path.py {args.bundle} --queries {args.queries}"
          + (" --cold" if args.cold else "") + (" --compiled" if args.compiled else ""))
    print(f"compiled kernels: {compiled_kernels_status()}")
    print(f"machine: {platform.platform()}")
    if args.json:
        args.json.write_text(json.dumps(report, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
