"""Which preprocessing makes audio-only retrieval best: transforms, PCA variance target, whitening, weights.

Protocol (the one benchmarks/quality.py uses; genre is never an input of a query):
- tracks are the cleaned, deduplicated catalog; the labelled tracks are split by the build's own
  evaluation split (engine/_genre.py ``held_out_split``: grouped by primary artist, or by track when
  the catalog has no artist column, or by song for segments); every fitted step (transforms are
  stateless; scaler, PCA, weights) sees the training part only; the index holds every track;
- queries: every held-out track (or ``--queries`` of them, drawn with the seed);
- the ranking is audio-only: cosine on the variant's L2-normalized vectors (FAISS inner product,
  exact), genre_weight 0, no targets; results exclude the query and other listings of its song;
- genre-precision@10: share of the 10 results sharing at least one genre with the query.
Every variant is scored on the same queries in the same run; differences against plain
standardization are paired per query, with a 95% bootstrap interval.

Variants: plain standardization (no transforms, no PCA: the notebook method without PCA); the
notebook method (no transforms, PCA 90%); the configured transforms (Spotify: cyclic key, log
duration; audio preset: log1p of every ``*_var``, cyclic key) with each column scaled alone and PCA at
90% (the engine before 2026-12-02), 95%, 99% and every component (a rotation: cosines as without
PCA); whitening; the transforms without one kind of them; a cyclic feature's sin and cos sharing one
scale (one feature's variance, as the engine now scales them); per-feature weights from the training
part's genre labels (each standardized column's share of variance between genres). These rows are
this script's reference code, so they keep their meaning whatever the engine does; the last two rows
go through ``engine.Preprocessor`` as a build fits it (at pca_variance 0.9, and as configured).

Latency (``--latency``): one raw-feature query in this process, one thread, alternating query by
query across the variants: transform + embed + exact search of the first fetch (200 candidates + slack).

    python benchmarks/retrieval_defaults.py [CSV] [--queries N] [--seeds 0,1] [--json out.json] [--latency]
"""

from __future__ import annotations

import argparse
import csv
import dataclasses
import json
import os
import platform
import sys
import time
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import faiss
import numpy as np
import pandas as pd

from engine import (
    BuildConfig,
    Catalog,
    FeatureSchema,
    PreprocessConfig,
    Preprocessor,
    detect_preset,
    read_catalog,
    with_audio_preset,
)
from engine.evaluation import HELD_OUT_FRACTION, held_out_split, song_keys

REPO = Path(__file__).resolve().parents[1]
DEFAULT_CSV = Path(os.environ.get("MUSICREC_DATA", REPO.parent / "shared" / "data" / "spotify_tracks.csv"))
K = 10
FETCH = K + 100  # room for the query's other listings (some songs have dozens of ids)
FIRST_FETCH_SLACK = 64  # a live query's first fetch is its block of candidates + this (engine/_ranking.py SLACK)


@dataclasses.dataclass(frozen=True)
class Variant:
    """One preprocessing: ``transforms`` per raw column; ``pca`` a variance target (1.0 = every
    component); ``whiten`` divides each component by its standard deviation; ``weights`` is
    ``"genre"`` (fitted on the training part's labels) or a mapping of transformed column -> weight;
    ``pair`` scales a cyclic feature's sin and cos columns by one joint scale (one feature's variance)
    instead of each by its own. ``engine``: fitted by ``engine.Preprocessor`` with ``pca`` as
    ``pca_variance``, ``whiten`` and the transforms, exactly as a build fits it (``weights`` and
    ``pair`` do not apply: the engine always pairs);
    the other rows are this script's reference code, so they mean the same whatever the engine does."""

    name: str
    transforms: Mapping[str, str]
    pca: float = 1.0
    whiten: bool = False
    weights: str | Mapping[str, float] | None = None
    pair: bool = False
    engine: bool = False


def l2_normalize(x: np.ndarray) -> np.ndarray:
    """Rows of ``x`` (n, d) scaled to unit length, float32 (all-zero rows stay zero), as the engine's vectors."""
    norms = np.linalg.norm(x, axis=1, keepdims=True)
    return np.divide(x, norms, out=np.zeros_like(x), where=norms > 0).astype(np.float32)


def variants(schema: FeatureSchema, configured: PreprocessConfig) -> list[Variant]:
    t = dict(schema.transforms or {})
    out = [
        Variant("plain standardization (no transforms, no PCA)", {}),
        Variant("notebook method (no transforms, PCA 90%)", {}, pca=0.9),
        Variant("transforms, each column scaled alone, PCA 90% (the engine before 2026-12-02)", t, pca=0.9),
    ]
    out += [Variant(f"transforms, each column scaled alone, PCA {p:.0%}", t, pca=p) for p in (0.95, 0.99)]
    out += [
        Variant("transforms, each column scaled alone, all components (= no PCA)", t),
        Variant("transforms, PCA 90%, whitened", t, pca=0.9, whiten=True),
        Variant("transforms, all components, whitened", t, whiten=True),
        Variant("no transforms, all components, whitened", {}, whiten=True),
    ]
    # the configured transforms without one kind of them, to see which of them pays
    kinds: dict[str, list[str]] = {}
    for col, spec in t.items():
        kinds.setdefault(spec, []).append(col)
    for spec, cols in kinds.items():
        named = ", ".join(cols) if len(cols) <= 3 else f"{len(cols)} columns ({cols[0]}, ...)"
        out.append(Variant(f"transforms without {spec} of {named}, no PCA",
                           {c: s for c, s in t.items() if c not in cols}, pair=True))
    skewed = [c for c in schema.feature_columns if c in SPOTIFY_SKEWED and c not in t]
    if skewed:
        out.append(Variant(f"transforms + log1p(100 x) of {', '.join(skewed)}, no PCA",
                           {**t, **{c: "log1p100" for c in skewed}}, pair=True))
    if any(s.startswith("cyclic:") for s in t.values()):
        out += [Variant("transforms, cyclic sin/cos sharing one scale, all components (= no PCA)", t, pair=True),
                Variant("transforms, cyclic sin/cos sharing one scale, PCA 99%", t, pca=0.99, pair=True)]
    out += [
        Variant("transforms, genre weights (sqrt of between-genre share), no PCA", t, weights="genre", pair=True),
        Variant("transforms, genre weights (between-genre share), no PCA", t, weights="genre2", pair=True),
        Variant("engine, pca_variance 0.9 (transforms as configured)", t, pca=0.9, engine=True),
        Variant(f"engine as configured (the preset's pca_variance {configured.pca_variance:g}"
                f"{', whitened' if configured.whiten else ''})", t, pca=configured.pca_variance,
                whiten=configured.whiten, engine=True),
    ]
    return out


# Spotify features bunched near 0 with a long tail (speechiness median 0.05, instrumentalness median
# ~0, liveness median 0.13): log1p(100 x) spreads the bunch. Not an engine transform; measured here.
SPOTIFY_SKEWED = ("speechiness", "instrumentalness", "liveness", "acousticness")


def embed(variant: Variant, cat: Catalog, train: np.ndarray, primary: np.ndarray) -> tuple[np.ndarray, Any]:
    """Vectors of every track, shape (n_tracks, d), float32, unit length; and a one-row embedder."""
    raw = cat.features
    engine_transforms = {c: s for c, s in variant.transforms.items() if s != "log1p100"}
    extra = [cat.feature_names.index(c) for c, s in variant.transforms.items() if s == "log1p100"]

    def pre(x: np.ndarray) -> np.ndarray:
        if not extra:
            return x
        x = x.copy()
        x[:, extra] = np.log1p(100 * np.clip(x[:, extra], 0, None))
        return x

    prep = Preprocessor(feature_names=cat.feature_names, transforms=engine_transforms, pca_variance=variant.pca,
                        whiten=variant.whiten and variant.engine)
    if variant.engine:
        prep.fit(pre(raw[train]))
        return prep.embed(pre(raw)), lambda row: prep.embed(pre(row))
    # reference code: the engine's stateless transforms, then this script's own scaling and PCA
    x = prep.transform_features(pre(raw))
    mean, std = x[train].mean(axis=0), x[train].std(axis=0)
    if variant.pair:
        names = prep.transformed_names
        for j, name in enumerate(names):
            if name.endswith("_sin") and j + 1 < len(names) and names[j + 1] == name[:-4] + "_cos":
                std[j] = std[j + 1] = np.sqrt(std[j] ** 2 + std[j + 1] ** 2)
    std[std == 0] = 1.0
    z = (x - mean) / std
    w = np.ones(z.shape[1])
    if variant.weights in ("genre", "genre2"):
        share = between_genre_share(z[train], primary[train])
        w = np.sqrt(share) if variant.weights == "genre" else share
        w = w / np.sqrt(np.mean(w ** 2))
    elif isinstance(variant.weights, Mapping):
        w = np.array([variant.weights.get(c, 1.0) for c in prep.transformed_names])
    z = z * w
    components, scale = np.eye(z.shape[1]), np.ones(z.shape[1])
    if variant.pca < 1.0 or variant.whiten:
        zt = z[train]
        eigval, eigvec = np.linalg.eigh((zt.T @ zt) / (len(zt) - 1))
        order = np.argsort(eigval)[::-1]
        eigval, eigvec = np.clip(eigval[order], 1e-12, None), eigvec[:, order]
        keep = int(np.searchsorted(np.cumsum(eigval) / eigval.sum(), variant.pca - 1e-12) + 1)
        keep = min(keep, len(eigval))
        components = eigvec[:, :keep]
        scale = np.sqrt(eigval[:keep]) if variant.whiten else np.ones(keep)

    def one(row: np.ndarray) -> np.ndarray:
        return l2_normalize(((prep.transform_features(pre(row)) - mean) / std * w) @ components / scale)

    return l2_normalize(z @ components / scale), one


def between_genre_share(z: np.ndarray, labels: np.ndarray) -> np.ndarray:
    """Per column of ``z`` (n, d), the share of its variance between the groups of ``labels`` (eta^2)."""
    ok = labels >= 0
    z, labels = z[ok], labels[ok]
    mean = z.mean(axis=0)
    total = ((z - mean) ** 2).sum(axis=0)
    between = np.zeros(z.shape[1])
    for g in np.unique(labels):
        part = z[labels == g]
        between += len(part) * (part.mean(axis=0) - mean) ** 2
    return between / np.where(total > 0, total, 1.0)


def precision_per_query(neighbours: np.ndarray, queries: np.ndarray, genres: np.ndarray,
                        songs: np.ndarray) -> tuple[np.ndarray, int]:
    """Genre-precision@10 per query (results: ``neighbours`` rows best first, the query's own song
    left out); and how many queries had fewer than 10 results left."""
    out = np.empty(len(queries))
    short = 0
    for start in range(0, len(queries), 1000):
        q = queries[start:start + 1000]
        nb = neighbours[start:start + 1000]
        valid = (nb >= 0) & (songs[np.where(nb >= 0, nb, 0)] != songs[q][:, None])
        keep = valid & (np.cumsum(valid, axis=1) <= K)
        hit = (genres[np.where(nb >= 0, nb, 0)] & genres[q][:, None, :]).any(axis=2) & keep
        n = keep.sum(axis=1)
        short += int((n < K).sum())
        out[start:start + 1000] = hit.sum(axis=1) / np.maximum(n, 1)
    return out, short


def paired_interval(diff: np.ndarray, seed: int, rounds: int = 2000) -> tuple[float, float]:
    """95% bootstrap interval of the mean of per-query differences."""
    rng = np.random.default_rng(seed)
    means = np.array([diff[rng.integers(0, len(diff), len(diff))].mean() for _ in range(rounds)])
    return float(np.percentile(means, 2.5)), float(np.percentile(means, 97.5))


def default_config(csv_path: Path) -> tuple[BuildConfig, str]:
    """What `musicrec index` builds this file with by default, and the preset's name: the audio preset
    (engine.with_audio_preset) for a GTZAN-layout header, else the Spotify defaults."""
    with csv_path.open(encoding="utf-8-sig", newline="") as fh:
        header = next(csv.reader(fh), [])
    preset = detect_preset(header) or "spotify"
    return (with_audio_preset(BuildConfig(), header) if preset == "audio" else BuildConfig()), preset


def load(csv_path: Path) -> tuple[FeatureSchema, str, Catalog]:
    config, preset = default_config(csv_path)
    return config.schema, preset, read_catalog(csv_path, config.schema)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("csv", type=Path, nargs="?", default=DEFAULT_CSV)
    parser.add_argument("--queries", type=int, default=0, help="held-out queries per split (0: all)")
    parser.add_argument("--seeds", default="0", help="split seeds, comma-separated (each a whole run)")
    parser.add_argument("--latency", action="store_true", help="also time one raw-feature query per variant")
    parser.add_argument("--json", type=Path)
    args = parser.parse_args(argv)
    faiss.omp_set_num_threads(1)

    schema, preset, cat = load(args.csv)
    configured = default_config(args.csv)[0].preprocess  # what a build of this file gets by default
    names, artists = cat.metadata.get(schema.name_column or ""), cat.metadata.get(schema.artists_column or "")
    songs = (pd.factorize(np.asarray(cat.metadata[schema.song_column], dtype=object))[0] if schema.song_column
             else song_keys(names, artists) if names is not None and artists is not None else np.arange(len(cat)))
    genres = cat.genre_matrix()
    has_artists = cat.artists_column is not None
    split_name = ("by primary artist" if has_artists else
                  "by song: no artist column" if schema.song_column else "by track: no artist column")
    command = "python benchmarks/retrieval_defaults.py " + " ".join(argv if argv is not None else sys.argv[1:])
    print(f"{command}\n{time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}, {os.cpu_count()} cpus, "
          f"{platform.platform()}\n{args.csv}: {len(cat):,} tracks, {len(cat.feature_names)} features, "
          f"{len(cat.genre_names)} genres, {preset} preset; split {split_name}\n")
    runs = []
    for seed in [int(s) for s in args.seeds.split(",")]:
        split = held_out_split(cat, HELD_OUT_FRACTION, seed,
                               np.asarray(cat.metadata[schema.song_column]) if schema.song_column else None)
        train = np.sort(np.concatenate([split.fit, split.valid]))
        queries = split.test
        if args.queries and args.queries < len(queries):
            queries = np.sort(np.random.default_rng(seed).choice(queries, size=args.queries, replace=False))
        rows = []
        base: np.ndarray | None = None
        embedders = {}
        primary = cat.primary_genre()
        for v in variants(schema, configured):
            t0 = time.perf_counter()
            vectors, one = embed(v, cat, train, primary)
            index = faiss.IndexFlatIP(vectors.shape[1])
            index.add(vectors)
            _, nb = index.search(vectors[queries], min(FETCH, len(cat)))
            prec, short = precision_per_query(nb, queries, genres, songs)
            if base is None:
                base = prec
            lo, hi = paired_interval(prec - base, seed)
            rows.append({"variant": v.name, "dims": int(vectors.shape[1]),
                         "genre_precision_at_10": round(float(prec.mean()), 4),
                         "vs_plain": round(float((prec - base).mean()), 4),
                         "vs_plain_95ci": [round(lo, 4), round(hi, 4)],
                         "queries_short_of_10": short, "seconds": round(time.perf_counter() - t0, 1),
                         "spec": {"transforms": dict(v.transforms), "pca": v.pca, "whiten": v.whiten,
                                  "weights": v.weights if not isinstance(v.weights, Mapping) else dict(v.weights),
                                  "engine": v.engine}})
            embedders[v.name] = (one, index)
            print(f"  seed {seed}  {v.name:<72} {vectors.shape[1]:>3} dims  {prec.mean():.4f}  "
                  f"{(prec - base).mean():+.4f} [{lo:+.4f}, {hi:+.4f}]", flush=True)
        run: dict[str, Any] = {"seed": seed, "train_tracks": len(train), "queries": len(queries), "rows": rows}
        if args.latency:
            run["latency_us_p50"] = latency(embedders, cat.features, queries, seed)
        runs.append(run)
        print()
    print_table(runs)
    if args.json:
        args.json.write_text(json.dumps({
            "command": command, "date": time.strftime("%Y-%m-%d", time.gmtime()),
            "machine": {"cpus": os.cpu_count(), "platform": platform.platform()},
            "csv": str(args.csv), "preset": preset, "tracks": len(cat), "features": list(cat.feature_names),
            "genres": len(cat.genre_names), "split": split_name, "k": K, "runs": runs}, indent=2) + "\n")
    return 0


def latency(embedders: dict[str, tuple[Any, faiss.Index]], raw: np.ndarray, queries: np.ndarray,
            seed: int, n: int = 2000) -> dict[str, float]:
    """Median microseconds of transform + embed + exact search of the first fetch, per variant,
    alternating variant by variant on each query (the same rows for all)."""
    rng = np.random.default_rng(seed)
    rows = rng.choice(queries, size=min(n, len(queries)), replace=False)
    fetch = BuildConfig().similar.candidates + FIRST_FETCH_SLACK
    times: dict[str, list[float]] = {name: [] for name in embedders}
    for r in rows.tolist():
        row = raw[r:r + 1]
        for name, (one, index) in embedders.items():
            t0 = time.perf_counter()
            index.search(one(row), fetch)
            times[name].append(time.perf_counter() - t0)
    return {name: round(float(np.median(t)) * 1e6, 1) for name, t in times.items()}


def print_table(runs: list[dict[str, Any]]) -> None:
    """A markdown table: per split seed, genre-precision@10 and the paired difference to plain
    standardization; with several seeds, the mean of both over the seeds; the latency column."""
    seeds = [r["seed"] for r in runs]
    head = " | ".join(f"seed {s}: gp@10 | vs plain [95% CI]" for s in seeds)
    many = len(seeds) > 1
    lat = "latency_us_p50" in runs[0]
    print(f"| variant | dims | {head} |" + (" mean gp@10 | mean vs plain |" if many else "")
          + (f" p50 us (seed {seeds[0]}) |" if lat else ""))
    print("|---|---|" + "---|---|" * len(seeds) + ("---|---|" if many else "") + ("---|" if lat else ""))
    for i, row in enumerate(runs[0]["rows"]):
        cells = []
        for r in runs:
            x = r["rows"][i]
            lo, hi = x["vs_plain_95ci"]
            cells.append(f"{x['genre_precision_at_10']:.4f} | {x['vs_plain']:+.4f} [{lo:+.4f}, {hi:+.4f}]")
        if many:
            cells.append(f"{np.mean([r['rows'][i]['genre_precision_at_10'] for r in runs]):.4f} | "
                         f"{np.mean([r['rows'][i]['vs_plain'] for r in runs]):+.4f}")
        extra = f" {runs[0]['latency_us_p50'][row['variant']]:.1f} |" if lat else ""
        print(f"| {row['variant']} | {row['dims']} | " + " | ".join(cells) + " |" + extra)


if __name__ == "__main__":
    sys.exit(main())
