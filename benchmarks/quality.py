"""Recommendation quality and in-process speed: our pipeline vs the notebook method, and mood stability.

Protocol (genre is never an input):
- tracks are the cleaned, deduplicated catalog; artists are split 80/20 with a fixed seed; every fitted
  step (scaler, PCA) sees the training artists only; the index holds every track;
- queries: ``--queries`` tracks drawn with a fixed seed from the held-out artists;
- results exclude the query itself and other listings of the same song (same name and artists);
- genre-precision@10: share of the 10 results sharing at least one genre with the query;
- artist-hit@10: share of the 10 results sharing an artist with the query.
Methods: the notebook method (StandardScaler on the raw features + PCA to 90% + sklearn
NearestNeighbors(metric="cosine", algorithm="brute")), our default pipeline (cyclic key, log duration,
standardize, PCA to 90%, FAISS inner product on unit vectors), and random tracks.
Speed: single-query latency in this process, one thread, same k: the notebook method's transform +
kneighbors vs our transform + FAISS search (the server's end-to-end figures are in server_latency.py).
Moods: adjusted Rand index between mood assignments fitted with two seeds, and between a fit on all
tracks and one on a 90% subsample (on the tracks both contain).

    python benchmarks/quality.py [CSV] [--queries 3000] [--json out.json]
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import platform
import sys
import time
from pathlib import Path

import faiss
import numpy as np
from sklearn.decomposition import PCA
from sklearn.metrics import adjusted_rand_score
from sklearn.neighbors import NearestNeighbors
from sklearn.preprocessing import StandardScaler

from engine import BuildConfig, FeatureSchema, MoodConfig, MoodModel, Preprocessor, read_catalog
from engine._catalog import song_keys
from engine._genre import grouped_split
from engine._moods import mood_space

REPO = Path(__file__).resolve().parents[1]
DEFAULT_CSV = Path(os.environ.get("MUSICREC_DATA", REPO.parent / "shared" / "data" / "spotify_tracks.csv"))
K = 10


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("csv", type=Path, nargs="?", default=DEFAULT_CSV)
    parser.add_argument("--queries", type=int, default=3000)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--json", type=Path)
    args = parser.parse_args(argv)
    faiss.omp_set_num_threads(1)

    schema = FeatureSchema()
    cat = read_catalog(args.csv, schema)
    n = len(cat)
    artists = cat.primary_artists()
    train, test = grouped_split(artists, 0.2, args.seed)
    rng = np.random.default_rng(args.seed)
    queries = np.sort(rng.choice(test, size=min(args.queries, len(test)), replace=False))
    genres = cat.genre_matrix()
    artist_sets = [frozenset(a.strip() for a in str(s).split(";") if a.strip())
                   for s in cat.metadata[schema.artists_column]]
    song_of = song_keys(cat.metadata[schema.name_column], cat.metadata[schema.artists_column])

    def evaluate(neighbours: np.ndarray) -> dict[str, float]:
        """``neighbours``: candidate rows per query, best first (more than K, to allow exclusions)."""
        gp, ah, short = [], [], 0
        for q, cand in zip(queries, neighbours, strict=True):
            keep = [c for c in cand if c >= 0 and song_of[c] != song_of[q]][:K]
            short += len(keep) < K
            if keep:
                gp.append(np.mean([(genres[c] & genres[q]).any() for c in keep]))
                ah.append(np.mean([bool(artist_sets[c] & artist_sets[q]) for c in keep]))
        return {"genre_precision_at_10": round(float(np.mean(gp)), 4), "artist_hit_at_10": round(float(np.mean(ah)), 4),
                "queries_with_fewer_than_10": short}

    fetch = K + 100  # room for the query's other listings (some songs have dozens of ids)
    results: dict[str, dict[str, float]] = {}
    timing: dict[str, float] = {}

    # The notebook method.
    raw = cat.features
    scaler = StandardScaler().fit(raw[train])
    pca = PCA(n_components=0.9, svd_solver="full").fit(scaler.transform(raw[train]))
    emb = pca.transform(scaler.transform(raw))
    nn = NearestNeighbors(n_neighbors=fetch, metric="cosine", algorithm="brute", n_jobs=1).fit(emb)
    _, nb = nn.kneighbors(emb[queries])
    results["notebook method"] = evaluate(nb)
    timing["notebook method"] = median_ms(lambda i: nn.kneighbors(pca.transform(scaler.transform(raw[i:i + 1])),
                                                                  n_neighbors=K), queries[:300])

    # Our default pipeline, fitted on the training artists only.
    cfg = BuildConfig().preprocess
    prep = Preprocessor(feature_names=cat.feature_names, transforms=schema.transforms,
                        pca_variance=cfg.pca_variance).fit(raw[train])
    vectors = prep.embed(raw)
    index = faiss.IndexFlatIP(vectors.shape[1])
    index.add(vectors)
    _, ours = index.search(vectors[queries], fetch)
    results["musicrec default"] = evaluate(ours)
    timing["musicrec (raw features -> search)"] = median_ms(lambda i: index.search(prep.embed(raw[i:i + 1]), K),
                                                            queries[:300])
    timing["musicrec (catalog vector -> exact search)"] = median_ms(lambda i: index.search(vectors[i:i + 1], K),
                                                                    queries[:300])

    results["random"] = evaluate(rng.integers(0, n, size=(len(queries), fetch)))

    # Mood stability.
    full_prep = Preprocessor(feature_names=cat.feature_names, transforms=schema.transforms).fit(raw)
    space = mood_space(full_prep.transformed_names, MoodConfig().weights)
    points = space.project(full_prep.standardize(raw))

    def moods(seed: int, rows: np.ndarray) -> np.ndarray:
        m = MoodModel(config=MoodConfig(), space=space, seed=seed).fit(points[rows], raw[rows], cat.feature_names)
        return m.labels_

    everything = np.arange(n)
    t0 = time.perf_counter()
    a, b = moods(0, everything), moods(1, everything)
    sub = np.sort(np.random.default_rng(2).choice(n, size=int(0.9 * n), replace=False))
    c = moods(0, sub)
    sizes = np.bincount(a)
    core = MoodModel(config=MoodConfig(), space=space, seed=0).fit(points, raw, cat.feature_names).metrics_
    stability = {
        "sizes": {"min": int(sizes.min()), "median": int(np.median(sizes)), "max": int(sizes.max()),
                  "largest_share": round(float(sizes.max() / n), 4)},
        "noise_fraction_of_fit_sample": core["sample_noise_fraction"], "core_coverage": core["core_coverage"],
        "dbcv": core["dbcv_sample"], "silhouette": core["silhouette"],
        "ari_seed0_vs_seed1": round(float(adjusted_rand_score(a, b)), 4),
        "ari_full_vs_90pct_subsample": round(float(adjusted_rand_score(a[sub], c)), 4),
        "clusters": [int(a.max()) + 1, int(b.max()) + 1, int(c.max()) + 1],
        "seconds_for_three_fits": round(time.perf_counter() - t0, 1),
    }

    report = {
        "command": "python benchmarks/quality.py " + " ".join(sys.argv[1:]),
        "date": time.strftime("%Y-%m-%d", time.gmtime()),
        "machine": {"cpus": os.cpu_count(), "platform": platform.platform()},
        "tracks": n, "queries": len(queries), "query_artists_held_out": True,
        "quality": results, "single_query_ms_p50": timing, "moods": stability,
        "config": dataclasses.asdict(cfg),
    }
    print(f"{report['command']}\n{report['date']}, {report['machine']['cpus']} cpus; {n:,} tracks, "
          f"{len(queries):,} queries from held-out artists, k={K}\n")
    print(f"{'method':<22} {'genre-precision@10':>19} {'artist-hit@10':>14} {'queries short of 10':>20}")
    for name, r in results.items():
        print(f"{name:<22} {r['genre_precision_at_10']:>19.4f} {r['artist_hit_at_10']:>14.4f} "
              f"{r['queries_with_fewer_than_10']:>20}")
    base = timing["notebook method"]
    print(f"\n{'single query, 1 thread':<40} {'p50 ms':>8} {'vs notebook':>12}")
    for name, ms in timing.items():
        print(f"{name:<40} {ms:>8.3f} {ms / base:>11.2f}x")
    sz = stability["sizes"]
    print(f"\nmoods: {stability['clusters'][0]} clusters; sizes min {sz['min']:,}, median {sz['median']:,}, max "
          f"{sz['max']:,} ({sz['largest_share']:.1%}); "
          f"fit-sample noise {stability['noise_fraction_of_fit_sample']:.1%}, "
          f"core coverage {stability['core_coverage']:.1%}; DBCV {stability['dbcv']}, silhouette "
          f"{stability['silhouette']}\n       ARI seed 0 vs seed 1 {stability['ari_seed0_vs_seed1']}, full vs 90% "
          f"subsample {stability['ari_full_vs_90pct_subsample']} (clusters {stability['clusters']})")
    if args.json:
        args.json.write_text(json.dumps(report, indent=2) + "\n")
    return 0


def median_ms(fn: object, items: object) -> float:
    times = []
    for i in items:  # type: ignore[attr-defined]
        t0 = time.perf_counter()
        fn(i)  # type: ignore[operator]
        times.append(time.perf_counter() - t0)
    return round(float(np.median(times)) * 1e3, 4)


if __name__ == "__main__":
    sys.exit(main())
