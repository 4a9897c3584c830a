"""Ports for servers a test starts with a port given in advance (a subprocess, a README block).

A port from ``bind((host, 0))`` comes from the kernel's ephemeral range, the range outgoing connections take
their local ports from: once released it can become a connection's local port (another test's channel, say)
before the server binds it. A clean run saw ``serve --processes 2`` refuse its metrics port so, "Address already
in use". These come from below that range, each free when checked, ``count`` of them in a row (``serve
--processes N --metrics-port P`` takes P to P+N-1).
"""

from __future__ import annotations

import random
import socket
from pathlib import Path

FLOOR = 20_000  # the lowest port taken: well above the well-known ports and the usual services' defaults


def _ephemeral_range() -> tuple[int, int]:
    try:
        low, high = (int(v) for v in Path("/proc/sys/net/ipv4/ip_local_port_range").read_text().split())
    except (OSError, ValueError):
        return 32_768, 60_999  # Linux's default
    return low, high


def _free(host: str, port: int) -> bool:
    with socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET) as s:
        try:
            s.bind((host, port))
        except OSError:
            return False
        return True


def unused_ports(count: int = 1, host: str = "127.0.0.1") -> list[int]:
    """``count`` consecutive ports on ``host`` that nothing holds now, from outside the ephemeral range."""
    ephemeral_low, ephemeral_high = _ephemeral_range()
    low, top = (FLOOR, ephemeral_low) if ephemeral_low - FLOOR >= 1_000 else (ephemeral_high + 1, 65_536)
    pick = random.Random()  # seeded from the OS: the xdist workers draw differently
    for _ in range(1_000):
        first = pick.randrange(low, top - count)
        if all(_free(host, p) for p in range(first, first + count)):
            return list(range(first, first + count))
    raise RuntimeError(f"no {count} free ports in a row on {host} from {low} to {top - 1}")
