"""Soak: sustained concurrent load while the server hot-reloads bundles, nothing may fail.

Starts `musicrec serve --watch` on a `current` link, then runs closed-loop SimilarTracks load in
three windows: before, during (the link is repointed between two bundles every few seconds, so the
server verifies, loads and swaps a bundle each time) and after. Reports requests and errors by
status per window (only RESOURCE_EXHAUSTED, a documented overload answer, would be acceptable),
p50/p99 per window, and the server's RSS sampled twice a second (start, max, end).

    python benchmarks/soak.py BUNDLE_A [BUNDLE_B] [--before 20] [--during 120] [--after 20]
        [--reload-every 5] [--concurrency 32] [--json out.json]

Without BUNDLE_B a copy of BUNDLE_A is used (same content, separate directory: each swap is
still a full verify + load + swap).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import sys
import tempfile
import threading
import time
from pathlib import Path

import numpy as np

from engine import publish
from server._bench import Load, PhaseResult, Workload, discover, run_phase
from server._spawn import start_server_process

MEMORY_BOUND = 3.0  # max RSS over start RSS


def rss_mib(pid: int) -> float:
    with open(f"/proc/{pid}/status") as fh:
        for line in fh:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    return float("nan")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("bundle_a", type=Path)
    parser.add_argument("bundle_b", type=Path, nargs="?")
    parser.add_argument("--before", type=float, default=20)
    parser.add_argument("--during", type=float, default=120)
    parser.add_argument("--after", type=float, default=20)
    parser.add_argument("--reload-every", type=float, default=5)
    parser.add_argument("--concurrency", type=int, default=32)
    parser.add_argument("--json", type=Path)
    args = parser.parse_args(argv)

    with tempfile.TemporaryDirectory() as tmp:
        bundle_b = args.bundle_b
        if bundle_b is None:
            bundle_b = Path(tmp) / "copy"
            shutil.copytree(args.bundle_a, bundle_b, symlinks=False)
        link = Path(tmp) / "current"
        publish(args.bundle_a, link)
        with start_server_process(link, "--watch", "0.5", "--max-concurrent", "64") as (proc, port):
            address = f"127.0.0.1:{port}"
            ids, feats, moods = discover(address)
            workload = Workload(mix=(("similar", 1.0),), track_ids=ids, feature_rows=feats, mood_ids=moods)
            samples: list[tuple[float, float]] = []
            stop = threading.Event()
            t_start = time.monotonic()

            def sample() -> None:
                while not stop.wait(0.5):
                    samples.append((time.monotonic() - t_start, rss_mib(proc.pid)))

            sampler = threading.Thread(target=sample, daemon=True)
            sampler.start()
            reloads = [0]

            rss_at_reload: list[float] = []

            def repoint(until: float) -> None:
                target = [bundle_b, args.bundle_a]
                while time.monotonic() + args.reload_every <= until:
                    time.sleep(args.reload_every)
                    rss_at_reload.append(rss_mib(proc.pid))  # just before each swap: the settled footprint
                    publish(target[reloads[0] % 2], link)
                    reloads[0] += 1

            import multiprocessing as mp

            windows: dict[str, PhaseResult] = {}
            with mp.get_context("spawn").Pool(2) as pool:
                for name, seconds in (("before", args.before), ("during", args.during), ("after", args.after)):
                    mover = None
                    if name == "during":
                        mover = threading.Thread(target=repoint, args=(time.monotonic() + seconds,), daemon=True)
                        mover.start()
                    load = Load(concurrency=args.concurrency, warmup=1.0 if name == "before" else 0.0, duration=seconds)
                    windows[name] = run_phase(address, workload, load, processes=2, pool=pool)["similar"]
                    if mover is not None:
                        mover.join()
                    s = windows[name].summary()
                    print(f"{name:<7} {s['requests']:>8} requests  errors {s['errors'] or 0}  p50 {s['p50_us']:.0f} us"
                          f"  p99 {s['p99_us']:.0f} us  {s['throughput_rps']:.0f} req/s", file=sys.stderr, flush=True)
            stop.set()
    rss = np.array([r for _, r in samples]) if samples else np.array([np.nan])
    # growth per reload: slope of the settled RSS over the second half of the reloads (the first
    # ones fill caches and the allocator's pools)
    half = rss_at_reload[len(rss_at_reload) // 2:]
    slope = float(np.polyfit(np.arange(len(half)), half, 1)[0]) if len(half) >= 3 else float("nan")
    report = {
        "command": "python benchmarks/soak.py " + " ".join(sys.argv[1:]),
        "date": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "machine": {"cpus": os.cpu_count(), "platform": platform.platform()},
        "concurrency": args.concurrency, "reloads": reloads[0],
        "windows": {k: v.summary() for k, v in windows.items()},
        "rss_mib": {"start": round(float(rss[0]), 1), "max": round(float(rss.max()), 1),
                    "end": round(float(rss[-1]), 1), "samples": len(samples),
                    "before_each_reload": [round(r, 1) for r in rss_at_reload],
                    "growth_per_reload_second_half": round(slope, 2)},
    }
    failed = {k: v.errors for k, v in windows.items() if set(v.errors) - {"RESOURCE_EXHAUSTED"}}
    print(f"\n{report['command']}\n{report['date']}, {report['machine']['cpus']} cpus; {args.concurrency} clients "
          f"in 2 processes; {reloads[0]} hot reloads during the middle window")
    print(f"{'window':<8} {'requests':>9} {'errors':>8} {'p50 us':>8} {'p99 us':>8} {'p99.9 us':>9} {'req/s':>7}")
    for name, s in report["windows"].items():
        print(f"{name:<8} {s['requests']:>9} {sum(s['errors'].values()):>8} {s['p50_us']:>8.0f} {s['p99_us']:>8.0f} "
              f"{s['p999_us']:>9.0f} {s['throughput_rps']:>7.0f}")
    r = report["rss_mib"]
    print(f"server RSS: start {r['start']:.0f} MiB, max {r['max']:.0f} MiB, end {r['end']:.0f} MiB "
          f"({r['samples']} samples); before each reload: {', '.join(f'{x:.0f}' for x in r['before_each_reload'])}")
    print(f"growth per reload over the second half of the reloads: {r['growth_per_reload_second_half']:+.1f} MiB "
          f"(bound: max RSS <= {MEMORY_BOUND} x start, i.e. two bundles during a swap plus allocator slack)")
    within = bool(r["max"] <= MEMORY_BOUND * r["start"])
    print("FAILED requests: " + json.dumps(failed) if failed else "no failed requests")
    if args.json:
        args.json.write_text(json.dumps(report, indent=2) + "\n")
    if not within:
        print(f"MEMORY above the bound: max {r['max']:.0f} MiB > {MEMORY_BOUND} x {r['start']:.0f} MiB")
    return 1 if failed or not within else 0


if __name__ == "__main__":
    sys.exit(main())
