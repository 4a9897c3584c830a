"""The HTTP face's server (server/_http.py holds the routes): uvicorn on a socket bound before the bundle
loads, in one thread with its own event loop, and its shutdown beside gRPC's (``RunningServer.stop``)."""

from __future__ import annotations

import asyncio
import socket
import threading
import time

from ._bind import ServerStartError, check_bindable, host_port
from ._http import HttpFace


class HttpServer:
    """uvicorn serving an ``HttpFace`` on a socket bound up front, in one thread with its own event loop."""

    def __init__(self, face: HttpFace, sock: socket.socket) -> None:
        import uvicorn

        self.face = face
        self.sock = sock
        self.port = sock.getsockname()[1]
        # log_config=None: uvicorn must not reconfigure the server's logging (server/_logging.py)
        config = uvicorn.Config(face.asgi, log_config=None, log_level="warning", access_log=False, lifespan="off",
                                loop="asyncio", http="h11", ws="none", server_header=False, timeout_keep_alive=5,
                                timeout_graceful_shutdown=2)
        self.server = uvicorn.Server(config)
        self.thread = threading.Thread(target=self._run, name="http", daemon=True)
        self._failed: BaseException | None = None

    def _run(self) -> None:
        try:
            asyncio.run(self.server.serve(sockets=[self.sock]))
        except BaseException as exc:  # reported by start()
            self._failed = exc

    def start(self, timeout: float = 30.0) -> None:
        self.thread.start()
        deadline = time.monotonic() + timeout
        while not self.server.started:
            if self._failed is not None or not self.thread.is_alive():
                raise ServerStartError(f"the HTTP server did not start: {self._failed!r}")
            if time.monotonic() > deadline:
                raise ServerStartError(f"the HTTP server did not start within {timeout:.0f} s")
            time.sleep(0.01)

    def shutdown(self, grace: float) -> None:
        """Stop taking connections and calls now (new calls on open connections are 503), and give the calls
        in flight ``grace`` seconds, as gRPC's ``stop(grace)`` gives its own; ``close`` waits for the end."""
        self.face.closing = True
        self.server.config.timeout_graceful_shutdown = max(0.0, grace)
        self.server.should_exit = True

    def close(self, grace: float = 2.0) -> None:
        if not self.server.should_exit:
            self.shutdown(grace)
        # uvicorn cancels the calls left at the grace's end (503) and returns; the margin is its own steps
        self.thread.join(timeout=self.server.config.timeout_graceful_shutdown + 10)
        self.face.close()
        self.sock.close()


def bind_http(host: str, port: int) -> socket.socket:
    """A listening socket for the HTTP face, bound before the bundle loads (a port in use fails at once)."""
    address = host_port(host, port)
    check_bindable(address, port_flag="--http-port", host_flag="--http-host")
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    # IPPROTO_TCP named: asyncio sets TCP_NODELAY on accepted connections only when the proto says TCP, and
    # without it a response written in two parts waits ~40 ms for a delayed ACK (Nagle)
    sock = socket.socket(family, socket.SOCK_STREAM, socket.IPPROTO_TCP)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind((host, port))
        sock.listen(128)
    except OSError as exc:
        sock.close()
        raise ServerStartError(f"cannot serve HTTP on {address}: {exc.strerror or exc}; choose another "
                               "--http-port") from None
    sock.setblocking(False)
    return sock


def require_web_extra() -> None:
    """A one-line reason when the optional ``web`` extra (Starlette, uvicorn) is missing."""
    try:
        import starlette  # noqa: F401
        import uvicorn  # noqa: F401
    except ImportError as exc:
        from engine import install_hint
        raise ServerStartError(f"--http-port needs the web extra ({exc.name} is not installed): "
                               f"{install_hint('web')}") from None
