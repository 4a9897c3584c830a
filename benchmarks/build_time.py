"""Build-time benchmark: full `musicrec index` runs on a catalog, stage timings and peak memory.

Each run is a fresh process (so peak RSS is that build's alone, read from the child's rusage).
Reports the median of each stage over the runs and the worst peak memory.

    python benchmarks/build_time.py [CSV] [--repeat 3] [--json out.json] [-- extra musicrec index flags]

CSV defaults to $MUSICREC_DATA or ../shared/data/spotify_tracks.csv.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
DEFAULT_CSV = Path(os.environ.get("MUSICREC_DATA", REPO.parent / "shared" / "data" / "spotify_tracks.csv"))


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    extra: list[str] = []
    if "--" in argv:
        extra = argv[argv.index("--") + 1:]
        argv = argv[: argv.index("--")]
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("csv", type=Path, nargs="?", default=DEFAULT_CSV)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--json", type=Path, help="write the results here as JSON")
    args = parser.parse_args(argv)
    if not args.csv.is_file():
        print(f"no catalog at {args.csv}; pass a CSV path or set MUSICREC_DATA", file=sys.stderr)
        return 2

    musicrec = Path(sys.executable).with_name("musicrec")
    runs = []
    with tempfile.TemporaryDirectory() as tmp:
        for i in range(args.repeat):
            out = Path(tmp) / f"b{i}"
            cmd = [str(musicrec), "index", str(args.csv), "--out", str(out), "--json", str(Path(tmp) / f"r{i}.json"),
                   "--quiet", *extra]
            before = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
            t0 = time.perf_counter()
            done = subprocess.run(cmd, capture_output=True, text=True, check=False)
            wall = time.perf_counter() - t0
            if done.returncode != 0:
                print(done.stderr, file=sys.stderr)
                return done.returncode
            manifest = json.loads((Path(tmp) / f"r{i}.json").read_text())
            # RUSAGE_CHILDREN's maxrss is the largest child so far; the builds are alike, so the
            # last value is the worst run's peak. The manifest's own figure is the in-process one.
            peak = max(resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss, before) / 1024
            runs.append({"wall_seconds": round(wall, 2), "stages": manifest["timings_seconds"],
                         "peak_rss_mib": round(peak, 1), "metrics": manifest["metrics"],
                         "tracks": manifest["counts"]["tracks"]})
            print(f"run {i + 1}/{args.repeat}: {wall:.1f} s wall, peak {peak:,.0f} MiB, stages "
                  + ", ".join(f"{k} {v:.1f}" for k, v in manifest["timings_seconds"].items()), file=sys.stderr)

    stages = {k: round(statistics.median(r["stages"][k] for r in runs), 2) for k in runs[0]["stages"]}
    result = {
        "command": " ".join(["python", "benchmarks/build_time.py", str(args.csv), "--repeat", str(args.repeat),
                             *(["--", *extra] if extra else [])]),
        "date": time.strftime("%Y-%m-%d", time.gmtime()),
        "machine": {"cpus": os.cpu_count(), "memory_gib": _memory_gib(), "platform": platform.platform()},
        "tracks": runs[0]["tracks"],
        "median_wall_seconds": round(statistics.median(r["wall_seconds"] for r in runs), 1),
        "median_stage_seconds": stages,
        "max_peak_rss_mib": max(r["peak_rss_mib"] for r in runs),
        "runs": runs,
    }
    print(f"\n{result['command']}\n{result['date']}, {result['machine']['cpus']} cpus, "
          f"{result['machine']['memory_gib']} GiB\n")
    print(f"tracks               {result['tracks']:,}")
    print(f"wall (median of {args.repeat})   {result['median_wall_seconds']:.1f} s")
    for k, v in stages.items():
        print(f"  {k:<18} {v:7.1f} s")
    print(f"peak memory          {result['max_peak_rss_mib']:,.0f} MiB")
    if args.json:
        args.json.write_text(json.dumps(result, indent=2) + "\n")
    return 0


def _memory_gib() -> float:
    with open("/proc/meminfo") as fh:
        kib = int(fh.readline().split()[1])
    return round(kib / 1024**2, 1)


if __name__ == "__main__":
    sys.exit(main())
