"""What a server's start pays before it can answer: a fresh process that imports the engine, loads a bundle
and builds the Recommender over it, as `musicrec serve` does before it binds.

Each run is a fresh Python process; its wall time, its CPU time and its resident memory (VmRSS) after the
import and after the load are read inside it. With several ``--tree`` source trees (say the working tree and
``git worktree add /tmp/old HEAD~1``) the trees run in turn, round by round, in rotated order, so load on the
machine hits all alike; each tree's medians, the median of its per-round ratios to the first tree, and which
heavy modules it imported are printed.

    python benchmarks/serve_startup.py --bundle bundles/current [--tree . --tree /tmp/old] [--repeat 9]
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
from pathlib import Path

from _timing import paired, report_run, rotated  # benchmarks/_timing.py

REPO = Path(__file__).resolve().parents[1]
HEAVY = ("xgboost", "sklearn", "scipy", "hdbscan", "pandas", "faiss", "numba", "grpc")

_PROBE = """\
import json, os, sys, time
t0, c0 = time.perf_counter(), time.process_time()
sys.path.insert(0, sys.argv[1])
def rss():
    with open("/proc/self/status") as fh:
        return next(int(line.split()[1]) / 1024 for line in fh if line.startswith("VmRSS"))
import engine
imported, rss_imported = time.perf_counter() - t0, rss()
engine.Recommender(engine.load_bundle(sys.argv[2]))
print(json.dumps({"import_s": imported, "total_s": time.perf_counter() - t0, "cpu_s": time.process_time() - c0,
                  "rss_imported_mib": rss_imported, "rss_loaded_mib": rss(), "engine": engine.__file__,
                  "heavy": sorted(h for h in %r if h in sys.modules)}))
"""


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--bundle", type=Path, required=True, help="the bundle every run loads")
    parser.add_argument("--tree", type=Path, action="append", help="a source tree to run (repeatable; default: this "
                        "repository)")
    parser.add_argument("--repeat", type=int, default=9, help="runs per tree (default 9)")
    parser.add_argument("--json", type=Path, help="write the results here as JSON")
    args = parser.parse_args(argv)
    trees = [t.resolve() for t in args.tree or [REPO]]
    runs: dict[Path, list[dict]] = {t: [] for t in trees}
    for i in range(args.repeat):
        for tree in rotated(trees, i):
            done = subprocess.run([sys.executable, "-c", _PROBE % (HEAVY,), str(tree), str(args.bundle)],
                                  capture_output=True, text=True, check=False)
            if done.returncode != 0:
                print(done.stderr, file=sys.stderr)
                return 1
            run = json.loads(done.stdout.strip().splitlines()[-1])
            if not run["engine"].startswith(str(tree)):
                print(f"{tree}: the engine came from {run['engine']}", file=sys.stderr)
                return 1
            runs[tree].append(run)
        print(f"round {i + 1}/{args.repeat}", file=sys.stderr, flush=True)
    keys = ("import_s", "total_s", "cpu_s", "rss_imported_mib", "rss_loaded_mib")
    rows = []
    for tree in trees:
        median = {k: round(statistics.median(r[k] for r in runs[tree]), 3) for k in keys}
        ratio = {k: paired([r[k] for r in runs[tree]], [r[k] for r in runs[trees[0]]])["median"] for k in keys}
        rows.append({"tree": str(tree), "median": median, "ratio_to_first": ratio, "heavy": runs[tree][0]["heavy"]})
        print(f"{tree}: " + ", ".join(f"{k} {median[k]} ({ratio[k]}x)" for k in keys)
              + f"; imported {rows[-1]['heavy']}")
    report_run("serve_startup.py", argv, args.json, {"bundle": str(args.bundle), "repeat": args.repeat, "rows": rows})
    return 0


if __name__ == "__main__":
    sys.exit(main())
