"""`musicrec serve --processes 2` against `--processes 1`: SimilarTracks throughput at 16 clients.

Each round starts a server with N processes on one port (SO_REUSEPORT), then 4 client processes
of 4 threads each, every thread with its own connection (so the kernel can spread them over the
server processes) send SimilarTracks by id in a closed loop for --duration seconds. N = 1 and 2
alternate for --rounds rounds; the median throughput of each and their ratio are printed. The
clients share the machine's cores with the servers, as on any one-machine measurement here.

    .venv/bin/python benchmarks/processes.py BUNDLE --rounds 3 --duration 10
"""

from __future__ import annotations

import argparse
import json
import multiprocessing
import os
import platform
import statistics
import subprocess
import sys
import threading
import time
from pathlib import Path

from _timing import free_port, rotated  # benchmarks/_timing.py

REPO = Path(__file__).resolve().parents[1]
CLIENT_PROCESSES, THREADS = 4, 4


def client(port: int, ids: list[str], duration: float, seed: int) -> int:
    import grpc

    from server._generated.musicrec.v1 import recommender_pb2 as pb
    from server._generated.musicrec.v1 import recommender_pb2_grpc as pb_grpc

    counts = [0] * THREADS

    def loop(t: int) -> None:
        with grpc.insecure_channel(f"127.0.0.1:{port}", options=[("grpc.use_local_subchannel_pool", 1)]) as ch:
            stub = pb_grpc.RecommenderStub(ch)
            stub.SimilarTracks(pb.SimilarTracksRequest(seeds=[pb.Seed(track_id=ids[0])], k=10), timeout=30)
            end, i = time.monotonic() + duration, seed * 997 + t * 31
            while time.monotonic() < end:
                stub.SimilarTracks(pb.SimilarTracksRequest(seeds=[pb.Seed(track_id=ids[i % len(ids)])], k=10),
                                   timeout=30)
                counts[t] += 1
                i += 1

    threads = [threading.Thread(target=loop, args=(t,)) for t in range(THREADS)]
    for th in threads:
        th.start()
    for th in threads:
        th.join()
    return sum(counts)


def round_qps(bundle: Path, processes: int, ids: list[str], duration: float) -> float:
    port = free_port()
    code = "import sys; from musicrec.cli import main; sys.exit(main())"
    server = subprocess.Popen([sys.executable, "-c", code, "serve", "--bundle", str(bundle), "--port", str(port),
                               "--processes", str(processes), "--log-format", "json"], cwd=REPO,
                              stderr=subprocess.DEVNULL)
    try:
        probe = [sys.executable, "-c", code, "health", f"127.0.0.1:{port}", "--timeout", "1"]
        deadline = time.monotonic() + 180
        while subprocess.run(probe, cwd=REPO, capture_output=True).returncode != 0:
            if time.monotonic() > deadline:
                raise RuntimeError("server did not start")
            time.sleep(0.5)
        time.sleep(3 if processes > 1 else 0.5)  # every replica loaded
        with multiprocessing.get_context("spawn").Pool(CLIENT_PROCESSES) as pool:
            t0 = time.monotonic()
            done = pool.starmap(client, [(port, ids, duration, s) for s in range(CLIENT_PROCESSES)])
            return sum(done) / (time.monotonic() - t0)
    finally:
        server.terminate()
        server.wait(60)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("bundle", type=Path)
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--duration", type=float, default=10.0)
    ap.add_argument("--json", dest="json_out", type=Path)
    args = ap.parse_args()
    from engine import load_bundle

    ids = [str(t) for t in load_bundle(args.bundle).tracks.ids[:2000]]
    qps: dict[int, list[float]] = {1: [], 2: []}
    for r in range(args.rounds):
        for n in rotated((1, 2), r):
            qps[n].append(round_qps(args.bundle, n, ids, args.duration))
            print(f"round {r + 1}: --processes {n}: {qps[n][-1]:,.0f} SimilarTracks/s", flush=True)
    medians = {n: round(statistics.median(v), 1) for n, v in qps.items()}
    out = {"clients": CLIENT_PROCESSES * THREADS, "qps_median": medians,
           "qps_rounds": qps, "ratio_2_over_1": round(statistics.median(qps[2]) / statistics.median(qps[1]), 3),
           "machine": {"cpus": os.cpu_count(), "platform": platform.platform(), "load_average": os.getloadavg()},
           "command": " ".join(["benchmarks/processes.py", *sys.argv[1:]])}
    print(json.dumps(out, indent=2))
    if args.json_out:
        args.json_out.write_text(json.dumps(out, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
