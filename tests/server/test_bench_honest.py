"""musicrec bench says what it measured and what it did not: a server gone between phases, a saturated
server, a client behind its open-loop schedule, start-up time, the processes that ran, Ctrl-C, and where
--json and --html go. No assertion here is about how fast anything went."""

from __future__ import annotations

import contextlib
import itertools
import json
import os
import queue
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from concurrent import futures
from pathlib import Path
from typing import Any

import grpc
import pytest
from grpc_health.v1 import health, health_pb2_grpc

from musicrec.cli import main
from server import RunningServer, _bench, _bench_worker, create_server
from server._bench import FAILURE_THRESHOLD, Load, Workload, compare, parse_mix, run_phase
from server._bench_report import format_report

HEALTH = Workload(mix=(("health", 1.0),), track_ids=(), feature_rows=(), mood_ids=())


@pytest.fixture
def health_server() -> Any:
    """A bare grpc.health.v1 server: the floor alone, fast to start."""
    server = grpc.server(futures.ThreadPoolExecutor(4))
    health_pb2_grpc.add_HealthServicer_to_server(health.HealthServicer(), server)
    port = server.add_insecure_port("127.0.0.1:0")
    server.start()
    yield f"127.0.0.1:{port}"
    server.stop(None)


def test_a_server_gone_between_phases_ends_the_run_with_one_line(bundle_dir: Path, monkeypatch: pytest.MonkeyPatch,
                                                                 capsys: pytest.CaptureFixture[str]) -> None:
    """Before: the next phase waited for its connection (channel_ready) for good."""
    srv = create_server(bundle_dir, "127.0.0.1:0")
    address = f"127.0.0.1:{srv.port}"
    real = _bench.run_phase

    def then_stop_the_server(*args: Any, **kw: Any) -> Any:
        out = real(*args, **kw)
        srv.stop(0)
        return out

    monkeypatch.setattr(_bench, "run_phase", then_stop_the_server)
    monkeypatch.setattr(_bench_worker, "CONNECT_TIMEOUT", 1.0)
    try:
        code = main(["bench", "--address", address, "--requests", "5", "--rounds", "1", "--warmup", "0"])
    finally:
        srv.stop(0)
    err = capsys.readouterr().err
    assert code == 1 and "Traceback" not in err
    assert err.splitlines()[-1].startswith(f"musicrec bench: {address}: UNAVAILABLE: no connection within 1 s")


def test_the_rate_is_bounded_by_what_the_client_processes_can_pace(capsys: pytest.CaptureFixture[str],
                                                                    monkeypatch: pytest.MonkeyPatch) -> None:
    """Before: --rate 1e12 never ended, and --rate 1e7 timed the client's busy loop as the server's latency."""
    monkeypatch.setattr("server._bench.compare", lambda *a, **kw: pytest.fail("the load ran"))
    assert main(["bench", "--rate", "15000", "--concurrency", "1", "--processes", "4"]) == 2
    err = capsys.readouterr().err
    assert "--rate 15000: more than a client can pace, at most 10,000 requests/s per client process (1 here" in err
    assert main(["bench", "--rate", "25000", "--processes", "2"]) == 2
    assert "at most 10,000 requests/s per client process (2 here" in capsys.readouterr().err


def test_an_open_loop_client_behind_its_schedule_counts_its_backlog(health_server: str,
                                                                     monkeypatch: pytest.MonkeyPatch) -> None:
    """Sends the client reaches late are its own backlog (CLIENT_BACKLOG, failed calls), never sent late and
    timed from their scheduled time as if the server had been slow. Here each request takes 20 ms of the
    client's loop to build, four times the schedule's interval: the client cannot keep up."""
    real = _bench_worker._builders

    def slow(w: Workload, rng: Any) -> dict[str, Callable[[], Any]]:
        built = real(w, rng)
        make = built["health"]

        def blocking() -> Any:
            time.sleep(0.02)  # the client's own work, blocking its event loop
            return make()

        return {"health": blocking}

    monkeypatch.setattr(_bench_worker, "_builders", slow)
    result = run_phase(health_server, HEALTH, Load(concurrency=8, rate=200, warmup=0, duration=0.3),
                       processes=1)["health"]
    backlog = result.errors.get("CLIENT_BACKLOG", 0)
    assert backlog > 0 and set(result.errors) == {"CLIENT_BACKLOG"}, result.errors
    assert abs(len(result.latencies_ms) + backlog - 60) <= 1  # every slot of the schedule: sent or counted
    assert result.failed_share > FAILURE_THRESHOLD


def test_a_run_where_more_than_1_percent_failed_says_not_comparable_and_exits_1(
        running: RunningServer, monkeypatch: pytest.MonkeyPatch, tmp_path: Path,
        capsys: pytest.CaptureFixture[str]) -> None:
    """Before: a saturated server (78% RESOURCE_EXHAUSTED) got "p50/floor 0.92" and exit 0. Here half the
    similar calls fail (an unknown seed), which stands for any server that answers only part of the load."""
    from server._generated.musicrec.v1 import recommender_pb2 as pb

    real = _bench_worker._builders

    def half_failing(w: Workload, rng: Any) -> dict[str, Callable[[], Any]]:
        built = real(w, rng)
        if "similar" in built:
            good, calls = built["similar"], iter(range(10**9))
            built["similar"] = lambda: good() if next(calls) % 2 else pb.SimilarTracksRequest(
                seeds=[pb.Seed(track_id="no-such-track")], k=10)
        return built

    monkeypatch.setattr(_bench_worker, "_builders", half_failing)
    out = tmp_path / "r.json"
    code = main(["bench", "--address", f"127.0.0.1:{running.port}", "--requests", "20", "--rounds", "1",
                 "--warmup", "0", "--json", str(out)])
    captured = capsys.readouterr()
    assert code == 1, captured.err
    report = json.loads(out.read_text())
    assert report["not_comparable"] == ["similar"] and report["rpcs"]["similar"]["failed_share"] == 0.5
    assert report["rpcs"]["health"]["failed_share"] == 0 and report["failure_threshold"] == FAILURE_THRESHOLD
    assert "NOT COMPARABLE: more than 1.0% of the calls failed for similar (50.0%)" in captured.out
    assert "more than 1% of the calls failed for similar" in captured.err.splitlines()[-1]


def test_the_report_shows_each_rows_failed_share_and_when_it_is_over_the_threshold() -> None:
    def row(ok: int, errors: dict[str, int]) -> dict[str, Any]:
        return {"median_round_p50_us": 100.0, "p90_us": 1, "p99_us": 1, "p999_us": 1, "max_us": 1, "mean_us": 1,
                "median_round_throughput_rps": 10, "requests": ok, "errors": errors, "p50_vs_floor": 1.0,
                "p99_vs_floor": 1.0, "throughput_vs_floor": 1.0}

    report = {"rate_rps": 100.0, "concurrency": 8, "duration_s": 1.0, "requests_per_round": None, "address": "a:1",
              "processes": 1, "processes_asked": 1, "rounds": 1, "warmup_s": 0,
              "machine": {"cpus": 2, "platform": "p"}, "date": "d", "failure_threshold": 0.01,
              "rpcs": {"health": row(1999, {"CLIENT_BACKLOG": 1}), "similar": row(95, {"CLIENT_BACKLOG": 5})}}
    text = format_report(report)
    health_row, similar_row = (next(line for line in text.splitlines() if line.startswith(name))
                               for name in ("health ", "similar "))
    assert "<0.1%" in health_row and " 5.0%" in similar_row  # a failure is never shown as none
    assert "NOT COMPARABLE: more than 1.0% of the calls failed for similar (5.0%)" in text
    assert "CLIENT_BACKLOG this client behind its open-loop schedule" in text
    report["rpcs"]["similar"] = row(1000, {"UNAVAILABLE": 10})
    assert "NOT COMPARABLE" not in format_report(report)  # 1.0% is not more than 1%


def test_help_documents_the_threshold_and_exit_status(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit):
        main(["bench", "--help"])
    text = " ".join(capsys.readouterr().out.split())
    assert "more than 1% of a phase's calls failed" in text and "130 interrupted" in text


def test_requests_per_second_time_the_measured_requests_only(health_server: str,
                                                            monkeypatch: pytest.MonkeyPatch) -> None:
    """Before: with --requests, the clock started before the workers connected (in a pool, before they
    started): a floor of 345 req/s against 1260 for similar. The clock here is made up, not the machine's: it
    moves 1 µs a read, and 1000 s when a client connects; none of the connecting may count."""
    real_channel = grpc.aio.insecure_channel
    shift, reads = [0.0], itertools.count()

    def slow_to_connect(*args: Any, **kw: Any) -> Any:
        shift[0] += 1000.0
        return real_channel(*args, **kw)

    monkeypatch.setattr(time, "perf_counter", lambda: shift[0] + next(reads) * 1e-6)
    monkeypatch.setattr(grpc.aio, "insecure_channel", slow_to_connect)
    result = run_phase(health_server, HEALTH, Load(concurrency=2, warmup=0, duration=None, requests=20),
                       processes=1)["health"]
    assert len(result.latencies_ms) == 20 and shift[0] == 1000.0
    # the window spans clock reads only (one made-up microsecond each), never a connect's made-up 1000 s:
    # counted in reads, it holds some of the reads this run made, where a connect would add 1e9
    reads_in_window, reads_made = round(result.seconds * 1e6), next(reads)
    assert 0 < reads_in_window < reads_made


def test_requests_per_second_divide_by_the_time_to_the_last_answer(health_server: str,
                                                                    monkeypatch: pytest.MonkeyPatch) -> None:
    """A call sent before --duration ended and answered after it is counted, so its time counts too: 4 calls in
    --duration 0.001 were 4,000 req/s while each took 2-5 ms (an audit, 2026-12-07). The clock here is made up:
    one µs a read, and each answer comes a million reads after its send: the window is counted in reads."""
    answer_reads = 1_000_000
    reads = itertools.count()
    monkeypatch.setattr(time, "perf_counter", lambda: next(reads) * 1e-6)
    health_stub = health_pb2_grpc.HealthStub

    class SlowAnswers(health_stub):  # type: ignore[misc,valid-type]
        def __init__(self, channel: Any) -> None:
            super().__init__(channel)
            check = self.Check

            async def slow(*args: Any, **kw: Any) -> Any:
                answer = await check(*args, **kw)
                next(itertools.islice(reads, answer_reads - 1, None))  # the answer's made-up delay, in reads
                return answer
            self.Check = slow

    monkeypatch.setattr(health_pb2_grpc, "HealthStub", SlowAnswers)
    result = run_phase(health_server, HEALTH, Load(concurrency=4, warmup=0, duration=0.001), processes=1)["health"]
    answered = len(result.latencies_ms)
    # the window, which req/s divides by, reaches the last answer (the nominal --duration held 1,000 reads)
    reads_in_window = round(result.seconds * 1e6)
    assert answered >= 1 and reads_in_window >= answer_reads


def test_the_report_says_how_many_client_processes_ran(running: RunningServer) -> None:
    """Before: `--processes 4` with 2 clients was reported as 4 processes, and 4 were started for 2 clients."""
    report = compare(f"127.0.0.1:{running.port}", [parse_mix("similar")],
                     Load(concurrency=1, warmup=0, duration=None, requests=5), processes=2, rounds=1)
    assert (report["processes"], report["processes_asked"]) == (1, 2)
    assert all(s["processes"] == 1 for s in report["rpcs"].values())
    assert "in 1 client process (2 asked: no more processes than clients);" in format_report(report)


def test_two_client_processes_start_together_and_share_the_requests(running: RunningServer) -> None:
    report = compare(f"127.0.0.1:{running.port}", [parse_mix("similar")],
                     Load(concurrency=2, warmup=0, duration=None, requests=21), processes=2, rounds=1)
    assert report["processes"] == 2 and not report["not_comparable"]
    assert [(s["requests"], s["errors"]) for s in report["rpcs"].values()] == [(21, {}), (21, {})]
    assert "in 2 client processes;" in format_report(report)


def test_ctrl_c_with_two_client_processes_exits_130_at_once(running: RunningServer) -> None:
    """Before: each worker printed a KeyboardInterrupt traceback and the command waited for a second Ctrl-C.
    The SIGINT goes to the whole process group, as a terminal's Ctrl-C does."""
    code = "import sys\nfrom musicrec.cli import main\nsys.exit(main(sys.argv[1:]))"
    argv = ["bench", "--address", f"127.0.0.1:{running.port}", "--processes", "2", "--concurrency", "2",
            "--rounds", "1", "--warmup", "0", "--duration", "600"]
    proc = subprocess.Popen([sys.executable, "-c", code, *argv], stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                            text=True, start_new_session=True,
                            preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))
    lines: queue.Queue[str] = queue.Queue()
    reader = threading.Thread(target=lambda: [lines.put(line) for line in proc.stderr or ()], daemon=True)
    reader.start()
    seen: list[str] = []
    try:
        deadline = time.monotonic() + 120
        while not any("requests done" in line for line in seen):  # the client processes are sending
            assert proc.poll() is None and time.monotonic() < deadline, seen
            with contextlib.suppress(queue.Empty):
                seen.append(lines.get(timeout=1))
        os.killpg(proc.pid, signal.SIGINT)
        proc.wait(timeout=30)
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
        reader.join(timeout=10)  # the rest of stderr, to its end
        if proc.stderr is not None:
            proc.stderr.close()
    while not lines.empty():
        seen.append(lines.get())
    err = "".join(seen)
    assert proc.returncode == 130, err
    assert "Traceback" not in err and "KeyboardInterrupt" not in err
    assert "musicrec bench: interrupted" in err


def test_json_to_stdout_and_empty_output_names(running: RunningServer, tmp_path: Path,
                                               monkeypatch: pytest.MonkeyPatch,
                                               capsys: pytest.CaptureFixture[str]) -> None:
    """Before: --json '' and --html '' wrote nothing without a word, and --json - wrote a file named '-'.
    Now '-' is standard output, as for musicrec index --json -, with the text report on stderr."""
    for flag in ("--json", "--html"):
        with pytest.raises(SystemExit) as exit_:
            main(["bench", flag, ""])
        assert exit_.value.code == 2
        assert f"argument {flag}: empty; give a file name, or '-' for standard output" in capsys.readouterr().err
    assert main(["bench", "--json", "-", "--html", "-"]) == 2
    assert "--json - and --html - both name standard output" in capsys.readouterr().err
    monkeypatch.chdir(tmp_path)
    code = main(["bench", "--address", f"127.0.0.1:{running.port}", "--requests", "5", "--rounds", "1",
                 "--warmup", "0", "--json", "-"])
    captured = capsys.readouterr()
    assert code == 0, captured.err
    assert json.loads(captured.out)["rpcs"]["similar"]["requests"] == 5  # stdout holds the JSON alone
    assert "p50/floor" in captured.err and not (tmp_path / "-").exists()


def test_client_processes_leave_ctrl_c_to_the_parent() -> None:
    """A terminal's Ctrl-C reaches every process of the group: a worker that took it printed a
    KeyboardInterrupt traceback. Workers ignore it, from their start (an ignored signal stays ignored across
    exec, and Python leaves it so) and in their initializer."""
    import multiprocessing as mp

    probe = "import signal; print(signal.getsignal(signal.SIGINT) is signal.SIG_IGN)"
    with _bench._interrupts_ignored():
        started = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, check=True)
    assert started.stdout.strip() == "True"
    assert signal.getsignal(signal.SIGINT) is signal.default_int_handler  # this process's is back
    with mp.get_context("spawn").Pool(1, initializer=_bench_worker._init_worker, initargs=(None,)) as pool:
        assert pool.apply(signal.getsignal, (signal.SIGINT,)) is signal.SIG_IGN
