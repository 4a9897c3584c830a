"""What the client commands (``musicrec query``, ``health``, ``bench``) accept: argparse value types and
actions. Each refuses what the server or grpc would otherwise refuse later without naming the option: a second
occurrence (``Once``), a token gRPC metadata cannot carry, an address that is not HOST:PORT, an empty id."""

from __future__ import annotations

import argparse
import re
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


def mood_text(text: str) -> str:
    if not re.search(r"[^\W_]", text):  # the server matches words (engine/_playlist.py find_mood)
        raise argparse.ArgumentTypeError(f"{text!r} names no mood: give a mood id, a name or words of one "
                                         "(musicrec query moods lists them)")
    return text


def track_id_text(text: str) -> str:
    if not text.strip():
        raise argparse.ArgumentTypeError(f"expected a track id, got {text!r}")
    return text


def name_value(text: str) -> tuple[str, float]:
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
