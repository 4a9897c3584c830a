"""What XGBoost's per-round evaluation of the training set cost the genre stage, side by side.

Until 2026-12-03 every genre model (the cross-fitting folds and the shipped model, engine/_genre.py) was
trained with ``evals=[(dtrain, "train"), ...]``: XGBoost computed the multi-class log loss of every training
row after every round, 114 softmax columns per row, and nothing read it (the progress line and early
stopping read the "valid" set). Both variants train the same model on the same rows with the build's
parameters; this prints each one's wall seconds (alternating, ``--repeat`` times each), the ratio of
medians, and whether the two models' probabilities agree bit for bit.

    .venv/bin/python benchmarks/train_eval_cost.py ../shared/data/spotify_tracks.csv --rounds 30 --repeat 2
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import time
from pathlib import Path

import numpy as np
import xgboost as xgb

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from engine import FeatureSchema, GenreClassifier, GenreConfig, Preprocessor, read_catalog  # noqa: E402
from engine._genre import _params  # noqa: E402
from engine.evaluation import subset_labels  # noqa: E402

DEFAULT_CSV = Path(os.environ.get("MUSICREC_DATA", ROOT.parent / "shared" / "data" / "spotify_tracks.csv"))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("csv", type=Path, nargs="?", default=DEFAULT_CSV)
    parser.add_argument("--rounds", type=int, default=30)
    parser.add_argument("--repeat", type=int, default=2)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--json", type=Path)
    args = parser.parse_args(argv)
    schema = FeatureSchema()
    cat = read_catalog(args.csv, schema)
    prep = Preprocessor(feature_names=cat.feature_names, transforms=schema.transforms).fit(cat.features)
    x = prep.transform_features(cat.features).astype(np.float32)
    labelled = np.flatnonzero(np.diff(cat.genre_indptr) > 0)
    model = GenreClassifier(genre_names=cat.genre_names, feature_names=prep.transformed_names)
    dtrain = model._pairs_matrix(x[labelled], *subset_labels(cat.genre_indptr, cat.genre_codes, labelled))
    params = _params(GenreConfig(), len(cat.genre_names), args.seed)
    probe = x[:2000]
    runs: dict[str, list[float]] = {"train set evaluated": [], "not evaluated": []}
    proba: dict[str, np.ndarray] = {}
    for r in range(args.repeat):
        for variant in list(runs) if r % 2 == 0 else list(runs)[::-1]:
            evals = [(dtrain, "train")] if variant == "train set evaluated" else []
            t0 = time.perf_counter()
            booster = xgb.train(params, dtrain, num_boost_round=args.rounds, evals=evals, verbose_eval=False)
            runs[variant].append(time.perf_counter() - t0)
            proba[variant] = booster.predict(xgb.DMatrix(probe, feature_names=list(prep.transformed_names)))
            print(f"round {r + 1} {variant}: {runs[variant][-1]:.1f} s", flush=True)
    medians = {v: float(np.median(t)) for v, t in runs.items()}
    ratio = medians["not evaluated"] / medians["train set evaluated"]
    same = bool(np.array_equal(*proba.values()))
    command = "python benchmarks/train_eval_cost.py " + " ".join(argv if argv is not None else sys.argv[1:])
    machine = f"{platform.machine()}, {os.cpu_count()} cpus, load average {os.getloadavg()[0]:.1f} at the end"
    print(f"\n{dtrain.num_row():,} training rows, {len(cat.genre_names)} genres, {args.rounds} rounds")
    print("median seconds: " + ", ".join(f"{v} {t:.1f}" for v, t in medians.items())
          + f", ratio {ratio:.3f}; probabilities identical bit for bit: {same}")
    print(f"{command.strip()}  ({machine})")
    if args.json:
        args.json.write_text(json.dumps({"command": command.strip(), "machine": machine, "seconds": runs,
                                         "ratio_of_medians": round(ratio, 3), "identical": same,
                                         "date": time.strftime("%Y-%m-%d", time.gmtime())}, indent=1) + "\n")
    return 0 if same else 1


if __name__ == "__main__":
    raise SystemExit(main())
