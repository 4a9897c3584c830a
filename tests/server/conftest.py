from __future__ import annotations

import dataclasses
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from engine import Deadline, Recommender, build_bundle
from tests._once import once_per_run
from tests.conftest import FAST_CONFIG


@pytest.fixture(scope="session")
def second_bundle(synthetic_csv: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Another bundle of the same catalog (another seed, so another version), in another directory."""
    return once_per_run(tmp_path_factory, "bundles2",
                        lambda out: build_bundle(synthetic_csv, out / "b2", FAST_CONFIG.replace(seed=7))) / "b2"


def wait_until(condition: Callable[[], object], what: str, timeout: float = 10.0) -> None:
    """Poll ``condition`` until it holds. ``timeout`` only bounds a hang: passing never depends on
    how fast the machine is, and the test fails naming ``what`` if it never happens."""
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            pytest.fail(f"still waiting after {timeout} s for {what}")
        time.sleep(0.01)


@dataclasses.dataclass
class Blocker:
    """SimilarTracks calls (in this process's servers) each release ``entered`` once, then wait
    for ``release``."""

    entered: threading.Semaphore = dataclasses.field(default_factory=lambda: threading.Semaphore(0))
    release: threading.Event = dataclasses.field(default_factory=threading.Event)
    # released calls go on only once the server's own deadline for them has passed: the server's
    # deadline starts when the request arrives, later than the client's, so a client that has seen
    # DEADLINE_EXCEEDED does not prove the server's deadline is over too
    finish_late: bool = False


@pytest.fixture
def blocking(monkeypatch: pytest.MonkeyPatch) -> Iterator[Blocker]:
    blocker = Blocker()
    original = Recommender.similar

    def slow(self: Recommender, query: object, **kwargs: object) -> object:
        blocker.entered.release()
        blocker.release.wait(10)
        deadline = kwargs.get("deadline")
        at = deadline.at if isinstance(deadline, Deadline) else deadline  # the server hands a CallDeadline
        if blocker.finish_late and isinstance(at, float):
            wait_until(lambda: time.monotonic() > at, "the server's deadline for the call to pass")
        return original(self, query, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(Recommender, "similar", slow)
    yield blocker
    blocker.release.set()
