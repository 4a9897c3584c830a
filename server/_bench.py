"""``musicrec bench``: a closed-loop gRPC load generator that measures its own floor.

Every run measures the chosen RPC *and* a trivial RPC (grpc.health.v1 Check) against the same
server, with the same concurrency and client processes, in alternating rounds so that drift on a
shared machine hits both alike. Latencies are reported in microseconds and as ratios to the floor.

Clients are ``grpc.aio`` tasks spread over worker processes (``Load.connections`` channels per process,
one by default, each reused for every call). On a 2-core machine the generator competes with a local
server for CPU; the output says how many processes it used, and ratios against the floor stay
comparable because both are measured under the same load.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextlib
import dataclasses
import multiprocessing as mp
import os
import platform
import statistics
import sys
import time
from collections import Counter
from collections.abc import Callable, Sequence
from typing import Any

import grpc
import numpy as np
from grpc_health.v1 import health_pb2, health_pb2_grpc

from ._generated.musicrec.v1 import recommender_pb2 as pb
from ._generated.musicrec.v1 import recommender_pb2_grpc as pb_grpc

RPCS = ("health", "similar", "similar-features", "batch", "playlist", "classify", "classify-features")


METHODS = {"health": "Check", "similar": "SimilarTracks", "similar-features": "SimilarTracks",
           "batch": "BatchSimilarTracks", "playlist": "MoodPlaylist", "classify": "ClassifyGenre",
           "classify-features": "ClassifyGenre"}


@dataclasses.dataclass(frozen=True)
class Workload:
    """What to send: a weighted mix of RPCs with seeds from the served catalog (picklable, for the
    worker processes)."""

    mix: tuple[tuple[str, float], ...]
    track_ids: tuple[str, ...]
    feature_rows: tuple[dict[str, float], ...]
    mood_ids: tuple[int, ...]
    k: int = 10
    seed: int = 0

    @property
    def label(self) -> str:
        return self.mix[0][0] if len(self.mix) == 1 else "mix(" + ",".join(f"{r}={w:g}" for r, w in self.mix) + ")"


@dataclasses.dataclass(frozen=True)
class Load:
    """How to send it. Closed loop: ``concurrency`` clients each send the next request when the last
    answer arrives. Open loop (``rate`` requests/s over all processes): requests are sent on a fixed
    schedule whatever the server does, at most ``concurrency`` in flight per process (more is counted
    as CLIENT_BACKLOG), and latency is measured from the *intended* send time, so queueing shows.
    The measured part lasts ``duration`` seconds or ``requests`` requests, after ``warmup`` seconds.
    Each client process holds ``connections`` connections (the clients, or in open loop the requests,
    take them in turn): a server of several processes on one port gets connections, not calls."""

    concurrency: int = 1
    rate: float | None = None
    warmup: float = 1.0
    duration: float | None = 5.0
    requests: int | None = None
    connections: int = 1


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


def _builders(w: Workload, rng: np.random.Generator) -> dict[str, Callable[[], Any]]:
    ids, feats, moods = w.track_ids, w.feature_rows, w.mood_ids

    def pick_id() -> str:
        return ids[int(rng.integers(len(ids)))]

    def pick_features() -> pb.FeatureValues:
        return pb.FeatureValues(values=feats[int(rng.integers(len(feats)))])

    every = {
        "health": lambda: health_pb2.HealthCheckRequest(),
        "similar": lambda: pb.SimilarTracksRequest(seeds=[pb.Seed(track_id=pick_id())], k=w.k),
        "similar-features": lambda: pb.SimilarTracksRequest(seeds=[pb.Seed(features=pick_features())], k=w.k),
        "batch": lambda: pb.BatchSimilarTracksRequest(
            queries=[pb.SimilarTracksRequest(seeds=[pb.Seed(track_id=pick_id())], k=w.k) for _ in range(16)]),
        "playlist": lambda: pb.MoodPlaylistRequest(mood_id=moods[int(rng.integers(len(moods)))], length=20),
        "classify": lambda: pb.ClassifyGenreRequest(track_id=pick_id(), top_k=5),
        "classify-features": lambda: pb.ClassifyGenreRequest(features=pick_features(), top_k=5),
    }
    unknown = [r for r, _ in w.mix if r not in every]
    if unknown:
        raise ValueError(f"unknown rpc(s) {unknown}; choose from {RPCS}")
    return {r: every[r] for r, _ in w.mix}


_PROGRESS: Any = None  # a shared counter of finished requests, set in each worker process


def _init_worker(counter: Any) -> None:
    global _PROGRESS
    _PROGRESS = counter


async def _run_worker(address: str, workload: Workload, load: Load, worker: int,
                      metadata: Sequence[tuple[str, str]] | None) -> dict[str, tuple[list[float], Counter[str]]]:
    rng = np.random.default_rng([workload.seed, worker])
    builders = _builders(workload, rng)
    names = [r for r, _ in workload.mix]
    weights = np.array([wt for _, wt in workload.mix], dtype=float)
    weights /= weights.sum()
    record: dict[str, tuple[list[float], Counter[str]]] = {r: ([], Counter()) for r in names}
    measured = 0
    # a channel of its own subchannel pool opens its own connection, not the process's shared one
    options = [("grpc.use_local_subchannel_pool", 1)] if load.connections > 1 else []
    async with contextlib.AsyncExitStack() as stack:
        channels = [await stack.enter_async_context(grpc.aio.insecure_channel(address, options=options))
                    for _ in range(max(1, load.connections))]
        per_channel = [{r: getattr(health_pb2_grpc.HealthStub(ch) if r == "health" else pb_grpc.RecommenderStub(ch),
                                   METHODS[r]) for r in names} for ch in channels]
        for ch in channels:
            await ch.channel_ready()
        start = time.perf_counter()
        measure_from = start + load.warmup
        end = measure_from + load.duration if load.duration else float("inf")

        started = 0  # measured requests sent so far: a slot is taken before sending, so N means N

        def take_slot(now: float) -> bool:
            nonlocal started
            if now >= end or (load.requests is not None and now >= measure_from and started >= load.requests):
                return False
            if now >= measure_from:
                started += 1
            return True

        async def one(intended: float, calls: dict[str, Any]) -> None:
            nonlocal measured
            rpc = names[0] if len(names) == 1 else names[int(rng.choice(len(names), p=weights))]
            code = None
            try:
                await calls[rpc](builders[rpc](), timeout=10, metadata=metadata)
            except grpc.aio.AioRpcError as err:
                code = err.code().name
            finished = time.perf_counter()
            if intended >= measure_from:  # warm-up calls are not counted
                measured += 1
                if code is None:
                    record[rpc][0].append((finished - intended) * 1e3)
                else:
                    record[rpc][1][code] += 1
                if _PROGRESS is not None:
                    with _PROGRESS.get_lock():
                        _PROGRESS.value += 1

        if load.rate is None:
            async def client(calls: dict[str, Any]) -> None:
                while True:
                    now = time.perf_counter()
                    if not take_slot(now):
                        return
                    await one(now, calls)

            await asyncio.gather(*(client(per_channel[i % len(per_channel)]) for i in range(load.concurrency)))
        else:
            interval, sent = 1.0 / load.rate, 0
            in_flight: set[asyncio.Task[None]] = set()
            while True:
                intended = start + sent * interval
                if not take_slot(intended):
                    break
                delay = intended - time.perf_counter()
                if delay > 0:
                    await asyncio.sleep(delay)
                sent += 1
                if len(in_flight) >= load.concurrency:  # the client itself cannot keep up: say so
                    if intended >= measure_from:
                        record[names[0]][1]["CLIENT_BACKLOG"] += 1
                    continue
                task = asyncio.create_task(one(intended, per_channel[sent % len(per_channel)]))
                in_flight.add(task)
                task.add_done_callback(in_flight.discard)
            await asyncio.gather(*in_flight)
    return record


def _worker_main(args: tuple[Any, ...]) -> dict[str, tuple[list[float], Counter[str]]]:
    return asyncio.run(_run_worker(*args))


def run_phase(address: str, workload: Workload, load: Load, *, processes: int,
              metadata: Sequence[tuple[str, str]] | None = None, pool: Any = None,
              progress: Callable[[str], None] | None = None, counter: Any = None) -> dict[str, PhaseResult]:
    """One phase over ``processes`` worker processes; returns a result per RPC of the mix (and one
    named by the workload's label holding them all when it is a mix)."""
    processes = max(1, min(processes, load.concurrency))
    per = [load.concurrency // processes + (1 if i < load.concurrency % processes else 0) for i in range(processes)]
    jobs = []
    for i, clients in enumerate(per):
        share = dataclasses.replace(
            load, concurrency=clients, rate=load.rate / processes if load.rate else None,
            requests=(load.requests // processes + (1 if i < load.requests % processes else 0))
            if load.requests is not None else None)
        jobs.append((address, workload, share, i, metadata))
    t0 = time.perf_counter()
    if counter is not None:
        counter.value = 0
    def work() -> list[dict[str, tuple[list[float], Counter[str]]]]:
        if pool is not None and processes > 1:
            return pool.map(_worker_main, jobs)
        return [_worker_main(jobs[0])]

    with concurrent.futures.ThreadPoolExecutor(1) as runner:  # so this thread can report progress
        pending = runner.submit(work)
        while True:
            try:
                outputs = pending.result(timeout=2.0)
                break
            except concurrent.futures.TimeoutError:
                if progress and counter is not None:
                    progress(f"  {workload.label}: {counter.value:,} requests done, {time.perf_counter() - t0:.0f} s")
    elapsed = time.perf_counter() - t0 - load.warmup
    seconds = load.duration if load.duration else max(elapsed, 1e-9)
    results: dict[str, PhaseResult] = {}
    for rpc, _ in workload.mix:
        lat = [x for out in outputs for x in out[rpc][0]]
        errors: Counter[str] = Counter()
        for out in outputs:
            errors.update(out[rpc][1])
        results[rpc] = PhaseResult(rpc=rpc, concurrency=load.concurrency, processes=processes, latencies_ms=lat,
                                   errors=errors, seconds=seconds)
    if len(workload.mix) > 1:
        results[workload.label] = PhaseResult(
            rpc=workload.label, concurrency=load.concurrency, processes=processes,
            latencies_ms=[x for r in list(results.values()) for x in r.latencies_ms],
            errors=sum((r.errors for r in results.values()), Counter()), seconds=seconds)
    return results


def parse_mix(text: str) -> tuple[tuple[str, float], ...]:
    """``"similar=5,classify=1"`` (or a bare ``"similar"``) -> (("similar", 5.0), ("classify", 1.0))."""
    mix = []
    for part in (p.strip() for p in text.split(",") if p.strip()):
        name, _, weight = part.partition("=")
        if name not in METHODS:
            raise ValueError(f"unknown rpc {name!r} in mix {text!r}; choose from {RPCS}")
        try:
            w = float(weight) if weight else 1.0
        except ValueError:
            raise ValueError(f"weight of {name!r} in mix {text!r} is not a number") from None
        if w <= 0:
            raise ValueError(f"weight of {name!r} must be > 0")
        mix.append((name, w))
    if not mix:
        raise ValueError("empty mix")
    return tuple(mix)


def compare(address: str, phases: Sequence[tuple[tuple[str, float], ...]], load: Load, *, processes: int,
            rounds: int, k: int = 10, seed: int = 0, metadata: Sequence[tuple[str, str]] | None = None,
            progress: Callable[[str], None] | None = None,
            samples: dict[str, list[float]] | None = None) -> dict[str, Any]:
    """Alternate the floor (health Check, under the same load) with each phase (a mix of RPCs; one RPC
    is a mix of one) for ``rounds`` rounds and pool the rounds. Returns a JSON-able report with
    per-RPC stats and ratios to the floor. ``samples``, when given, receives every pooled latency
    (ms) per RPC, for the pictures of ``musicrec bench --html`` (server/_bench_report.py)."""
    say = progress or (lambda _m: None)
    ids, feats, moods = discover(address, metadata=metadata)
    say(f"discovered {len(ids)} seed tracks across {len(moods)} moods through the API")
    mixes = [(("health", 1.0),), *[tuple(m) for m in phases if tuple(m) != (("health", 1.0),)]]
    pooled: dict[str, list[PhaseResult]] = {}
    ctx = mp.get_context("spawn")
    counter = ctx.Value("q", 0)
    _init_worker(counter)  # also counts in this process when there is no pool
    pool_context = (ctx.Pool(processes, initializer=_init_worker, initargs=(counter,)) if processes > 1
                    else contextlib.nullcontext())
    with pool_context as pool:
        for rnd in range(rounds):
            for mix in mixes:
                workload = Workload(mix=mix, track_ids=ids, feature_rows=feats, mood_ids=moods, k=k,
                                    seed=seed + rnd)
                res = run_phase(address, workload, load, processes=processes, metadata=metadata, pool=pool,
                                progress=say, counter=counter)
                for name, r in res.items():
                    pooled.setdefault(name, []).append(r)
                s = res[workload.label].summary()
                say(f"round {rnd + 1}/{rounds} {workload.label:<18} p50 {s['p50_us']:8.0f} us  "
                    f"p99 {s['p99_us']:8.0f} us  {s['throughput_rps']:8.0f} req/s  errors {sum(s['errors'].values())}")
    report: dict[str, Any] = {
        "address": address, "mode": "open loop" if load.rate else "closed loop", "rate_rps": load.rate,
        "concurrency": load.concurrency, "processes": processes, "connections_per_process": load.connections,
        "rounds": rounds, "warmup_s": load.warmup,
        "duration_s": load.duration, "requests_per_round": load.requests, "k": k, "seed": seed,
        "phases": [Workload(mix=m, track_ids=(), feature_rows=(), mood_ids=()).label for m in mixes],
        "machine": {"cpus": os.cpu_count(), "platform": platform.platform(), "python": sys.version.split()[0]},
        "date": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()), "rpcs": {},
    }
    floor = None
    for name, results in pooled.items():
        merged = PhaseResult(rpc=name, concurrency=load.concurrency, processes=processes,
                             latencies_ms=[x for r in results for x in r.latencies_ms],
                             errors=sum((r.errors for r in results), Counter()),
                             seconds=sum(r.seconds for r in results))
        s = merged.summary()
        if samples is not None:
            samples[name] = merged.latencies_ms
        # medians over rounds of each round's p50 and throughput, so one noisy round cannot decide
        s["round_p50_us"] = [r.summary()["p50_us"] for r in results]
        s["round_throughput_rps"] = [round(r.throughput, 1) for r in results]
        s["median_round_p50_us"] = statistics.median(s["round_p50_us"])
        s["median_round_throughput_rps"] = statistics.median(s["round_throughput_rps"])
        if name == "health":
            floor = s
        else:
            assert floor is not None
            s["p50_vs_floor"] = round(s["median_round_p50_us"] / max(floor["median_round_p50_us"], 1e-9), 3)
            s["p99_vs_floor"] = round(s["p99_us"] / max(floor["p99_us"], 1e-9), 3)
            s["throughput_vs_floor"] = round(s["median_round_throughput_rps"] /
                                             max(floor["median_round_throughput_rps"], 1e-9), 3)
        report["rpcs"][name] = s
    return report
