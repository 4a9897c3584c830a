"""What the client commands (``musicrec query``, ``health``, ``bench``) accept: argparse value types and
actions. Each refuses what the server or grpc would otherwise refuse later without naming the option: a second
occurrence (``Once``), a token gRPC metadata cannot carry, an address that is not HOST:PORT, an empty id, text
that is not UTF-8. And the TLS options the three share, with the channel they open (``ClientTLS``)."""

from __future__ import annotations

import argparse
import dataclasses
import re
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from ._cli_numbers import fraction
from ._cli_serve import header_safe_token

# The largest values the request fields hold (recommender.proto): protobuf refuses more with a bare
# "Value out of range" that names no option, so each option checks its own.
UINT32, INT32, UINT64 = 2**32 - 1, 2**31 - 1, 2**64 - 1

_GIVEN = "_once_given"  # a namespace attribute: {dest: option string} of the Once options given so far


class Once(argparse.Action):
    """Store the option's value, refusing a second occurrence (argparse's "store" keeps the last one
    silently: ``-k 3 -k 4`` would be a query for 4)."""

    def __call__(self, parser: argparse.ArgumentParser, namespace: argparse.Namespace, values: Any,
                 option_string: str | None = None) -> None:
        given = getattr(namespace, _GIVEN, {})
        if self.dest in given:
            raise argparse.ArgumentError(self, "given twice; give it once")
        setattr(namespace, _GIVEN, {**given, self.dest: option_string})
        setattr(namespace, self.dest, values)


class QueryNames(argparse._SubParsersAction):
    """The query names. argparse parses what follows a query's name into a namespace of its own and copies
    it over, so an option given once before the name and once after it is caught here, not by Once."""

    def __call__(self, parser: argparse.ArgumentParser, namespace: argparse.Namespace, values: Any,
                 option_string: str | None = None) -> None:
        before = vars(namespace).pop(_GIVEN, {})
        super().__call__(parser, namespace, values, option_string)
        after = vars(namespace).pop(_GIVEN, {})  # only the query's own: the copy of its namespace
        for dest, option in after.items():
            if dest in before:
                raise argparse.ArgumentError(None, f"argument {option}: given twice (before and after "
                                                   f"{values[0]!r}); give it once")
        setattr(namespace, _GIVEN, {**before, **after})


def client_token(text: str) -> str:
    """An argparse type for a client's --token: one gRPC metadata can carry (grpc would fail the call with
    "Invalid metadata", naming no option). An empty one (an unset variable?) would send no token at all."""
    if not text:
        raise argparse.ArgumentTypeError("empty (an unset variable?); leave --token out to send no token")
    return header_safe_token(text)


_SCHEMES_WITHOUT_PORT = ("unix", "unix-abstract", "vsock")  # gRPC targets passed on as they are
_OTHER_RESOLVERS = ("xds", "google-c2p")  # gRPC resolvers that need setup of their own: passed on as they are
_HOST = re.compile(r"[A-Za-z0-9._-]+")  # a host name or an IPv4 address, as gRPC's resolver reads one
_IPV6 = re.compile(r"[0-9A-Fa-f:.]+(%[A-Za-z0-9._-]+)?")  # with a zone (fe80::1%eth0) or not
_SERVICE = re.compile(r"[A-Za-z][A-Za-z0-9-]*")  # a port by its service name: localhost:http
_EXAMPLE = "expected HOST:PORT, e.g. 127.0.0.1:50051"


def client_address(text: str) -> str:
    """An argparse type for the server a client dials: HOST:PORT, [IPv6]:PORT, a host name alone, or a
    gRPC target (dns:, ipv4:, ipv6:, unix:...). Returned unchanged; a port written as a number must
    be 1..65535, and a ':' needs a port after it (grpc would dial 100253 as 34717, -5 as 65531, and
    an empty port as 443). A host that is no host name or IP address (white space, a URL's scheme or
    path) is refused here too: grpc would fail the call with "Misformatted domain name"."""
    if not text.strip():
        raise argparse.ArgumentTypeError(f"{_EXAMPLE}, got ''")
    scheme, sep, rest = text.partition(":")
    scheme = scheme.lower()
    if sep and scheme in ("ipv4", "ipv6"):
        for part in rest.split(","):
            _check_host_port(part, text)
    elif sep and scheme == "dns":
        _check_host_port(rest[2:].partition("/")[2] if rest.startswith("//") else rest, text)
    elif sep and scheme in _SCHEMES_WITHOUT_PORT + _OTHER_RESOLVERS:
        pass
    elif sep and rest.startswith("//"):  # http://host:port: a URL, which gRPC would look up as a host name
        host_port = rest[2:].partition("/")[0]
        here = f"here {host_port!r}" if host_port else "e.g. 127.0.0.1:50051"
        raise argparse.ArgumentTypeError(f"drop the scheme {text[:len(scheme) + 3]!r}: a gRPC address is HOST:PORT, "
                                         f"{here} (got {_shown(text)!r})")
    else:
        _check_host_port(text, text)
    return text


def _shown(text: str) -> str:
    return text if len(text) <= 80 else f"{text[:40]}... ({len(text)} characters)"


def _check_host_port(host_port: str, text: str) -> None:
    where = _shown(text)
    host: str | None
    if host_port.startswith("["):
        inside, close, after = host_port[1:].partition("]")
        if not close or (after and not after.startswith(":")) or not _IPV6.fullmatch(inside):
            raise argparse.ArgumentTypeError(f"expected [IPv6 address]:PORT, got {where!r}")
        if not after:
            return
        host, port = None, after[1:]  # None: checked
    elif host_port.count(":") == 1:
        host, _, port = host_port.partition(":")
    elif ":" in host_port:  # a bare IPv6 address (grpc's default port, 443)
        if not _IPV6.fullmatch(host_port):
            raise argparse.ArgumentTypeError(f"{_EXAMPLE} or [IPv6 address]:PORT, got {where!r}")
        return
    else:
        host, port = host_port, None  # a host without a port (grpc's default, 443)
    if host is not None and not _HOST.fullmatch(host):
        if not host:
            problem = "no host before ':'"
        elif any(c.isspace() for c in host):
            problem = "white space in the host"
        else:
            problem = f"host {host[:40]!r} is not a host name or IP address"
        raise argparse.ArgumentTypeError(f"{problem} (in {where!r}; {_EXAMPLE})")
    if port is None:
        return
    if not port:
        raise argparse.ArgumentTypeError(f"no port after ':' (in {where!r}; {_EXAMPLE})")
    digits = port.lstrip("+-")
    # a port of digits is a number ("localhost:http" is a service name grpc looks up); "²" or "٣" pass
    # isdigit() but grpc reads only ASCII, and int() refuses more than 4,300 digits
    if digits and all(c.isdigit() for c in digits):
        if not (port.isascii() and port.isdigit() and len(port) <= 5 and 1 <= int(port) <= 65535):
            shown = port if len(port) <= 20 else f"{port[:12]}... ({len(port)} characters)"
            ascii_ = "" if port.isascii() else " written in ASCII digits"
            raise argparse.ArgumentTypeError(f"port {shown} is not in 1..65535{ascii_} (in {where!r})")
    elif not _SERVICE.fullmatch(port):
        raise argparse.ArgumentTypeError(f"port {port[:20]!r} is neither a number 1..65535 nor a service name "
                                         f"(in {where!r}; {_EXAMPLE})")


def utf8_text(text: str) -> str:
    """Text a request carries as a protobuf string, which must be UTF-8: an argument of bytes that are not
    (``$'\\xff'`` in a UTF-8 locale) reaches Python as lone surrogates, which protobuf and grpc refuse later
    with an encoding error that names no option."""
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        raise argparse.ArgumentTypeError("not valid UTF-8 text") from None
    return text


def mood_text(text: str) -> str:
    utf8_text(text)
    if not re.search(r"[^\W_]", text):  # the server matches words (engine/_playlist.py find_mood)
        raise argparse.ArgumentTypeError(f"{text!r} names no mood: give a mood id, a name or words of one "
                                         "(musicrec query moods lists them)")
    return text


def track_id_text(text: str) -> str:
    utf8_text(text)
    if not text.strip():
        raise argparse.ArgumentTypeError(f"expected a track id, got {text!r}")
    return text


def name_value(text: str) -> tuple[str, float]:
    utf8_text(text)
    name, sep, value = text.partition("=")
    if not sep or not name.strip():
        raise argparse.ArgumentTypeError(f"expected NAME=VALUE (e.g. energy=0.8), got {text!r}")
    try:
        return name.strip(), float(value)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{value.strip()!r} is not a number (in {text!r})") from None


def name_values(text: str) -> dict[str, float]:
    values: dict[str, float] = {}
    for item in text.split(","):
        if item.strip():
            name, value = name_value(item)
            if name in values:
                raise argparse.ArgumentTypeError(f"feature {name!r} given twice (in {text!r})")
            values[name] = value
    if not values:
        raise argparse.ArgumentTypeError(f"expected NAME=VALUE,... (e.g. energy=0.8,tempo=120), got {text!r}")
    return values


class EachFeatureOnce(argparse.Action):
    """Feature values (a NAME=VALUE pair, or a dict of them) gathered over every occurrence of the option
    into one dict, refusing a name given twice (the request holds a map: the last value would silently win)."""

    def __call__(self, parser: argparse.ArgumentParser, namespace: argparse.Namespace, values: Any,
                 option_string: str | None = None) -> None:
        gathered = dict(getattr(namespace, self.dest, None) or {})
        for name, value in values.items() if isinstance(values, dict) else [values]:
            if name in gathered:
                raise argparse.ArgumentError(self, f"feature {name!r} given twice")
            gathered[name] = value
        setattr(namespace, self.dest, gathered)


def valence_energy(text: str) -> tuple[float, float]:
    parts = text.split(",")
    if len(parts) != 2:
        raise argparse.ArgumentTypeError(f"expected VALENCE,ENERGY (two numbers 0..1, e.g. 0.3,0.2), got {text!r}")
    values = []
    for name, part in zip(("valence", "energy"), parts, strict=True):
        try:
            values.append(fraction(part))
        except argparse.ArgumentTypeError as exc:
            raise argparse.ArgumentTypeError(f"{name} {exc} (in {text!r})") from None
    return values[0], values[1]


PEM_CERTIFICATE = b"-----BEGIN CERTIFICATE-----"


def add_tls_options(p: argparse.ArgumentParser, *, defaults: bool = True) -> None:
    """--tls, --tls-ca FILE and --tls-server-name NAME, for every client command (``defaults=False``: they
    default to SUPPRESS, for the options ``musicrec query`` also takes after the query's name)."""
    def d(value: Any) -> Any:
        return value if defaults else argparse.SUPPRESS

    p.add_argument("--tls", action="store_true", default=d(False), help="use TLS with the system's root certificates")
    p.add_argument("--tls-ca", action=Once, type=Path, default=d(None), metavar="FILE",
                   help="use TLS, trusting this CA certificate (PEM)")
    p.add_argument("--tls-server-name", action=Once, type=utf8_text, default=d(None), metavar="NAME",
                   help="expect this name in the server certificate (with --tls or --tls-ca)")


@dataclasses.dataclass(frozen=True)
class ClientTLS:
    """TLS for a client's channels: the CA certificates to trust (None: the system's) and the name to expect
    in the server's certificate. Picklable: ``musicrec bench`` hands it to its client processes."""

    root_certificates: bytes | None = None
    server_name: str | None = None


def client_tls(tls: bool, tls_ca: Path | None, tls_server_name: str | None) -> ClientTLS | None:
    """The TLS the options ask for (None: plaintext). Options that cannot work are refused with a
    ValueError naming them, before dialling: grpc would fail the handshake, reported as no answer."""
    if tls_server_name is not None and not (tls or tls_ca is not None):
        raise ValueError("--tls-server-name needs TLS: give --tls or --tls-ca FILE too")
    if tls_server_name is not None and not tls_server_name.strip():
        raise ValueError("--tls-server-name: empty; give the name in the server's certificate")
    if not tls and tls_ca is None:
        return None
    root = None
    if tls_ca is not None:
        try:
            root = Path(tls_ca).read_bytes()
        except OSError as exc:
            raise ValueError(f"--tls-ca {tls_ca}: cannot read it ({exc.strerror})") from None
        if PEM_CERTIFICATE not in root:
            raise ValueError(f"--tls-ca {tls_ca}: holds no PEM certificate (no {PEM_CERTIFICATE.decode()} line)")
    return ClientTLS(root_certificates=root, server_name=tls_server_name or None)


def client_channel(address: str, tls: ClientTLS | None, *, aio: bool = False,
                   options: Sequence[tuple[str, Any]] = ()) -> Any:
    """A grpc channel (``aio``: a grpc.aio one) to ``address``, over TLS when ``tls`` is given."""
    import grpc

    options = list(options)
    if tls is None:
        return (grpc.aio.insecure_channel if aio else grpc.insecure_channel)(address, options=options)
    if tls.server_name:
        options.append(("grpc.ssl_target_name_override", tls.server_name))
    credentials = grpc.ssl_channel_credentials(root_certificates=tls.root_certificates)
    return (grpc.aio.secure_channel if aio else grpc.secure_channel)(address, credentials, options=options)


def unavailable_hint(address: str, details: str, tls: ClientTLS | None, *, address_option: str = "--address") -> str:
    """What to try when a call to ``address`` ended UNAVAILABLE, from grpc's ``details``: " (...)", or ""."""
    lowered = details.lower()
    if "handshake" in lowered or "ssl" in lowered:  # our TLS, and a server that speaks none, or another CA's
        if "wrong_version_number" in lowered:
            return f" ({address} does not speak TLS? leave out --tls and --tls-ca)"
        return (f" (TLS failed: give --tls-ca FILE with the CA that signed {address}'s certificate, or "
                "--tls-server-name NAME for the name in it)")
    if "http1.x server" in lowered:  # an HTTP/1 server answered gRPC's request: serve's --http-port, not --port
        return (f" ({address} answers HTTP/1, not gRPC: is it a server's --http-port? musicrec query talks gRPC, to "
                "the port serve's --port gives)")
    if tls is None and "socket closed" in lowered:  # how a TLS server ends a plaintext connection's handshake
        return f" ({address} closed the connection as it opened: a TLS server? give --tls or --tls-ca FILE)"
    if "connect" in lowered:
        return (f" (is a server running at {address}? start one with musicrec serve, or give {address_option}"
                + ("" if tls is not None else "; --tls for a TLS server") + ")")
    return ""
