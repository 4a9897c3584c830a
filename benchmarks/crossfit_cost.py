"""What cross-fitting costs the build's genre stage: the protocol before it against the one now, side by side.

- ``before``: one evaluation model (train on the fit artists, early stopping on the validation artists,
  score the test artists: ``evaluate_genre_classifier``), then the shipped model on every track for its
  rounds; by-id queries then read the shipped model's in-sample probabilities (``predict_proba`` of every
  track, as the neighbour table did);
- ``now``: ``cross_fit`` (engine/_crossfit.py): k folds, out-of-fold probabilities of every track, then
  the shipped model.

Same catalog, features, configuration and process; the two run alternately ``--repeat`` times and each
one's wall seconds are printed, with the ratio of medians. Also prints both evaluations' top-1.

    .venv/bin/python benchmarks/crossfit_cost.py ../shared/data/spotify_tracks.csv --repeat 1
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

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from engine import FeatureSchema, GenreClassifier, GenreConfig, Preprocessor, read_catalog  # noqa: E402
from engine.evaluation import cross_fit, evaluate_genre_classifier, subset_labels  # noqa: E402

DEFAULT_CSV = Path(os.environ.get("MUSICREC_DATA", ROOT.parent / "shared" / "data" / "spotify_tracks.csv"))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("csv", type=Path, nargs="?", default=DEFAULT_CSV)
    parser.add_argument("--repeat", type=int, default=1)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--variants", default="before,now", help="which to run (default both, alternating)")
    parser.add_argument("--json", type=Path)
    args = parser.parse_args(argv)
    schema = FeatureSchema()
    cat = read_catalog(args.csv, schema)
    prep = Preprocessor(feature_names=cat.feature_names, transforms=schema.transforms).fit(cat.features)
    names = prep.transformed_names
    x = prep.transform_features(cat.features)
    config = GenreConfig()
    labelled = np.flatnonzero(np.diff(cat.genre_indptr) > 0)
    wanted = [v for v in ("before", "now") if v in args.variants.split(",")]
    runs: dict[str, list[float]] = {v: [] for v in wanted}
    top1: dict[str, float] = {}
    for r in range(args.repeat):
        for variant in wanted if r % 2 == 0 else wanted[::-1]:
            t0 = time.perf_counter()
            if variant == "before":
                model, _, metrics = evaluate_genre_classifier(cat, x, names, config, seed=args.seed)
                shipped = GenreClassifier(genre_names=cat.genre_names, feature_names=names).fit(
                    x[labelled], *subset_labels(cat.genre_indptr, cat.genre_codes, labelled), config,
                    rounds=model.rounds_, seed=args.seed)
                shipped.predict_proba(x)
            else:
                _, fit = cross_fit(cat, x, names, config, seed=args.seed)
                metrics = fit.metrics
                m = fit.metrics
                print(f"  folds {m['folds']} ({m['split']}), fold rounds {m['fold_rounds']}, shipped {m['rounds']} "
                      f"rounds; cross-validation {m['cv_seconds']} s, shipped model {m['final_train_seconds']} s; "
                      f"top-1/2/3 {m['top1']:.4f} {m['top2']:.4f} {m['top3']:.4f}", flush=True)
            runs[variant].append(time.perf_counter() - t0)
            top1[variant] = round(metrics["top1"], 4)
            print(f"round {r + 1} {variant}: {runs[variant][-1]:.1f} s, top-1 {metrics['top1']:.4f} "
                  f"({metrics.get('protocol', '')[:60]}...)", flush=True)
    medians = {v: float(np.median(t)) for v, t in runs.items()}
    command = "python benchmarks/crossfit_cost.py " + " ".join(argv if argv is not None else sys.argv[1:])
    machine = f"{platform.machine()}, {os.cpu_count()} cpus, load average {os.getloadavg()[0]:.1f} at the end"
    ratio = medians["now"] / medians["before"] if len(medians) == 2 else None
    print("\nmedian seconds: " + ", ".join(f"{v} {t:.1f}" for v, t in medians.items())
          + (f", ratio now / before {ratio:.2f}" if ratio else ""))
    print(f"{command.strip()}  ({machine})")
    if args.json:
        args.json.write_text(json.dumps({"command": command.strip(), "machine": machine, "seconds": runs,
                                         "ratio_of_medians": ratio and round(ratio, 3), "top1": top1,
                                         "date": time.strftime("%Y-%m-%d", time.gmtime())}, indent=1) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
