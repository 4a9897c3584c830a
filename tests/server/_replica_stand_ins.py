"""Stand-ins for ``musicrec serve`` that tests/server/test_replicas.py has the supervisor spawn. Each spawn imports
this module afresh, so it imports nothing but the standard library: the test module's grpc and engine would cost
each start seconds."""

from __future__ import annotations

import argparse
import signal
import socket
import sys
import time
from pathlib import Path


def stubborn(args: argparse.Namespace, index: int) -> None:
    """A serve process that ignores SIGTERM."""
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
    (Path(args.ready_dir) / f"ready-{index}").touch()
    time.sleep(600)


def one_fails_at_start(args: argparse.Namespace, index: int) -> None:
    """Process 0 serves until signalled, every start of process 1 fails at once (its bundle pointer moved to a
    bundle that does not load, say); with ``args.all_fail`` every start of either fails."""
    if index == 1 or args.all_fail:
        sys.exit(getattr(args, "code", 2))
    time.sleep(600)


def refuses_late(args: argparse.Namespace, index: int) -> None:
    """Every start refuses its arguments (exit 2), but only after ``args.after`` seconds: a malformed --qdrant-url
    is refused once the engine is imported, about 7 s in, past the supervisor's fast-failure window."""
    time.sleep(args.after)
    sys.exit(2)


def binds_when_told(args: argparse.Namespace, index: int) -> None:
    """A serve process that binds ``args.port`` as gRPC does (SO_REUSEPORT, then listens) once the test creates
    ``go`` in ``args.ready_dir``; it writes ``bound-INDEX`` then, or ``failed-INDEX`` with the error."""
    ready = Path(args.ready_dir)
    deadline = time.monotonic() + 120
    while not (ready / "go").exists() and time.monotonic() < deadline:
        time.sleep(0.05)
    sock = socket.socket()
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
        sock.bind((args.host, args.port))
        sock.listen(64)
    except OSError as e:
        (ready / f"failed-{index}").write_text(repr(e))
        return
    (ready / f"bound-{index}").touch()
    time.sleep(600)
