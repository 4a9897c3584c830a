"""``musicrec serve --processes N``: N server processes on one port, so one machine uses all its cores.

Python handlers hold the GIL, so one process serves from about one core whatever ``--workers`` (its
handler threads) says. Here a supervisor starts N ordinary ``musicrec serve`` processes (spawned,
never forked: gRPC does not survive a fork) that bind the same port with ``SO_REUSEPORT``; the
kernel spreads incoming connections over them (per connection, so one client channel stays on one
process: a client wanting all of them opens several channels, as a load generator or a pool does).
Each process loads the bundle itself; a flat index is memory-mapped and the vectors are a view of
its pages, so the page cache holds one copy for all (engine ``load_bundle(share_pages=True)``).

The supervisor forwards SIGTERM/SIGINT (each process drains and stops as one would alone) and
SIGHUP (each reloads), and starts a process again when one dies. One that dies within ``FAST_FAILURE``
seconds of its start (or exits 2, refusing its arguments or its bundle, however late) ``MAX_FAST_FAILURES``
times in a row is started again every ``RETRY_SECONDS`` while another process runs that is not failing itself
(the bundle pointer may have moved to a bundle that does not load: the others keep the bundle they have and
serve it); when none does, the supervisor stops and exits 1, or 2 when that process refused its arguments (a
bundle or a port that cannot work will not start working by retrying). A process still running ``STOP_SLACK``
seconds past its ``--drain-delay`` and ``--grace`` is killed with every process it started (each runs in a
process group of its own), and the supervisor exits 1: stopping never waits on a process that will not stop.
"""

from __future__ import annotations

import argparse
import logging
import multiprocessing
import os
import signal
import socket
import sys
import threading
import time
from typing import Any

log = logging.getLogger("musicrec.server")
FAST_FAILURE = 5.0
MAX_FAST_FAILURES = 3
REFUSED = 2  # musicrec serve's exit status for bad arguments (or a bundle path that is not one)
RETRY_SECONDS = 30.0  # between starts of a process that keeps failing while others serve
STOP_SLACK = 30.0  # seconds a stopping process gets past its drain and grace (its exit: threads, pools)


def reserve_port(host: str) -> socket.socket:
    """A free port on ``host``, held: a socket bound to ``(host, 0)`` with SO_REUSEPORT that never listens. The
    processes bind the same port beside it (gRPC sets SO_REUSEPORT; same user), the kernel hands connections only to
    listening sockets, and no other program can take the port between its choice and their binds, nor while one
    is being started again (short of one of the same user that sets SO_REUSEPORT too)."""
    sock = socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
        sock.bind((host, 0))
    except BaseException:
        sock.close()
        raise
    return sock


def _replica(args: argparse.Namespace, index: int) -> None:
    from ._cli_serve import cmd_serve

    os.setpgrp()  # a group of its own, so a process that will not stop is killed with what it started (audio workers)
    args.processes, args.replica = 1, True
    if args.metrics_port:  # each process exports its own metrics: PORT, PORT+1, ...
        args.metrics_port += index
    sys.exit(cmd_serve(args))


def run_replicas(args: argparse.Namespace) -> int:
    """Supervise ``args.processes`` replicas of ``musicrec serve`` on ``args.host:args.port`` (port 0: a free port,
    held by the supervisor while it runs; ``args.port`` says which)."""
    if args.port != 0:
        return _supervise(args)
    with reserve_port(args.host) as held:
        args.port = int(held.getsockname()[1])
        return _supervise(args)


def _supervise(args: argparse.Namespace) -> int:
    n = args.processes
    ctx = multiprocessing.get_context("spawn")
    procs: list[Any] = [None] * n
    started = [0.0] * n
    fast_failures = [0] * n
    retry_at = [0.0] * n  # a process that keeps failing while others serve: when to start it again
    stopping = threading.Event()

    def start(i: int) -> None:
        procs[i] = ctx.Process(target=_replica, args=(args, i), name=f"musicrec-serve-{i}")
        procs[i].start()
        started[i] = time.monotonic()

    def forward(signum: int, frame: Any) -> None:
        if signum in (signal.SIGTERM, signal.SIGINT):
            stopping.set()
        for p in procs:
            if p is not None and p.is_alive() and p.pid is not None:
                os.kill(p.pid, signum)

    for sig in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP):
        signal.signal(sig, forward)
    for i in range(n):
        start(i)
    log.info("supervising %d musicrec serve processes on %s:%d (SO_REUSEPORT)", n, args.host, args.port,
             extra={"event": "replicas", "fields": {"processes": n, "port": args.port}})
    code = 0
    while not stopping.is_set():
        stopping.wait(0.5)
        for i, p in enumerate(procs):
            if stopping.is_set() or p.is_alive():
                continue
            if retry_at[i]:
                if time.monotonic() >= retry_at[i]:
                    retry_at[i] = 0.0
                    start(i)
                continue
            # exit 2 is a process refusing its arguments or its bundle, which no restart changes, however long the
            # refusal took (a malformed --qdrant-url: about 7 s to import the engine and say so)
            fast = time.monotonic() - started[i] < FAST_FAILURE or p.exitcode == REFUSED
            fast_failures[i] = fast_failures[i] + 1 if fast else 0
            # the others running that are not failing themselves (one still loading counts; a restarted one whose
            # last run was a fast failure does not: two failing replicas would otherwise keep each other going)
            serving = sum(q.is_alive() and not fast_failures[j] for j, q in enumerate(procs) if j != i)
            if fast_failures[i] >= MAX_FAST_FAILURES and serving:
                log.error("serve process %d (pid %d) exited with %s, %d times in a row within %.0f s of its start "
                          "or refusing its arguments; the other %d keep serving; starting it again in %.0f s", i, p.pid,
                          p.exitcode, fast_failures[i], FAST_FAILURE, serving, RETRY_SECONDS)
                retry_at[i] = time.monotonic() + RETRY_SECONDS
                continue
            log.error("serve process %d (pid %d) exited with %s; %s", i, p.pid, p.exitcode,
                      "giving up" if fast_failures[i] >= MAX_FAST_FAILURES else "starting it again")
            if fast_failures[i] >= MAX_FAST_FAILURES:
                code = REFUSED if p.exitcode == REFUSED else 1
                stopping.set()
                forward(signal.SIGTERM, None)
                break
            start(i)
    deadline = time.monotonic() + args.drain_delay + args.grace + STOP_SLACK
    for i, p in enumerate(procs):
        p.join(max(0.0, deadline - time.monotonic()))
        if p.is_alive():
            log.error("serve process %d (pid %d) did not stop within --drain-delay + --grace + %.0f s; killing it",
                      i, p.pid, STOP_SLACK)
            try:
                os.killpg(p.pid, signal.SIGKILL)  # with its audio workers
            except ProcessLookupError:  # it had not made its group yet
                p.kill()
            p.join(5)
            code = 1
    return code
