"""A refused ReloadBundle is in the server's log, not only in the caller's status."""

from __future__ import annotations

import logging
from pathlib import Path

import grpc
import pytest

from server import create_server
from server._generated.musicrec.v1 import recommender_pb2 as pb
from server._generated.musicrec.v1 import recommender_pb2_grpc as pb_grpc


def test_a_refused_reload_is_logged(bundle_dir: Path, tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    srv = create_server(bundle_dir, "127.0.0.1:0")
    try:
        with grpc.insecure_channel(f"127.0.0.1:{srv.port}") as channel, caplog.at_level(logging.WARNING):
            stub = pb_grpc.RecommenderStub(channel)
            with pytest.raises(grpc.RpcError) as err:
                stub.ReloadBundle(pb.ReloadBundleRequest(path=str(tmp_path)), timeout=10)
            assert err.value.code() == grpc.StatusCode.PERMISSION_DENIED
    finally:
        srv.stop(0)
    refused = [r for r in caplog.records if r.name == "musicrec.server" and "ReloadBundle" in r.getMessage()]
    assert refused and f"ReloadBundle {tmp_path} refused, still serving {srv.holder.current.bundle.version}" in \
        refused[0].getMessage()
