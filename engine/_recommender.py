"""The query API over one loaded bundle: one object a server or a notebook holds.

Each capability lives in its own module and is reached through here:
similar tracks (engine/_similar.py, ranking stages in engine/_ranking.py), mood playlists
(engine/_playlist.py), genre classification (engine/_classify.py) and the catalog itself
(engine/_view.py). A Recommender is immutable; to reload, build a new one and swap it in.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from typing import Any

from . import _compiled
from ._candidates import CandidateSource
from ._classify import Classification, GenreClassify
from ._loaded import Bundle
from ._playlist import DEFAULT_PLAYLIST, PlaylistEntry, Playlists
from ._ranking import Deadline
from ._similar import SimilarSearch
from ._similar_query import SimilarQuery, SimilarResult
from ._view import CatalogView


class Recommender:
    """Similar tracks, mood playlists and genres over one :class:`Bundle`.

    ``source`` replaces the bundle's FAISS index as the similar-track candidate source (another
    vector engine holding the same vectors); the ranking stages stay the same.
    """

    def __init__(self, bundle: Bundle, *, source: CandidateSource | None = None) -> None:
        self.bundle = bundle
        self.view = view = CatalogView(bundle)
        self._similar = SimilarSearch(view, source)
        self.source: CandidateSource = self._similar.source  # the server's health checks read it
        self._playlists = Playlists(view)
        self._genres = GenreClassify(view)
        self.n = view.n
        self.feature_names = view.feature_names
        self.genre_names = view.genre_names
        self.default_genre_weight = self._similar.default_genre_weight
        # display columns, one item per row (the server's responses read these)
        self.ids, self.names, self.albums = view.ids, view.names, view.albums
        self.artists, self.genres, self.explicit = view.artists, view.genres, view.explicit
        self.mood_ids, self.mood_names = view.mood_ids, view.mood_names
        self.mood_core, self.mood_strength = view.mood_core, view.mood_strength

    # -- similar tracks ------------------------------------------------------------------------
    def warm_compiled(self) -> None:
        """With the compiled kernels on (engine/_compiled.py, :func:`engine.use_compiled_kernels`), make
        them ready for this bundle's arrays before the first request (a server calls it on every load)."""
        _compiled.warm(self.view, self._similar._agreement)

    def similar(self, query: SimilarQuery, *, deadline: float | Deadline | None = None) -> SimilarResult:
        """One page of the query's ranking. ``deadline`` is a ``time.monotonic()`` value."""
        return self._similar.similar(query, deadline=deadline)

    def check_similar(self, query: SimilarQuery) -> None:
        """Raise what ``similar`` would refuse in ``query`` without reading its feature or vector seeds: its
        options, track-id seeds, filter and scoring (a server checks them before it analyses audio clips)."""
        self._similar.check(query)

    def similar_batch(self, queries: Sequence[SimilarQuery], *,
                      deadline: float | Deadline | None = None) -> list[SimilarResult]:
        """Every query's page, or the first error in query order (naming ``queries[i]``)."""
        return self._similar.similar_batch(queries, deadline=deadline)

    def similar_many(self, queries: Sequence[SimilarQuery], *,
                     deadline: float | Deadline | None = None) -> list[SimilarResult | Exception]:
        """Independent queries answered together (engine/_similar_many.py): each its result or its error."""
        return self._similar.similar_many(queries, deadline=deadline)

    def together(self, query: SimilarQuery) -> bool:
        """Whether ``similar_many`` ranks ``query`` with others in one pass: cheap, bounded work."""
        return self._similar.together(query)

    # -- playlists and moods -------------------------------------------------------------------
    def playlist(self, *, mood_id: int | None = None, mood_name: str | None = None,
                 seed_track_id: str | None = None, target: tuple[float, float] | None = None,
                 length: int = DEFAULT_PLAYLIST, max_per_artist: int = 0,
                 shuffle_seed: int = 0) -> tuple[int, Iterator[PlaylistEntry]]:
        return self._playlists.playlist(mood_id=mood_id, mood_name=mood_name, seed_track_id=seed_track_id,
                                        target=target, length=length, max_per_artist=max_per_artist,
                                        shuffle_seed=shuffle_seed)

    def moods(self) -> list[dict[str, Any]]:
        return self._playlists.clusters

    def resolve_mood(self, *, mood_id: int | None = None, mood_name: str | None = None) -> int:
        return self._playlists.resolve_mood(mood_id=mood_id, mood_name=mood_name)

    # -- genres --------------------------------------------------------------------------------
    def check_classify(self, top_k: int = 0) -> int:
        """The ``top_k`` ``classify`` would answer with, or what it would refuse without reading an input (a
        server checks it before it analyses an audio clip)."""
        return self._genres.check(top_k)

    def classify(self, *, track_id: str | None = None, features: Mapping[str, float] | None = None,
                 top_k: int = 0, explain: bool = False) -> Classification:
        return self._genres.classify(track_id=track_id, features=features, top_k=top_k, explain=explain)

    # -- tracks --------------------------------------------------------------------------------
    def track(self, track_id: str) -> int:
        return self.view.row(track_id)

    def features_of(self, row: int) -> dict[str, float]:
        return self.view.features_of(row)

    def track_record(self, row: int) -> dict[str, Any]:
        return self.view.track_record(row)

    def raw_features(self, values: Mapping[str, float], where: str = "features") -> Any:
        return self.view.raw_features(values, where)
