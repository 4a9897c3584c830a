"""Ingest speed: a catalog read and cleaned three ways, side by side in one process, alternating rounds.

- ``csv typed``: what ``read_catalog`` does for a CSV (feature columns parsed by pandas' C parser);
- ``csv text``: every cell read as text, then each feature column parsed with its row numbers (what
  the reader did before, and what it still falls back to when a cell does not parse);
- ``parquet``: the same rows as a Parquet file (written once beside the CSV, not counted).

Medians over the rounds and the ratio text/typed; the three catalogs are checked equal.

    python benchmarks/ingest.py [CSV] [--rounds 3]
"""

from __future__ import annotations

import argparse
import os
import platform
import statistics
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd

from engine import FeatureSchema, clean_catalog, read_catalog
from engine._readers import read_csv_frame

REPO = Path(__file__).resolve().parents[1]
DEFAULT_CSV = Path(os.environ.get("MUSICREC_DATA", REPO.parent / "shared" / "data" / "spotify_tracks.csv"))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("csv", type=Path, nargs="?", default=DEFAULT_CSV)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--parquet", type=Path, help="where to write the Parquet copy (default: /tmp)")
    args = parser.parse_args(argv)
    schema = FeatureSchema()
    parquet = args.parquet or Path("/tmp") / f"{args.csv.stem}.parquet"
    if not parquet.exists():
        pd.read_csv(args.csv).to_parquet(parquet, index=False)
    print(f"# {' '.join([sys.executable, *sys.argv])}\n# {platform.node()}: {os.cpu_count()} cores; load average "
          + " ".join(f"{x:.2f}" for x in os.getloadavg()), flush=True)
    ways = {
        "csv typed": lambda: read_catalog(args.csv, schema),
        "csv text": lambda: clean_catalog(read_csv_frame(args.csv), schema, source=str(args.csv)),
        "parquet": lambda: read_catalog(parquet, schema),
    }
    times: dict[str, list[float]] = {name: [] for name in ways}
    last = {}
    for r in range(args.rounds):
        for name, way in (ways.items() if r % 2 == 0 else reversed(ways.items())):
            t0 = time.perf_counter()
            last[name] = way()
            times[name].append(time.perf_counter() - t0)
    ref = last["csv text"]
    for name, cat in last.items():
        assert np.array_equal(cat.ids, ref.ids) and np.array_equal(cat.features, ref.features, equal_nan=True), name
        assert cat.report.to_json() == ref.report.to_json(), name
    med = {name: statistics.median(t) for name, t in times.items()}
    print(f"{args.csv} ({ref.report.rows_read:,} rows -> {ref.report.tracks:,} tracks), {args.rounds} rounds; "
          "the three catalogs are equal")
    for name, t in times.items():
        print(f"  {name:<10} median {med[name]:6.2f} s  (rounds: {', '.join(f'{x:.2f}' for x in t)})")
    print(f"  text / typed: {med['csv text'] / med['csv typed']:.2f}x; parquet / typed: "
          f"{med['parquet'] / med['csv typed']:.2f}x; load average now "
          + " ".join(f"{x:.2f}" for x in os.getloadavg()))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
