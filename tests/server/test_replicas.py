"""Replicas: ``musicrec serve --processes 2`` (one port, SO_REUSEPORT, a supervisor), and the
documented client set-up over several servers (round_robin over a multi-address target, with
client-side health checking so a draining server stops getting calls)."""

from __future__ import annotations

import argparse
import errno
import json
import multiprocessing
import os
import signal
import socket
import subprocess
import sys
import threading
import time
import types
import urllib.request
from pathlib import Path
from typing import Any

import grpc
import pytest
from grpc_health.v1 import health_pb2, health_pb2_grpc

from engine import load_bundle
from server import _replicas, create_server
from server._generated.musicrec.v1 import recommender_pb2 as pb
from server._generated.musicrec.v1 import recommender_pb2_grpc as pb_grpc
from tests._ports import unused_ports
from tests.server._replica_stand_ins import binds_when_told, one_fails_at_start, refuses_late, stubborn
from tests.server.conftest import wait_until

REPO = Path(__file__).resolve().parents[2]
SERVING = health_pb2.HealthCheckResponse.SERVING

# The client set-up docs/SCALING.md documents: every address of the service, round_robin, and
# client-side health checking (a server answering NOT_SERVING, e.g. during --drain-delay, is skipped).
SERVICE_CONFIG = json.dumps({"loadBalancingConfig": [{"round_robin": {}}], "healthCheckConfig": {"serviceName": ""}})


def children(pid: int) -> list[int]:
    """The serve processes of a supervisor (multiprocessing's resource tracker is a child too)."""
    out = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                stat = (entry / "stat").read_text()
            except OSError:
                continue
            if int(stat.rsplit(")", 1)[1].split()[1]) == pid and \
                    b"spawn_main" in (entry / "cmdline").read_bytes():
                out.append(int(entry.name))
    return out


def served_calls(metrics_port: int) -> float:
    text = urllib.request.urlopen(f"http://127.0.0.1:{metrics_port}/metrics", timeout=5).read().decode()
    return sum(float(line.rsplit(" ", 1)[1]) for line in text.splitlines()
               if line.startswith("musicrec_rpc_requests_total{") and 'grpc_method="SimilarTracks"' in line)


def test_two_processes_share_one_port_and_survive_a_crash(small_bundle_dir: Path, tmp_path: Path) -> None:
    port, metrics, _ = unused_ports(3)  # the two processes export metrics on `metrics` and `metrics` + 1
    code = "import sys; from musicrec.cli import main; sys.exit(main())"
    log = tmp_path / "serve.log"  # printed if the test fails: why a process exited (a clean-clone run once saw exit 2)
    with log.open("wb") as err:
        proc = subprocess.Popen([sys.executable, "-c", code, "serve", "--bundle", str(small_bundle_dir), "--port",
                                 str(port), "--processes", "2", "--metrics-port", str(metrics), "--log-format", "json"],
                                cwd=REPO, stderr=err)
    ids = [str(t) for t in load_bundle(small_bundle_dir).tracks.ids[:16]]
    try:
        def healthy() -> bool:
            try:
                with grpc.insecure_channel(f"127.0.0.1:{port}", options=[("grpc.use_local_subchannel_pool", 1)]) as ch:
                    return health_pb2_grpc.HealthStub(ch).Check(health_pb2.HealthCheckRequest(), timeout=1).status \
                        == SERVING
            except grpc.RpcError:
                return False

        # each check on a new connection (no subchannel shared with an earlier channel)
        wait_until(lambda: healthy() and len(children(proc.pid)) >= 2, "both processes serving", timeout=120)
        # a process starts its metrics endpoint once its bundle is loaded: under a loaded CI worker (the real-data
        # build beside it) the second one took over 60 s, so this waits as long as the waits around it
        wait_until(lambda: all(_metrics_up(metrics + i) for i in range(2)), "both metrics endpoints", timeout=120)
        # separate connections (a channel each, no shared subchannels): the kernel spreads them
        for i in range(24):
            with grpc.insecure_channel(f"127.0.0.1:{port}", options=[("grpc.use_local_subchannel_pool", 1)]) as ch:
                pb_grpc.RecommenderStub(ch).SimilarTracks(
                    pb.SimilarTracksRequest(seeds=[pb.Seed(track_id=ids[i % 16])], k=5), timeout=10)
        per_process = [served_calls(metrics + i) for i in range(2)]
        assert sum(per_process) == 24 and min(per_process) > 0, per_process
        # one process dies: connections it held or had queued are reset (clients retry), then the other
        # takes every new connection while the supervisor starts a new one, which listens once loaded
        victim = children(proc.pid)[0]
        os.kill(victim, signal.SIGKILL)
        wait_until(lambda: not Path(f"/proc/{victim}").exists(), "the dead process reaped by its supervisor")
        for _ in range(10):
            assert healthy()
        wait_until(lambda: len(children(proc.pid)) >= 2, "the supervisor restarting the process", timeout=120)
        wait_until(lambda: _metrics_up(metrics), "the new process serving", timeout=120)
    except BaseException:
        print(log.read_text(errors="replace")[-6000:])
        raise
    finally:
        proc.send_signal(signal.SIGTERM)
        code_at_exit = proc.wait(timeout=60)
    assert code_at_exit == 0, log.read_text(errors="replace")[-6000:]
    assert not children(proc.pid)


def _metrics_up(port: int) -> bool:
    try:
        served_calls(port)
        return True
    except OSError:
        return False


def test_round_robin_over_several_servers_skips_one_that_drains(small_bundle_dir: Path) -> None:
    servers = [create_server(small_bundle_dir, "127.0.0.1:0") for _ in range(2)]
    counts = [0, 0]
    for i, srv in enumerate(servers):
        rec = srv.holder.require()
        original = rec.similar

        def counting(query: object, *, i: int = i, original=original, **kw: object) -> object:  # type: ignore[no-untyped-def]
            counts[i] += 1
            return original(query, **kw)

        rec.similar = counting  # type: ignore[method-assign]
    target = "ipv4:" + ",".join(f"127.0.0.1:{s.port}" for s in servers)
    request = pb.SimilarTracksRequest(seeds=[pb.Seed(track_id=str(load_bundle(small_bundle_dir).tracks.ids[0]))], k=5)
    try:
        with grpc.insecure_channel(target, options=[("grpc.service_config", SERVICE_CONFIG)]) as ch:
            stub = pb_grpc.RecommenderStub(ch)
            grpc.channel_ready_future(ch).result(timeout=10)
            for _ in range(20):
                stub.SimilarTracks(request, timeout=10)
            assert counts[0] >= 5 and counts[1] >= 5, counts  # round_robin: both get calls
            servers[0].set_serving(False)  # draining: health NOT_SERVING, still answering
            time.sleep(0.5)  # the health watch streams the change to the channel
            before = counts[0]
            for _ in range(20):
                stub.SimilarTracks(request, timeout=10)
            assert counts[0] == before, counts  # no call went to the draining server
            servers[0].set_serving(True)
            wait_until(lambda: (stub.SimilarTracks(request, timeout=10), counts[0] > before)[1],
                       "calls reaching the server again once it is SERVING")
    finally:
        for s in servers:
            s.stop(grace=0.2)


def test_replicas_load_a_flat_index_from_shared_pages(small_bundle_dir: Path) -> None:
    import numpy as np

    from engine import Recommender, Seed, SimilarQuery

    plain, shared = load_bundle(small_bundle_dir), load_bundle(small_bundle_dir, share_pages=True)
    np.testing.assert_array_equal(plain.vectors, shared.vectors)
    assert shared.vectors.base is not None and not shared.vectors.flags.owndata  # a view of the mapped index
    q = SimilarQuery(seeds=[Seed(track_id=str(plain.tracks.ids[3]))], k=20, diversity=0.3)
    assert Recommender(plain).similar(q).rows.tolist() == Recommender(shared).similar(q).rows.tolist()


def replicas_run(monkeypatch: pytest.MonkeyPatch, stand_in: Any) -> list[multiprocessing.process.BaseProcess]:
    """The supervisor's processes run ``stand_in`` (for ``musicrec serve``); the list fills as it starts them."""
    spawn, started = multiprocessing.get_context("spawn"), []

    class Stub:
        def Process(self, target: object, args: tuple, name: str) -> multiprocessing.process.BaseProcess:
            started.append(spawn.Process(target=stand_in, args=args, name=name))
            return started[-1]

    monkeypatch.setattr(_replicas, "multiprocessing", types.SimpleNamespace(get_context=lambda method: Stub()))
    return started


def supervise(args: argparse.Namespace, started: list[multiprocessing.process.BaseProcess]) -> int:
    """``run_replicas(args)`` in this process; its signal handlers restored and its processes killed after."""
    handlers = {sig: signal.getsignal(sig) for sig in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP)}
    try:
        return _replicas.run_replicas(args)
    finally:
        for sig, handler in handlers.items():
            signal.signal(sig, handler)
        for p in started:
            if p.is_alive():
                p.kill()


def test_a_process_that_will_not_stop_is_killed_and_the_supervisor_exits_1(monkeypatch: pytest.MonkeyPatch,
                                                                           tmp_path: Path) -> None:
    started = replicas_run(monkeypatch, stubborn)
    monkeypatch.setattr(_replicas, "STOP_SLACK", 1.0)
    args = argparse.Namespace(processes=2, host="127.0.0.1", port=0, drain_delay=0.0, grace=0.0,
                              ready_dir=str(tmp_path))

    ready: list[bool] = []

    def stop_once_both_ignore_it() -> None:
        try:  # the timeout bounds a hang only; the SIGTERM comes either way, so the supervisor returns
            wait_until(lambda: len(list(tmp_path.glob("ready-*"))) == 2, "both processes ignoring SIGTERM",
                       timeout=120)
            ready.append(True)
        finally:
            os.kill(os.getpid(), signal.SIGTERM)  # the supervisor's handler forwards it

    stopper = threading.Thread(target=stop_once_both_ignore_it, daemon=True)
    stopper.start()
    assert supervise(args, started) == 1
    stopper.join(5)
    assert ready, "the processes never ignored SIGTERM"
    assert len(started) == 2 and [p.exitcode for p in started] == [-signal.SIGKILL] * 2


@pytest.mark.parametrize(("all_fail", "code"), [(False, 2), (True, 2), (True, 3)])
def test_a_process_that_keeps_failing_stops_the_others_only_when_none_serves(
        monkeypatch: pytest.MonkeyPatch, all_fail: bool, code: int) -> None:
    # a crash while the pointer named a damaged bundle once stopped the healthy replica too: a full outage
    started = replicas_run(monkeypatch, one_fails_at_start)
    monkeypatch.setattr(_replicas, "RETRY_SECONDS", 0.2)
    args = argparse.Namespace(processes=2, host="127.0.0.1", port=0, drain_delay=0.0, grace=0.0, all_fail=all_fail,
                              code=code)

    def stop_after_retries() -> None:
        try:  # process 1 started again past MAX_FAST_FAILURES while process 0 serves (the timeout bounds a hang)
            wait_until(lambda: len(started) >= _replicas.MAX_FAST_FAILURES + 3, "process 1 to be retried",
                       timeout=120)
            assert started[0].is_alive()
        finally:
            os.kill(os.getpid(), signal.SIGTERM)

    stopper = threading.Thread(target=stop_after_retries, daemon=True)
    if not all_fail:
        stopper.start()
    # giving up: 2 when the processes refused their arguments (exit 2), else 1
    assert supervise(args, started) == ((code if code == 2 else 1) if all_fail else 0)
    if not all_fail:  # (all failing: the return code above says the supervisor gave up)
        stopper.join(5)
        assert len(started) >= _replicas.MAX_FAST_FAILURES + 3


def test_processes_that_refuse_their_arguments_late_stop_the_supervisor(monkeypatch: pytest.MonkeyPatch) -> None:
    """A refusal (exit 2) that comes after the fast-failure window, as a malformed --qdrant-url's does, was started
    again forever (an audit, 2026-12-07): exit 2 counts as a fast failure however late, and the supervisor exits 2."""
    started = replicas_run(monkeypatch, refuses_late)
    monkeypatch.setattr(_replicas, "FAST_FAILURE", 0.2)
    args = argparse.Namespace(processes=2, host="127.0.0.1", port=0, drain_delay=0.0, grace=0.0, after=0.5)
    assert supervise(args, started) == 2
    assert len(started) <= 2 * _replicas.MAX_FAST_FAILURES  # each started at most that often, then given up


def test_port_0_is_held_from_its_choice_while_the_processes_bind_it(monkeypatch: pytest.MonkeyPatch,
                                                                   tmp_path: Path) -> None:
    """With --port 0 the supervisor chose a free port and let it go before its processes bound it, so another
    program could take it in between. It now holds the port (bound with SO_REUSEPORT, never listening) while it
    runs: another program's bind is refused, the processes bind beside it, and every connection reaches one of them."""
    started = replicas_run(monkeypatch, binds_when_told)
    args = argparse.Namespace(processes=2, host="127.0.0.1", port=0, drain_delay=0.0, grace=0.0,
                              ready_dir=str(tmp_path))
    seen: dict[str, object] = {}

    def meanwhile() -> None:
        try:  # (the timeouts bound a hang only; the SIGTERM comes either way, so the supervisor returns)
            wait_until(lambda: len(started) == 2, "the supervisor to start both processes", timeout=120)
            with socket.socket() as other:  # before the processes bind: another program's plain bind
                try:
                    other.bind(("127.0.0.1", args.port))
                    seen["other"] = "bound"
                except OSError as e:
                    seen["other"] = e.errno
            (tmp_path / "go").touch()
            wait_until(lambda: len(list(tmp_path.glob("bound-*")) + list(tmp_path.glob("failed-*"))) == 2,
                       "both processes to bind", timeout=120)
            seen["failed"] = sorted(p.read_text() for p in tmp_path.glob("failed-*"))
            refused = 0
            for _ in range(40):  # the kernel spreads connections over listening sockets only
                try:
                    socket.create_connection(("127.0.0.1", args.port), timeout=5).close()
                except ConnectionRefusedError:
                    refused += 1
            seen["refused"] = refused
        finally:
            os.kill(os.getpid(), signal.SIGTERM)

    helper = threading.Thread(target=meanwhile, daemon=True)
    helper.start()
    assert supervise(args, started) == 0
    helper.join(5)
    assert args.port != 0
    assert seen == {"other": errno.EADDRINUSE, "failed": [], "refused": 0}
    with socket.socket() as after:  # and let go when the supervisor returns
        after.bind(("127.0.0.1", args.port))
