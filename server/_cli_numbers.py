"""Numbers a user types, checked where they are read: argparse types for the serve, query, bench and
health commands (argparse puts the flag before the message), and the console API's query parameters
(server/_console.py). A value out of range is refused naming the range, never clamped or ignored."""

from __future__ import annotations

import argparse
import math
import re
from collections.abc import Callable

# grpc turns a deadline past ~7.5e9 s into an immediate DEADLINE_EXCEEDED, and a wait past ~9.2e9 s overflows
MAX_SECONDS = 1_000_000.0
# Processes a command may start (serve --processes, --audio-workers, bench --processes): each is a
# Python interpreter holding the engine or a client; the bound only refuses a typo that would start
# thousands (indexer/_extract.py keeps the same bound for its worker processes).
MAX_PROCESSES = 256


def _whole(text: str) -> int:
    """A whole number written as ASCII digits with an optional '-' (so a negative one is refused naming
    the range, not as "not a number")."""
    if re.fullmatch(r"-?[0-9]+", text):
        negative, digits = text.startswith("-"), text.lstrip("-").lstrip("0") or "0"
        try:
            return -int(digits) if negative else int(digits)
        except ValueError:  # more digits than int() reads (4,300): its own message is advice for the program
            raise argparse.ArgumentTypeError(f"a {'negative ' if negative else ''}number of {len(digits):,} digits "
                                             f"is too {'small' if negative else 'large'}") from None
    try:
        int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text.strip()[:40]!r} is not a whole number") from None
    # int() also reads "1_0", "+5", " 5" and full-width "５": none is how a count or a port is written
    raise argparse.ArgumentTypeError(f"{text[:40]!r} is not a whole number in plain digits 0-9")


def shown_number(value: int | str) -> str:
    """A number as an error message echoes it: one of more digits than a line holds is cut, with its length
    (also for the HTTP face's JSON numbers, server/_http_json.py)."""
    text = str(value)
    return text if len(text) <= 24 else f"{text[:12]}... ({len(text.lstrip('-')):,} digits)"


def int_from(low: int, high: int | None = None) -> Callable[[str], int]:
    """A whole number in ``low..high`` (``high`` None: no upper end)."""
    def whole(text: str) -> int:
        value = _whole(text)
        if value < low:
            raise argparse.ArgumentTypeError(f"must be {low} or more, got {shown_number(value)}")
        if high is not None and value > high:
            raise argparse.ArgumentTypeError(f"must be at most {high}, got {shown_number(value)}")
        return value
    return whole


def int_in(low: int, high: int) -> Callable[[str], int]:
    """A whole number in ``low..high``, refused naming both ends: for the ranges the server holds a
    request to, where one end alone ("must be at most 1000") leaves the other to guess."""
    def whole(text: str) -> int:
        value = _whole(text)
        if not low <= value <= high:
            raise argparse.ArgumentTypeError(f"must be {low}..{high}, got {shown_number(value)}")
        return value
    return whole


def fraction(text: str) -> float:
    """A number from 0 to 1 (a weight or a share); NaN never passes."""
    value = number(text)
    if not 0 <= value <= 1:
        raise argparse.ArgumentTypeError(f"must be 0..1, got {text.strip()[:40]!r}")
    return value


def number(text: str) -> float:
    try:
        return float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text.strip()[:40]!r} is not a number") from None


def number_in(low: float, high: float = math.inf, *, unit: str, over_low: bool = False,
              zero_is_off: bool = False) -> Callable[[str], float]:
    """A finite number of ``unit`` from ``low`` (``over_low``: above it) to ``high``; with
    ``zero_is_off``, 0 too, meaning the feature is off. NaN and inf never pass."""
    shown_low = f"over {low:g}" if over_low else f"from {low:g}"
    shown_high = "" if math.isinf(high) else f" {'and at most' if over_low else 'to'} {high:,.15g}"
    wanted = f"{'0 (off) or ' if zero_is_off else ''}a number of {unit} {shown_low}{shown_high}"

    def checked(text: str) -> float:
        value = number(text)
        inside = math.isfinite(value) and (value > low if over_low else value >= low) and value <= high
        if not (inside or (zero_is_off and value == 0)):
            raise argparse.ArgumentTypeError(f"must be {wanted}, got {text.strip()[:40]!r}")
        return value
    return checked


# A deadline: grpc would answer 0, a negative one or NaN with DEADLINE_EXCEEDED, as if the server were slow.
seconds = number_in(0, MAX_SECONDS, unit="seconds", over_low=True)
wait_seconds = number_in(0, MAX_SECONDS, unit="seconds")  # a wait or a grace period: 0 is no wait
