"""``musicrec health ADDRESS``: one ``grpc.health.v1.Health/Check``, answered as an exit status, for
container HEALTHCHECKs, Kubernetes exec probes and scripts. Loads grpc and the health stubs only
(never the engine), so a probe costs an interpreter start and one call.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

from ._cli_args import (  # the same checks and TLS options as query's and bench's
    Once,
    add_tls_options,
    client_address,
    client_channel,
    client_tls,
    client_token,
    unavailable_hint,
    utf8_text,
)
from ._cli_numbers import seconds

# Exit statuses (README "Operating"; `musicrec health --help`).
EXIT_SERVING = 0
EXIT_NOT_SERVING = 1  # the server answered NOT_SERVING: shutting down, its Qdrant backend down, or no bundle yet
EXIT_USAGE = 2  # bad arguments: also a --tls-ca file that is unreadable or holds no PEM certificate
EXIT_UNKNOWN_SERVICE = 3  # the server does not know --service (or answered UNKNOWN)
EXIT_UNREACHABLE = 4  # no answer: refused, timed out, TLS or auth failure, or any other gRPC error
EXIT_BUSY = 5  # RESOURCE_EXHAUSTED: --max-concurrent calls already accepted (saturated, but alive)

EXIT_CODES_HELP = (f"exit status: {EXIT_SERVING} SERVING; {EXIT_NOT_SERVING} NOT_SERVING (draining, its Qdrant "
                   f"backend unreachable, or no bundle loaded); {EXIT_USAGE} bad arguments; {EXIT_UNKNOWN_SERVICE} "
                   f"service unknown to the server; "
                   f"{EXIT_UNREACHABLE} no answer (unreachable, timeout, TLS or auth failure; the gRPC status is "
                   f"printed); {EXIT_BUSY} RESOURCE_EXHAUSTED (saturated: alive, not ready)")


def check(address: str, *, service: str = "", timeout: float = 5.0, token: str | None = None,
          tls: bool = False, tls_ca: Path | None = None, tls_server_name: str | None = None) -> tuple[int, str]:
    """Ask ``address`` for the health of ``service`` ("" = the whole server). Returns (exit status, line to print).
    Options that cannot work are refused (EXIT_USAGE) before dialling, never ignored."""
    try:  # a --tls-ca file is read here: grpc would fail the handshake, reported as no answer (exit 4)
        settings = client_tls(tls, tls_ca, tls_server_name)
    except ValueError as exc:
        return EXIT_USAGE, str(exc)
    import grpc
    from grpc_health.v1 import health_pb2, health_pb2_grpc

    channel = client_channel(address, settings)
    metadata = (("authorization", f"Bearer {token}"),) if token else None
    try:
        with channel:
            response = health_pb2_grpc.HealthStub(channel).Check(
                health_pb2.HealthCheckRequest(service=service), timeout=timeout, metadata=metadata)
    except grpc.RpcError as err:
        code = err.code()
        if code == grpc.StatusCode.NOT_FOUND:  # how grpc.health.v1 says "no such service"
            return EXIT_UNKNOWN_SERVICE, f"SERVICE_UNKNOWN: {service!r} is not a service of {address}"
        if code == grpc.StatusCode.RESOURCE_EXHAUSTED:  # health checks count toward --max-concurrent
            return EXIT_BUSY, f"{address}: RESOURCE_EXHAUSTED: {err.details()}"
        hint = unavailable_hint(address, err.details() or "", settings, address_option="another ADDRESS") \
            if code == grpc.StatusCode.UNAVAILABLE else ""
        return EXIT_UNREACHABLE, f"{address}: {code.name if code else 'UNKNOWN'}: {err.details()}{hint}"
    status = health_pb2.HealthCheckResponse.ServingStatus.Name(response.status)
    if response.status == health_pb2.HealthCheckResponse.SERVING:
        return EXIT_SERVING, status
    if response.status == health_pb2.HealthCheckResponse.NOT_SERVING:
        return EXIT_NOT_SERVING, status
    return EXIT_UNKNOWN_SERVICE, status


def main(address: str, **kwargs: object) -> int:
    code, line = check(address, **kwargs)  # type: ignore[arg-type]
    if code == EXIT_USAGE:
        line = f"musicrec health: error: {line}"
    print(line, file=sys.stdout if code in (EXIT_SERVING, EXIT_NOT_SERVING) else sys.stderr)
    return code


def add_parser(sub: Any) -> None:
    h = sub.add_parser("health", help="probe a server's grpc.health.v1 status (exit 0 when SERVING)",
                       description="One grpc.health.v1.Health/Check, for container HEALTHCHECKs and Kubernetes "
                                   "exec probes. Prints the status.", epilog=EXIT_CODES_HELP)
    h.add_argument("address", type=client_address, help="HOST:PORT")
    h.add_argument("--service", action=Once, type=utf8_text, default="",
                   help="a service name, e.g. musicrec.v1.Recommender (default: the server)")
    h.add_argument("--timeout", action=Once, type=seconds, default=5.0, metavar="S",
                   help="deadline in seconds (default 5)")
    h.add_argument("--token", action=Once, type=client_token,
                   help="bearer token (health checks need none on musicrec; for proxies that do)")
    add_tls_options(h)
    h.set_defaults(func=cmd_health)


def cmd_health(args: argparse.Namespace) -> int:
    return main(args.address, service=args.service, timeout=args.timeout, token=args.token, tls=args.tls,
                tls_ca=args.tls_ca, tls_server_name=args.tls_server_name)
