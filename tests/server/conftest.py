from __future__ import annotations

import dataclasses
import threading
from collections.abc import Iterator
from pathlib import Path

import grpc
import pytest

from engine import Recommender
from server import RunningServer, ServerOptions, create_server
from server._generated.musicrec.v1 import recommender_pb2_grpc as pb_grpc


@pytest.fixture(scope="module")
def running(bundle_dir: Path) -> Iterator[RunningServer]:
    srv = create_server(bundle_dir, "127.0.0.1:0", ServerOptions(max_concurrent=16))
    yield srv
    srv.stop(grace=0.5)


@pytest.fixture(scope="module")
def channel(running: RunningServer) -> Iterator[grpc.Channel]:
    with grpc.insecure_channel(f"127.0.0.1:{running.port}") as ch:
        yield ch


@pytest.fixture(scope="module")
def stub(channel: grpc.Channel) -> pb_grpc.RecommenderStub:
    return pb_grpc.RecommenderStub(channel)


@dataclasses.dataclass
class Blocker:
    """SimilarTracks calls (in this process's servers) each release ``entered`` once, then wait
    for ``release``."""

    entered: threading.Semaphore = dataclasses.field(default_factory=lambda: threading.Semaphore(0))
    release: threading.Event = dataclasses.field(default_factory=threading.Event)


@pytest.fixture
def blocking(monkeypatch: pytest.MonkeyPatch) -> Iterator[Blocker]:
    blocker = Blocker()
    original = Recommender.similar

    def slow(self: Recommender, query: object) -> object:
        blocker.entered.release()
        blocker.release.wait(10)
        return original(self, query)  # type: ignore[arg-type]

    monkeypatch.setattr(Recommender, "similar", slow)
    yield blocker
    blocker.release.set()
