"""Session fixtures built once per test run, not once per pytest-xdist worker.

Under ``pytest -n 2`` every worker runs its own session, so a session fixture that builds a bundle or extracts a
corpus is built twice, once on each core. ``once_per_run`` builds it in the run's shared temporary directory (the
parent of the workers' own, as pytest-xdist's documentation suggests) under a file lock: the first worker to ask
builds it, a worker that asks meanwhile waits for it, and later ones find it done. What it builds must be read-only
to the tests, as a session fixture's output already is to the tests of one worker.
"""

from __future__ import annotations

import fcntl
import os
import shutil
from collections.abc import Callable
from pathlib import Path

import pytest


def once_per_run(factory: pytest.TempPathFactory, name: str, build: Callable[[Path], object]) -> Path:
    """The directory ``build`` filled: called with it, empty, by the first worker that asks (in place, so paths
    a build records stay true; a build that raised leaves nothing, and the next worker to ask tries again)."""
    root = factory.getbasetemp()
    if os.environ.get("PYTEST_XDIST_WORKER"):
        root = root.parent
    out, built = root / name, root / f"{name}.built"
    with (root / f"{name}.lock").open("w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)  # released when the file closes, or when the process dies
        if not built.exists():
            shutil.rmtree(out, ignore_errors=True)
            out.mkdir()
            try:
                build(out)
            except BaseException:
                shutil.rmtree(out, ignore_errors=True)
                raise
            built.touch()
    return out
