"""The load generator itself: every mode runs against a real server and reports what it measured."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from musicrec.cli import main
from server import RunningServer
from server._bench import Load, compare, parse_mix
from server._bench_report import format_report


@pytest.mark.parametrize("load", [
    Load(concurrency=2, warmup=0.1, duration=0.4),                 # closed loop
    Load(concurrency=8, rate=200, warmup=0.1, duration=0.5),       # open loop
    Load(concurrency=2, warmup=0.1, duration=None, requests=60),   # fixed request count
])
def test_modes_measure_the_floor_and_each_phase(running: RunningServer, load: Load) -> None:
    report = compare(f"127.0.0.1:{running.port}", [parse_mix("similar"), parse_mix("similar=3,classify=1,playlist=1")],
                     load, processes=1, rounds=1)
    # what was sent and how it was reported; how fast it went is for benchmarks/, never a test
    mix = "mix(similar=3,classify=1,playlist=1)"
    assert report["phases"] == ["health", "similar", mix]
    assert report["mode"] == ("open loop" if load.rate else "closed loop") and report["rate_rps"] == load.rate
    assert (report["concurrency"], report["rounds"], report["requests_per_round"]) == (load.concurrency, 1,
                                                                                       load.requests)
    rpcs = report["rpcs"]
    # similar alone and similar in the mix are two rows: one row pooled both loads (an audit, 2026-12-07)
    assert set(rpcs) == {"health", "similar", f"similar in {mix}", "classify", "playlist", mix}

    def backlog(name: str) -> int:  # open loop only: sends the client skipped, having `concurrency` in flight
        return rpcs[name]["errors"].get("CLIENT_BACKLOG", 0)

    for name, s in rpcs.items():
        # the server answered every call it got; whether the client kept up with the schedule depends on the
        # machine (a busy CI worker falls behind 200 req/s now and then), so it is counted, never an error here
        server_errors = {code: n for code, n in s["errors"].items() if code != "CLIENT_BACKLOG"}
        assert s["requests"] > 0 and not server_errors, (name, s)
        assert load.rate or not backlog(name), (name, s)
        percentiles = [s["p50_us"], s["p90_us"], s["p99_us"], s["max_us"]]
        assert percentiles == sorted(percentiles)
        if name != "health":
            assert s["p50_vs_floor"] > 0 and s["throughput_vs_floor"] > 0
    # the mix's RPCs add up to the mix
    in_mix = (f"similar in {mix}", "classify", "playlist")
    assert sum(rpcs[r]["requests"] for r in in_mix) == rpcs[mix]["requests"]
    # what the schedule sent: the answered calls and, in open loop, the ones the client had to skip
    by_rpc = rpcs["similar"]["requests"] + sum(rpcs[r]["requests"] for r in in_mix)
    sent = {"health": rpcs["health"]["requests"] + backlog("health"), mix: rpcs[mix]["requests"] + backlog(mix),
            "similar+mix": by_rpc + sum(backlog(r) for r in ("similar", *in_mix))}
    if load.requests:  # exactly the number asked for, per phase
        assert sent == {"health": load.requests, mix: load.requests, "similar+mix": 2 * load.requests}
    elif load.rate and load.duration:  # open loop: one request per 1/rate s of the window, however fast the server
        wanted = load.rate * load.duration
        assert abs(sent["health"] - wanted) <= 1 and abs(sent[mix] - wanted) <= 1, sent
        assert abs(sent["similar+mix"] - 2 * wanted) <= 2, sent
    assert "p50/floor" in format_report(report)


def test_bad_mixes_are_refused(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(ValueError, match="unknown rpc 'simlar'"):
        parse_mix("simlar=2")
    with pytest.raises(ValueError, match="must be a finite number > 0"):
        parse_mix("similar=0")
    assert main(["bench", "--mix", "similar=x"]) == 2
    assert "not a number" in capsys.readouterr().err


@pytest.mark.parametrize(("argv", "words"), [
    # its calls were pooled into the floor, the row every ratio is divided by (an audit, 2026-12-07)
    (["--mix", "health=1,similar=1"], "health is the floor, measured alone every round: leave it out of the mix "
                                      "'health=1,similar=1'"),
    # measured for twice the rounds of the floor, in one row
    (["--rpc", "similar", "--rpc", "similar"], "the phase 'similar' is given twice: give it once"),
    (["--mix", "similar=1,classify=2", "--mix", "similar=1,classify=2"], "the phase 'similar=1,classify=2' is given"),
])
def test_health_in_a_mix_or_a_phase_given_twice_is_refused(
        argv: list[str], words: str, no_load: list[dict[str, Any]], capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["bench", *argv]) == 2 and not no_load
    assert words in capsys.readouterr().err
    with pytest.raises(ValueError, match="health is the floor"):  # the API refuses them as the command does
        compare("127.0.0.1:9", [(("health", 1.0), ("similar", 1.0))], Load(), processes=1, rounds=1)


@pytest.mark.parametrize("mix", ["similar=nan,classify=1", "similar=inf", "similar=1,classify=-inf",
                                 "similar=1e308,classify=1e308", "classify=1e308,similar=1e308,batch=1"])
def test_a_mix_weight_that_is_no_finite_number_is_refused_naming_mix(mix: str, no_load: list[dict[str, Any]],
                                                                     capsys: pytest.CaptureFixture[str]) -> None:
    """Before: nan, inf and weights adding up to inf passed, and the run ended in exit 70 (numpy's
    "Probabilities contain NaN") after the floor's phase."""
    assert main(["bench", "--mix", mix]) == 2 and not no_load
    err = capsys.readouterr().err
    assert err.startswith(f"musicrec bench: error: --mix {mix!r}: ") and "Traceback" not in err
    assert "must be a finite number > 0" in err or "add up to more than a number holds" in err
    assert parse_mix("similar=1e-300,classify=1e300") == (("similar", 1e-300), ("classify", 1e300))  # ratios count


@pytest.mark.parametrize("connections", [1, 3])
def test_each_client_process_holds_the_connections_asked_for(connections: int) -> None:
    # A server of several processes on one port is handed connections, not calls: the peers a server sees
    # are the connections the bench opened, and every client's calls are answered over them.
    from concurrent import futures

    import grpc
    from grpc_health.v1 import health, health_pb2_grpc

    from server._bench import Workload, run_phase

    peers: list[str] = []

    class Recording(health.HealthServicer):
        def Check(self, request: Any, context: Any) -> Any:  # gRPC names the method
            peers.append(context.peer())
            return super().Check(request, context)

    server = grpc.server(futures.ThreadPoolExecutor(4))
    health_pb2_grpc.add_HealthServicer_to_server(Recording(), server)
    port = server.add_insecure_port("127.0.0.1:0")
    server.start()
    try:
        workload = Workload(mix=(("health", 1.0),), track_ids=(), feature_rows=(), mood_ids=())
        results = run_phase(f"127.0.0.1:{port}", workload, Load(concurrency=4, warmup=0, duration=None, requests=40,
                                                                 connections=connections), processes=1)
    finally:
        server.stop(None)
    assert len(results["health"].latencies_ms) == 40 and not results["health"].errors
    assert len(peers) == 40 and len(set(peers)) == connections, sorted(set(peers))


class Reached(BaseException):
    """Raised in place of the load: the options got past parsing (a BaseException: main reports an
    Exception as an internal error)."""


@pytest.fixture
def no_load(monkeypatch: pytest.MonkeyPatch) -> list[dict[str, Any]]:
    """``compare`` replaced: what it was called with is recorded, and it raises ``Reached``."""
    calls: list[dict[str, Any]] = []

    def reached(address: str, phases: Any, load: Load, **kw: Any) -> Any:
        calls.append({"load": load, **kw})
        raise Reached

    monkeypatch.setattr("server._bench.compare", reached)
    return calls


@pytest.mark.parametrize(("flag", "value"), [
    ("--duration", "nan"), ("--duration", "inf"), ("--duration", "0"), ("--duration", "-5"),
    ("--rate", "nan"), ("--rate", "inf"), ("--rate", "0"), ("--rate", "-100"), ("--rate", "fast"),
    ("--rate", "1e12"), ("--rate", "1e308"), ("--rate", "2560001"),
    ("--rounds", "0"), ("--rounds", "-1"), ("--rounds", "2.5"),
    ("--warmup", "nan"), ("--warmup", "inf"), ("--warmup", "-1"),
    ("--concurrency", "0"), ("--concurrency", "-4"), ("--concurrency", "100001"),
    ("--requests", "0"), ("--requests", "-10"),
    ("--processes", "-1"), ("--processes", "257"), ("--connections", "0"), ("--connections", "1025"),
    ("-k", "0"), ("-k", "-3"), ("--seed", "-1"),
])
def test_bad_numbers_are_refused_at_parsing_naming_the_flag(flag: str, value: str, no_load: list[dict[str, Any]],
                                                            capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exit_:
        main(["bench", flag, value])
    assert exit_.value.code == 2 and not no_load
    err = capsys.readouterr().err
    assert f"argument {flag}: " in err and "Traceback" not in err


def test_every_sensible_number_is_still_taken(no_load: list[dict[str, Any]]) -> None:
    with pytest.raises(Reached):
        main(["bench", "--duration", "0.25", "--warmup", "0", "--rate", "0.5", "--rounds", "1", "--concurrency", "1",
              "--processes", "0", "--connections", "1", "-k", "1", "--seed", "0"])
    with pytest.raises(Reached):
        main(["bench", "--requests", "1", "--concurrency", "100000", "--processes", "256", "--connections", "1024"])
    first, second = no_load
    assert (first["load"].duration, first["load"].warmup, first["load"].rate, first["rounds"]) == (0.25, 0.0, 0.5, 1)
    assert (second["load"].requests, second["load"].concurrency, second["processes"]) == (1, 100000, 256)


@pytest.mark.parametrize("flag", ["--json", "--html"])
@pytest.mark.parametrize("where", ["a directory", "under a file", "a name ending in /"])
def test_an_output_that_cannot_be_written_is_refused_before_the_load(flag: str, where: str, tmp_path: Path,
                                                                     no_load: list[dict[str, Any]],
                                                                     capsys: pytest.CaptureFixture[str]) -> None:
    """Before: the whole load ran, then a traceback from write_text and exit 70. Exit 1, as the help says of a
    file that could not be written, and as index and report exit (it was 2); a name ending in "/" (a folder
    still to be made) was written as a file of that name."""
    (tmp_path / "file").write_text("")
    path = {"a directory": str(tmp_path), "under a file": str(tmp_path / "file" / "sub" / "out"),
            "a name ending in /": f"{tmp_path / 'new'}/"}[where]
    assert main(["bench", flag, path]) == 1 and not no_load
    err = capsys.readouterr().err
    assert err.startswith(f"musicrec bench: error: {flag} {path}: ") and "Traceback" not in err
    assert {"a directory": "is a directory", "under a file": f"{tmp_path / 'file'} is not a directory",
            "a name ending in /": "ends in '/', which names a directory; give a file name"}[where] in err
    assert not (tmp_path / "new").exists()


def test_an_output_in_a_folder_that_takes_no_write_is_refused_before_the_load(
        tmp_path: Path, no_load: list[dict[str, Any]], monkeypatch: pytest.MonkeyPatch,
        capsys: pytest.CaptureFixture[str]) -> None:
    """Checked as the indexer checks its report files (engine output_file_problem). The tests run as root, whom
    os.access never refuses: it is made to refuse the folder."""
    import os

    real = os.access
    monkeypatch.setattr(os, "access", lambda p, mode, **kw: False if Path(p) == tmp_path else real(p, mode, **kw))
    assert main(["bench", "--json", str(tmp_path / "new" / "out.json")]) == 1 and not no_load
    assert capsys.readouterr().err == (f"musicrec bench: error: --json {tmp_path / 'new' / 'out.json'}: not writable "
                                       "here (permissions)\n")


def bench_once(port: int, *argv: str) -> int:
    return main(["bench", "--address", f"127.0.0.1:{port}", "--requests", "5", "--rounds", "1", "--warmup", "0",
                 *argv])


@pytest.mark.skipif(not Path("/dev/full").exists(), reason="needs Linux's /dev/full")
def test_reports_go_into_new_folders_and_a_full_disk_leaves_the_earlier_one_whole(
        running: RunningServer, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
        capsys: pytest.CaptureFixture[str]) -> None:
    """bench wrote its files in place (write_text): a full disk cut an earlier report short. It now writes them
    as the indexer writes its own (engine write_output): beside, then renamed over."""
    import json

    from tests._full_disk import full_disk

    out = tmp_path / "new" / "dir" / "out.json"  # missing folders are created
    assert bench_once(running.port, "--json", str(out)) == 0
    earlier = out.read_text(encoding="utf-8")
    assert json.loads(earlier)["rpcs"]
    full_disk(monkeypatch)
    capsys.readouterr()
    assert bench_once(running.port, "--json", str(out)) == 1
    assert "No space left on device" in capsys.readouterr().err
    assert out.read_text(encoding="utf-8") == earlier and sorted(p.name for p in out.parent.iterdir()) == ["out.json"]


def test_json_and_html_into_one_file_are_refused(tmp_path: Path, no_load: list[dict[str, Any]],
                                                capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["bench", "--json", str(tmp_path / "r"), "--html", str(tmp_path / "r")]) == 2 and not no_load
    assert "--json and --html name the same file" in capsys.readouterr().err


def test_a_write_that_fails_after_the_run_exits_1_saying_the_results_were_printed(
        running: RunningServer, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
        capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "out.json"
    real = compare

    def then_block_the_path(*args: Any, **kw: Any) -> Any:  # the path was fine when checked, not when written
        report = real(*args, **kw)
        out.mkdir()
        return report

    monkeypatch.setattr("server._bench.compare", then_block_the_path)
    code = bench_once(running.port, "--json", str(out))
    captured = capsys.readouterr()
    assert code == 1 and "p50/floor" in captured.out and "Traceback" not in captured.err
    assert f"--json {out}: cannot write it" in captured.err and "printed but not written" in captured.err


def test_requests_and_duration_together_are_refused(no_load: list[dict[str, Any]],
                                                    capsys: pytest.CaptureFixture[str]) -> None:
    """Before: --duration was silently ignored when --requests was given."""
    assert main(["bench", "--requests", "5", "--duration", "30"]) == 2 and not no_load
    err = capsys.readouterr().err
    assert "--requests and --duration are alternatives" in err
    with pytest.raises(Reached):
        main(["bench"])
    with pytest.raises(Reached):
        main(["bench", "--requests", "5"])
    assert [(c["load"].duration, c["load"].requests) for c in no_load] == [(5.0, None), (None, 5)]


def test_a_phase_where_every_call_failed_exits_1(running: RunningServer, monkeypatch: pytest.MonkeyPatch,
                                                 capsys: pytest.CaptureFixture[str]) -> None:
    """Before: every SimilarTracks call NOT_FOUND, and the run exited 0 with ratios of 0.00."""
    from server import _bench_worker
    from server._generated.musicrec.v1 import recommender_pb2 as pb

    real = _bench_worker._builders

    def failing(w: Any, rng: Any) -> Any:
        built = real(w, rng)
        if "similar" in built:
            built["similar"] = lambda: pb.SimilarTracksRequest(seeds=[pb.Seed(track_id="no-such-track")], k=10)
        return built

    monkeypatch.setattr(_bench_worker, "_builders", failing)
    code = main(["bench", "--address", f"127.0.0.1:{running.port}", "--requests", "4", "--rounds", "1",
                 "--warmup", "0", "--rpc", "similar", "--rpc", "classify"])
    err = capsys.readouterr().err
    assert code == 1, err
    assert "no call succeeded for similar (NOT_FOUND x4)" in err and "classify" not in err.splitlines()[-1]
