"""The load generator itself: every mode runs against a real server and reports what it measured."""

from __future__ import annotations

import pytest

from indexer.cli import main
from server import RunningServer
from server._bench import Load, compare, format_report, parse_mix


@pytest.mark.parametrize("load", [
    Load(concurrency=2, warmup=0.1, duration=0.4),                 # closed loop
    Load(concurrency=8, rate=200, warmup=0.1, duration=0.5),       # open loop
    Load(concurrency=2, warmup=0.1, duration=None, requests=60),   # fixed request count
])
def test_modes_measure_the_floor_and_each_phase(running: RunningServer, load: Load) -> None:
    report = compare(f"127.0.0.1:{running.port}", [parse_mix("similar"), parse_mix("similar=3,classify=1,playlist=1")],
                     load, processes=1, rounds=1)
    rpcs = report["rpcs"]
    assert {"health", "similar", "classify", "playlist", "mix(similar=3,classify=1,playlist=1)"} <= set(rpcs)
    for name, s in rpcs.items():
        assert s["requests"] > 0 and not s["errors"], (name, s)
        percentiles = [s["p50_us"], s["p90_us"], s["p99_us"], s["max_us"]]
        assert percentiles == sorted(percentiles)  # a well-formed report, not a speed bound
        if name != "health":
            assert s["p50_vs_floor"] > 0 and s["throughput_vs_floor"] > 0
    if load.requests:
        assert rpcs["health"]["requests"] == load.requests
    if load.rate:
        assert report["mode"] == "open loop" and 0.5 * load.rate <= rpcs["health"]["throughput_rps"] <= 1.2 * load.rate
    assert "p50/floor" in format_report(report)


def test_bad_mixes_are_refused(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(ValueError, match="unknown rpc 'simlar'"):
        parse_mix("simlar=2")
    with pytest.raises(ValueError, match="must be > 0"):
        parse_mix("similar=0")
    assert main(["bench", "--mix", "similar=x"]) == 2
    assert "not a number" in capsys.readouterr().err
