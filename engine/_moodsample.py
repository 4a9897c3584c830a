"""Which tracks a mood fit sees: every track of a catalog up to ``[moods] fit_sample``, and of a larger one the
tracks whose ids hash lowest (engine/_moods.py). A catalog that loses tracks keeps every track of its sample that it
still holds, and one that grows keeps most of it (its new tracks take their share), so its moods move about as much
as its tracks do (benchmarks/RESULTS.md, "One mood method at every size"); a caller without ids draws the sample at
random."""

from __future__ import annotations

import hashlib
from collections.abc import Sequence

import numpy as np


def id_keys(ids: Sequence[str]) -> np.ndarray:
    """A stable 64-bit key for each track id (BLAKE2b of its text): a catalog above ``fit_sample`` is fitted on the
    tracks whose keys are lowest, so a catalog that grows or loses tracks keeps most of its sample."""
    return np.fromiter((int.from_bytes(hashlib.blake2b(str(i).encode("utf-8"), digest_size=8).digest(), "little")
                        for i in ids), dtype=np.uint64, count=len(ids))


def sample_rows(rows: np.ndarray, size: int, rng: np.random.Generator, keys: np.ndarray | None) -> np.ndarray:
    """``size`` of ``rows`` (all of them when they are no more), sorted: those whose ``keys`` (indexed by row) are
    lowest, or without keys a draw of ``rng``."""
    if len(rows) <= size:
        return rows
    if keys is None:
        return np.sort(rng.choice(rows, size=size, replace=False))
    return np.sort(rows[np.argsort(keys[rows], kind="stable")[:size]])
