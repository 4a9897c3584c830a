"""Prometheus metrics: a real server, RPCs of each outcome, then the scraped /metrics text, parsed
with the client library's own parser, must show every series move as it should."""

from __future__ import annotations

import logging
import math
import shutil
import threading
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import grpc
import pytest
from grpc_health.v1 import health_pb2, health_pb2_grpc
from prometheus_client.parser import text_string_to_metric_families

from server import RunningServer, ServerOptions, create_server
from server._generated.musicrec.v1 import recommender_pb2 as pb
from server._generated.musicrec.v1 import recommender_pb2_grpc as pb_grpc
from server._metrics import RPC_BUCKETS, server_state

from .conftest import Blocker, wait_until

T = 10
SERVICE = "musicrec.v1.Recommender"


class Scrape:
    """One scrape of /metrics: sample values by name and labels, and the metric families' types."""

    def __init__(self, port: int) -> None:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=T) as response:
            assert response.status == 200
            assert response.headers["Content-Type"].startswith("text/plain")
            self.text = response.read().decode()
        self.types: dict[str, str] = {}
        self.samples: list[tuple[str, dict[str, str], float]] = []
        for family in text_string_to_metric_families(self.text):
            self.types[family.name] = family.type
            self.samples += [(s.name, s.labels, s.value) for s in family.samples]

    def all(self, name: str, **labels: str) -> list[tuple[dict[str, str], float]]:
        return [(lb, v) for n, lb, v in self.samples if n == name and all(lb.get(k) == w for k, w in labels.items())]

    def value(self, name: str, default: float | None = None, **labels: str) -> float:
        found = self.all(name, **labels)
        if not found:
            if default is not None:
                return default
            raise AssertionError(f"no sample {name}{labels} in the scrape")
        assert len(found) == 1, f"{name}{labels} matches {len(found)} samples: {found}"
        return found[0][1]

    def rpc(self, name: str, method: str, code: str | None = None, service: str = SERVICE,
            default: float | None = None) -> float:
        labels = {"grpc_service": service, "grpc_method": method}
        if code is not None:
            labels["grpc_code"] = code
        return self.value(name, default, **labels)


@pytest.fixture
def metered(bundle_dir: Path) -> Iterator[RunningServer]:
    srv = create_server(bundle_dir, "127.0.0.1:0", ServerOptions(metrics_port=0, max_concurrent=3,
                                                                   bundle_root=bundle_dir.parent.parent))
    yield srv
    srv.stop(0)


def similar(srv: RunningServer, track_id: str | None = None, **kw: object) -> pb.SimilarTracksRequest:
    return pb.SimilarTracksRequest(seeds=[pb.Seed(track_id=track_id or srv.holder.require().ids[0])], **kw)


def test_requests_by_method_and_code_with_their_histograms(metered: RunningServer) -> None:
    assert metered.metrics_port
    before = Scrape(metered.metrics_port)
    assert before.rpc("musicrec_rpc_requests_total", "SimilarTracks", "OK", default=0) == 0
    with grpc.insecure_channel(f"127.0.0.1:{metered.port}") as ch:
        stub = pb_grpc.RecommenderStub(ch)
        for _ in range(3):
            stub.SimilarTracks(similar(metered), timeout=T)
        codes = []
        for request in (similar(metered, "no-such-track"), similar(metered, k=5000)):
            with pytest.raises(grpc.RpcError) as err:
                stub.SimilarTracks(request, timeout=T)
            codes.append(err.value.code())
        assert codes == [grpc.StatusCode.NOT_FOUND, grpc.StatusCode.INVALID_ARGUMENT]
        assert len(list(stub.StreamMoodPlaylist(pb.MoodPlaylistRequest(mood_id=0, length=5), timeout=T))) == 5
        stub.ListMoods(pb.ListMoodsRequest(), timeout=T)
        health_pb2_grpc.HealthStub(ch).Check(health_pb2.HealthCheckRequest(), timeout=T)
        with pytest.raises(grpc.RpcError) as err:  # bytes that are not the request message (a string not UTF-8)
            ch.unary_unary("/musicrec.v1.Recommender/GetTrack")(b"\x0a\x02\xc3\x28", timeout=T)
        assert err.value.code() == grpc.StatusCode.INVALID_ARGUMENT
        with pytest.raises(grpc.RpcError) as err:  # a method the server does not have
            ch.unary_unary("/musicrec.v1.Recommender/NoSuchMethod")(b"", timeout=T)
        assert err.value.code() == grpc.StatusCode.UNIMPLEMENTED

    s = Scrape(metered.metrics_port)
    assert s.types["musicrec_rpc_requests"] == "counter"
    assert s.types["musicrec_rpc_duration_seconds"] == "histogram"
    expected = {("SimilarTracks", "OK"): 3, ("SimilarTracks", "NOT_FOUND"): 1, ("SimilarTracks", "INVALID_ARGUMENT"): 1,
                ("StreamMoodPlaylist", "OK"): 1, ("ListMoods", "OK"): 1, ("GetTrack", "INVALID_ARGUMENT"): 1}
    for (method, code), n in expected.items():
        assert s.rpc("musicrec_rpc_requests_total", method, code) == n, (method, code)
        # every call that reached a handler is in its histogram: cumulative buckets ending at the count
        assert s.rpc("musicrec_rpc_duration_seconds_count", method, code) == n
        assert s.rpc("musicrec_rpc_duration_seconds_sum", method, code) > 0
        buckets = sorted((float(lb["le"]), v) for lb, v in s.all("musicrec_rpc_duration_seconds_bucket",
                                                                  grpc_method=method, grpc_code=code))
        assert [le for le, _ in buckets] == [*RPC_BUCKETS, math.inf]
        counts = [v for _, v in buckets]
        assert counts == sorted(counts) and counts[-1] == n
    assert s.rpc("musicrec_rpc_requests_total", "Check", "OK", service="grpc.health.v1.Health") == 1
    # the caller's method name is not a label: unknown methods share one series
    assert s.rpc("musicrec_rpc_requests_total", "unknown", "UNIMPLEMENTED", service="unknown") == 1
    assert "NoSuchMethod" not in s.text
    # everything finished: nothing in flight, nothing shed, no deadline missed
    assert {v for _, v in s.all("musicrec_rpc_in_flight")} == {0}
    assert {v for _, v in s.all("musicrec_rpc_shed_total")} == {0}
    assert {v for _, v in s.all("musicrec_rpc_deadline_exceeded_total")} == {0}
    assert s.value("musicrec_rpc_max_concurrent") == 3
    assert s.value("musicrec_rpc_accepted") == 0
    # the standard process collectors come along
    assert s.value("process_resident_memory_bytes") > 0
    assert s.value("musicrec_server_info", grpc_version=grpc.__version__) == 1


def test_the_bundle_info_and_age(metered: RunningServer) -> None:
    s = Scrape(metered.metrics_port or 0)
    rec = metered.holder.require()
    (labels, value), = s.all("musicrec_bundle_info")
    assert value == 1
    assert labels == {"bundle_id": rec.bundle.version, "tracks": str(rec.n), "created_at": rec.bundle.manifest["created_at"],
                      "format_version": str(rec.bundle.manifest["format_version"])}
    assert s.value("musicrec_bundle_loaded") == 1
    created = s.value("musicrec_bundle_created_timestamp_seconds")
    assert created > 1.7e9  # a real Unix time, not 0
    assert s.value("musicrec_bundle_age_seconds") >= 0
    assert s.value("musicrec_bundle_loads_total", result="loaded") == 1
    assert s.value("musicrec_bundle_loads_total", result="refused") == 0
    assert s.value("musicrec_bundle_last_load_successful") == 1
    assert s.value("musicrec_bundle_last_load_duration_seconds") > 0


def test_in_flight_while_a_call_runs_then_back_to_zero(metered: RunningServer, blocking: Blocker) -> None:
    port = metered.metrics_port or 0
    with grpc.insecure_channel(f"127.0.0.1:{metered.port}") as ch:
        call = pb_grpc.RecommenderStub(ch).SimilarTracks.future(similar(metered), timeout=T)
        assert blocking.entered.acquire(timeout=T)
        s = Scrape(port)
        assert s.rpc("musicrec_rpc_in_flight", "SimilarTracks") == 1
        assert s.value("musicrec_rpc_accepted") == 1
        blocking.release.set()
        assert len(call.result().results) == 10
    s = Scrape(port)
    assert s.rpc("musicrec_rpc_in_flight", "SimilarTracks") == 0
    assert s.rpc("musicrec_rpc_requests_total", "SimilarTracks", "OK") == 1


def test_calls_over_the_concurrency_limit_are_counted_as_shed(metered: RunningServer, blocking: Blocker) -> None:
    assert server_state(metered.server) is not None, "gRPC renamed the state the shed counter reads"
    port = metered.metrics_port or 0
    with grpc.insecure_channel(f"127.0.0.1:{metered.port}") as ch:
        stub = pb_grpc.RecommenderStub(ch)
        held = [stub.SimilarTracks.future(similar(metered), timeout=T) for _ in range(3)]  # --max-concurrent 3
        for _ in held:
            assert blocking.entered.acquire(timeout=T)
        with pytest.raises(grpc.RpcError) as err:
            stub.SimilarTracks(similar(metered), timeout=T)
        assert err.value.code() == grpc.StatusCode.RESOURCE_EXHAUSTED
        with pytest.raises(grpc.RpcError) as err:  # health checks count toward the limit too
            health_pb2_grpc.HealthStub(ch).Check(health_pb2.HealthCheckRequest(), timeout=T)
        assert err.value.code() == grpc.StatusCode.RESOURCE_EXHAUSTED
        s = Scrape(port)
        assert s.rpc("musicrec_rpc_shed_total", "SimilarTracks") == 1
        assert s.rpc("musicrec_rpc_shed_total", "Check", service="grpc.health.v1.Health") == 1
        assert s.rpc("musicrec_rpc_requests_total", "SimilarTracks", "RESOURCE_EXHAUSTED") == 1
        assert s.rpc("musicrec_rpc_in_flight", "SimilarTracks") == 3
        assert s.value("musicrec_rpc_accepted") == 3
        blocking.release.set()
        assert all(len(f.result().results) == 10 for f in held)
    s = Scrape(port)
    assert s.rpc("musicrec_rpc_in_flight", "SimilarTracks") == 0
    assert s.rpc("musicrec_rpc_requests_total", "SimilarTracks", "OK") == 3
    assert s.rpc("musicrec_rpc_shed_total", "SimilarTracks") == 1  # counted once, not again on the way out


def test_a_call_finished_after_its_deadline_is_a_deadline_miss(metered: RunningServer, blocking: Blocker) -> None:
    port = metered.metrics_port or 0
    with grpc.insecure_channel(f"127.0.0.1:{metered.port}") as ch:
        call = pb_grpc.RecommenderStub(ch).SimilarTracks.future(similar(metered), timeout=0.5)
        assert blocking.entered.acquire(timeout=T)
        with pytest.raises(grpc.RpcError) as err:  # the client gives up while the handler is held
            call.result()
        assert err.value.code() == grpc.StatusCode.DEADLINE_EXCEEDED
        blocking.finish_late = True
        blocking.release.set()
        wait_until(lambda: Scrape(port).rpc("musicrec_rpc_deadline_exceeded_total", "SimilarTracks") == 1,
                   "the late call to be counted as a deadline miss")
    s = Scrape(port)
    assert s.rpc("musicrec_rpc_in_flight", "SimilarTracks") == 0
    finished = {lb["grpc_code"]: v for lb, v in s.all("musicrec_rpc_requests_total", grpc_method="SimilarTracks")}
    assert sum(finished.values()) == 1  # one call, counted once, with whatever status the handler ended with


def test_a_call_whose_deadline_passes_while_it_waits_for_a_thread_is_counted_and_logged(
        bundle_dir: Path, blocking: Blocker, caplog: pytest.LogCaptureFixture) -> None:
    """gRPC drops such a call before its handler runs, where the observer counted and logged: the client saw
    DEADLINE_EXCEEDED, and the metrics and the request log had no call (an audit, 2026-12-07). Whether gRPC has
    seen the deadline pass when the thread frees (it drops the call: server/_pool.py reports it) or not yet (the
    handler runs and refuses it) is gRPC's timing: either way the call is counted and logged once."""
    srv = create_server(bundle_dir, "127.0.0.1:0", ServerOptions(metrics_port=0, max_concurrent=3, workers=1,
                                                                   log_requests=True))
    caplog.set_level(logging.INFO, logger="musicrec.requests")
    try:
        with grpc.insecure_channel(f"127.0.0.1:{srv.port}") as ch:
            stub = pb_grpc.RecommenderStub(ch)
            held = stub.SimilarTracks.future(similar(srv), timeout=T)  # holds the one handler thread
            assert blocking.entered.acquire(timeout=T)
            with pytest.raises(grpc.RpcError) as err:
                stub.ServerInfo(pb.ServerInfoRequest(), timeout=0.2)  # waits behind it, past its deadline
            assert err.value.code() == grpc.StatusCode.DEADLINE_EXCEEDED
            blocking.release.set()
            assert len(held.result().results) == 10
            port = srv.metrics_port or 0
            wait_until(lambda: Scrape(port).rpc("musicrec_rpc_requests_total", "ServerInfo", "DEADLINE_EXCEEDED",
                                                default=0) == 1, "the late call to be counted")
            s = Scrape(port)
            assert s.rpc("musicrec_rpc_deadline_exceeded_total", "ServerInfo") == 1
            assert s.rpc("musicrec_rpc_in_flight", "ServerInfo") == 0
            timed = sum(v for lb, v in s.all("musicrec_rpc_duration_seconds_count", grpc_method="ServerInfo")
                        if lb.get("grpc_code") == "DEADLINE_EXCEEDED")
            assert s.rpc("musicrec_rpc_requests_total", "SimilarTracks", "OK") == 1
            assert stub.ServerInfo(pb.ServerInfoRequest(), timeout=T).tracks > 0  # the thread took calls again
    finally:
        srv.stop(0)
    lines = [r for r in caplog.records if r.name == "musicrec.requests" and "ServerInfo DEADLINE_EXCEEDED" in r.message]
    assert len(lines) == 1, lines
    dropped = lines[0].fields["error"].startswith("the call ended before its handler ran")
    assert dropped or lines[0].fields["error"] == "deadline exceeded before the request was processed", lines[0].fields
    assert timed == (0 if dropped else 1)  # a dropped call ran no handler: not in the handler-time histogram


def test_the_pool_reports_a_call_whose_handler_gRPC_never_ran() -> None:
    """server/_pool.py, on tasks shaped as gRPC submits them (its private arguments: context.run, the in-pool
    function, rpc_event, state, behavior, ...): a task that runs the handler is not reported, one that skips it
    (a call ended while it waited) is, once, with what names it. A gRPC that changes the shape fails the test
    above, which a real server runs."""
    import types

    from server._observe import handled
    from server._pool import RpcPool

    reported: list[tuple[Any, ...]] = []
    observer = types.SimpleNamespace(dropped=lambda *args: reported.append(args))
    event = types.SimpleNamespace(call_details=types.SimpleNamespace(method=b"/m", deadline=0.0))

    def behavior() -> None:
        handled.ran = True  # what the observer's wrapper of a handler does first

    def in_pool(rpc_event: Any, state: Any, handler: Any, runs: bool) -> str:
        if runs:
            handler()
        return "done"

    with RpcPool(observer, max_workers=1, thread_name_prefix="t") as pool:  # type: ignore[arg-type]
        assert pool.submit(lambda f, *a: f(*a), in_pool, event, "state", behavior, True).result() == "done"
        assert not reported
        assert pool.submit(lambda f, *a: f(*a), in_pool, event, "state", behavior, False).result() == "done"
        assert pool.submit(lambda: "not a call").result() == "not a call"  # another task: never reported
    assert len(reported) == 1 and reported[0][:3] == (event, "state", behavior)  # and how long it waited


def test_reload_counters_and_the_bundle_info_follow_reloads(metered: RunningServer, second_bundle: Path,
                                                            tmp_path: Path) -> None:
    port = metered.metrics_port or 0
    bad = tmp_path / "bad"  # tmp_path and both bundles share pytest's base directory, the server's bundle root
    shutil.copytree(metered.holder.path, bad)
    (bad / "index.faiss").write_bytes(b"not an index")
    first = metered.holder.require().bundle.version
    with grpc.insecure_channel(f"127.0.0.1:{metered.port}") as ch:
        stub = pb_grpc.RecommenderStub(ch)
        second = stub.ReloadBundle(pb.ReloadBundleRequest(path=str(second_bundle)), timeout=T).bundle_version
        s = Scrape(port)
        assert s.value("musicrec_bundle_loads_total", result="loaded") == 2
        assert s.value("musicrec_bundle_last_load_successful") == 1
        assert s.all("musicrec_bundle_info")[0][0]["bundle_id"] == second != first
        with pytest.raises(grpc.RpcError) as err:
            stub.ReloadBundle(pb.ReloadBundleRequest(path=str(bad)), timeout=T)
        assert err.value.code() == grpc.StatusCode.FAILED_PRECONDITION
    s = Scrape(port)
    assert s.value("musicrec_bundle_loads_total", result="loaded") == 2
    assert s.value("musicrec_bundle_loads_total", result="refused") == 1
    assert s.value("musicrec_bundle_last_load_successful") == 0
    assert s.value("musicrec_bundle_last_load_duration_seconds") > 0
    assert s.all("musicrec_bundle_info")[0][0]["bundle_id"] == second  # the refused one never served
    assert s.rpc("musicrec_rpc_requests_total", "ReloadBundle", "OK") == 1
    assert s.rpc("musicrec_rpc_requests_total", "ReloadBundle", "FAILED_PRECONDITION") == 1


def test_audio_metrics_are_exported_for_the_audio_path(metered: RunningServer) -> None:
    assert metered.metrics is not None
    metered.metrics.audio_extraction_seconds.observe(0.2)
    metered.metrics.audio_queue_depth.inc()
    s = Scrape(metered.metrics_port or 0)
    assert s.types["musicrec_audio_extraction_seconds"] == "histogram"
    assert s.value("musicrec_audio_extraction_seconds_count") == 1
    assert s.value("musicrec_audio_queue_depth") == 1


def test_new_track_batches_are_counted(metered: RunningServer) -> None:
    rec = metered.holder.require()
    values = dict(zip(rec.feature_names, rec.bundle.tracks.features[4].tolist(), strict=True))
    before = Scrape(metered.metrics_port or 0)
    count = before.value("musicrec_new_track_batch_queries_count", 0.0)
    total = before.value("musicrec_new_track_batch_queries_sum", 0.0)
    with grpc.insecure_channel(f"127.0.0.1:{metered.port}") as ch:
        stub = pb_grpc.RecommenderStub(ch)
        for _ in range(3):  # one after another: batches of one
            stub.SimilarTracks(pb.SimilarTracksRequest(seeds=[pb.Seed(features=pb.FeatureValues(values=values))]),
                               timeout=T)
        stub.SimilarTracks(pb.SimilarTracksRequest(seeds=[pb.Seed(track_id=rec.ids[4])]), timeout=T)  # not one
    s = Scrape(metered.metrics_port or 0)
    assert s.types["musicrec_new_track_batch_queries"] == "histogram"
    assert s.value("musicrec_new_track_batch_queries_count") == count + 3
    assert s.value("musicrec_new_track_batch_queries_sum") == total + 3


def test_metrics_are_off_by_default(bundle_dir: Path) -> None:
    srv = create_server(bundle_dir, "127.0.0.1:0")
    try:
        assert srv.metrics_port is None and srv.metrics_http is None
    finally:
        srv.stop(0)


def test_two_servers_in_one_process_count_apart(bundle_dir: Path) -> None:
    a = create_server(bundle_dir, "127.0.0.1:0", ServerOptions(metrics_port=0))
    b = create_server(bundle_dir, "127.0.0.1:0", ServerOptions(metrics_port=0))
    try:
        with grpc.insecure_channel(f"127.0.0.1:{a.port}") as ch:
            threads = [threading.Thread(target=pb_grpc.RecommenderStub(ch).SimilarTracks, args=(similar(a),),
                                        kwargs={"timeout": T}) for _ in range(4)]
            for t in threads:
                t.start()
            for t in threads:
                t.join()
        assert Scrape(a.metrics_port or 0).rpc("musicrec_rpc_requests_total", "SimilarTracks", "OK") == 4
        assert Scrape(b.metrics_port or 0).rpc("musicrec_rpc_requests_total", "SimilarTracks", "OK", default=0) == 0
    finally:
        a.stop(0)
        b.stop(0)


def test_the_endpoint_serves_metrics_at_slash_metrics_only() -> None:
    """Before: any path answered 200 with the metrics, HEAD /metrics was 405 and ?name[]= filtered silently."""
    from server._metrics import ServerMetrics

    http = ServerMetrics().serve_http("127.0.0.1", 0)
    base = f"http://127.0.0.1:{http.port}"

    def ask(path: str, method: str = "GET") -> tuple[int, dict[str, str], bytes]:
        try:
            with urllib.request.urlopen(urllib.request.Request(base + path, method=method), timeout=T) as r:
                return r.status, dict(r.headers), r.read()
        except urllib.error.HTTPError as err:
            return err.code, dict(err.headers), err.read()

    try:
        status, headers, body = ask("/metrics")
        assert status == 200 and b"musicrec_server_info" in body
        status, head_headers, head_body = ask("/metrics", "HEAD")
        assert status == 200 and head_body == b"" and head_headers["Content-Type"] == headers["Content-Type"]
        assert int(head_headers["Content-Length"]) > 0
        for path in ("/", "/nope", "/metrics/", "/favicon.ico"):
            status, _, body = ask(path)
            assert (status, body) == (404, b"not found: the metrics are at /metrics\n"), path
        status, _, body = ask("/metrics?name[]=process_cpu_seconds_total")
        assert status == 400 and b"no query string" in body
        status, headers, _ = ask("/metrics", "POST")
        assert status == 405 and headers["Allow"] == "GET, HEAD"
    finally:
        http.close()
