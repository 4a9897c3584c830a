"""Mood stability on a catalog CSV: the build's mood stage, then how much the moods move.

For one CSV (the Spotify Tracks schema, or a GTZAN/librosa-style table, detected from the header as
`musicrec index` does; or ``--feature-columns`` for another layout) and one mood configuration:

- moods, HDBSCAN core share (of all tracks), largest mood, fit seconds, the mood space and why;
- ARI over all tracks between the full fit and fits on random 90% subsamples (``--subsamples`` of
  them, each with its own draw; the rest of the tracks assigned as new tracks would be), and over
  the tracks core in both;
- ARI across seeds where a seed plays a part (catalogs above ``fit_sample``), else said;
- how much the fits of the co-association's medoid (k-means, or octants on a continuum) agree (mean ARI between two),
  where there are some;
- the mood table and the vocabulary of the names.

Configurations are ``[moods]`` keys: ``--set smoothing_neighbours=200 --set selection='"eom"'``
(values are JSON). Several ``--variant 'k=v,k=v'`` run side by side in one process, so their
seconds compare. Usage::

    .venv/bin/python benchmarks/mood_stability.py ../shared/data/spotify_tracks.csv
    .venv/bin/python benchmarks/mood_stability.py "$(.venv/bin/python benchmarks/catalogs.py --seed 0 | tail -1)"
    .venv/bin/python benchmarks/mood_stability.py CSV --config gtzan.toml   # the README's five-column example
"""

from __future__ import annotations

import argparse
import csv
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
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from engine import BuildConfig, FeatureSchema, MoodConfig, Preprocessor, read_catalog  # noqa: E402
from engine._moodreport import MOOD_TABLE_FEATURES, mood_table  # noqa: E402
from engine._moods import MoodModel, mood_space  # noqa: E402
from engine._moodsample import id_keys  # noqa: E402
from engine._moodstability import measure_stability  # noqa: E402
from engine._schema import audio_schema, detect_preset  # noqa: E402


def schema_for(path: Path, feature_columns: str | None, id_column: str | None, config: Path | None) -> FeatureSchema:
    """What `musicrec index` would use for this file: a config file's schema, the given columns, the
    audio preset for a GTZAN layout, else the Spotify schema."""
    with path.open(encoding="utf-8-sig", newline="") as fh:
        header = next(csv.reader(fh), [])
    if config:
        return BuildConfig.from_file(config).schema
    if feature_columns:
        return FeatureSchema.generic(id_column=id_column or header[0],
                                     feature_columns=tuple(feature_columns.split(",")),
                                     label_column="label" if "label" in header else None)
    if detect_preset(header) == "audio":
        # the audio preset's schema only, deliberately: the mood space below comes from MoodConfig()'s weights, as it
        # did for the RESULTS.md rows (on an audio table, the descriptor space they fall back to), not from the
        # preset's AUDIO_MOOD_WEIGHTS that engine.with_audio_preset (and so musicrec index) applies
        return audio_schema(header)
    return BuildConfig().schema


def cache_smoothing() -> None:
    """The build's blur and shift, through benchmarks/mood_consensus.py's cache of smoothed points."""
    from mood_consensus import smoothed

    from engine import _moods

    _moods.blur = lambda points, k, iterations, progress=None: smoothed(points, "blur", k, iterations)
    _moods.shift = lambda points, k, iterations, progress=None: smoothed(points, "shift", k, iterations)


def parse_variant(text: str) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for item in filter(None, (p.strip() for p in text.split(","))):
        key, _, value = item.partition("=")
        try:
            out[key.strip()] = json.loads(value)
        except json.JSONDecodeError:
            out[key.strip()] = value
    return out


def run(points: np.ndarray, raw: np.ndarray, names: Sequence[str], space: Any, config: MoodConfig, *,
        seed: int, subsamples: int, genres: tuple[np.ndarray, Sequence[str]] | None,
        first_draw: int | None = None, keys: np.ndarray | None = None) -> dict[str, Any]:
    t0 = time.perf_counter()
    model = MoodModel(config=config, space=space, seed=seed).fit(
        points, raw, names, genre_matrix=genres[0] if genres else None, genre_names=genres[1] if genres else (),
        keys=keys)
    fit_seconds = time.perf_counter() - t0
    first = seed + 1 if first_draw is None else first_draw
    checks = [measure_stability(model, points, share=0.9, draw=first + i, seeds=i == 0) for i in range(subsamples)]
    m = model.metrics_
    sizes = np.bincount(model.labels_)
    return {
        "config": {k: v for k, v in vars(config).items() if k != "weights"},
        "moods": m["clusters"], "hdbscan_core_share": m["hdbscan_core_coverage"], "core_share": m["core_coverage"],
        "fit_tracks": m["fit_tracks"],
        "largest_share": round(float(sizes.max() / len(points)), 4), "smallest": int(sizes.min()),
        "ari_90pct_all_tracks": [c["ari_subsample_all_tracks"] for c in checks],
        "ari_90pct_core_in_both": [c["ari_subsample_core_in_both"] for c in checks],
        "core_in_both_share": [c["core_in_both_share"] for c in checks],
        "subsample_moods": [c["subsample_moods"] for c in checks],
        "ari_seeds": checks[0]["ari_seeds"], "seeds": checks[0]["seeds"],
        "fits": checks[0].get("fits"),  # "k-means" or "octant", with the medoid
        "fits_agree": checks[0].get("fits_agree"),  # the medoid's fits, mean ARI between two (if any)
        "fit_seconds": round(fit_seconds, 1), "stability_seconds": [c["seconds"] for c in checks],
        "names": [c["name"] for c in model.clusters_],
        "table": mood_table(model.clusters_, MOOD_TABLE_FEATURES if space.kind == "perceptual"
                            else tuple(space.names[:6])),
        "vocabulary": m["vocabulary"],
    }


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("csv", type=Path)
    parser.add_argument("--feature-columns", help="comma-separated features (a layout of one's own)")
    parser.add_argument("--id-column")
    parser.add_argument("--config", type=Path, help="a build config file (TOML or JSON): its [schema] is used")
    parser.add_argument("--variant", action="append", default=[], help="[moods] keys k=v,k=v (JSON values)")
    parser.add_argument("--subsamples", type=int, default=2, help="90%% subsample fits per variant")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--first-draw", type=int, help="the first 90%% subsample's draw (default: the seed + 1)")
    parser.add_argument("--rows", type=int, default=0, help="use a random subset of this many tracks (0 = all)")
    parser.add_argument("--json", type=Path, help="write the results here")
    parser.add_argument("--quiet", action="store_true", help="no mood tables")
    parser.add_argument("--smoothing-cache", action="store_true",
                        help="read and keep smoothed points in the cache of benchmarks/mood_consensus.py (the "
                             "same digest of the points and settings): the smoothing is deterministic, so the "
                             "figures are the same (the seconds leave the smoothing out), minutes sooner for "
                             "the k-400 shift of the Spotify data")
    args = parser.parse_args(argv)
    if args.smoothing_cache:
        cache_smoothing()

    schema = schema_for(args.csv, args.feature_columns, args.id_column, args.config)
    t0 = time.perf_counter()
    catalog = read_catalog(args.csv, schema)
    raw, names = catalog.features, list(catalog.feature_names)
    genre_matrix = catalog.genre_matrix() if catalog.genre_names else None
    keys = id_keys(catalog.ids)  # a catalog above fit_sample is fitted on the tracks whose ids hash lowest, as a build
    if args.rows and args.rows < len(raw):
        keep = np.sort(np.random.default_rng(args.seed).choice(len(raw), size=args.rows, replace=False))
        raw, keys = raw[keep], keys[keep]
        genre_matrix = genre_matrix[keep] if genre_matrix is not None else None
    prep = Preprocessor(feature_names=names, transforms=schema.transforms).fit(raw)
    space = mood_space(prep.transformed_names, MoodConfig().weights)
    points = space.project(prep.standardize(raw))
    print(f"{args.csv}: {len(raw):,} tracks, {len(names)} features, read in {time.perf_counter() - t0:.1f} s; "
          f"mood space ({space.kind}): {', '.join(space.names)}", flush=True)
    genres = (genre_matrix, catalog.genre_names) if genre_matrix is not None else None
    results = []
    for text in args.variant or [""]:
        config = MoodConfig(**parse_variant(text))
        r = run(points, raw, names, space, config, seed=args.seed, subsamples=args.subsamples, genres=genres,
                first_draw=args.first_draw, keys=keys)
        r["variant"] = text or "default"
        results.append(r)
        agree = f"; {r['fits']} fits agree {r['fits_agree']}" if r["fits_agree"] is not None else ""
        fitted = f" of the {r['fit_tracks']:,} fitted" if r["fit_tracks"] < len(raw) else ""
        print(f"\n[{r['variant']}] {r['moods']} moods, cores {r['core_share']:.1%} (HDBSCAN's "
              f"{r['hdbscan_core_share']:.1%}{fitted}), largest "
              f"{r['largest_share']:.1%}, smallest {r['smallest']:,}; ARI 90% all tracks {r['ari_90pct_all_tracks']} "
              f"(moods {r['subsample_moods']}), core in both {r['ari_90pct_core_in_both']} over "
              f"{r['core_in_both_share']}; seeds {r['ari_seeds']}{agree}; "
              f"fit {r['fit_seconds']} s, stability {r['stability_seconds']} s", flush=True)
        if not args.quiet:
            print("\n".join(r["table"]))
    report = {
        "command": "python benchmarks/mood_stability.py " + " ".join(sys.argv[1:] if argv is None else argv),
        "machine": {"platform": platform.platform(), "cpus": os.cpu_count(), "python": platform.python_version()},
        "date": time.strftime("%Y-%m-%d", time.gmtime()),
        "csv": str(args.csv), "tracks": len(raw),
        "space": {"kind": space.kind, "features": list(space.names), "why": space.why},
        "results": results,
    }
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(report, indent=1) + "\n", encoding="utf-8")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
