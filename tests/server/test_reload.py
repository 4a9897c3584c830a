"""ReloadBundle and the watcher: the configured pointer stays the source of truth, paths are confined
to the bundle root, and a bundle that cannot be loaded, for whatever reason, is a clean refusal."""

from __future__ import annotations

import logging
import os
import shutil
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import grpc
import pytest

import server._holder
from engine import publish
from musicrec.cli import main
from server import RunningServer, ServerOptions, create_server
from server._generated.musicrec.v1 import recommender_pb2 as pb
from server._generated.musicrec.v1 import recommender_pb2_grpc as pb_grpc
from server._holder import ReloadPolicy, ReloadRefused

from .conftest import wait_until

T = 10
ADMIN = (("authorization", "Bearer admin"),)


Start = Callable[..., tuple[RunningServer, pb_grpc.RecommenderStub]]


@pytest.fixture
def start() -> Iterator[Start]:
    """``start(bundle, **ServerOptions)`` -> (server, stub); all are stopped after the test."""
    opened: list[tuple[RunningServer, grpc.Channel]] = []

    def start(bundle: Path, **options: Any) -> tuple[RunningServer, pb_grpc.RecommenderStub]:
        srv = create_server(bundle, "127.0.0.1:0", ServerOptions(**options))
        channel = grpc.insecure_channel(f"127.0.0.1:{srv.port}")
        opened.append((srv, channel))
        return srv, pb_grpc.RecommenderStub(channel)

    yield start
    for srv, channel in opened:
        channel.close()
        srv.stop(0)


def serving(srv: RunningServer) -> Path:
    return srv.holder.require().bundle.path


def refusal(call: Callable[..., Any], request: Any, metadata: Any = None) -> grpc.RpcError:
    with pytest.raises(grpc.RpcError) as err:
        call(request, timeout=T, metadata=metadata)
    return err.value


def test_after_a_path_reload_the_watcher_still_follows_current(
    bundle_dir: Path, second_bundle: Path, tmp_path: Path, start: Start
) -> None:
    copy = tmp_path / "b1-copy"  # the same bundle at another path: a repoint the watcher must notice
    shutil.copytree(bundle_dir, copy)
    link = tmp_path / "current"
    publish(bundle_dir, link)
    root = Path(os.path.commonpath([bundle_dir, second_bundle, tmp_path]))
    srv, stub = start(link, watch_interval=0.02, bundle_root=root)

    stub.ReloadBundle(pb.ReloadBundleRequest(path=str(second_bundle)), timeout=T)
    assert serving(srv) == second_bundle.resolve()
    assert srv.holder.path == link  # the configured pointer is not replaced
    loaded, checks = srv.holder.loaded, srv.holder.watch_checks
    wait_until(lambda: srv.holder.watch_checks >= checks + 3, "watch cycles after the path reload")
    assert srv.holder.loaded == loaded and serving(srv) == second_bundle.resolve()  # it serves until current moves

    publish(copy, link)
    wait_until(lambda: serving(srv) == copy.resolve(), "the watcher to follow the repointed link")

    # a reload without a path re-reads the configured pointer, after a path reload too
    stub.ReloadBundle(pb.ReloadBundleRequest(path=str(second_bundle)), timeout=T)
    stub.ReloadBundle(pb.ReloadBundleRequest(), timeout=T)
    assert serving(srv) == copy.resolve()


def test_a_path_outside_the_bundle_root_is_refused(
    bundle_dir: Path, second_bundle: Path, tmp_path: Path, start: Start
) -> None:
    root = tmp_path / "bundles"
    root.mkdir()
    inside = root / "v2"
    shutil.copytree(second_bundle, inside)
    shutil.copytree(second_bundle, tmp_path / "outside")
    (root / "escape").symlink_to(second_bundle, target_is_directory=True)
    srv, stub = start(bundle_dir, bundle_root=root)
    before = serving(srv)
    for path in (second_bundle, root / "escape", root / ".." / "outside", root / "v2" / ".." / ".." / "outside",
                 Path("/etc")):
        err = refusal(stub.ReloadBundle, pb.ReloadBundleRequest(path=str(path)))
        assert err.code() == grpc.StatusCode.PERMISSION_DENIED, path
        assert f"outside the bundle root {root.resolve()}" in err.details()
        assert serving(srv) == before
    # inside the root, even reached through '..', it loads; without auth no token is needed there
    stub.ReloadBundle(pb.ReloadBundleRequest(path=str(root / "v2" / ".." / "v2")), timeout=T)
    assert serving(srv) == inside.resolve()
    assert srv.holder.refused == 0  # refused by the policy before anything was read


def test_a_relative_path_is_taken_from_the_bundle_root(bundle_dir: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                      ) -> None:
    """It was taken from the server's working directory, which a caller cannot know (and the refusal showed it)."""
    root = tmp_path / "bundles"
    (root / "v2").mkdir(parents=True)
    (tmp_path / "elsewhere" / "v2").mkdir(parents=True)
    monkeypatch.chdir(tmp_path / "elsewhere")  # a v2 here too: the root's is the one meant
    policy = ReloadPolicy.for_server(bundle_dir, root=root)
    assert policy.resolve("v2", []) == os.path.realpath(root / "v2")
    assert policy.resolve("./v2/../v2", []) == os.path.realpath(root / "v2")
    with pytest.raises(ReloadRefused, match="outside the bundle root"):
        policy.resolve("../elsewhere/v2", [])


def test_a_path_with_a_nul_byte_is_invalid_argument(bundle_dir: Path, second_bundle: Path, tmp_path: Path,
                                                    start: Start) -> None:
    """os.path.realpath raises ValueError on a NUL byte; the caller gets INVALID_ARGUMENT naming it, not INTERNAL."""
    root = tmp_path / "bundles"
    shutil.copytree(second_bundle, root / "v2")
    srv, stub = start(bundle_dir, bundle_root=root)
    before = serving(srv)
    for path in (f"{root}/v2\0", f"{root}/\0/../v2", "\0"):
        err = refusal(stub.ReloadBundle, pb.ReloadBundleRequest(path=path))
        assert err.code() == grpc.StatusCode.INVALID_ARGUMENT, (path, err.details())
        assert err.details().startswith("path: contains a NUL byte (at character"), err.details()
        assert serving(srv) == before
    assert srv.holder.refused == 0
    stub.ReloadBundle(pb.ReloadBundleRequest(path=str(root / "v2")), timeout=T)  # the server still reloads
    assert serving(srv) == (root / "v2").resolve()


def test_a_path_reload_without_an_explicit_root_needs_an_admin_token(
    bundle_dir: Path, second_bundle: Path, tmp_path: Path, start: Start
) -> None:
    configured, sibling = tmp_path / "bundles" / "v1", tmp_path / "bundles" / "v1-copy"
    shutil.copytree(bundle_dir, configured)
    shutil.copytree(bundle_dir, sibling)
    srv, stub = start(configured)
    err = refusal(stub.ReloadBundle, pb.ReloadBundleRequest(path=str(sibling)))
    assert err.code() == grpc.StatusCode.PERMISSION_DENIED
    assert "--bundle-root" in err.details() and "--admin-token" in err.details()
    assert not stub.ReloadBundle(pb.ReloadBundleRequest(), timeout=T).changed  # re-reading --bundle needs nothing
    assert serving(srv) == configured.resolve()

    # with an admin token, paths beside the configured bundle (under its directory) load, others do not
    srv, stub = start(configured, read_tokens=("reader",), admin_tokens=("admin",))
    stub.ReloadBundle(pb.ReloadBundleRequest(path=str(sibling)), timeout=T, metadata=ADMIN)
    assert serving(srv) == sibling.resolve()
    err = refusal(stub.ReloadBundle, pb.ReloadBundleRequest(path=str(second_bundle)), ADMIN)
    assert err.code() == grpc.StatusCode.PERMISSION_DENIED
    assert f"outside the bundle root {configured.parent.resolve()}" in err.details()
    err = refusal(stub.ReloadBundle, pb.ReloadBundleRequest(path=str(sibling)), (("authorization", "Bearer reader"),))
    assert err.code() == grpc.StatusCode.PERMISSION_DENIED


def test_the_policy_checks_the_admin_token_itself(bundle_dir: Path) -> None:
    # Through gRPC the interceptor already turns non-admins away from ReloadBundle; the policy does
    # not rely on that.
    policy = ReloadPolicy.for_server(bundle_dir, is_admin=lambda metadata: dict(metadata).get("who") == "admin")
    with pytest.raises(ReloadRefused, match="needs an admin token"):
        policy.resolve(str(bundle_dir), [("who", "reader")])
    assert policy.resolve(str(bundle_dir), [("who", "admin")]) == os.path.realpath(bundle_dir)


def test_a_load_failure_of_any_kind_is_failed_precondition(
    bundle_dir: Path, start: Start, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    srv, stub = start(bundle_dir)
    request = pb.SimilarTracksRequest(seeds=[pb.Seed(track_id=srv.holder.require().ids[0])], k=5)
    before = stub.SimilarTracks(request, timeout=T)
    version = srv.holder.require().bundle.version

    def broken(*args: object, **kwargs: object) -> None:
        raise KeyError("neighbour_genre_weight")

    monkeypatch.setattr(server._holder, "Recommender", broken)
    err = refusal(stub.ReloadBundle, pb.ReloadBundleRequest())
    assert err.code() == grpc.StatusCode.FAILED_PRECONDITION
    assert "previous one keeps serving" in err.details() and "KeyError" in err.details()
    assert str(bundle_dir.resolve()) in err.details()
    assert srv.holder.require().bundle.version == version and srv.holder.refused == 1
    assert stub.SimilarTracks(request, timeout=T).results == before.results
    logged = [r for r in caplog.records if r.exc_info and isinstance(r.exc_info[1], KeyError)]
    assert len(logged) == 1 and logged[0].levelno == logging.ERROR  # the traceback is in the server's log


def test_serve_exits_2_naming_a_bundle_that_cannot_be_loaded(
    bundle_dir: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    assert main(["serve", "--bundle", str(tmp_path), "--port", "0"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("musicrec serve: error: ") and str(tmp_path) in err and "not a bundle" in err
    assert len(err.strip().splitlines()) == 1

    def broken(*args: object, **kwargs: object) -> None:
        raise KeyError("neighbour_genre_weight")

    monkeypatch.setattr(server._holder, "load_bundle", broken)
    assert main(["serve", "--bundle", str(bundle_dir), "--port", "0"]) == 2  # not 70, the code of a bug
    err = capsys.readouterr().err
    assert err.strip() == (f"musicrec serve: error: {bundle_dir.resolve()}: cannot be loaded "
                           "(KeyError: 'neighbour_genre_weight')")

    assert main(["serve", "--bundle", str(bundle_dir), "--bundle-root", str(tmp_path / "nowhere")]) == 2
    assert "--bundle-root" in capsys.readouterr().err


def test_query_reload_on_the_command_line(bundle_dir: Path, second_bundle: Path, start: Start,
                                          capsys: pytest.CaptureFixture[str]) -> None:
    srv, _ = start(bundle_dir)
    address = f"127.0.0.1:{srv.port}"
    assert main(["query", "--address", address, "reload"]) == 0
    assert "(unchanged)" in capsys.readouterr().out
    assert main(["query", "--address", address, "reload", str(second_bundle)]) == 1
    assert "PERMISSION_DENIED" in capsys.readouterr().err
