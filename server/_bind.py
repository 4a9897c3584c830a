"""Start-up checks that need only the standard library, so ``musicrec serve`` can refuse a port in use
or a bad TLS file at once, before grpc, the engine and the bundle load (seconds), and say why."""

from __future__ import annotations

import errno
import socket
import ssl
from pathlib import Path


class ServerStartError(Exception):
    """The server cannot start: its address cannot be bound or its TLS files cannot be used. The
    message is one line naming the flag and value at fault (``musicrec serve`` prints it, exit 2)."""


def check_bindable(address: str, *, port_flag: str = "--port", host_flag: str = "--host") -> None:
    """Raise ``ServerStartError`` with the operating system's reason when ``address`` cannot be bound.

    grpc only says "Failed to bind" (and logs a C-core line on stderr); a plain socket bound the way
    grpc binds (SO_REUSEADDR, no SO_REUSEPORT) names the cause, such as another server on the port.
    ``port_flag``/``host_flag``: the options the message tells the user to change."""
    host, _, port_text = address.rpartition(":")
    if not host.strip("[]"):  # grpc takes ":PORT" and then fails to bind, saying only "in use or not available"
        raise ServerStartError(f"cannot listen on {address!r}: no host; give {host_flag} (127.0.0.1 for this "
                               "machine only, 0.0.0.0 for every IPv4 address)")
    if ":" in host and not (host.startswith("[") and host.endswith("]")):
        raise ServerStartError(f"cannot listen on {address}: an IPv6 address is written in brackets: "
                               f"[{host}]:{port_text}")
    host = host.strip("[]")
    try:
        port = int(port_text)
    except ValueError:
        raise ServerStartError(f"cannot listen on {address!r}: expected HOST:PORT") from None
    if not 0 <= port <= 65535:
        raise ServerStartError(f"cannot listen on {address}: port {port} is outside 0..65535")
    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE)
    except socket.gaierror as exc:
        raise ServerStartError(f"cannot listen on {address}: unknown host {host!r} ({exc.strerror})") from None
    for family, kind, proto, _, sockaddr in infos:
        with socket.socket(family, kind, proto) as probe:
            probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            try:
                probe.bind(sockaddr)
            except OSError as exc:
                if exc.errno == errno.EADDRINUSE:
                    hint = ("something on this machine holds that port (a server listening there, such as another "
                            f"musicrec serve, or a connection that used it); stop it or choose another {port_flag}")
                else:
                    hint = f"choose another {host_flag} or {port_flag}"
                raise ServerStartError(f"cannot listen on {address}: {exc.strerror}; {hint}") from None


def host_port(host: str, port: int) -> str:
    """``HOST:PORT`` as grpc takes it: an IPv6 host (``::1``) in brackets (``[::1]:50051``)."""
    return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"


def read_tls_files(cert: Path | None, key: Path | None) -> tuple[bytes, bytes] | None:
    """The PEM bytes of (certificate chain, private key), or None without TLS. Checked with the ``ssl``
    module: grpc accepts any bytes and only fails later, at every client's handshake."""
    if cert is None and key is None:
        return None
    if cert is None or key is None:
        raise ServerStartError("--tls-cert and --tls-key go together")
    contents = []
    for flag, path in (("--tls-cert", cert), ("--tls-key", key)):
        try:
            contents.append(Path(path).read_bytes())
        except OSError as exc:
            raise ServerStartError(f"{flag} {path}: cannot read it ({exc.strerror})") from None
    try:
        ssl.create_default_context(ssl.Purpose.CLIENT_AUTH).load_cert_chain(cert, key)
    except ssl.SSLError as exc:
        raise ServerStartError(f"--tls-cert {cert} / --tls-key {key}: not a PEM certificate and its matching "
                               f"private key ({exc.reason or exc})") from None
    return contents[0], contents[1]
