"""The build's whole genre stage under other classifier settings, side by side: time and held-out quality.

Each variant runs ``cross_fit`` (engine/_crossfit.py) exactly as a build does: the k folds grouped by primary
artist, their out-of-fold probabilities, then the shipped model on every labelled track. A variant is the
default ``GenreConfig`` with ``key=value`` overrides (``default`` for none); variants alternate, the order
reversed every other repeat, in one process on the same features. Printed per run: wall seconds (folds and
shipped model), rounds, and the out-of-fold scores the build report carries (top-1/5, macro-F1, ECE, log
loss, family top-1); then the median seconds and their ratio to the first variant.

    .venv/bin/python benchmarks/genre_variants.py ../shared/data/spotify_tracks.csv default subsample=0.5 --repeat 2
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

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from engine import FeatureSchema, GenreConfig, Preprocessor, read_catalog  # noqa: E402
from engine.evaluation import cross_fit  # noqa: E402

DEFAULT_CSV = Path(os.environ.get("MUSICREC_DATA", ROOT.parent / "shared" / "data" / "spotify_tracks.csv"))
SCORES = ("top1", "top5", "macro_f1", "ece_top1", "logloss")


def variant_config(spec: str) -> GenreConfig:
    """``default`` or ``key=value[,key=value]`` over the default GenreConfig (values parsed as JSON)."""
    if spec == "default":
        return GenreConfig()
    overrides: dict[str, Any] = {}
    for item in spec.split(","):
        key, sep, value = item.partition("=")
        if not sep or key not in {f.name for f in dataclasses.fields(GenreConfig)}:
            raise SystemExit(f"genre_variants.py: variant {spec!r}: {item!r} is not key=value of a GenreConfig field")
        try:
            overrides[key] = json.loads(value)
        except json.JSONDecodeError:
            overrides[key] = value
    return dataclasses.replace(GenreConfig(), **overrides)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("csv", type=Path, nargs="?", default=DEFAULT_CSV)
    parser.add_argument("variants", nargs="+", help="'default' or key=value[,key=value] (GenreConfig fields)")
    parser.add_argument("--repeat", type=int, default=1)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--json", type=Path)
    args = parser.parse_args(argv)
    configs = {spec: variant_config(spec) for spec in args.variants}
    schema = FeatureSchema()
    cat = read_catalog(args.csv, schema)
    prep = Preprocessor(feature_names=cat.feature_names, transforms=schema.transforms).fit(cat.features)
    names = prep.transformed_names
    x = prep.transform_features(cat.features)
    seconds: dict[str, list[float]] = {v: [] for v in configs}
    quality: dict[str, dict[str, Any]] = {}
    for r in range(args.repeat):
        for spec in list(configs) if r % 2 == 0 else list(configs)[::-1]:
            t0 = time.perf_counter()
            _, fit = cross_fit(cat, x, names, configs[spec], seed=args.seed)
            seconds[spec].append(time.perf_counter() - t0)
            m = fit.metrics
            families = m["families"].get("top1") if isinstance(m.get("families"), dict) else None
            quality[spec] = {**{k: round(float(m[k]), 4) for k in SCORES}, "family_top1": families,
                             "fold_rounds": m["fold_rounds"], "rounds": m["rounds"],
                             "cv_seconds": m["cv_seconds"], "shipped_seconds": m["final_train_seconds"]}
            print(f"round {r + 1} {spec}: {seconds[spec][-1]:.1f} s ({m['cv_seconds']} s folds "
                  f"{m['fold_rounds']} rounds, {m['final_train_seconds']} s shipped {m['rounds']} rounds); "
                  + ", ".join(f"{k} {quality[spec][k]}" for k in (*SCORES, "family_top1")), flush=True)
    medians = {v: float(np.median(t)) for v, t in seconds.items()}
    first = args.variants[0]
    command = "python benchmarks/genre_variants.py " + " ".join(argv if argv is not None else sys.argv[1:])
    machine = f"{platform.machine()}, {os.cpu_count()} cpus, load average {os.getloadavg()[0]:.1f} at the end"
    print("\nmedian seconds: " + ", ".join(f"{v} {t:.1f} ({t / medians[first]:.2f}x)" for v, t in medians.items()))
    print(f"{command.strip()}  ({machine})")
    if args.json:
        ratios = {v: round(t / medians[first], 3) for v, t in medians.items()}
        args.json.write_text(json.dumps({"command": command.strip(), "machine": machine, "seconds": seconds,
                                         "ratio_to_first": ratios, "quality": quality,
                                         "date": time.strftime("%Y-%m-%d", time.gmtime())}, indent=1) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
