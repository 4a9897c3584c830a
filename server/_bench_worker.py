"""One client process of ``musicrec bench`` (server/_bench.py runs the phases and pools the results):
what it sends (``Workload``), how (``Load``), and the asyncio loop that sends it and times each call.

A worker process ignores Ctrl-C: the parent sees it, and ends its workers. The worker processes of one run
wait for each other at a start line (a barrier) once their connections are up, so the measured part of a
phase starts together in every process and no process's start-up (its imports, its connections) is timed.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import multiprocessing as mp
import signal
import threading
import time
from collections import Counter
from collections.abc import Callable, Sequence
from typing import Any

import grpc
import numpy as np
from grpc_health.v1 import health_pb2, health_pb2_grpc

from ._cli_args import ClientTLS, client_channel
from ._generated.musicrec.v1 import recommender_pb2 as pb
from ._generated.musicrec.v1 import recommender_pb2_grpc as pb_grpc

RPCS = ("health", "similar", "similar-features", "batch", "playlist", "classify", "classify-features")

METHODS = {"health": "Check", "similar": "SimilarTracks", "similar-features": "SimilarTracks",
           "batch": "BatchSimilarTracks", "playlist": "MoodPlaylist", "classify": "ClassifyGenre",
           "classify-features": "ClassifyGenre"}

# Seconds a worker waits for its connections at the start of a phase (a server that went away between
# phases is never ready: grpc keeps retrying), and for the other workers at the start line (the first
# phase's wait includes their start: a Python interpreter importing numpy and grpc on a busy machine).
CONNECT_TIMEOUT = 10.0
START_TIMEOUT = 120.0
CALL_TIMEOUT = 10.0
# Open loop: a send the event loop reaches later than this after its scheduled time is not sent (it is counted
# as CLIENT_BACKLOG): latency is timed from the scheduled time, so a late send would time the client's own
# lag as the server's. The loop's timers alone wake up to a millisecond late (epoll's resolution).
SEND_LAG_LIMIT = 0.005

# What one worker returns: per RPC its latencies (ms) and failed calls by status, and the measured window
# (perf_counter seconds, comparable across the processes of one machine) or None when it measured nothing.
Record = dict[str, tuple[list[float], Counter[str]]]
Window = tuple[float, float] | None


class BenchError(Exception):
    """A phase that could not run (its server unreachable): one line for the user, exit 1."""


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
    schedule whatever the server does, at most ``concurrency`` in flight (over all processes), and
    latency is measured from the *intended* send time, so queueing shows. A send the client cannot
    make (its process's share of ``concurrency`` in flight, or its loop more than SEND_LAG_LIMIT behind
    the schedule) is skipped and counted as CLIENT_BACKLOG, a failed call.
    The measured part lasts ``duration`` seconds or ``requests`` requests, after ``warmup`` seconds.
    Each client process holds ``connections`` connections (the clients, or in open loop the requests,
    take them in turn): a server of several processes on one port gets connections, not calls."""

    concurrency: int = 1
    rate: float | None = None
    warmup: float = 1.0
    duration: float | None = 5.0
    requests: int | None = None
    connections: int = 1


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
_START: Any = None  # the start line (a multiprocessing Barrier) of a run's worker processes, or None


def _init_worker(counter: Any, start: Any = None) -> None:
    global _PROGRESS, _START
    _PROGRESS, _START = counter, start
    _ignore_interrupts()


def _ignore_interrupts() -> None:
    """In a worker process, Ctrl-C (sent to the terminal's whole process group) is the parent's to handle:
    it ends the workers, and no worker prints a KeyboardInterrupt traceback."""
    if mp.parent_process() is not None and threading.current_thread() is threading.main_thread():
        signal.signal(signal.SIGINT, signal.SIG_IGN)


async def _connect(address: str, channels: list[Any]) -> None:
    """Wait (bounded) until every channel is connected, then at the start line for the other workers."""
    try:
        await asyncio.wait_for(asyncio.gather(*(ch.channel_ready() for ch in channels)), CONNECT_TIMEOUT)
    except TimeoutError:
        if _START is not None:
            _START.abort()  # the other workers stop waiting for this one
        raise BenchError(f"{address}: UNAVAILABLE: no connection within {CONNECT_TIMEOUT:g} s (did the server stop "
                         "or restart?)") from None
    if _START is not None:
        try:
            await asyncio.to_thread(_START.wait, START_TIMEOUT)
        except threading.BrokenBarrierError:
            raise BenchError(f"{address}: UNAVAILABLE: a client process could not connect within "
                             f"{CONNECT_TIMEOUT:g} s (did the server stop or restart?)") from None


async def _run_worker(address: str, workload: Workload, load: Load, worker: int,
                      metadata: Sequence[tuple[str, str]] | None,
                      tls: ClientTLS | None = None) -> tuple[Record, Window]:
    rng = np.random.default_rng([workload.seed, worker])
    builders = _builders(workload, rng)
    names = [r for r, _ in workload.mix]
    weights = np.array([wt for _, wt in workload.mix], dtype=float)
    weights /= weights.sum()
    record: Record = {r: ([], Counter()) for r in names}
    last_finish = 0.0  # of the measured calls
    # a channel of its own subchannel pool opens its own connection, not the process's shared one
    options = [("grpc.use_local_subchannel_pool", 1)] if load.connections > 1 else []
    async with contextlib.AsyncExitStack() as stack:
        channels = [await stack.enter_async_context(client_channel(address, tls, aio=True, options=options))
                    for _ in range(max(1, load.connections))]
        per_channel = [{r: getattr(health_pb2_grpc.HealthStub(ch) if r == "health" else pb_grpc.RecommenderStub(ch),
                                   METHODS[r]) for r in names} for ch in channels]
        await _connect(address, channels)
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

        def pick() -> str:
            return names[0] if len(names) == 1 else names[int(rng.choice(len(names), p=weights))]

        def count(intended: float, rpc: str, code: str | None, finished: float) -> None:
            nonlocal last_finish
            if intended < measure_from:  # warm-up calls are not counted
                return
            last_finish = max(last_finish, finished)
            if code is None:
                record[rpc][0].append((finished - intended) * 1e3)
            else:
                record[rpc][1][code] += 1
            if _PROGRESS is not None:
                with _PROGRESS.get_lock():
                    _PROGRESS.value += 1

        async def one(intended: float, rpc: str, calls: dict[str, Any]) -> None:
            code = None
            try:
                await calls[rpc](builders[rpc](), timeout=CALL_TIMEOUT, metadata=metadata)
            except grpc.aio.AioRpcError as err:
                code = err.code().name
            count(intended, rpc, code, time.perf_counter())

        if load.rate is None:
            async def client(calls: dict[str, Any]) -> None:
                while True:
                    now = time.perf_counter()
                    if not take_slot(now):
                        return
                    await one(now, pick(), calls)

            await asyncio.gather(*(client(per_channel[i % len(per_channel)]) for i in range(load.concurrency)))
        else:
            interval, sent = 1.0 / load.rate, 0
            in_flight: set[asyncio.Task[None]] = set()
            while True:
                intended = start + sent * interval
                if not take_slot(intended):
                    break
                sent += 1
                rpc = pick()
                delay = intended - time.perf_counter()
                if delay > 0:
                    await asyncio.sleep(delay)
                late = time.perf_counter() - intended
                # a send this client could not make on time, or with its share of --concurrency in flight, is
                # its own backlog: counted as a failed call, never sent late and timed as the server's latency
                if late > SEND_LAG_LIMIT or len(in_flight) >= load.concurrency:
                    count(intended, rpc, "CLIENT_BACKLOG", time.perf_counter())
                    continue
                task = asyncio.create_task(one(intended, rpc, per_channel[sent % len(per_channel)]))
                in_flight.add(task)
                task.add_done_callback(in_flight.discard)
                if delay <= 0:  # behind the schedule: yield to the event loop, so the calls in flight run
                    await asyncio.sleep(0)
            await asyncio.gather(*in_flight)
    return record, ((measure_from, last_finish) if last_finish else None)


def _worker_main(args: tuple[Any, ...]) -> tuple[Record, Window]:
    _ignore_interrupts()  # also in a pool made without _init_worker (benchmarks/soak.py)
    return asyncio.run(_run_worker(*args))
