"""Timing shared by the benchmark scripts, so each script states only what it times.

On a shared machine only figures measured side by side in one run compare, so what is compared
alternates: item by item (``side_by_side_us``), or round by round with the order rotated
(``rotated``), and is reported as medians and paired per-round ratios (``paired``). The scripts
run as ``python benchmarks/<script>.py``, which puts this folder on the path: ``from _timing import ...``.
"""

from __future__ import annotations

import os
import socket
import statistics
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import Any, TypeVar

T = TypeVar("T")
Item = TypeVar("Item")


def timed_us(fn: Callable[[], T]) -> tuple[float, T]:
    """Microseconds one call of ``fn`` took (wall clock), and what it returned."""
    t0 = time.perf_counter()
    out = fn()
    return (time.perf_counter() - t0) * 1e6, out


def each_us(fn: Callable[[Item], T], items: Iterable[Item]) -> tuple[list[float], list[T]]:
    """``fn`` on each item in turn: microseconds per call, and the results, in item order."""
    times: list[float] = []
    results: list[T] = []
    for item in items:
        t0 = time.perf_counter()
        results.append(fn(item))
        times.append((time.perf_counter() - t0) * 1e6)
    return times, results


def side_by_side_us(fns: Mapping[str, Callable[[Item], object]], items: Iterable[Item]) -> dict[str, list[float]]:
    """Each item through every one of ``fns`` back to back, in the mapping's order, so drift on the
    machine hits them alike: microseconds per call, by name (lists in item order)."""
    out: dict[str, list[float]] = {name: [] for name in fns}
    for item in items:
        for name, fn in fns.items():
            t0 = time.perf_counter()
            fn(item)
            out[name].append((time.perf_counter() - t0) * 1e6)
    return out


def rotated(names: Sequence[T], round_index: int) -> list[T]:
    """The order of round ``round_index``: ``names`` rotated by it, so each goes first in turn."""
    k = round_index % len(names)
    return [*names[k:], *names[:k]]


def paired(numerators: Sequence[float], denominators: Sequence[float]) -> dict[str, Any]:
    """Ratios of paired rounds (``numerators[i] / denominators[i]``): their median, min and max
    and every one, rounded to 4 places."""
    ratios = [a / b for a, b in zip(numerators, denominators, strict=True)]
    return {"median": round(statistics.median(ratios), 4), "min": round(min(ratios), 4),
            "max": round(max(ratios), 4), "per_round": [round(x, 4) for x in ratios]}


def cpu_seconds(pid: int) -> float:
    """CPU time of every thread of ``pid`` so far (nanosecond counters; Linux), which other load on
    a shared machine disturbs far less than wall-clock latency."""
    total = 0
    for task in os.listdir(f"/proc/{pid}/task"):
        try:
            with open(f"/proc/{pid}/task/{task}/schedstat") as fh:
                total += int(fh.read().split()[0])
        except (OSError, ValueError, IndexError):  # a thread that just ended
            continue
    return total / 1e9


def free_port() -> int:
    """A TCP port on 127.0.0.1 free at the time of asking."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class ServicerContext:
    """What the servicer reads of a ``grpc.ServicerContext`` on the paths the benchmarks call it on
    in-process (no deadline, always active; an abort raises)."""

    def time_remaining(self) -> None:
        return None

    def abort(self, code: Any, details: str) -> None:
        raise RuntimeError(f"{code}: {details}")

    def is_active(self) -> bool:
        return True


def report_run(script: str, argv: Sequence[str] | None, json_path: Any, facts: Mapping[str, Any]) -> None:
    """Print the command that reproduces a run and the machine it ran on, and write ``facts`` with both to
    ``json_path`` (a Path, or None for no file)."""
    import json
    import platform
    import sys

    command = " ".join(["python", f"benchmarks/{script}", *(sys.argv[1:] if argv is None else argv)])
    machine = f"{platform.machine()}, {os.cpu_count()} cpus, python {platform.python_version()}"
    print(f"\n{command}  ({machine})")
    if json_path is not None:
        json_path.write_text(json.dumps({"command": command, "machine": machine, **facts}, indent=2) + "\n",
                             encoding="utf-8")
