"""Progress of the long build stages: how far, how fast, how long left.

A build reports through one ``progress(message)`` callable. Most messages are facts worth keeping in
a log (a stage started or ended, what it found); a ``Tick`` only says how far a loop has got, which
is worth a line on a terminal and noise in a log, so a caller may drop ticks when its output is not
a terminal (``musicrec index`` does).
"""

from __future__ import annotations

import time
from collections.abc import Callable

Progress = Callable[[str], None]
TICK_SECONDS = 5.0  # at most one tick per loop this often


class Tick(str):
    """A progress message that only reports how far a loop has got (done/total, rate, time left)."""


def duration(seconds: float) -> str:
    """``"45 s"``, ``"3 min 20 s"``, ``"1 h 5 min"``."""
    seconds = max(0, round(seconds))
    if seconds < 60:
        return f"{seconds} s"
    if seconds < 3600:
        return f"{seconds // 60} min {seconds % 60:02d} s"
    return f"{seconds // 3600} h {seconds % 3600 // 60:02d} min"


class Ticker:
    """Call with the work done so far; emits a ``Tick`` (done/total, rate, time left) at most every
    ``every`` seconds, and never for a loop that ends sooner.

    ``upper_bound``: ``total`` is a ceiling the loop may stop short of (early stopping), so the time
    left is given as "at most".
    """

    def __init__(self, progress: Progress | None, label: str, total: int, *, unit: str = "",
                 every: float | None = None, upper_bound: bool = False) -> None:
        self.progress, self.label, self.total, self.unit = progress, label, total, unit
        self.every, self.upper_bound = TICK_SECONDS if every is None else every, upper_bound
        self.t0 = self.last = time.monotonic()

    def __call__(self, done: int, detail: str = "") -> None:
        now = time.monotonic()
        if self.progress is None or done <= 0 or done >= self.total or now - self.last < self.every:
            return
        self.last = now
        rate = done / (now - self.t0)
        left = duration((self.total - done) / rate)
        unit = f" {self.unit}" if self.unit else ""
        speed = f"{rate:,.0f}" if rate >= 10 else f"{rate:.2f}"
        self.progress(Tick(f"{self.label}: {done:,}/{self.total:,}{unit} ({speed}{unit}/s, "
                           f"{'at most ' if self.upper_bound else 'about '}{left} left){detail}"))
