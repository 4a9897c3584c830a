"""Auth, hot reload under load, refusing bad bundles, graceful shutdown."""

from __future__ import annotations

import json
import os
import shutil
import signal
import threading
import time
from pathlib import Path

import grpc
import pytest
from grpc_health.v1 import health_pb2, health_pb2_grpc

from engine import build_bundle, publish
from server import ServerOptions, create_server
from server._bench import start_server_process
from server._generated.musicrec.v1 import recommender_pb2 as pb
from server._generated.musicrec.v1 import recommender_pb2_grpc as pb_grpc
from tests.conftest import FAST_CONFIG

from .conftest import Blocker

T = 10


@pytest.fixture(scope="module")
def second_bundle(synthetic_csv: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("bundles2") / "b2"
    build_bundle(synthetic_csv, out, FAST_CONFIG.replace(seed=7))
    return out


def test_bearer_tokens(bundle_dir: Path) -> None:
    srv = create_server(bundle_dir, "127.0.0.1:0", ServerOptions(read_tokens=("reader",), admin_tokens=("admin",)))
    try:
        with grpc.insecure_channel(f"127.0.0.1:{srv.port}") as ch:
            stub = pb_grpc.RecommenderStub(ch)
            request = pb.SimilarTracksRequest(seeds=[pb.Seed(track_id=srv.holder.require().ids[0])])
            for metadata in (None, (("authorization", "Bearer wrong"),), (("authorization", "reader"),)):
                with pytest.raises(grpc.RpcError) as err:
                    stub.SimilarTracks(request, timeout=T, metadata=metadata)
                assert err.value.code() == grpc.StatusCode.UNAUTHENTICATED
                assert srv.holder.require().ids[0] not in err.value.details()  # learns nothing about the catalog
            reader = (("authorization", "Bearer reader"),)
            admin = (("authorization", "Bearer admin"),)
            assert len(stub.SimilarTracks(request, timeout=T, metadata=reader).results) == 10
            with pytest.raises(grpc.RpcError) as err:
                stub.ReloadBundle(pb.ReloadBundleRequest(), timeout=T, metadata=reader)
            assert err.value.code() == grpc.StatusCode.PERMISSION_DENIED
            assert not stub.ReloadBundle(pb.ReloadBundleRequest(), timeout=T, metadata=admin).changed
            assert len(stub.SimilarTracks(request, timeout=T, metadata=admin).results) == 10
            # load balancers need health without a token
            status = health_pb2_grpc.HealthStub(ch).Check(health_pb2.HealthCheckRequest(), timeout=T).status
            assert status == health_pb2.HealthCheckResponse.SERVING
    finally:
        srv.stop(0)


def test_hot_reload_under_concurrent_requests_fails_nothing(
    bundle_dir: Path, second_bundle: Path, tmp_path: Path
) -> None:
    link = tmp_path / "current"
    publish(bundle_dir, link)
    srv = create_server(link, "127.0.0.1:0", ServerOptions(max_concurrent=32, watch_interval=0.05))
    failures: list[str] = []
    answered = [0]
    stop = threading.Event()
    seed = srv.holder.require().ids[0]  # both bundles hold the same catalog
    try:
        with grpc.insecure_channel(f"127.0.0.1:{srv.port}") as ch:
            stub = pb_grpc.RecommenderStub(ch)

            def hammer() -> None:
                while not stop.is_set():
                    try:
                        r = stub.SimilarTracks(pb.SimilarTracksRequest(seeds=[pb.Seed(track_id=seed)], k=10),
                                               timeout=T)
                        assert len(r.results) == 10
                        answered[0] += 1
                    except Exception as exc:
                        failures.append(repr(exc))

            threads = [threading.Thread(target=hammer) for _ in range(4)]
            for t in threads:
                t.start()
            versions = set()
            for i in range(6):  # alternate by RPC and by repointing the watched link
                target = second_bundle if i % 2 == 0 else bundle_dir
                if i < 3:
                    versions.add(stub.ReloadBundle(pb.ReloadBundleRequest(path=str(target)), timeout=T).bundle_version)
                else:
                    publish(target, link)
                    srv.holder.path = link
                    deadline = time.monotonic() + T
                    want = json.loads((target / "manifest.json").read_text())["created_at"]
                    while srv.holder.require().bundle.manifest["created_at"] != want and time.monotonic() < deadline:
                        time.sleep(0.02)
                    versions.add(srv.holder.require().bundle.version)
                time.sleep(0.1)
            stop.set()
            for t in threads:
                t.join()
    finally:
        srv.stop(0)
    assert failures == []
    assert answered[0] > 20 and len(versions) == 2


def test_a_bad_bundle_is_refused_and_the_old_one_keeps_serving(bundle_dir: Path, tmp_path: Path) -> None:
    bad = tmp_path / "bad"
    shutil.copytree(bundle_dir, bad)
    (bad / "index.faiss").write_bytes(b"not an index")
    srv = create_server(bundle_dir, "127.0.0.1:0")
    try:
        with grpc.insecure_channel(f"127.0.0.1:{srv.port}") as ch:
            stub = pb_grpc.RecommenderStub(ch)
            before = stub.ServerInfo(pb.ServerInfoRequest(), timeout=T).bundle_version
            with pytest.raises(grpc.RpcError) as err:
                stub.ReloadBundle(pb.ReloadBundleRequest(path=str(bad)), timeout=T)
            assert err.value.code() == grpc.StatusCode.FAILED_PRECONDITION
            assert "index.faiss: checksum mismatch" in err.value.details()
            assert stub.ServerInfo(pb.ServerInfoRequest(), timeout=T).bundle_version == before
    finally:
        srv.stop(0)


def test_sigterm_drains_and_exits_zero(bundle_dir: Path) -> None:
    with start_server_process(bundle_dir, "--grace", "5") as (proc, port):
        with grpc.insecure_channel(f"127.0.0.1:{port}") as ch:
            health = health_pb2_grpc.HealthStub(ch)
            assert health.Check(health_pb2.HealthCheckRequest(), timeout=T).status == \
                health_pb2.HealthCheckResponse.SERVING
            os.kill(proc.pid, signal.SIGTERM)
            assert proc.wait(timeout=30) == 0
        assert proc.stderr is not None and "shutting down" in proc.stderr.read()


def test_stop_lets_calls_in_flight_finish(bundle_dir: Path, blocking: Blocker) -> None:
    srv = create_server(bundle_dir, "127.0.0.1:0")
    with grpc.insecure_channel(f"127.0.0.1:{srv.port}") as ch:
        stub = pb_grpc.RecommenderStub(ch)
        health = health_pb2_grpc.HealthStub(ch)
        call = stub.SimilarTracks.future(pb.SimilarTracksRequest(seeds=[pb.Seed(track_id=srv.holder.require().ids[0])]),
                                         timeout=T)
        assert blocking.entered.acquire(timeout=T)
        stopper = threading.Thread(target=srv.stop, kwargs={"grace": 5})
        stopper.start()
        time.sleep(0.2)
        blocking.release.set()
        assert len(call.result().results) == 10  # finished within the grace period
        stopper.join()
        with pytest.raises(grpc.RpcError):
            health.Check(health_pb2.HealthCheckRequest(), timeout=1)


def test_watched_link_to_a_corrupt_bundle_keeps_the_old_one(bundle_dir: Path, second_bundle: Path,
                                                            tmp_path: Path) -> None:
    corrupt = tmp_path / "corrupt"
    shutil.copytree(bundle_dir, corrupt)
    (corrupt / "tracks.npz").write_bytes(b"\x00" * 100)
    link = tmp_path / "current"
    publish(bundle_dir, link)
    srv = create_server(link, "127.0.0.1:0", ServerOptions(watch_interval=0.05))
    try:
        before = srv.holder.require().bundle.version
        publish(corrupt, link)
        time.sleep(0.5)  # several watch cycles: the corrupt bundle is refused each time it is seen
        assert srv.holder.require().bundle.version == before
        with grpc.insecure_channel(f"127.0.0.1:{srv.port}") as ch:
            stub = pb_grpc.RecommenderStub(ch)
            assert len(stub.SimilarTracks(pb.SimilarTracksRequest(
                seeds=[pb.Seed(track_id=srv.holder.require().ids[0])]), timeout=T).results) == 10
        publish(second_bundle, link)  # a good one is picked up after the refusal
        deadline = time.monotonic() + T
        while srv.holder.require().bundle.version == before and time.monotonic() < deadline:
            time.sleep(0.05)
        assert srv.holder.require().bundle.path.resolve() == second_bundle.resolve()
    finally:
        srv.stop(0)


def test_reloaded_bundles_are_freed(bundle_dir: Path, second_bundle: Path) -> None:
    import gc
    import weakref

    srv = create_server(bundle_dir, "127.0.0.1:0")
    try:
        with grpc.insecure_channel(f"127.0.0.1:{srv.port}") as ch:
            stub = pb_grpc.RecommenderStub(ch)
            request = pb.SimilarTracksRequest(seeds=[pb.Seed(track_id=srv.holder.require().ids[0])])
            stub.SimilarTracks(request, timeout=T)  # fills the per-bundle response caches
            old = weakref.ref(srv.holder.require())
            for target in (second_bundle, bundle_dir, second_bundle):
                stub.ReloadBundle(pb.ReloadBundleRequest(path=str(target)), timeout=T)
                stub.SimilarTracks(request, timeout=T)
        gc.collect()
        assert old() is None, "a replaced bundle is still referenced: every reload would leak a catalog"
    finally:
        srv.stop(0)
