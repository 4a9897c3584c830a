"""Full builds at catalog scale: `musicrec index` end to end on a synthetic catalog of N tracks.

benchmarks/scale.py measures only the index stage; this runs the whole build (ingest, preprocessing,
index, moods, classifier, neighbour table, evaluation) in a fresh process per size, so its wall time
and peak RSS (the child's rusage) are that build's alone. The catalog comes from the synthetic
generator (engine.synthetic_catalog: planted genres, artists, duplicate listings and bad rows),
written once per size as CSV or Parquet under --workdir and reused; writing it is not counted.

Reported per size: wall seconds, peak RSS, each stage's seconds (the build report's), what ran on a
sample or an approximate index (mood fit sample, classifier fit sample, index kind, neighbour table),
bundle bytes on disk per track, and the load average before and after (the machine is shared: a
time measured under load is an upper bound).

    python benchmarks/build_scale.py [--tracks 1000000] [--format csv|parquet] [--workdir DIR]
                                     [--json out.json] [-- extra musicrec index flags]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import shutil
import subprocess
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
MUSICREC = Path(sys.executable).with_name("musicrec")


def catalog_file(n: int, fmt: str, workdir: Path) -> tuple[Path, float]:
    """The synthetic catalog of ``n`` tracks (seed 0) as ``fmt``, made once; seconds spent making it now."""
    path = workdir / f"synthetic-{n}.{fmt}"
    if path.exists():
        return path, 0.0
    from engine import synthetic_catalog

    t0 = time.perf_counter()
    frame = synthetic_catalog(n, seed=0)
    tmp = path.with_name(path.name + ".tmp")
    if fmt == "csv":
        frame.to_csv(tmp, index=False)
    else:
        frame.to_parquet(tmp, index=False)
    tmp.rename(path)
    return path, time.perf_counter() - t0


def load() -> str:
    return "load average " + " ".join(f"{x:.2f}" for x in os.getloadavg())


def one_build(source: Path, out: Path, extra: list[str]) -> dict:
    if out.exists():
        shutil.rmtree(out)
    report = out.with_name(out.name + ".json")
    cmd = [str(MUSICREC), "index", str(source), "--out", str(out), "--json", str(report), *extra]
    print("$ " + " ".join(cmd), file=sys.stderr, flush=True)
    before = load()
    t0 = time.perf_counter()
    done = subprocess.run(cmd, cwd=REPO)
    wall = time.perf_counter() - t0
    after = load()
    if done.returncode != 0:
        raise SystemExit(f"musicrec index failed with exit code {done.returncode}")
    manifest = json.loads(report.read_text(encoding="utf-8"))
    peak_mib = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024  # the largest child so far
    files = {p.name: p.stat().st_size for p in out.iterdir() if p.is_file()}
    metrics = manifest["metrics"]
    tracks = manifest["counts"]["tracks"]
    moods = metrics.get("moods", {})
    genre = metrics.get("genre") or {}
    index = metrics.get("index", {})
    return {
        "command": " ".join(cmd), "tracks": tracks, "wall_seconds": round(wall, 1),
        "peak_rss_mib": round(peak_mib, 1), "build_report_peak_mib": manifest.get("peak_memory_mib"),
        "stages_seconds": manifest.get("timings_seconds"),
        "sampled": {
            "moods_fit_tracks": moods.get("fit_tracks"),
            "genre_fit_sample": genre.get("fit_sample"),
            "index_kind": index.get("kind"), "neighbour_table": index.get("neighbour_table"),
        },
        "bundle_bytes": sum(files.values()), "bundle_bytes_per_track": round(sum(files.values()) / tracks, 1),
        "files": files, "load_before": before, "load_after": after,
    }


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    extra: list[str] = []
    if "--" in argv:
        extra, argv = argv[argv.index("--") + 1:], argv[:argv.index("--")]
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--tracks", default="1000000", help="comma-separated catalog sizes")
    parser.add_argument("--format", choices=["csv", "parquet"], default="csv")
    parser.add_argument("--workdir", type=Path, default=Path("/tmp/musicrec-build-scale"))
    parser.add_argument("--json", type=Path)
    args = parser.parse_args(argv)
    args.workdir.mkdir(parents=True, exist_ok=True)
    print(f"# {' '.join([sys.executable, *sys.argv])}\n# {platform.node()}: {os.cpu_count()} cores, "
          f"{platform.python_version()}", flush=True)
    rows = []
    for n in (int(t) for t in args.tracks.split(",")):
        source, made = catalog_file(n, args.format, args.workdir)
        if made:
            print(f"catalog {source}: written in {made:.1f} s (not counted)", file=sys.stderr, flush=True)
        row = one_build(source, args.workdir / f"bundle-{n}", extra)
        rows.append(row)
        stages = ", ".join(f"{k} {v:.0f}" for k, v in (row["stages_seconds"] or {}).items())
        print(f"{n:>10,} tracks ({args.format}): {row['wall_seconds']:.0f} s wall, peak RSS "
              f"{row['peak_rss_mib'] / 1024:.2f} GiB, bundle {row['bundle_bytes_per_track']:.0f} B/track; "
              f"{row['load_before']} -> {row['load_after']}\n    stages (s): {stages}\n    sampled: {row['sampled']}",
              flush=True)
    if args.json:
        args.json.write_text(json.dumps({"machine": platform.node(), "cores": os.cpu_count(), "runs": rows},
                                        indent=2) + "\n", encoding="utf-8")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
