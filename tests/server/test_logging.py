"""Logs: one JSON object per call with the documented fields, slow calls as warnings, and never a
token or a request body; text on a terminal; the same through `musicrec serve`."""

from __future__ import annotations

import io
import json
import logging
import os
import signal
import socket
from collections.abc import Iterator
from pathlib import Path

import grpc
import pytest

from server import RunningServer, ServerOptions, create_server
from server._generated.musicrec.v1 import recommender_pb2 as pb
from server._generated.musicrec.v1 import recommender_pb2_grpc as pb_grpc
from server._logging import JsonFormatter, TextFormatter, resolve_format
from server._spawn import start_server_process

T = 10
TOKEN = "s3cret-reader-token"
FIELDS = {"time", "level", "logger", "event", "message", "rpc", "status", "duration_ms", "peer", "bundle_id",
          "request_id"}


@pytest.fixture
def captured() -> Iterator[io.StringIO]:
    """The request log, formatted as `musicrec serve --log-format json` formats it."""
    out = io.StringIO()
    handler = logging.StreamHandler(out)
    handler.setFormatter(JsonFormatter())
    logger = logging.getLogger("musicrec.requests")
    old_level = logger.level
    logger.addHandler(handler)
    logger.setLevel(logging.INFO)
    yield out
    logger.removeHandler(handler)
    logger.setLevel(old_level)


def lines(out: io.StringIO) -> list[dict[str, object]]:
    return [json.loads(line) for line in out.getvalue().splitlines()]


def serve(bundle_dir: Path, **options: object) -> RunningServer:
    return create_server(bundle_dir, "127.0.0.1:0", ServerOptions(read_tokens=(TOKEN,), **options))  # type: ignore[arg-type]


def test_one_json_line_per_call_with_the_fields_and_no_secrets(bundle_dir: Path, captured: io.StringIO) -> None:
    srv = serve(bundle_dir, log_requests=True)
    seed = srv.holder.require().ids[0]
    auth = (("authorization", f"Bearer {TOKEN}"),)
    try:
        with grpc.insecure_channel(f"127.0.0.1:{srv.port}") as ch:
            stub = pb_grpc.RecommenderStub(ch)
            stub.SimilarTracks(pb.SimilarTracksRequest(seeds=[pb.Seed(track_id=seed)]), timeout=T,
                               metadata=(*auth, ("x-request-id", "req-42")))
            with pytest.raises(grpc.RpcError):
                stub.SimilarTracks(pb.SimilarTracksRequest(seeds=[pb.Seed(track_id="no-such-track")]), timeout=T,
                                   metadata=auth)
            for metadata in (None, (("authorization", "Bearer wrong-secret-token"),)):
                with pytest.raises(grpc.RpcError) as err:
                    stub.ListMoods(pb.ListMoodsRequest(), timeout=T, metadata=metadata)
                assert err.value.code() == grpc.StatusCode.UNAUTHENTICATED
    finally:
        srv.stop(0)
    logged = lines(captured)
    assert [(e["rpc"], e["status"]) for e in logged] == [
        ("musicrec.v1.Recommender/SimilarTracks", "OK"), ("musicrec.v1.Recommender/SimilarTracks", "NOT_FOUND"),
        ("musicrec.v1.Recommender/ListMoods", "UNAUTHENTICATED"), ("musicrec.v1.Recommender/ListMoods", "UNAUTHENTICATED")]
    for entry in logged:
        assert set(entry) >= FIELDS, FIELDS - set(entry)
        assert entry["event"] == "request" and entry["level"] == "info" and entry["logger"] == "musicrec.requests"
        assert entry["bundle_id"] == srv.holder.require().bundle.version
        assert str(entry["peer"]).startswith(("ipv4:127.0.0.1:", "ipv6:"))
        assert isinstance(entry["duration_ms"], float) and entry["duration_ms"] >= 0
        assert str(entry["time"]).endswith("Z")
    assert logged[0]["request_id"] == "req-42"  # the caller's id, when it sends one
    generated = [e["request_id"] for e in logged[1:]]
    assert all(generated) and len(set(generated)) == 3
    assert "not in the catalog" in str(logged[1]["error"])  # why it failed, from the status details
    text = captured.getvalue()
    assert TOKEN not in text and "wrong-secret-token" not in text
    assert seed not in text  # no request body: the seed of the successful call is nowhere


def test_slow_calls_are_warnings_and_fast_ones_are_silent(bundle_dir: Path, captured: io.StringIO) -> None:
    auth = (("authorization", f"Bearer {TOKEN}"),)
    # No clock in the assertions: a threshold every call exceeds, then one no call can reach.
    for slow_ms, expected in ((1e-6, 2), (1e9, 0)):
        srv = serve(bundle_dir, slow_ms=slow_ms, admin_tokens=("admin-secret",))
        try:
            with grpc.insecure_channel(f"127.0.0.1:{srv.port}") as ch:
                stub = pb_grpc.RecommenderStub(ch)
                for _ in range(2):
                    stub.ListMoods(pb.ListMoodsRequest(), timeout=T, metadata=auth)
                # a reload's seconds are its job (it logs bundle_loaded): never a slow_request
                admin = (("authorization", "Bearer admin-secret"),)
                assert not stub.ReloadBundle(pb.ReloadBundleRequest(), timeout=T, metadata=admin).changed
        finally:
            srv.stop(0)
        logged = lines(captured)
        captured.seek(0)
        captured.truncate()
        assert len(logged) == expected
        for entry in logged:
            assert entry["event"] == "slow_request" and entry["level"] == "warning"
            assert entry["rpc"] == "musicrec.v1.Recommender/ListMoods" and entry["status"] == "OK"


def test_text_lines_carry_the_same_fields() -> None:
    record = logging.LogRecord("musicrec.requests", logging.INFO, __file__, 1, "%s %s", ("rpc", "OK"), None)
    record.event = "request"
    record.fields = {"rpc": "musicrec.v1.Recommender/ListMoods", "status": "OK", "duration_ms": 0.25, "peer": None}
    line = TextFormatter().format(record)
    assert "INFO musicrec.requests: rpc OK rpc=musicrec.v1.Recommender/ListMoods status=OK duration_ms=0.25" in line
    assert "peer" not in line  # empty fields are left out of text
    assert json.loads(JsonFormatter().format(record))["peer"] is None


def test_text_on_a_terminal_json_elsewhere() -> None:
    class Terminal(io.StringIO):
        def isatty(self) -> bool:
            return True

    assert resolve_format(None, Terminal()) == "text"
    assert resolve_format(None, io.StringIO()) == "json"
    assert resolve_format("text", io.StringIO()) == "text"
    assert resolve_format("json", Terminal()) == "json"


def test_musicrec_serve_logs_json_lines_and_serves_metrics(bundle_dir: Path) -> None:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        metrics_port = s.getsockname()[1]
    args = ("--log-format", "json", "--log-requests", "--token", TOKEN, "--metrics-port", str(metrics_port))
    with start_server_process(bundle_dir, *args) as (proc, port):
        with grpc.insecure_channel(f"127.0.0.1:{port}") as ch:
            stub = pb_grpc.RecommenderStub(ch)
            stub.ListMoods(pb.ListMoodsRequest(), timeout=T, metadata=(("authorization", f"Bearer {TOKEN}"),))
        from tests.server.test_metrics import Scrape

        assert Scrape(metrics_port).rpc("musicrec_rpc_requests_total", "ListMoods", "OK") == 1
        os.kill(proc.pid, signal.SIGTERM)
        assert proc.wait(timeout=30) == 0
        assert proc.stderr is not None
        rest = proc.stderr.read()
    logged = [json.loads(line) for line in rest.splitlines() if line.strip()]  # every line is one JSON object
    events = [e["event"] for e in logged]
    assert {"metrics_serving", "request", "shutdown", "stopped"} <= set(events)
    request = next(e for e in logged if e["event"] == "request")
    assert request["rpc"] == "musicrec.v1.Recommender/ListMoods" and request["status"] == "OK"
    assert set(request) >= FIELDS
    assert "shutting down" in str(next(e for e in logged if e["event"] == "shutdown")["message"])
    assert TOKEN not in rest
