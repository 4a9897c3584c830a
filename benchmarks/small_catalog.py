"""Small catalogs: the build's genre classifier against a random forest, on the same features and folds.

For each catalog (a CSV in the GTZAN layout: an id column, numeric descriptors, a label column, and an
artist column when there is one), an outer k-fold cross-validation, grouped by artist when the table
has one ("by primary artist") and by track otherwise ("by track: no artist column"):

- ``musicrec``: what ``musicrec index`` would ship if the fold's training part were the catalog:
  ``cross_fit`` (engine/_crossfit.py) on the training part, which on a small catalog chooses the
  capacity and rounds by its own inner grouped cross-validation; its shipped model then predicts the
  outer test fold, which nothing in that procedure saw (nested: the choice is honest here);
- ``musicrec, tuned trees alone``: the same with ``genre.blend = false`` (what the logistic regression
  blended into the trees' margin buys: engine/_linear.py);
- ``musicrec, default capacity``: the same with ``genre.tune = false`` (what tuning buys);
- ``random forest``: scikit-learn RandomForestClassifier (500 trees, otherwise its defaults), trained on
  the same training rows and features.

Top-1 per fold, the mean and the paired difference. Features: a GTZAN-layout table (a ``filename`` column and
its descriptors) is read as ``musicrec index`` reads it, with the audio preset (every ``*_var`` through log1p;
``length`` is never a feature), and a table in the Spotify Tracks layout with the Spotify schema (its 13 features,
``key`` on a circle, duration through log1p; rows of one track id merged); any other table's features
are every numeric column but the id, label and artist, untransformed. The forest gets the same inputs.

    .venv/bin/python benchmarks/small_catalog.py                      # generated catalogs (benchmarks/catalogs.py)
    .venv/bin/python benchmarks/small_catalog.py features_30_sec.csv  # GTZAN's table, 5-fold by track
    .venv/bin/python benchmarks/small_catalog.py spotify_subset.csv   # a CSV in the Spotify Tracks layout
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
from typing import Any

import numpy as np
import pandas as pd

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from engine import FeatureSchema, GenreConfig, Preprocessor, audio_schema, clean_catalog, detect_preset  # noqa: E402
from engine.audio import GTZAN_FEATURES  # noqa: E402
from engine.evaluation import assign_folds, cross_fit, split_groups, split_name  # noqa: E402


def features_of(frame: pd.DataFrame, id_col: str, label_col: str, artist_col: str | None) -> tuple[str, ...]:
    if all(f in frame.columns for f in GTZAN_FEATURES):
        return GTZAN_FEATURES
    skip = {id_col, label_col, artist_col, "length"}
    return tuple(c for c in frame.columns if c not in skip and pd.to_numeric(frame[c], errors="coerce").notna().all())


def run_catalog(path: Path, *, folds: int, seed: int, trees: int, id_col: str, label_col: str,
                artist_col: str | None, say: Any) -> dict[str, Any]:
    from sklearn.ensemble import RandomForestClassifier

    frame = pd.read_csv(path, dtype=str, keep_default_na=False)
    if artist_col and artist_col not in frame.columns:
        artist_col = None
    preset = detect_preset(tuple(frame.columns))
    if preset == "audio" and (id_col, label_col) == ("filename", "label"):
        # what `musicrec index` takes for a GTZAN-layout table: the audio preset's schema (log1p of every *_var),
        # and only its schema, deliberately: this compares classifiers on the preset's inputs, where its mood space
        # and whitening (engine.with_audio_preset) play no part
        schema = dataclasses.replace(audio_schema(tuple(frame.columns)), artists_column=artist_col)
        feats = schema.feature_columns
    elif preset == "spotify":  # the Spotify Tracks schema, as the build reads it (popularity is never an input)
        schema = FeatureSchema()
        feats = schema.feature_columns
        id_col, label_col, artist_col = schema.id_column, schema.label_column, schema.artists_column
    else:
        feats = features_of(frame, id_col, label_col, artist_col)
        schema = FeatureSchema.generic(id_column=id_col, feature_columns=feats, label_column=label_col,
                                       artists_column=artist_col)
    prep = Preprocessor(feature_names=feats, transforms=schema.transforms)
    inputs = prep.transformed_names  # the classifier's inputs, as the build makes them
    catalog = clean_catalog(frame, schema, source=str(path))
    groups = split_groups(catalog)
    split = split_name(groups)
    outer = assign_folds(groups, folds, seed)
    x = prep.transform_features(catalog.features).astype(np.float32)
    y = np.array([catalog.genre_codes[catalog.genre_indptr[i]] for i in range(len(catalog))])
    say(f"{path.name}: {len(catalog):,} tracks, {len(catalog.genre_names)} genres, {len(feats)} features; outer "
        f"{folds}-fold split {split}")
    rows: list[dict[str, Any]] = []
    for f in range(folds):
        train, test = np.flatnonzero(outer != f), np.flatnonzero(outer == f)
        # the training part's rows by track id: a catalog that merges rows of one id (Spotify's) has fewer
        # tracks than rows, so positions in the catalog are not positions in the file
        mine = frame[schema.id_column].isin(set(catalog.ids[train].tolist()))
        sub = clean_catalog(frame[mine].reset_index(drop=True), schema, source=str(path))
        assert len(sub) == len(train), "the training part is the catalog's training tracks"
        # clean_catalog keeps row order and the genre order of first appearance: map the model's classes back
        names = sub.genre_names
        row: dict[str, Any] = {"fold": f, "train": len(train), "test": len(test)}
        for variant, config in (("musicrec", GenreConfig()), ("musicrec_trees", GenreConfig(blend=False)),
                                ("musicrec_default", GenreConfig(tune=False))):
            t0 = time.perf_counter()
            model, fit = cross_fit(sub, prep.transform_features(sub.features).astype(np.float32), inputs, config,
                                   seed=seed)
            proba = model.predict_proba(x[test])
            predicted = np.array([catalog.genre_names.index(names[j]) for j in proba.argmax(axis=1)])
            row[variant] = float((predicted == y[test]).mean())
            row[f"{variant}_seconds"] = round(time.perf_counter() - t0, 1)
            row[f"{variant}_inner_cv_top1"] = round(fit.metrics["top1"], 4)
            if variant == "musicrec":
                row["chosen"] = fit.metrics["tuning"].get("chosen")
                # a training part of small_catalog (20,000) labelled tracks or more is not tuned, nor blended
                row["blend_weight"] = fit.metrics["tuning"].get("linear", {}).get("weight", 0.0)
        t0 = time.perf_counter()
        forest = RandomForestClassifier(n_estimators=trees, n_jobs=2, random_state=seed).fit(x[train], y[train])
        row["random_forest"] = float((forest.predict(x[test]) == y[test]).mean())
        row["random_forest_seconds"] = round(time.perf_counter() - t0, 1)
        say(f"  fold {f + 1}/{folds}: musicrec {row['musicrec']:.3f} ({row['chosen']}, blend weight "
            f"{row['blend_weight']:g}), trees alone {row['musicrec_trees']:.3f}, default capacity "
            f"{row['musicrec_default']:.3f}, random forest {row['random_forest']:.3f}")
        rows.append(row)
    summary = {k: round(float(np.mean([r[k] for r in rows])), 4)
               for k in ("musicrec", "musicrec_trees", "musicrec_default", "random_forest")}
    diff = [r["musicrec"] - r["random_forest"] for r in rows]
    return {"csv": str(path), "tracks": len(catalog), "genres": len(catalog.genre_names), "features": len(feats),
            "split": split, "folds": folds, "mean_top1": summary,
            "musicrec_minus_forest": {"mean": round(float(np.mean(diff)), 4), "min": round(float(np.min(diff)), 4),
                                      "max": round(float(np.max(diff)), 4)},
            "per_fold": rows}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("csv", type=Path, nargs="*", help="catalogs (default: generated ones, see --catalog-seeds)")
    parser.add_argument("--catalog-seeds", default="0,1", help="seeds of generated catalogs when no CSV is given")
    parser.add_argument("--folds", type=int, default=5)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--trees", type=int, default=500, help="random forest trees (default 500)")
    parser.add_argument("--id-column", default="filename")
    parser.add_argument("--label-column", default="label")
    parser.add_argument("--artist-column", default="artist", help="used when the table has it")
    parser.add_argument("--json", type=Path)
    args = parser.parse_args(argv)

    def say(msg: str) -> None:
        print(msg, flush=True)

    paths = list(args.csv)
    if not paths:
        from benchmarks.catalogs import catalog

        paths = [catalog(seed=int(s)) for s in args.catalog_seeds.split(",")]
    t0 = time.perf_counter()
    results = [run_catalog(p, folds=args.folds, seed=args.seed, trees=args.trees, id_col=args.id_column,
                           label_col=args.label_column, artist_col=args.artist_column, say=say) for p in paths]
    print()
    print("| catalog | tracks | genres | split | musicrec | tuned trees alone | default capacity | "
          "random forest (500) | musicrec - forest (min..max over folds) |")
    print("|---|---|---|---|---|---|---|---|---|")
    for r in results:
        m, d = r["mean_top1"], r["musicrec_minus_forest"]
        print(f"| {Path(r['csv']).name} | {r['tracks']:,} | {r['genres']} | {r['split']} | {m['musicrec']:.3f} | "
              f"{m['musicrec_trees']:.3f} | {m['musicrec_default']:.3f} | {m['random_forest']:.3f} | "
              f"{d['mean']:+.3f} ({d['min']:+.3f}.."
              f"{d['max']:+.3f}) |")
    command = "python benchmarks/small_catalog.py " + " ".join(argv if argv is not None else sys.argv[1:])
    machine = f"{platform.machine()}, {os.cpu_count()} cpus, python {platform.python_version()}"
    print(f"\n{command.strip()}  ({machine}; {time.perf_counter() - t0:.0f} s)")
    if args.json:
        args.json.write_text(json.dumps({"command": command.strip(), "machine": machine,
                                         "date": time.strftime("%Y-%m-%d", time.gmtime()), "catalogs": results},
                                        indent=1) + "\n", encoding="utf-8")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
