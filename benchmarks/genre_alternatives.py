"""Genre classifier alternatives under the honest protocol: what else was tried, side by side.

Same split, features and scoring as the build's evaluation (engine/_genre.py: test and early-stopping
artists held out, top-1/top-5 correct when any of the track's genres). Variants:
- shipped: the default GenreConfig (multi:softprob, one row per track/genre pair);
- co-occurrence: the shipped probabilities mapped to "probability the track is listed under g"
  through genre co-occurrence on the training tracks (score_g = sum_h p_h P(g | h));
- multi-label: one binary:logistic output per genre on the multi-hot labels (multi-output trees);
- kNN blend: 0.7 x shipped + 0.3 x the genre shares of the 50 nearest training tracks
  (standardized features, fitted on the training tracks);
- + explicit: the shipped model with the dataset's explicit flag as one more input (metadata, not
  audio; not used by the product).

    python benchmarks/genre_alternatives.py [CSV] [--json out.json]
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

import faiss
import numpy as np
import xgboost as xgb

from engine import FeatureSchema, GenreClassifier, GenreConfig, Preprocessor, read_catalog
from engine.evaluation import HELD_OUT_FRACTION, genre_metrics, held_out_split, subset_labels

REPO = Path(__file__).resolve().parents[1]
DEFAULT_CSV = Path(os.environ.get("MUSICREC_DATA", REPO.parent / "shared" / "data" / "spotify_tracks.csv"))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("csv", type=Path, nargs="?", default=DEFAULT_CSV)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--json", type=Path)
    args = parser.parse_args(argv)
    faiss.omp_set_num_threads(2)

    schema = FeatureSchema()
    cat = read_catalog(args.csv, schema)
    prep = Preprocessor(feature_names=cat.feature_names, transforms=schema.transforms)
    x = prep.transform_features(cat.features).astype(np.float32)
    cfg = GenreConfig()
    split = held_out_split(cat, HELD_OUT_FRACTION, args.seed)
    truth = cat.genre_matrix()
    test_truth = truth[split.test]
    results: dict[str, dict[str, float]] = {}

    def fit(features: np.ndarray, names: tuple[str, ...]) -> tuple[GenreClassifier, float]:
        t0 = time.perf_counter()
        model = GenreClassifier(genre_names=cat.genre_names, feature_names=names).fit(
            features[split.fit], *subset_labels(cat.genre_indptr, cat.genre_codes, split.fit), cfg,
            rounds=cfg.max_rounds, seed=args.seed,
            eval_set=(features[split.valid], *subset_labels(cat.genre_indptr, cat.genre_codes, split.valid)))
        return model, time.perf_counter() - t0

    def record(name: str, proba: np.ndarray, seconds: float, rounds: int | None = None) -> None:
        m = genre_metrics(proba, test_truth)
        results[name] = {**{k: round(v, 4) for k, v in m.items()}, "train_seconds": round(seconds, 1),
                         "rounds": rounds}
        print(f"{name:<34} top-1 {m['top1']:.4f}  top-5 {m['top5']:.4f}  macro-F1 {m['macro_f1']:.4f}"
              f"  ({seconds:.0f} s)", flush=True)

    shipped, seconds = fit(x, prep.transformed_names)
    proba = shipped.predict_proba(x[split.test])
    record("shipped (softprob, pairs)", proba, seconds, shipped.rounds_)

    train_truth = truth[split.fit].astype(np.float64)
    given = train_truth.T @ train_truth / np.maximum(train_truth.sum(axis=0), 1)[:, None]  # P(g | h)
    record("co-occurrence mapping", proba @ given, 0.0)

    t0 = time.perf_counter()
    params = {"objective": "binary:logistic", "eval_metric": "logloss", "tree_method": "hist",
              "multi_strategy": cfg.multi_strategy, "learning_rate": cfg.learning_rate, "max_depth": cfg.max_depth,
              "max_bin": cfg.max_bin, "colsample_bytree": cfg.colsample_bytree, "nthread": cfg.threads,
              "seed": args.seed}
    dfit = xgb.DMatrix(x[split.fit], label=truth[split.fit].astype(np.float32))
    dvalid = xgb.DMatrix(x[split.valid], label=truth[split.valid].astype(np.float32))
    booster = xgb.train(params, dfit, num_boost_round=cfg.max_rounds, evals=[(dvalid, "valid")],
                        callbacks=[xgb.callback.EarlyStopping(rounds=cfg.early_stopping_rounds, save_best=True)],
                        verbose_eval=False)
    multilabel = np.asarray(booster.inplace_predict(x[split.test])).reshape(len(split.test), -1)
    record("multi-label (binary per genre)", multilabel, time.perf_counter() - t0, booster.num_boosted_rounds())

    train = np.concatenate([split.fit, split.valid])
    mean, std = x[train].mean(axis=0), x[train].std(axis=0)
    z = ((x - mean) / np.where(std > 0, std, 1)).astype(np.float32)
    index = faiss.IndexFlatL2(z.shape[1])
    index.add(z[train])
    shares = truth[train].astype(np.float32)
    shares /= shares.sum(axis=1, keepdims=True)
    t0 = time.perf_counter()
    _, near = index.search(z[split.test], 50)
    knn = shares[near].mean(axis=1)
    record("kNN (50) alone", knn, time.perf_counter() - t0)
    record("0.7 shipped + 0.3 kNN", 0.7 * proba + 0.3 * knn, time.perf_counter() - t0)

    explicit = cat.metadata.get("explicit")
    if explicit is not None:
        with_flag = np.column_stack([x, np.asarray(explicit, dtype=np.float32)])
        model, seconds = fit(with_flag, (*prep.transformed_names, "explicit"))
        record("shipped + explicit flag", model.predict_proba(with_flag[split.test]), seconds, model.rounds_)

    report = {"command": "python benchmarks/genre_alternatives.py " + " ".join(sys.argv[1:]),
              "date": time.strftime("%Y-%m-%d", time.gmtime()), "test_tracks": len(split.test),
              "genres": len(cat.genre_names), "results": results}
    if args.json:
        args.json.write_text(json.dumps(report, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
