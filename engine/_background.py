"""One build stage run beside another: the genre classifier trains while the moods are found.

Why: on the Spotify data (89,583 tracks, 2 cores) neither stage keeps both cores busy (XGBoost 1.1-1.4 of
them, the moods 1.3-1.9), and neither reads the other's results. With the genre stage beside the moods (and a
large catalog's shipped model beside its second fold: engine/_crossfit.py) the build took 173.5 s and 174.4 s
where one stage after the other took 250.3 s and 235.6 s, alternated, every bundle file the same bytes
(benchmarks/RESULTS.md, "The genre stage beside the moods").

A ``Background`` runs one function in a daemon thread; ``result()`` waits for it and returns its value or
raises its exception. Its progress messages are marked with the stage's name (their lines interleave with
the other stage's). ``cancel()`` stops it at its next progress message (every few seconds while XGBoost
trains) and waits for that: a build that fails in the other stage leaves no thread training for minutes in a
process that goes on (a test run, a server).
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from typing import Generic, TypeVar

from ._progress import Progress

T = TypeVar("T")


class Cancelled(Exception):
    """Raised inside a cancelled ``Background`` job at its next progress message."""


class Background(Generic[T]):
    """``job(progress)`` in a daemon thread, started at once; ``seconds`` is its own run time once done, when it
    says "[name] done in ... s"."""

    def __init__(self, name: str, job: Callable[[Progress], T], progress: Progress) -> None:
        self.name, self._say = name, progress
        self._value: T | None = None
        self._error: BaseException | None = None
        self._cancelled = threading.Event()
        self.seconds = 0.0
        self._thread = threading.Thread(target=self._run, args=(job,), name=f"build-{name}", daemon=True)
        self._thread.start()

    def _progress(self, message: str) -> None:
        if self._cancelled.is_set():
            raise Cancelled(self.name)
        marked = message if message.startswith(f"{self.name}:") else f"{self.name}: {message}"
        self._say(type(message)(marked))  # a Tick stays a Tick

    def _run(self, job: Callable[[Progress], T]) -> None:
        t0 = time.perf_counter()
        try:
            self._value = job(self._progress)
            self.seconds = time.perf_counter() - t0
            if self._cancelled.is_set():  # it ended without a word since: the build no longer wants it
                raise Cancelled(self.name)
            self._say(f"[{self.name}] done in {self.seconds:.1f} s")
        except BaseException as exc:  # handed to result(), in the thread that waits (the progress callable's too)
            self._error = exc

    def result(self) -> T:
        """Wait for the job; its value, or its exception raised here."""
        self._thread.join()
        if self._error is not None:
            raise self._error
        return self._value  # type: ignore[return-value]

    def cancel(self, *, wait: bool = True) -> None:
        """Stop the job at its next progress message (it raises ``Cancelled`` there) and, with ``wait``, wait
        until it has: no thread of a failed build trains on after it. A no-op once the job is done."""
        self._cancelled.set()
        if wait:
            self._thread.join()
