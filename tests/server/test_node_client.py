"""The proto is the contract for every language: examples/node/client.js (@grpc/grpc-js, the proto loaded
at run time) streams a mood playlist and asks for similar tracks from a real server, and gets what a
Python client gets. Skipped, saying why, where Node.js is not installed; CI installs it (.ci/run), and
there (CI=true, or MUSICREC_REQUIRE_NODE=1 as .ci/run sets) a missing Node.js is a failure, not a skip."""

from __future__ import annotations

import os
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path

import grpc
import pytest

from server import RunningServer, create_server
from server._generated.musicrec.v1 import recommender_pb2 as pb
from server._generated.musicrec.v1 import recommender_pb2_grpc as pb_grpc

CLIENT = Path(__file__).resolve().parents[2] / "examples" / "node"


def _require(tool: str) -> str:
    path = shutil.which(tool)
    if path is None:
        if os.environ.get("MUSICREC_REQUIRE_NODE") or os.environ.get("CI") == "true":
            pytest.fail(f"{tool} is not installed, and this is CI (.ci/run installs it)")
        pytest.skip(f"{tool} is not installed (Debian: apt-get install nodejs npm); the Node.js client is not run")
    return path


@pytest.fixture(scope="module")
def node() -> str:
    node = _require("node")
    if not (CLIENT / "node_modules" / "@grpc" / "grpc-js").is_dir():  # the lockfile's exact versions
        done = subprocess.run([_require("npm"), "ci", "--no-audit", "--no-fund"], cwd=CLIENT, capture_output=True,
                              text=True, timeout=600, check=False)
        assert done.returncode == 0, f"npm ci in {CLIENT} failed:\n{done.stdout}\n{done.stderr}"
    return node


@pytest.fixture(scope="module")
def server(bundle_dir: Path) -> Iterator[RunningServer]:
    srv = create_server(bundle_dir, "127.0.0.1:0")
    yield srv
    srv.stop(0)


def run_client(node: str, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([node, "client.js", *args], cwd=CLIENT, capture_output=True, text=True, timeout=120,
                          check=False)


def test_the_node_client_gets_what_a_python_client_gets(node: str, server: RunningServer) -> None:
    address = f"127.0.0.1:{server.port}"
    with grpc.insecure_channel(address) as channel:
        stub = pb_grpc.RecommenderStub(channel)
        mood = stub.ListMoods(pb.ListMoodsRequest(), timeout=10).moods[-1]
        playlist = stub.MoodPlaylist(pb.MoodPlaylistRequest(mood_id=mood.mood_id, length=5), timeout=10).entries
        seed = playlist[0].track.track_id
        similar = stub.SimilarTracks(pb.SimilarTracksRequest(seeds=[pb.Seed(track_id=seed)], k=5), timeout=10).results

    done = run_client(node, address, mood.name)
    assert done.returncode == 0, done.stderr
    lines = done.stdout.splitlines()
    streamed = [line.split()[2] for line in lines if line.startswith("playlist ")]
    assert streamed == [e.track.track_id for e in playlist]  # tracks arrive one message each, in order
    assert all(f"[{mood.name}]" in line for line in lines if line.startswith("playlist "))
    found = [line.split()[2] for line in lines if line.startswith("similar ")]
    assert found == [r.track.track_id for r in similar]


def test_the_node_client_reports_a_status(node: str, server: RunningServer) -> None:
    done = run_client(node, f"127.0.0.1:{server.port}", "no such mood at all")
    assert done.returncode == 1
    assert "musicrec node client: INVALID_ARGUMENT: mood_name: unknown mood 'no such mood at all'" in done.stderr
