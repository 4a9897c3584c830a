"""Recommendation quality and in-process speed: our pipeline vs the notebook method, and mood stability.

Protocol (genre is never an input):
- tracks are the cleaned, deduplicated catalog; artists are split 80/20 with a fixed seed; every fitted
  step (scaler, PCA) sees the training artists only; the index holds every track;
- queries: ``--queries`` tracks drawn with a fixed seed from the held-out artists;
- results exclude the query itself and other listings of the same song (same name and artists);
- genre-precision@10: share of the 10 results sharing at least one genre with the query (also
  reported with only the query itself excluded, the issue's protocol, where other listings of the
  query's song count);
- artist-hit@10: share of the 10 results sharing an artist with the query.
Methods: the notebook method (StandardScaler on the raw features + PCA to 90% + sklearn
NearestNeighbors(metric="cosine", algorithm="brute")); our retrieval stage alone (cyclic key, log
duration, standardize, PCA at the configured variance target (every component by default since
2026-12-02; PCA to 90% before), FAISS inner product on unit vectors; genre_weight 0); our default
(that stage's nearest candidates re-ranked by genre agreement, engine/_rerank.py, with a genre
classifier trained on the training artists only: the evaluation model of the honest protocol), a
sweep of the re-ranking's weight and candidate count, and random tracks. "mean cosine@10" is the
average cosine (in the retrieval space) between a query and its 10 results: what the re-ranking
gives up in audio closeness.
Genre classifier: the honest protocol's metrics for that same evaluation model (engine/_genre.py),
with coarse genre families (engine/_families.py) and expected calibration error.
Speed: single-query latency in this process, one thread, same k: the notebook method's transform +
kneighbors vs our transform + FAISS search (the server's end-to-end figures are in server_latency.py).
Moods: count, sizes, HDBSCAN core coverage, the spread of mood means of valence, energy, tempo and
acousticness, the mood table; adjusted Rand index between fits with two seeds, and between a fit on
all tracks and one on a 90% subsample (on the tracks both contain, and on those core in both).

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

from engine import BuildConfig, FeatureSchema, GenreConfig, MoodConfig, MoodModel, Preprocessor, read_catalog
from engine.evaluation import (
    HELD_OUT_FRACTION,
    GenreAgreement,
    evaluate_genre_classifier,
    held_out_split,
    hybrid_scores,
    mood_space,
    mood_table,
    rerank_table,
    song_keys,
)

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
    genre_cfg = GenreConfig()
    split = held_out_split(cat, HELD_OUT_FRACTION, args.seed)
    train, test = np.sort(np.concatenate([split.fit, split.valid])), split.test
    rng = np.random.default_rng(args.seed)
    queries = np.sort(rng.choice(test, size=min(args.queries, len(test)), replace=False))
    genres = cat.genre_matrix()
    artist_sets = [frozenset(a.strip() for a in str(s).split(";") if a.strip())
                   for s in cat.metadata[schema.artists_column]]
    song_of = song_keys(cat.metadata[schema.name_column], cat.metadata[schema.artists_column])

    retrieval_space: np.ndarray | None = None  # for "mean cosine@10"

    def evaluate(neighbours: np.ndarray) -> dict[str, float]:
        """``neighbours``: candidate rows per query, best first (more than K, to allow exclusions)."""
        gp, gp_loose, ah, cos, short = [], [], [], [], 0
        for q, cand in zip(queries, neighbours, strict=True):
            loose = [c for c in cand if c >= 0 and c != q][:K]
            gp_loose.append(np.mean([(genres[c] & genres[q]).any() for c in loose]))
            keep = [c for c in cand if c >= 0 and song_of[c] != song_of[q]][:K]
            short += len(keep) < K
            if keep:
                gp.append(np.mean([(genres[c] & genres[q]).any() for c in keep]))
                ah.append(np.mean([bool(artist_sets[c] & artist_sets[q]) for c in keep]))
                if retrieval_space is not None:
                    cos.append(float(np.mean(retrieval_space[keep] @ retrieval_space[q])))
        out = {"genre_precision_at_10": round(float(np.mean(gp)), 4),
               "genre_precision_at_10_query_only_excluded": round(float(np.mean(gp_loose)), 4),
               "artist_hit_at_10": round(float(np.mean(ah)), 4),
               "mean_cosine_at_10": round(float(np.mean(cos)), 4) if cos else None,
               "queries_with_fewer_than_10": short}
        return out

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
    timing["notebook method"] = median_ms(lambda i: nn.kneighbors(pca.transform(scaler.transform(raw[i:i + 1])),
                                                                  n_neighbors=K), queries[:300])

    # Our default pipeline, fitted on the training artists only.
    cfg = BuildConfig().preprocess
    prep = Preprocessor(feature_names=cat.feature_names, transforms=schema.transforms,
                        pca_variance=cfg.pca_variance).fit(raw[train])
    vectors = prep.embed(raw)
    retrieval_space = vectors
    results["notebook method"] = evaluate(nb)  # scored here to measure its mean cosine in our space
    index = faiss.IndexFlatIP(vectors.shape[1])
    index.add(vectors)
    _, ours = index.search(vectors[queries], fetch)
    results["musicrec cosine only (genre_weight 0)"] = evaluate(ours)
    timing["musicrec cosine (raw features -> search)"] = median_ms(
        lambda i: index.search(prep.embed(raw[i:i + 1]), K), queries[:300])
    timing["musicrec cosine (catalog vector -> exact search)"] = median_ms(
        lambda i: index.search(vectors[i:i + 1], K), queries[:300])

    # The genre re-ranking, with a classifier that never saw the query artists.
    x = prep.transform_features(raw)
    model, _, classifier_metrics = evaluate_genre_classifier(cat, x, prep.transformed_names, genre_cfg,
                                                             seed=args.seed)
    query_proba = model.predict_proba(x[queries])
    agreement = GenreAgreement(cat.genre_indptr, cat.genre_codes, len(cat.genre_names))
    default = BuildConfig().similar
    sweep: list[dict[str, float]] = []
    widest = max(1000, default.candidates) + 1
    scores_all, rows_all = index.search(vectors[queries], widest)
    for candidates in sorted({100, default.candidates, 500, 1000}):
        for weight in sorted({0.2, 0.35, default.genre_weight, 0.5, 0.7, 1.0}):
            pool = candidates + 1  # the query itself is in the index; the protocol drops it
            ranked, _ = rerank_table(rows_all[:, :pool], scores_all[:, :pool], query_proba, agreement, weight, pool)
            r = evaluate(ranked)
            sweep.append({"candidates": candidates, "genre_weight": weight, **r})
            if (candidates, weight) == (default.candidates, default.genre_weight):
                results[f"musicrec default (genre_weight {weight}, {candidates} candidates)"] = r

    def rerank_one(i: int) -> None:
        proba = model.predict_proba(x[i:i + 1].astype(np.float32))[0]
        s, r = index.search(prep.embed(raw[i:i + 1]), default.candidates)
        order = np.argsort(-hybrid_scores(s[0], agreement(proba, r[0]), default.genre_weight), kind="stable")
        r[0][order[:K]]

    timing["musicrec default (raw features -> classify, search, re-rank)"] = median_ms(rerank_one, queries[:300])

    results["random"] = evaluate(rng.integers(0, n, size=(len(queries), fetch)))

    # Mood stability.
    full_prep = Preprocessor(feature_names=cat.feature_names, transforms=schema.transforms).fit(raw)
    space = mood_space(full_prep.transformed_names, MoodConfig().weights)
    points = space.project(full_prep.standardize(raw))

    def fit_moods(seed: int, rows: np.ndarray) -> MoodModel:
        return MoodModel(config=MoodConfig(), space=space, seed=seed).fit(
            points[rows], raw[rows], cat.feature_names, genre_matrix=genres[rows], genre_names=cat.genre_names)

    everything = np.arange(n)
    t0 = time.perf_counter()
    full, other_seed = fit_moods(0, everything), fit_moods(1, everything)
    sub = np.sort(np.random.default_rng(2).choice(n, size=int(0.9 * n), replace=False))
    subsample = fit_moods(0, sub)
    a, b, c = full.labels_, other_seed.labels_, subsample.labels_
    both_core = full.is_core_[sub] & subsample.is_core_
    sizes = np.bincount(a)
    core = full.metrics_
    stability = {
        "sizes": {"min": int(sizes.min()), "median": int(np.median(sizes)), "max": int(sizes.max()),
                  "largest_share": round(float(sizes.max() / n), 4)},
        "hdbscan_core_coverage": core["hdbscan_core_coverage"], "core_coverage": core["core_coverage"],
        "seeded": core["seeded"], "dbcv": core["dbcv_sample"], "silhouette": core["silhouette"],
        "spread": core["spread"],
        "ari_seed0_vs_seed1": round(float(adjusted_rand_score(a, b)), 4),
        "ari_full_vs_90pct_subsample": round(float(adjusted_rand_score(a[sub], c)), 4),
        "ari_full_vs_90pct_subsample_on_tracks_core_in_both": round(
            float(adjusted_rand_score(a[sub][both_core], c[both_core])), 4),
        "tracks_core_in_both": round(float(both_core.mean()), 4),
        "clusters": [int(a.max()) + 1, int(b.max()) + 1, int(c.max()) + 1],
        "fit_seconds": core["fit_seconds"],
        "seconds_for_three_fits": round(time.perf_counter() - t0, 1),
        "table": mood_table(full.clusters_),
    }

    report = {
        "command": "python benchmarks/quality.py " + " ".join(sys.argv[1:]),
        "date": time.strftime("%Y-%m-%d", time.gmtime()),
        "machine": {"cpus": os.cpu_count(), "platform": platform.platform()},
        "tracks": n, "queries": len(queries), "query_artists_held_out": True,
        "quality": results, "genre_rerank_sweep": sweep, "single_query_ms_p50": timing,
        "classifier": classifier_metrics, "moods": stability,
        "config": {"preprocess": dataclasses.asdict(cfg), "similar": dataclasses.asdict(default),
                   "genre": dataclasses.asdict(genre_cfg)},
    }
    print(f"{report['command']}\n{report['date']}, {report['machine']['cpus']} cpus; {n:,} tracks, "
          f"{len(queries):,} queries from held-out artists, k={K}\n")
    print(f"{'method':<60} {'genre-precision@10':>19} {'(query only excl.)':>19} {'artist-hit@10':>14} "
          f"{'mean cosine@10':>15} {'short of 10':>12}")
    for name, r in results.items():
        print(f"{name:<60} {r['genre_precision_at_10']:>19.4f} {r['genre_precision_at_10_query_only_excluded']:>19.4f} "
              f"{r['artist_hit_at_10']:>14.4f} {r['mean_cosine_at_10']:>15.4f} {r['queries_with_fewer_than_10']:>12}")
    print(f"\ngenre re-ranking sweep\n{'candidates':>10} {'genre_weight':>13} {'genre-precision@10':>19} "
          f"{'artist-hit@10':>14} {'mean cosine@10':>15}")
    for r in sweep:
        print(f"{r['candidates']:>10} {r['genre_weight']:>13} {r['genre_precision_at_10']:>19.4f} "
              f"{r['artist_hit_at_10']:>14.4f} {r['mean_cosine_at_10']:>15.4f}")
    base = timing["notebook method"]
    print(f"\n{'single query, 1 thread':<62} {'p50 ms':>8} {'vs notebook':>12}")
    for name, ms in timing.items():
        print(f"{name:<62} {ms:>8.3f} {ms / base:>11.2f}x")
    print_classifier(classifier_metrics)
    sz = stability["sizes"]
    print(f"\nmoods: {stability['clusters'][0]} moods; sizes min {sz['min']:,}, median {sz['median']:,}, max "
          f"{sz['max']:,} ({sz['largest_share']:.1%}); HDBSCAN cores hold {stability['hdbscan_core_coverage']:.1%} "
          f"of tracks; DBCV {stability['dbcv']}, silhouette {stability['silhouette']}; "
          f"fit {stability['fit_seconds']} s")
    print(f"       ARI seed 0 vs seed 1 {stability['ari_seed0_vs_seed1']}"
          f"{'' if stability['seeded'] else ' (the fit is deterministic at this size: the seed plays no part)'}; "
          f"full vs 90% subsample {stability['ari_full_vs_90pct_subsample']} (on the "
          f"{stability['tracks_core_in_both']:.0%} of tracks core in both: "
          f"{stability['ari_full_vs_90pct_subsample_on_tracks_core_in_both']}); moods {stability['clusters']}")
    for feature, sp in stability["spread"].items():
        print(f"       {feature:<13} mood means {sp['min_mean']:.3g}..{sp['max_mean']:.3g}, std across moods "
              f"{sp['std_of_means']:.3g} (catalog std {sp['catalog_std']:.3g})")
    print("\n".join(stability["table"]))
    if args.json:
        args.json.write_text(json.dumps(report, indent=2) + "\n")
    return 0


def print_classifier(m: dict) -> None:
    print(f"\ngenre classifier, held-out artists ({m['test_tracks']:,} test tracks, {m['n_genres']} genres, "
          f"{m['rounds']} rounds of {m['multi_strategy']}):")
    print(f"  top-1 {m['top1']:.4f}  top-5 {m['top5']:.4f}  macro-F1 {m['macro_f1']:.4f}  "
          f"ECE {m['ece_top1']:.4f} (mean top-1 probability {m['mean_top1_probability']:.4f})")
    print(f"  baselines: majority top-1 {m['majority_top1']:.4f} top-5 {m['majority_top5']:.4f}; random top-1 "
          f"{m['random_top1']:.4f} top-5 {m['random_top5']:.4f}")
    f = m["families"]
    if "skipped" in f:
        print(f"  families: {f['skipped']}")
        return
    print(f"  {f['n_families']} families: top-1 {f['top1']:.4f}  top-3 {f['top3']:.4f}  ECE {f['ece_top1']:.4f}; "
          f"majority top-1 {f['majority_top1']:.4f}, random {f['random_top1']:.4f}")
    print("\n  | family | genres | test tracks | family top-1 |\n  |---|---|---|---|")
    for row in f["per_family"]:
        acc = "-" if row["top1"] is None else f"{row['top1']:.3f}"
        print(f"  | {row['family']} | {', '.join(row['genres'])} | {row['test_tracks']:,} | {acc} |")


def median_ms(fn: object, items: object) -> float:
    times = []
    for i in items:  # type: ignore[attr-defined]
        t0 = time.perf_counter()
        fn(i)  # type: ignore[operator]
        times.append(time.perf_counter() - t0)
    return round(float(np.median(times)) * 1e3, 4)


if __name__ == "__main__":
    sys.exit(main())
