"""``musicrec bench``: a closed- or open-loop gRPC load generator that measures its own floor.

Every run measures the chosen RPC *and* a trivial RPC (grpc.health.v1 Check) against the same
server, with the same concurrency and client processes, in alternating rounds so that drift on a
shared machine hits both alike. Latencies are reported in microseconds and as ratios to the floor.

Clients are ``grpc.aio`` tasks spread over worker processes (server/_bench_worker.py; ``Load.connections``
channels per process, one by default, each reused for every call). On a 2-core machine the generator
competes with a local server for CPU; the output says how many processes it used, and ratios against the
floor stay comparable because both are measured under the same load, as long as the server answered
(nearly) every call: a phase of which more than ``FAILURE_THRESHOLD`` failed (a saturated server, one
that went away, a client behind its schedule) times only the calls that got through, and is reported as
not comparable.
"""

from __future__ import annotations

import contextlib
import dataclasses
import math
import multiprocessing as mp
import os
import platform
import signal
import statistics
import sys
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterator, Sequence
from typing import Any

import numpy as np

from ._bench_worker import (  # noqa: F401  (re-exported: benchmarks/ import them from here)
    METHODS,
    RPCS,
    BenchError,
    Load,
    Workload,
    _init_worker,
    _worker_main,
)
from ._cli_args import ClientTLS, client_channel
from ._generated.musicrec.v1 import recommender_pb2 as pb
from ._generated.musicrec.v1 import recommender_pb2_grpc as pb_grpc

# A phase with more failed calls than this share (server errors, and in open loop the sends the client
# skipped, CLIENT_BACKLOG) measured a server that did not answer the load asked for: not comparable.
FAILURE_THRESHOLD = 0.01


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

    @property
    def failed_share(self) -> float:
        """The share of the measured calls that failed (CLIENT_BACKLOG, a send the client skipped, included)."""
        failed = sum(self.errors.values())
        return failed / (failed + len(self.latencies_ms)) if failed else 0.0

    def summary(self) -> dict[str, Any]:
        lat = np.asarray(self.latencies_ms) if self.latencies_ms else np.zeros(1)
        pct = np.percentile(lat, [50, 90, 99, 99.9])
        return {
            "rpc": self.rpc, "concurrency": self.concurrency, "processes": self.processes,
            "requests": len(self.latencies_ms), "errors": dict(self.errors),
            "failed_share": round(self.failed_share, 4), "seconds": round(self.seconds, 3),
            "throughput_rps": round(self.throughput, 1),
            "p50_us": round(pct[0] * 1e3, 1), "p90_us": round(pct[1] * 1e3, 1), "p99_us": round(pct[2] * 1e3, 1),
            "p999_us": round(pct[3] * 1e3, 1), "max_us": round(float(lat.max()) * 1e3, 1),
            "mean_us": round(float(lat.mean()) * 1e3, 1),
        }


def discover(address: str, *, metadata: Sequence[tuple[str, str]] | None = None, wanted: int = 2000,
             tls: ClientTLS | None = None) -> tuple[tuple[str, ...], tuple[dict[str, float], ...], tuple[int, ...]]:
    """Draw seeds from the served catalog through the API: track ids from mood playlists (every
    mood, so seeds cover the catalog), and their feature values from GetTrack."""
    with client_channel(address, tls) as channel:
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


def processes_used(processes: int, load: Load) -> int:
    """The client processes a phase runs: no more than its clients (each process gets at least one)."""
    return max(1, min(processes, load.concurrency))


def run_phase(address: str, workload: Workload, load: Load, *, processes: int,
              metadata: Sequence[tuple[str, str]] | None = None, pool: Any = None,
              progress: Callable[[str], None] | None = None, counter: Any = None,
              tls: ClientTLS | None = None) -> dict[str, PhaseResult]:
    """One phase over ``processes`` worker processes of ``pool`` (without a pool: this process alone);
    returns a result per RPC of the mix (and one named by the workload's label holding them all when
    it is a mix). Its seconds are the measured part's: from its start (every worker connected and warmed up) to
    the last measured answer, so no start-up is counted, and a call sent before ``load.duration`` ended and
    answered after it is timed to its answer."""
    processes = processes_used(processes, load) if pool is not None else 1
    per = [load.concurrency // processes + (1 if i < load.concurrency % processes else 0) for i in range(processes)]
    jobs = []
    for i, clients in enumerate(per):
        share = dataclasses.replace(
            load, concurrency=clients, rate=load.rate / processes if load.rate else None,
            requests=(load.requests // processes + (1 if i < load.requests % processes else 0))
            if load.requests is not None else None)
        jobs.append((address, workload, share, i, metadata, tls))
    if counter is not None:
        counter.value = 0
    with _progress(workload.label, progress, counter):
        if processes > 1:
            pending = pool.map_async(_worker_main, jobs)
            while not pending.ready():  # short waits, so Ctrl-C is seen at once (the caller ends the pool)
                pending.wait(0.5)
            outputs = pending.get()
        else:  # here, in this thread: Ctrl-C cancels the asyncio loop and ends its channels
            outputs = [_worker_main(jobs[0])]
    windows = [w for _, w in outputs if w is not None]
    measured = max(max(e for _, e in windows) - min(s for s, _ in windows), 1e-9) if windows else 0.0
    # from the first measured send to the last answer: a call sent before --duration ended and answered after it is
    # counted, so the nominal duration over-counted (4 calls in --duration 0.001 read as 4,000 req/s)
    seconds = measured if windows else (load.duration or 0.0)
    results: dict[str, PhaseResult] = {}
    for rpc, _ in workload.mix:
        errors: Counter[str] = Counter()
        for out, _ in outputs:
            errors.update(out[rpc][1])
        results[rpc] = PhaseResult(rpc=rpc, concurrency=load.concurrency, processes=processes,
                                   latencies_ms=[x for out, _ in outputs for x in out[rpc][0]], errors=errors,
                                   seconds=seconds)
    if len(workload.mix) > 1:
        results[workload.label] = PhaseResult(
            rpc=workload.label, concurrency=load.concurrency, processes=processes,
            latencies_ms=[x for r in list(results.values()) for x in r.latencies_ms],
            errors=sum((r.errors for r in results.values()), Counter()), seconds=seconds)
    return results


@contextlib.contextmanager
def _progress(label: str, say: Callable[[str], None] | None, counter: Any) -> Iterator[None]:
    """Every 2 s while the phase runs, how many requests its workers have finished (from a thread of its own)."""
    if say is None or counter is None:
        yield
        return
    stop, t0 = threading.Event(), time.perf_counter()

    def report() -> None:
        while not stop.wait(2.0):
            say(f"  {label}: {counter.value:,} requests done, {time.perf_counter() - t0:.0f} s")

    reporter = threading.Thread(target=report, name="bench-progress", daemon=True)
    reporter.start()
    try:
        yield
    finally:
        stop.set()
        reporter.join(timeout=1.0)


def parse_mix(text: str) -> tuple[tuple[str, float], ...]:
    """``"similar=5,classify=1"`` (or a bare ``"similar"``) -> (("similar", 5.0), ("classify", 1.0)).
    Each weight is a finite number over 0, and so is their sum (the shares are weight / sum)."""
    mix = []
    for part in (p.strip() for p in text.split(",") if p.strip()):
        name, _, weight = part.partition("=")
        if name not in METHODS:
            raise ValueError(f"unknown rpc {name!r}; choose from {RPCS}")
        try:
            w = float(weight) if weight else 1.0
        except ValueError:
            raise ValueError(f"weight of {name!r} is not a number, got {weight.strip()!r}") from None
        if not (math.isfinite(w) and w > 0):
            raise ValueError(f"weight of {name!r} must be a finite number > 0, got {weight.strip()!r}")
        mix.append((name, w))
    if not mix:
        raise ValueError("empty mix")
    if not math.isfinite(sum(w for _, w in mix)):  # (fsum raises on the overflow)
        raise ValueError("the weights add up to more than a number holds; give smaller ones (only their ratios "
                         "count)")
    return tuple(mix)


def phases_problem(phases: Sequence[tuple[tuple[str, float], ...]]) -> str | None:
    """Why these phases cannot each be reported on its own, or None: ``health`` in a mix with others (its calls
    were pooled into the floor every ratio is divided by), or one phase given twice (``--rpc similar --rpc
    similar`` measured it for twice the rounds of the floor, in one row)."""
    labels: list[str] = []
    for mix in phases:
        label = ",".join(f"{name}={weight:g}" for name, weight in mix) if len(mix) > 1 else mix[0][0]
        if len(mix) > 1 and any(name == "health" for name, _ in mix):
            return (f"health is the floor, measured alone every round: leave it out of the mix {label!r} (its calls "
                    "there would be pooled into the floor)")
        if label in labels and label != "health":
            return f"the phase {label!r} is given twice: give it once"
        labels.append(label)
    return None


@contextlib.contextmanager
def _interrupts_ignored() -> Iterator[None]:
    """SIGINT ignored while worker processes start, so they start ignoring it (an ignored signal stays ignored
    across exec, and Python then leaves it so): Ctrl-C is this process's to handle, never a worker's."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    before = signal.signal(signal.SIGINT, signal.SIG_IGN)
    try:
        yield
    finally:
        signal.signal(signal.SIGINT, before)


def compare(address: str, phases: Sequence[tuple[tuple[str, float], ...]], load: Load, *, processes: int,
            rounds: int, k: int = 10, seed: int = 0, metadata: Sequence[tuple[str, str]] | None = None,
            progress: Callable[[str], None] | None = None,
            samples: dict[str, list[float]] | None = None, tls: ClientTLS | None = None) -> dict[str, Any]:
    """Alternate the floor (health Check, under the same load) with each phase (a mix of RPCs; one RPC
    is a mix of one) for ``rounds`` rounds and pool the rounds. Returns a JSON-able report with
    per-RPC stats, the share of failed calls and ratios to the floor (``not_comparable`` lists the RPCs
    and phases of which more than FAILURE_THRESHOLD of the calls failed). ``samples``, when given,
    receives every pooled latency (ms) per RPC, for the pictures of ``musicrec bench --html``
    (server/_bench_report.py). Raises BenchError when a phase cannot connect, grpc.RpcError when
    the seeds cannot be drawn."""
    say = progress or (lambda _m: None)
    if (problem := phases_problem(phases)) is not None:
        raise ValueError(problem)
    ids, feats, moods = discover(address, metadata=metadata, tls=tls)
    say(f"discovered {len(ids)} seed tracks across {len(moods)} moods through the API")
    mixes = [(("health", 1.0),), *[tuple(m) for m in phases if [name for name, _ in m] != ["health"]]]
    pooled: dict[str, list[PhaseResult]] = {}
    phases_of = Counter(name for mix in mixes for name, _ in mix)  # an rpc's row never pools two phases' loads
    used = processes_used(processes, load)
    ctx = mp.get_context("spawn")
    counter = ctx.Value("q", 0)
    _init_worker(counter)  # also counts in this process when there is no pool
    pool_context: Any = contextlib.nullcontext()
    if used > 1:
        with _interrupts_ignored():
            pool_context = ctx.Pool(used, initializer=_init_worker, initargs=(counter, ctx.Barrier(used)))
    with pool_context as pool:  # on the way out, even on Ctrl-C, the pool's processes are ended
        for rnd in range(rounds):
            for mix in mixes:
                workload = Workload(mix=mix, track_ids=ids, feature_rows=feats, mood_ids=moods, k=k,
                                    seed=seed + rnd)
                res = run_phase(address, workload, load, processes=used, metadata=metadata, pool=pool,
                                progress=say, counter=counter, tls=tls)
                for name, r in res.items():  # an rpc in a mix, when it is in another phase too, is a row of its own
                    key = name if len(mix) == 1 or name == workload.label or phases_of[name] == 1 \
                        else f"{name} in {workload.label}"
                    pooled.setdefault(key, []).append(r)
                phase = res[workload.label]
                s, failed = phase.summary(), sum(phase.errors.values())
                say(f"round {rnd + 1}/{rounds} {workload.label:<18} p50 {s['p50_us']:8.0f} us  "
                    f"p99 {s['p99_us']:8.0f} us  {s['throughput_rps']:8.0f} req/s  failed {failed}"
                    + (f" ({phase.failed_share:.1%})" if failed else ""))
    report: dict[str, Any] = {
        "address": address, "tls": tls is not None, "mode": "open loop" if load.rate else "closed loop",
        "rate_rps": load.rate, "concurrency": load.concurrency, "processes": used, "processes_asked": processes,
        "connections_per_process": load.connections, "rounds": rounds, "warmup_s": load.warmup,
        "duration_s": load.duration, "requests_per_round": load.requests, "k": k, "seed": seed,
        "phases": [Workload(mix=m, track_ids=(), feature_rows=(), mood_ids=()).label for m in mixes],
        "machine": {"cpus": os.cpu_count(), "platform": platform.platform(), "python": sys.version.split()[0]},
        "date": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()), "failure_threshold": FAILURE_THRESHOLD,
        "not_comparable": [], "rpcs": {},
    }
    floor = None
    for name, results in pooled.items():
        merged = PhaseResult(rpc=name, concurrency=load.concurrency, processes=used,
                             latencies_ms=[x for r in results for x in r.latencies_ms],
                             errors=sum((r.errors for r in results), Counter()),
                             seconds=sum(r.seconds for r in results))
        s = merged.summary()
        if samples is not None:
            samples[name] = merged.latencies_ms
        if merged.failed_share > FAILURE_THRESHOLD:
            report["not_comparable"].append(name)
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
