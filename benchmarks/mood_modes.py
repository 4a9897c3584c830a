"""Two more ways to find moods, measured against issue 17's stability goal and not adopted.

The goal: ARI >= 0.8 over all tracks between moods fitted on a catalog and on a random 90% of it (the rest
assigned as new tracks), with 5-60 moods whose HDBSCAN cores hold half the tracks. The build's method
(engine/_moods.py) meets it on the whole Spotify catalog but not on random Spotify subsets of 1,000-20,000
tracks (benchmarks/RESULTS.md, "Moods on any catalog"). This script asks whether the density of those subsets
holds five or more moods that stay put, by two methods outside the build:

- ``meanshift:h=H``: the modes of the mood space's density (scikit-learn ``MeanShift``, a flat kernel of
  radius H in mood-space units, bin seeding, bins of at least 5 tracks); every track to its nearest mode. No
  HDBSCAN, no cores: it says how many modes the density has at that bandwidth, and whether they hold.
- ``coassoc:...``: HDBSCAN on the co-association of k-means fits. ``bags`` random halves of the tracks, each
  fitted by k-means at every K from ``kmin`` to ``kmax``; every track takes each fit's nearest centroid; its
  one-hot labels, side by side and scaled, are a point whose squared distance to another track's is twice
  the share of fits that part the two; a truncated SVD keeps ``dims`` of it; HDBSCAN (``selection``, ``min_samples``,
  ``min_cluster_size`` the larger of 60 and ``fraction`` of the tracks) clusters that. Its labelled tracks are
  the cores. Every track then goes to the nearest mood centroid (the mean of a mood's cores in mood space;
  ``assign=centroid``), or takes the vote of its 10 nearest cores (``assign=vote``, the build's rule); with
  centroids a core whose cell is another mood's is not counted core.

Both run on the build's mood space (``mood_space`` of the standardized features, as benchmarks/mood_stability.py
prepares it), and each 90% refit repeats the whole method (the mean shift, or the k-means fits and HDBSCAN).

Usage::

    .venv/bin/python benchmarks/mood_alternatives.py ../shared/data/spotify_tracks.csv --rows 5000 --seeds 1,2,3 \\
        --method meanshift:h=1.4 --method 'coassoc:min_samples=150,assign=centroid' --json out.json
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
for path in (ROOT, ROOT / "benchmarks"):
    if str(path) not in sys.path:
        sys.path.insert(0, str(path))

from mood_stability import parse_variant, schema_for  # noqa: E402

from engine import MoodConfig, Preprocessor, read_catalog  # noqa: E402
from engine._moods import mood_space  # noqa: E402

COASSOC = {"bags": 40, "kmin": 5, "kmax": 8, "share": 0.5, "dims": 8, "min_samples": 150, "fraction": 0.05,
           "selection": "eom", "assign": "centroid"}
VOTE_NEIGHBOURS = 10


def meanshift(points: np.ndarray, h: float) -> tuple[np.ndarray, np.ndarray | None, Any]:
    """(labels of ``points``, no cores, a function labelling any points) of the modes at bandwidth ``h``."""
    from sklearn.cluster import MeanShift

    fitted = MeanShift(bandwidth=h, bin_seeding=True, min_bin_freq=5, n_jobs=2).fit(points)
    return fitted.labels_, None, fitted.predict


def coassoc(points: np.ndarray, bags: int, kmin: int, kmax: int, share: float, dims: int, min_samples: int,
            fraction: float, selection: str, assign: str) -> tuple[np.ndarray, np.ndarray, Any]:
    """(labels, cores, a function labelling any points) of HDBSCAN on the co-association of k-means fits."""
    import hdbscan
    from scipy.spatial import cKDTree
    from sklearn.cluster import KMeans
    from sklearn.decomposition import TruncatedSVD

    n = len(points)
    columns = []
    for b in range(bags):
        half = np.random.default_rng([0, b]).choice(n, size=int(share * n), replace=False)
        for k in range(kmin, kmax + 1):
            cells = KMeans(k, n_init=1, random_state=b * 100 + k).fit(points[half]).predict(points)
            columns.append(np.eye(k, dtype=np.float32)[cells])
    embedded = TruncatedSVD(dims, random_state=0).fit_transform(np.hstack(columns) / np.sqrt(len(columns)))
    size = max(60, int(np.ceil(fraction * n)))
    found = hdbscan.HDBSCAN(min_cluster_size=size, min_samples=min_samples,
                            cluster_selection_method=selection).fit(embedded).labels_
    core = found >= 0
    if not core.any():
        return np.zeros(n, dtype=np.int64), core, lambda x: np.zeros(len(x), dtype=np.int64)
    if assign == "centroid":
        centroids = np.stack([points[found == j].mean(axis=0) for j in range(found.max() + 1)])
        tree = cKDTree(centroids)

        def label(x: np.ndarray) -> np.ndarray:
            return tree.query(x, k=1)[1]
        labels = label(points)
        return labels, core & (labels == found), label
    tree, core_labels = cKDTree(points[core]), found[core]

    def label(x: np.ndarray) -> np.ndarray:
        votes = core_labels[tree.query(x, k=min(VOTE_NEIGHBOURS, len(core_labels)))[1]]
        return np.array([np.bincount(v).argmax() for v in votes.reshape(len(x), -1)])
    labels = label(points)
    labels[core] = found[core]
    return labels, core, label


def parse_method(text: str) -> tuple[str, dict[str, Any]]:
    name, _, rest = text.partition(":")
    if name == "meanshift":
        return name, {"h": 1.4, **parse_variant(rest)}
    if name == "coassoc":
        return name, {**COASSOC, **parse_variant(rest)}
    raise SystemExit(f"--method must be meanshift:h=H or coassoc:key=value,..., got {text!r}")


def measure(points: np.ndarray, name: str, options: dict[str, Any], draws: Sequence[int]) -> dict[str, Any]:
    from sklearn.metrics import adjusted_rand_score

    fit = meanshift if name == "meanshift" else coassoc
    t0 = time.perf_counter()
    labels, core, _ = fit(points, **options)
    seconds = time.perf_counter() - t0
    n, aris, moods = len(points), [], []
    for draw in draws:
        part = np.sort(np.random.default_rng(draw).choice(n, size=round(0.9 * n), replace=False))
        refit, _, label = fit(points[part], **options)
        aris.append(round(float(adjusted_rand_score(labels, label(points))), 4))
        moods.append(int(refit.max()) + 1)
    return {"method": name, "options": options, "moods": int(labels.max()) + 1,
            "core_share": round(float(core.mean()), 4) if core is not None else None,
            "largest_share": round(float(np.bincount(labels).max() / n), 4),
            "ari_90pct_all_tracks": aris, "subsample_moods": moods, "fit_seconds": round(seconds, 1)}


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("csv", type=Path)
    parser.add_argument("--rows", type=int, default=0, help="a random subset of this many tracks (0 = all)")
    parser.add_argument("--seeds", default="0", help="comma-separated seeds, each drawing its own subset of --rows")
    parser.add_argument("--subsamples", type=int, default=3, help="90%% refits per catalog")
    parser.add_argument("--method", action="append", default=[], help="meanshift:h=H or coassoc:key=value,... "
                        "(keys and defaults: COASSOC)")
    parser.add_argument("--json", type=Path)
    args = parser.parse_args(argv)
    methods = [parse_method(m) for m in args.method or ["meanshift:h=1.4", "coassoc:"]]
    schema = schema_for(args.csv, None, None, None)
    catalog = read_catalog(args.csv, schema)
    results = []
    for seed in (int(s) for s in args.seeds.split(",")):
        raw = catalog.features
        if args.rows and args.rows < len(raw):
            raw = raw[np.sort(np.random.default_rng(seed).choice(len(raw), size=args.rows, replace=False))]
        prep = Preprocessor(feature_names=list(catalog.feature_names), transforms=schema.transforms).fit(raw)
        space = mood_space(prep.transformed_names, MoodConfig().weights)
        points = np.ascontiguousarray(space.project(prep.standardize(raw)), dtype=np.float32)
        for name, options in methods:
            draws = [seed * 100 + d for d in range(1, args.subsamples + 1)]
            r = {"rows_seed": seed, "tracks": len(points), **measure(points, name, options, draws)}
            results.append(r)
            core = f", cores {r['core_share']:.0%}" if r["core_share"] is not None else ""
            print(f"{len(points):,} tracks (seed {seed}) {name} {options}: {r['moods']} moods{core}, largest "
                  f"{r['largest_share']:.0%}; ARI 90% all tracks {r['ari_90pct_all_tracks']} (moods "
                  f"{r['subsample_moods']}); fit {r['fit_seconds']} s", flush=True)
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps({
            "command": "python benchmarks/mood_alternatives.py " + " ".join(sys.argv[1:] if argv is None else argv),
            "machine": {"platform": platform.platform(), "cpus": os.cpu_count(), "python": platform.python_version()},
            "date": time.strftime("%Y-%m-%d", time.gmtime()), "csv": str(args.csv),
            "space": {"kind": space.kind, "features": list(space.names)}, "results": results,
        }, indent=1) + "\n", encoding="utf-8")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
