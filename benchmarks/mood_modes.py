"""Mean-shift modes: does the density of a catalog hold five or more moods that stay put?

Issue 17 asks for 5-60 moods that hold still (ARI >= 0.8 over all tracks between moods fitted on a catalog and
on a random 90% of it, the rest assigned as new tracks). HDBSCAN on smoothed points (the build's method under
2,000 and from 20,000 tracks, engine/_moods.py) did not hold on random Spotify subsets of 1,000-20,000 tracks.
This script asks whether the density itself has such moods there, outside the build: ``meanshift:h=H`` finds the
modes of the mood space's density (scikit-learn ``MeanShift``, a flat kernel of radius H in mood-space units,
bin seeding, bins of at least 5 tracks) and sends every track to its nearest mode. No HDBSCAN, no cores: it
says how many modes the density has at that bandwidth, and whether they hold. It runs on the build's mood space
(``mood_space`` of the standardized features, as benchmarks/mood_stability.py prepares it), and each 90% refit
repeats the mean shift. What the build does instead in that range (HDBSCAN on the co-association of k-means
fits, engine/_moodcoassoc.py) is measured by benchmarks/mood_stability.py.

Usage::

    .venv/bin/python benchmarks/mood_modes.py ../shared/data/spotify_tracks.csv --rows 5000 --seeds 1,2,3 \\
        --method meanshift:h=1.2 --method meanshift:h=1.4 --json out.json
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


def meanshift(points: np.ndarray, h: float) -> tuple[np.ndarray, Any]:
    """(labels of ``points``, a function labelling any points) of the density's modes at bandwidth ``h``."""
    from sklearn.cluster import MeanShift

    fitted = MeanShift(bandwidth=h, bin_seeding=True, min_bin_freq=5, n_jobs=2).fit(points)
    return fitted.labels_, fitted.predict


def parse_method(text: str) -> tuple[str, dict[str, Any]]:
    name, _, rest = text.partition(":")
    if name == "meanshift":
        return name, {"h": 1.4, **parse_variant(rest)}
    raise SystemExit(f"--method must be meanshift:h=H, got {text!r}")


def measure(points: np.ndarray, name: str, options: dict[str, Any], draws: Sequence[int]) -> dict[str, Any]:
    from sklearn.metrics import adjusted_rand_score

    t0 = time.perf_counter()
    labels, _ = meanshift(points, **options)
    seconds = time.perf_counter() - t0
    n, aris, moods = len(points), [], []
    for draw in draws:
        part = np.sort(np.random.default_rng(draw).choice(n, size=round(0.9 * n), replace=False))
        refit, label = meanshift(points[part], **options)
        aris.append(round(float(adjusted_rand_score(labels, label(points))), 4))
        moods.append(int(refit.max()) + 1)
    return {"method": name, "options": options, "moods": int(labels.max()) + 1,
            "largest_share": round(float(np.bincount(labels).max() / n), 4),
            "ari_90pct_all_tracks": aris, "subsample_moods": moods, "fit_seconds": round(seconds, 1)}


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("csv", type=Path)
    parser.add_argument("--rows", type=int, default=0, help="a random subset of this many tracks (0 = all)")
    parser.add_argument("--seeds", default="0", help="comma-separated seeds, each drawing its own subset of --rows")
    parser.add_argument("--subsamples", type=int, default=3, help="90%% refits per catalog")
    parser.add_argument("--method", action="append", default=[], help="meanshift:h=H (repeatable)")
    parser.add_argument("--json", type=Path)
    args = parser.parse_args(argv)
    methods = [parse_method(m) for m in args.method or ["meanshift:h=1.4"]]
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
            print(f"{len(points):,} tracks (seed {seed}) {name} {options}: {r['moods']} moods, largest "
                  f"{r['largest_share']:.0%}; ARI 90% all tracks {r['ari_90pct_all_tracks']} (moods "
                  f"{r['subsample_moods']}); fit {r['fit_seconds']} s", flush=True)
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps({
            "command": "python benchmarks/mood_modes.py " + " ".join(sys.argv[1:] if argv is None else argv),
            "machine": {"platform": platform.platform(), "cpus": os.cpu_count(), "python": platform.python_version()},
            "date": time.strftime("%Y-%m-%d", time.gmtime()), "csv": str(args.csv),
            "space": {"kind": space.kind, "features": list(space.names)}, "results": results,
        }, indent=1) + "\n", encoding="utf-8")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
