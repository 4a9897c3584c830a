"""What a similar-tracks query is: its seeds, filter and options, the page it answers, and the bounds every query
is held to (engine/_similar.py validates and ranks it; benchmarks/worst_case.py measures the worst the bounds allow).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping, Sequence

import numpy as np

MAX_K = 1000
MAX_DEPTH = 2000  # offset + k: the deepest page of a ranking
MAX_POOL = 5_000  # survivors a ranking may walk (an artist cap can skip many): bounds MMR's picks
MAX_SEEDS = 500
MAX_BATCH = 256
MAX_BATCH_DEPTH = 5_000  # sum of offset + k over a batch (benchmarks/worst_case.py)
DEFAULT_K = 10
NEGATIVE_WEIGHT = 0.5  # Rocchio: a negative seed pulls half as hard as a positive one
DEFAULT_TARGET_WEIGHT = 0.5


@dataclasses.dataclass(frozen=True, kw_only=True)
class Seed:
    """Exactly one of a catalog track id, raw feature values, or a vector."""

    track_id: str | None = None
    features: Mapping[str, float] | None = None
    vector: Sequence[float] | None = None


@dataclasses.dataclass(frozen=True, kw_only=True)
class TrackFilter:
    include_genres: Sequence[str] = ()
    exclude_genres: Sequence[str] = ()
    explicit: bool | None = None
    ranges: Mapping[str, tuple[float | None, float | None]] = dataclasses.field(default_factory=dict)
    exclude_track_ids: Sequence[str] = ()
    mood_ids: Sequence[int] = ()

    @property
    def empty(self) -> bool:
        """Nothing to filter on: only the seeds' own songs are kept out."""
        return not (self.include_genres or self.exclude_genres or self.explicit is not None or self.ranges
                    or self.exclude_track_ids or self.mood_ids)


@dataclasses.dataclass(frozen=True, kw_only=True)
class SimilarQuery:
    seeds: Sequence[Seed]
    negative_seeds: Sequence[Seed] = ()
    targets: Mapping[str, float] = dataclasses.field(default_factory=dict)
    target_weight: float | None = None
    filter: TrackFilter = dataclasses.field(default_factory=TrackFilter)
    k: int = DEFAULT_K
    offset: int = 0
    max_per_artist: int = 0
    diversity: float = 0.0
    skip_unknown_seeds: bool = False
    # Weight of genre agreement in the score (engine/_rerank.py); None: the bundle's default.
    genre_weight: float | None = None


@dataclasses.dataclass(frozen=True)
class SimilarResult:
    """One page: track rows (positions in the bundle's track table) and scores, best first.

    ``examined``: candidates looked at in cosine order to build the ranking up to this page;
    ``filtered``: how many of them the filters, the seeds' own songs, repeated songs and the
    artist cap kept out. Both depend on the query and the page, not on whether the neighbour table or a live
    search answered it; a source that filters natively (Qdrant) counts only the candidates it let through.
    """

    rows: np.ndarray
    scores: np.ndarray
    unknown_seed_ids: list[str]
    examined: int
    filtered: int
    exhausted: bool
    took_ms: float
