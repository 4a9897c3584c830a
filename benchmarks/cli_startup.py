"""CLI start-up benchmark: wall time of `musicrec --help`, `musicrec index --help`, `musicrec query --help`.

Each run is a fresh process running the installed `musicrec` console script, so the figure is what a person
typing the command waits for: interpreter start-up, imports and argument parsing. The floor is a bare
`python -c pass` measured the same way, alternating with the commands so load on the machine hits all alike.
One more run per command (not timed) lists which heavy modules it imported.

    python benchmarks/cli_startup.py [--repeat 15] [--json out.json]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import subprocess
import sys
import time
from pathlib import Path

COMMANDS = (("--help",), ("index", "--help"), ("query", "--help"), ("serve", "--help"))
# The modules that make start-up slow (and, for grpc/protobuf, the ones `musicrec index` must never need).
HEAVY = ("grpc", "google.protobuf", "xgboost", "faiss", "sklearn", "pandas", "hdbscan")

_PROBE = """\
import json, sys
from musicrec.cli import main
try:
    main(sys.argv[1:])
except SystemExit:
    pass
heavy = %r
print(json.dumps(sorted(h for h in heavy if h in sys.modules)))
"""


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--repeat", type=int, default=15, help="runs per command (default 15)")
    parser.add_argument("--json", type=Path, help="write the results here as JSON")
    args = parser.parse_args(argv)

    musicrec = str(Path(sys.executable).with_name("musicrec"))
    floor = ("python -c pass", [sys.executable, "-c", "pass"])
    cases = [floor] + [("musicrec " + " ".join(c), [musicrec, *c]) for c in COMMANDS]
    times: dict[str, list[float]] = {label: [] for label, _ in cases}
    for i in range(args.repeat):
        for label, cmd in cases:  # interleaved: a burst of load on the machine affects every command alike
            times[label].append(_run(cmd))
        print(f"round {i + 1}/{args.repeat}", file=sys.stderr, flush=True)
    heavy = {f"musicrec {' '.join(c)}": _heavy_modules(c) for c in COMMANDS}

    floor_median = statistics.median(times[floor[0]])
    rows = []
    for label, _ in cases:
        median = statistics.median(times[label])
        rows.append({"command": label, "median_seconds": round(median, 3), "min_seconds": round(min(times[label]), 3),
                     "ratio_to_floor": round(median / floor_median, 1), "heavy_modules": heavy.get(label, [])})
    result = {
        "command": f"python benchmarks/cli_startup.py --repeat {args.repeat}",
        "date": time.strftime("%Y-%m-%d", time.gmtime()),
        "machine": {"cpus": os.cpu_count(), "platform": platform.platform(), "python": platform.python_version()},
        "results": rows,
    }
    print(f"\n{result['command']}\n{result['date']}, {result['machine']['cpus']} cpus, {result['machine']['platform']},"
          f" Python {result['machine']['python']}; median of {args.repeat} fresh processes\n")
    print(f"{'command':<26} {'median':>8} {'min':>8} {'x floor':>8}  heavy modules imported")
    for r in rows:
        print(f"{r['command']:<26} {r['median_seconds']:7.3f}s {r['min_seconds']:7.3f}s {r['ratio_to_floor']:8.1f}  "
              + (", ".join(r["heavy_modules"]) or "-"))
    if args.json:
        args.json.write_text(json.dumps(result, indent=2) + "\n")
    return 0


def _run(cmd: list[str]) -> float:
    t0 = time.perf_counter()
    done = subprocess.run(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, check=False)
    wall = time.perf_counter() - t0
    if done.returncode != 0:
        raise SystemExit(f"{' '.join(cmd)} failed ({done.returncode}):\n{done.stderr.decode()}")
    return wall


def _heavy_modules(argv: tuple[str, ...]) -> list[str]:
    # -P: import what the timed `musicrec` imports, not whatever the current directory holds
    done = subprocess.run([sys.executable, "-P", "-c", _PROBE % (HEAVY,), *argv], capture_output=True, text=True,
                          check=True)
    return list(json.loads(done.stdout.strip().splitlines()[-1]))


if __name__ == "__main__":
    sys.exit(main())
