"""``musicrec bench``: a closed-loop gRPC load generator that measures its own floor.

Every run measures the chosen RPC *and* a trivial RPC (grpc.health.v1 Check) against the same
server, with the same concurrency and client processes, in alternating rounds so that drift on a
shared machine hits both alike. Latencies are reported in microseconds and as ratios to the floor.

Clients are ``grpc.aio`` tasks spread over worker processes (one channel per process, reused for
every call). On a 2-core machine the generator competes with a local server for CPU; the output
says how many processes it used, and ratios against the floor stay comparable because both are
measured under the same load.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import multiprocessing as mp
import os
import platform
import re
import statistics
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Any

import grpc
import numpy as np
from grpc_health.v1 import health_pb2, health_pb2_grpc

from ._generated.musicrec.v1 import recommender_pb2 as pb
from ._generated.musicrec.v1 import recommender_pb2_grpc as pb_grpc

RPCS = ("health", "similar", "similar-features", "batch", "playlist", "classify", "classify-features")


@dataclasses.dataclass(frozen=True)
class Workload:
    """Everything a worker needs to build requests, picklable across processes."""

    rpc: str
    track_ids: tuple[str, ...]
    feature_rows: tuple[dict[str, float], ...]
    mood_ids: tuple[int, ...]
    k: int = 10
    seed: int = 0


@dataclasses.dataclass
class PhaseResult:
    rpc: str
    concurrency: int
    processes: int
    latencies_ms: list[float]
    errors: Counter[str]
    seconds: float

    @property
    def throughput(self) -> float:
        return len(self.latencies_ms) / self.seconds if self.seconds else 0.0

    def summary(self) -> dict[str, Any]:
        lat = np.asarray(self.latencies_ms) if self.latencies_ms else np.zeros(1)
        pct = np.percentile(lat, [50, 90, 99, 99.9])
        return {
            "rpc": self.rpc, "concurrency": self.concurrency, "processes": self.processes,
            "requests": len(self.latencies_ms), "errors": dict(self.errors), "seconds": round(self.seconds, 3),
            "throughput_rps": round(self.throughput, 1),
            "p50_us": round(pct[0] * 1e3, 1), "p90_us": round(pct[1] * 1e3, 1), "p99_us": round(pct[2] * 1e3, 1),
            "p999_us": round(pct[3] * 1e3, 1), "max_us": round(float(lat.max()) * 1e3, 1),
            "mean_us": round(float(lat.mean()) * 1e3, 1),
        }


@contextlib.contextmanager
def start_server_process(bundle: str | os.PathLike[str], *args: str,
                         timeout: float = 120) -> Iterator[tuple[subprocess.Popen[str], int]]:
    """Run ``musicrec serve --port 0`` on ``bundle`` in its own process; yield it and its port once it
    logs its address (stderr stays readable). The process is terminated on exit."""
    musicrec = Path(sys.executable).with_name("musicrec")
    cmd = [str(musicrec), "serve", "--bundle", str(bundle), "--port", "0", *args]
    with subprocess.Popen(cmd, stderr=subprocess.PIPE, text=True) as proc:
        try:
            assert proc.stderr is not None
            deadline = time.monotonic() + timeout
            while time.monotonic() < deadline:
                line = proc.stderr.readline()
                if not line and proc.poll() is not None:
                    raise RuntimeError(f"musicrec serve exited with {proc.returncode} before serving")
                match = re.search(r"serving musicrec.v1.Recommender on [\d.]+:(\d+)", line)
                if match:
                    yield proc, int(match.group(1))
                    return
            raise TimeoutError(f"musicrec serve did not log its address within {timeout} s")
        finally:
            if proc.poll() is None:
                proc.terminate()
                proc.wait(timeout=30)


def discover(address: str, *, metadata: Sequence[tuple[str, str]] | None = None,
             wanted: int = 2000) -> tuple[tuple[str, ...], tuple[dict[str, float], ...], tuple[int, ...]]:
    """Draw seeds from the served catalog through the API: track ids from mood playlists (every
    mood, so seeds cover the catalog), and their feature values from GetTrack."""
    with grpc.insecure_channel(address) as channel:
        stub = pb_grpc.RecommenderStub(channel)
        moods = stub.ListMoods(pb.ListMoodsRequest(), timeout=30, metadata=metadata).moods
        per_mood = max(1, min(500, wanted // max(len(moods), 1)))
        ids: list[str] = []
        for m in moods:
            playlist = stub.MoodPlaylist(pb.MoodPlaylistRequest(mood_id=m.mood_id, length=per_mood, shuffle_seed=1),
                                         timeout=30, metadata=metadata)
            ids += [e.track.track_id for e in playlist.entries]
        info = stub.ServerInfo(pb.ServerInfoRequest(), timeout=30, metadata=metadata)
        names = list(info.feature_names)
        features = []
        for tid in ids[:200]:
            track = stub.GetTrack(pb.GetTrackRequest(track_id=tid), timeout=30, metadata=metadata).track
            features.append({n: track.features[n] for n in names})
    return tuple(ids), tuple(features), tuple(m.mood_id for m in moods)


def _request_factory(w: Workload, rng: np.random.Generator) -> tuple[str, Callable[[], Any]]:
    ids, feats = w.track_ids, w.feature_rows

    def pick_id() -> str:
        return ids[int(rng.integers(len(ids)))]

    if w.rpc == "health":
        return "Check", lambda: health_pb2.HealthCheckRequest()
    if w.rpc == "similar":
        return "SimilarTracks", lambda: pb.SimilarTracksRequest(seeds=[pb.Seed(track_id=pick_id())], k=w.k)
    if w.rpc == "similar-features":
        return "SimilarTracks", lambda: pb.SimilarTracksRequest(
            seeds=[pb.Seed(features=pb.FeatureValues(values=feats[int(rng.integers(len(feats)))]))], k=w.k)
    if w.rpc == "batch":
        return "BatchSimilarTracks", lambda: pb.BatchSimilarTracksRequest(
            queries=[pb.SimilarTracksRequest(seeds=[pb.Seed(track_id=pick_id())], k=w.k) for _ in range(16)])
    if w.rpc == "playlist":
        return "MoodPlaylist", lambda: pb.MoodPlaylistRequest(
            mood_id=w.mood_ids[int(rng.integers(len(w.mood_ids)))], length=20)
    if w.rpc == "classify":
        return "ClassifyGenre", lambda: pb.ClassifyGenreRequest(track_id=pick_id(), top_k=5)
    if w.rpc == "classify-features":
        return "ClassifyGenre", lambda: pb.ClassifyGenreRequest(
            features=pb.FeatureValues(values=feats[int(rng.integers(len(feats)))]), top_k=5)
    raise ValueError(f"unknown rpc {w.rpc!r}; choose from {RPCS}")


async def _run_tasks(
    address: str, workload: Workload, tasks: int, warmup: float, duration: float, worker: int,
    metadata: Sequence[tuple[str, str]] | None,
) -> tuple[list[float], Counter[str], float]:
    rng = np.random.default_rng([workload.seed, worker])
    method, make = _request_factory(workload, rng)
    latencies: list[float] = []
    errors: Counter[str] = Counter()
    async with grpc.aio.insecure_channel(address) as channel:
        if workload.rpc == "health":
            call = getattr(health_pb2_grpc.HealthStub(channel), method)
        else:
            call = getattr(pb_grpc.RecommenderStub(channel), method)
        await channel.channel_ready()
        start = time.perf_counter()
        measure_from = start + warmup
        end = measure_from + duration

        async def client() -> None:
            while True:
                t0 = time.perf_counter()
                if t0 >= end:
                    return
                request = make()
                try:
                    await call(request, timeout=10, metadata=metadata)
                    ok = True
                except grpc.aio.AioRpcError as err:
                    ok = False
                    code = err.code().name
                t1 = time.perf_counter()
                if t0 >= measure_from:  # warm-up calls are not counted
                    if ok:
                        latencies.append((t1 - t0) * 1e3)
                    else:
                        errors[code] += 1

        await asyncio.gather(*(client() for _ in range(tasks)))
    return latencies, errors, duration


def _worker_main(args: tuple[Any, ...]) -> tuple[list[float], Counter[str], float]:
    return asyncio.run(_run_tasks(*args))


def run_phase(address: str, workload: Workload, *, concurrency: int, processes: int, warmup: float,
              duration: float, metadata: Sequence[tuple[str, str]] | None = None,
              pool: Any = None) -> PhaseResult:
    """One closed-loop phase: ``concurrency`` clients over ``processes`` worker processes."""
    processes = max(1, min(processes, concurrency))
    split = [concurrency // processes + (1 if i < concurrency % processes else 0) for i in range(processes)]
    jobs = [(address, workload, n, warmup, duration, i, metadata) for i, n in enumerate(split)]
    outputs = pool.map(_worker_main, jobs) if pool is not None and processes > 1 else [_worker_main(jobs[0])]
    latencies = [x for out in outputs for x in out[0]]
    errors: Counter[str] = Counter()
    for out in outputs:
        errors.update(out[1])
    return PhaseResult(rpc=workload.rpc, concurrency=concurrency, processes=processes, latencies_ms=latencies,
                       errors=errors, seconds=duration)


def compare(address: str, rpcs: Sequence[str], *, concurrency: int, processes: int, rounds: int, warmup: float,
            duration: float, k: int = 10, seed: int = 0, metadata: Sequence[tuple[str, str]] | None = None,
            progress: Callable[[str], None] | None = None) -> dict[str, Any]:
    """Alternate the floor (health) and each RPC for ``rounds`` rounds; pool every round's latencies.
    Returns a JSON-able report with per-RPC stats and ratios to the floor."""
    say = progress or (lambda _m: None)
    ids, feats, moods = discover(address, metadata=metadata)
    say(f"discovered {len(ids)} seed tracks across {len(moods)} moods through the API")
    kinds = ["health", *[r for r in rpcs if r != "health"]]
    pooled: dict[str, list[PhaseResult]] = {r: [] for r in kinds}
    ctx = mp.get_context("spawn")
    with ctx.Pool(processes) if processes > 1 else _NoPool() as pool:
        for rnd in range(rounds):
            for rpc in kinds:
                workload = Workload(rpc=rpc, track_ids=ids, feature_rows=feats, mood_ids=moods, k=k,
                                    seed=seed + rnd)
                res = run_phase(address, workload, concurrency=concurrency, processes=processes, warmup=warmup,
                                duration=duration, metadata=metadata, pool=pool)
                pooled[rpc].append(res)
                s = res.summary()
                say(f"round {rnd + 1}/{rounds} {rpc:<18} p50 {s['p50_us']:8.0f} us  p99 {s['p99_us']:8.0f} us  "
                    f"{s['throughput_rps']:8.0f} req/s  errors {sum(res.errors.values())}")
    report: dict[str, Any] = {
        "address": address, "concurrency": concurrency, "processes": processes, "rounds": rounds,
        "warmup_s": warmup, "duration_s": duration, "k": k, "seed": seed,
        "machine": {"cpus": os.cpu_count(), "platform": platform.platform(), "python": sys.version.split()[0]},
        "date": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()), "rpcs": {},
    }
    floor = None
    for rpc, results in pooled.items():
        merged = PhaseResult(rpc=rpc, concurrency=concurrency, processes=processes,
                             latencies_ms=[x for r in results for x in r.latencies_ms], errors=Counter(),
                             seconds=sum(r.seconds for r in results))
        for r in results:
            merged.errors.update(r.errors)
        s = merged.summary()
        # medians over rounds of each round's p50 and throughput, so one noisy round cannot decide
        s["round_p50_us"] = [r.summary()["p50_us"] for r in results]
        s["round_throughput_rps"] = [round(r.throughput, 1) for r in results]
        s["median_round_p50_us"] = statistics.median(s["round_p50_us"])
        s["median_round_throughput_rps"] = statistics.median(s["round_throughput_rps"])
        if rpc == "health":
            floor = s
        else:
            assert floor is not None
            s["p50_vs_floor"] = round(s["median_round_p50_us"] / floor["median_round_p50_us"], 3)
            s["p99_vs_floor"] = round(s["p99_us"] / floor["p99_us"], 3)
            s["throughput_vs_floor"] = round(s["median_round_throughput_rps"] / floor["median_round_throughput_rps"], 3)
        report["rpcs"][rpc] = s
    return report


class _NoPool:
    def __enter__(self) -> None:
        return None

    def __exit__(self, *exc: object) -> None:
        return None


def format_report(report: dict[str, Any]) -> str:
    lines = [
        f"musicrec bench against {report['address']}: closed loop, {report['concurrency']} concurrent clients in "
        f"{report['processes']} client process(es); {report['rounds']} rounds x {report['duration_s']} s per RPC "
        f"(+{report['warmup_s']} s warm-up each), floor and RPCs alternating",
        f"machine: {report['machine']['cpus']} cpus, {report['machine']['platform']}; {report['date']}",
        "",
        f"{'rpc':<18} {'p50 us':>8} {'p90':>8} {'p99':>8} {'p99.9':>8} {'max':>8} {'mean':>8} {'req/s':>8} "
        f"{'errors':>7}  {'p50/floor':>9} {'p99/floor':>9} {'req/s/floor':>11}",
    ]
    for rpc, s in report["rpcs"].items():
        ratio = ("" if rpc == "health" else
                 f"  {s['p50_vs_floor']:>9.2f} {s['p99_vs_floor']:>9.2f} {s['throughput_vs_floor']:>11.2f}")
        errors = sum(s["errors"].values())
        lines.append(f"{rpc:<18} {s['median_round_p50_us']:>8.0f} {s['p90_us']:>8.0f} {s['p99_us']:>8.0f} "
                     f"{s['p999_us']:>8.0f} {s['max_us']:>8.0f} {s['mean_us']:>8.0f} "
                     f"{s['median_round_throughput_rps']:>8.0f} {errors:>7}" + ratio)
    lines.append("(p50 and req/s: median over rounds; the other percentiles pool every round; "
                 "floor = grpc.health.v1 Check on the same server)")
    for rpc, s in report["rpcs"].items():
        if s["errors"]:
            lines.append(f"errors for {rpc}: {s['errors']}")
    return "\n".join(lines)
