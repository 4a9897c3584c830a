"""``musicrec health ADDRESS``: one ``grpc.health.v1.Health/Check``, answered as an exit status, for
container HEALTHCHECKs, Kubernetes exec probes and scripts. Loads grpc and the health stubs only
(never the engine), so a probe costs an interpreter start and one call.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

from ._cli_args import Once, client_address, client_token  # the same checks as query's
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


PEM_CERTIFICATE = b"-----BEGIN CERTIFICATE-----"


def check(address: str, *, service: str = "", timeout: float = 5.0, token: str | None = None,
          tls: bool = False, tls_ca: Path | None = None, tls_server_name: str | None = None) -> tuple[int, str]:
    """Ask ``address`` for the health of ``service`` ("" = the whole server). Returns (exit status, line to print).
    Options that cannot work are refused (EXIT_USAGE) before dialling, never ignored."""
    if tls_server_name is not None and not (tls or tls_ca is not None):
        return EXIT_USAGE, "--tls-server-name needs TLS: give --tls or --tls-ca FILE too"
    if tls_server_name is not None and not tls_server_name.strip():
        return EXIT_USAGE, "--tls-server-name: empty; give the name in the server's certificate"
    root = None
    if tls_ca is not None:  # read here: grpc would fail the handshake, reported as no answer (exit 4)
        try:
            root = Path(tls_ca).read_bytes()
        except OSError as exc:
            return EXIT_USAGE, f"--tls-ca {tls_ca}: cannot read it ({exc.strerror})"
        if PEM_CERTIFICATE not in root:
            return EXIT_USAGE, (f"--tls-ca {tls_ca}: holds no PEM certificate (no "
                                f"{PEM_CERTIFICATE.decode()} line)")
    import grpc
    from grpc_health.v1 import health_pb2, health_pb2_grpc

    options: list[tuple[str, str]] = []
    if tls or tls_ca is not None:
        if tls_server_name:
            options.append(("grpc.ssl_target_name_override", tls_server_name))
        channel = grpc.secure_channel(address, grpc.ssl_channel_credentials(root_certificates=root), options=options)
    else:
        channel = grpc.insecure_channel(address)
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
        return EXIT_UNREACHABLE, f"{address}: {code.name if code else 'UNKNOWN'}: {err.details()}"
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
    h.add_argument("--service", action=Once, default="",
                   help="a service name, e.g. musicrec.v1.Recommender (default: the server)")
    h.add_argument("--timeout", action=Once, type=seconds, default=5.0, metavar="S",
                   help="deadline in seconds (default 5)")
    h.add_argument("--token", action=Once, type=client_token,
                   help="bearer token (health checks need none on musicrec; for proxies that do)")
    h.add_argument("--tls", action="store_true", help="use TLS with the system's root certificates")
    h.add_argument("--tls-ca", action=Once, type=Path, metavar="FILE",
                   help="use TLS, trusting this CA certificate (PEM)")
    h.add_argument("--tls-server-name", action=Once, metavar="NAME",
                   help="expect this name in the server certificate (with --tls or --tls-ca)")
    h.set_defaults(func=cmd_health)


def cmd_health(args: argparse.Namespace) -> int:
    return main(args.address, service=args.service, timeout=args.timeout, token=args.token, tls=args.tls,
                tls_ca=args.tls_ca, tls_server_name=args.tls_server_name)
