"""A real server on a free local port and a channel to it: ``serving(bundle, options)``.

tests/conftest.py builds the module fixtures ``running``, ``channel`` and ``stub`` on it; a module
changes what its server runs with by overriding the fixture ``server_bundle`` or ``server_options``,
and a test that needs a server of its own (other tokens, no bundle) calls ``serving`` itself.
"""

from __future__ import annotations

import contextlib
import dataclasses
from collections.abc import Iterator
from pathlib import Path

import grpc

from server import RunningServer, ServerOptions, create_server
from server._generated.musicrec.v1 import recommender_pb2_grpc as pb_grpc

# for annotations elsewhere (tests/conftest.py names them without importing grpc itself)
Channel = grpc.Channel
RecommenderStub = pb_grpc.RecommenderStub


@dataclasses.dataclass(frozen=True)
class Served:
    """A running server, an open channel to its gRPC port, and a Recommender stub on that channel."""

    server: RunningServer
    channel: Channel
    stub: RecommenderStub


@contextlib.contextmanager
def serving(bundle: Path | None, options: ServerOptions | None = None) -> Iterator[Served]:
    """Serve ``bundle`` (None: no bundle loaded) on 127.0.0.1 at a free port; on exit the channel
    closes and the server stops (0.5 s grace)."""
    srv = create_server(bundle, "127.0.0.1:0", options or ServerOptions())
    try:
        with grpc.insecure_channel(f"127.0.0.1:{srv.port}") as channel:
            yield Served(srv, channel, RecommenderStub(channel))
    finally:
        srv.stop(grace=0.5)
