"""What adding 1% of a catalog costs against a full build (issue 11: goal under 10%).

Splits a catalog (a CSV, or a synthetic one) into the first 99% of track ids and the last 1%, builds a
bundle on the 99% with `musicrec index` and adds the 1% with `musicrec add`, each in a fresh process
(wall time includes start-up), then prints both, their ratio and the stage timings of each.

    .venv/bin/python benchmarks/update_cost.py --tracks 20000
    .venv/bin/python benchmarks/update_cost.py ../shared/data/spotify_tracks.csv
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pandas as pd

REPO = Path(__file__).resolve().parents[1]
MUSICREC = [sys.executable, "-c", "import sys; from musicrec.cli import main; sys.exit(main())"]


def run(args: list[str]) -> float:
    t0 = time.perf_counter()
    subprocess.run([*MUSICREC, *args], cwd=REPO, check=True, stdout=subprocess.DEVNULL)
    return time.perf_counter() - t0


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("csv", nargs="?", type=Path, help="catalog CSV (default: a synthetic catalog)")
    ap.add_argument("--tracks", type=int, default=20_000, help="synthetic catalog size (default 20000)")
    ap.add_argument("--share", type=float, default=0.01, help="share of track ids added later (default 0.01)")
    ap.add_argument("--json", dest="json_out", type=Path)
    args = ap.parse_args()
    with tempfile.TemporaryDirectory(prefix="update-cost-") as tmp:
        root = Path(tmp)
        if args.csv is None:
            from engine import synthetic_catalog

            frame = synthetic_catalog(args.tracks, seed=0)
            source = f"synthetic catalog, {args.tracks:,} tracks"
        else:
            frame = pd.read_csv(args.csv)
            source = str(args.csv)
        ids = frame["track_id"].drop_duplicates()
        later = set(ids.sample(frac=args.share, random_state=0))
        frame[~frame["track_id"].isin(later)].to_csv(root / "base.csv", index=False)
        frame[frame["track_id"].isin(later)].to_csv(root / "new.csv", index=False)
        full = run(["index", str(root / "base.csv"), "--out", str(root / "a"), "--quiet",
                    "--json", str(root / "a.json")])
        add = run(["add", str(root / "new.csv"), "--to", str(root / "a"), "--out", str(root / "b"), "--quiet",
                   "--json", str(root / "b.json")])
        built = json.loads((root / "a.json").read_text())
        update = json.loads((root / "b.json").read_text())
    result = {
        "source": source, "tracks": built["counts"]["tracks"], "added": update["added"],
        "full_build_seconds": round(full, 1), "add_seconds": round(add, 1), "ratio": round(add / full, 4),
        "full_build_stages": built["timings_seconds"], "add_stages": update["timings_seconds"],
        "neighbour_table": update["neighbour_table"], "drift": update["drift"]["verdict"],
        "machine": {"cpus": os.cpu_count(), "platform": platform.platform(), "load_average": os.getloadavg()},
        "command": " ".join(["benchmarks/update_cost.py", *sys.argv[1:]]),
    }
    print(json.dumps(result, indent=2))
    if args.json_out:
        args.json_out.write_text(json.dumps(result, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
