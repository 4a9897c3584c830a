"""What OpenMP's wait policy costs the build's parallel stages, on a quiet machine and beside a busy core.

XGBoost, FAISS and scikit-learn each ship GNU OpenMP (libgomp), whose idle threads spin ("active")
before they sleep by default. On 2 cores shared with anything else (a second test worker, a server,
another build) a spinning thread holds the core the other thread of the same team waits for. The
engine sets ``OMP_WAIT_POLICY=passive`` unless the environment says otherwise (engine/_openmp.py);
this script measures the two policies side by side.

Each run is a fresh process (the policy is read once, when libgomp loads) doing one workload:

- ``genre``: the genre classifier's training (GenreClassifier.fit, the default configuration) on
  every labelled track of the catalog for ``--rounds`` rounds;
- ``neighbours``: the neighbour table's candidate search (a flat FAISS index of the catalog's
  vectors, every track's 265 nearest, in batches of 4,096 as engine/_table.py searches).

Policies alternate run by run, the order rotated each round, with and without a process spinning on
one core beside them (``--busy``). Reported: each run's wall and CPU seconds, medians per cell and
the passive/active ratio of medians.

    .venv/bin/python benchmarks/omp_wait.py ../shared/data/spotify_tracks.csv --repeat 3
"""

from __future__ import annotations

import argparse
import json
import multiprocessing as mp
import os
import platform
import statistics
import subprocess
import sys
import time
from pathlib import Path

from _timing import rotated

ROOT = Path(__file__).resolve().parents[1]
DEFAULT_CSV = Path(os.environ.get("MUSICREC_DATA", ROOT.parent / "shared" / "data" / "spotify_tracks.csv"))
POLICIES = ("active", "passive")

CHILD = r"""
import os, sys, time, json
sys.path.insert(0, {root!r})
import numpy as np
from engine import FeatureSchema, GenreClassifier, GenreConfig, Preprocessor, read_catalog
from engine.evaluation import subset_labels
schema = FeatureSchema()
cat = read_catalog({csv!r}, schema)
prep = Preprocessor(feature_names=cat.feature_names, transforms=schema.transforms).fit(cat.features)
x = prep.transform_features(cat.features)
if {workload!r} == "genre":
    labelled = np.flatnonzero(np.diff(cat.genre_indptr) > 0)
    args = (x[labelled], *subset_labels(cat.genre_indptr, cat.genre_codes, labelled))
    def work():
        GenreClassifier(genre_names=cat.genre_names, feature_names=prep.transformed_names).fit(
            *args, GenreConfig(), rounds={rounds}, seed=0)
else:
    import faiss
    v = (x - x.mean(axis=0)) / x.std(axis=0)  # standardized, on the unit sphere: the index's kind of rows
    v = np.ascontiguousarray(v / np.linalg.norm(v, axis=1, keepdims=True), dtype=np.float32)
    index = faiss.IndexFlatIP(v.shape[1]); index.add(v)
    def work():
        for start in range(0, len(v), 4096):
            index.search(v[start:start + 4096], 265)
t0, c0 = time.perf_counter(), os.times()
work()
c1 = os.times()
print(json.dumps({{"wall": time.perf_counter() - t0, "cpu": c1.user + c1.system - c0.user - c0.system}}))
"""


def spin(stop: object) -> None:
    while not stop.is_set():  # type: ignore[attr-defined]
        pass


def run(policy: str, workload: str, csv: Path, rounds: int) -> dict[str, float]:
    env = dict(os.environ, OMP_WAIT_POLICY=policy)
    code = CHILD.format(root=str(ROOT), csv=str(csv), workload=workload, rounds=rounds)
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, check=True)
    return json.loads(out.stdout.strip().splitlines()[-1])


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("csv", type=Path, nargs="?", default=DEFAULT_CSV)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--rounds", type=int, default=25, help="genre: boosting rounds per run")
    parser.add_argument("--workloads", default="genre,neighbours")
    parser.add_argument("--json", type=Path)
    args = parser.parse_args(argv)
    results: dict[str, dict[str, list[dict[str, float]]]] = {}
    for busy in (False, True):
        stop = mp.Event()
        hog = mp.Process(target=spin, args=(stop,), daemon=True) if busy else None
        if hog:
            hog.start()
        try:
            for workload in args.workloads.split(","):
                cell = f"{workload}, {'one core busy' if busy else 'quiet'}"
                results[cell] = {p: [] for p in POLICIES}
                for r in range(args.repeat):
                    for policy in rotated(POLICIES, r):
                        m = run(policy, workload, args.csv, args.rounds)
                        results[cell][policy].append(m)
                        print(f"{cell:28s} round {r + 1} {policy:8s} wall {m['wall']:6.1f} s  cpu {m['cpu']:6.1f} s",
                              flush=True)
        finally:
            if hog:
                stop.set()
                hog.join()
    summary = {}
    print()
    for cell, by in results.items():
        med = {p: {k: statistics.median(m[k] for m in runs) for k in ("wall", "cpu")} for p, runs in by.items()}
        ratio = {k: med["passive"][k] / med["active"][k] for k in ("wall", "cpu")}
        summary[cell] = {"median": med, "passive_over_active": {k: round(v, 3) for k, v in ratio.items()}}
        print(f"{cell:28s} median wall active {med['active']['wall']:6.1f} s, passive {med['passive']['wall']:6.1f} s "
              f"({ratio['wall']:.2f}x); cpu {med['active']['cpu']:6.1f} -> {med['passive']['cpu']:6.1f} s "
              f"({ratio['cpu']:.2f}x)")
    command = "python benchmarks/omp_wait.py " + " ".join(argv if argv is not None else sys.argv[1:])
    machine = f"{platform.machine()}, {os.cpu_count()} cpus"
    print(f"{command.strip()}  ({machine})")
    if args.json:
        args.json.write_text(json.dumps({"command": command.strip(), "machine": machine, "runs": results,
                                         "summary": summary, "date": time.strftime("%Y-%m-%d", time.gmtime())},
                                        indent=1) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
