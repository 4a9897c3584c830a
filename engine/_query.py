"""Queries over a loaded bundle: similar tracks, mood playlists, genre classification.

Everything a server or a notebook asks of a bundle goes through :class:`Recommender`; the server
only converts messages. Per-query work is vectorized over candidates (numpy/FAISS); the Python
loops that remain run over at most the returned tracks (artist cap, MMR, playlist order).
"""

from __future__ import annotations

import dataclasses
import itertools
import time
from collections.abc import Iterator, Mapping, Sequence
from typing import Any

import faiss
import numpy as np

from ._catalog import song_keys
from ._errors import InvalidQuery, TrackNotFound, shown
from ._explain import PathExplainer
from ._families import family_matrix
from ._loaded import Bundle
from ._preprocess import l2_normalize
from ._rerank import GenreAgreement, hybrid_scores

MAX_K = 1000
MAX_OFFSET = 10_000
MAX_SEEDS = 500
MAX_BATCH = 256
MAX_PLAYLIST = 500
DEFAULT_K = 10
DEFAULT_PLAYLIST = 20
DEFAULT_PLAYLIST_ARTIST_CAP = 2
NEGATIVE_WEIGHT = 0.5  # Rocchio: a negative seed pulls half as hard as a positive one
DEFAULT_TARGET_WEIGHT = 0.5
_MIN_FETCH = 64


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

    def is_empty(self) -> bool:
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
    """Track rows (positions in the bundle's track table) and scores, best first."""

    rows: np.ndarray
    scores: np.ndarray
    unknown_seed_ids: list[str]
    examined: int
    filtered: int
    exhausted: bool
    took_ms: float


@dataclasses.dataclass(frozen=True)
class PlaylistEntry:
    position: int
    row: int
    transition: float


@dataclasses.dataclass(frozen=True)
class Classification:
    genres: list[tuple[str, float]]
    contributions: list[tuple[str, float]]
    bias: float
    known_genres: tuple[str, ...]
    took_ms: float
    families: list[tuple[str, float]] = dataclasses.field(default_factory=list)


@dataclasses.dataclass(frozen=True)
class _Resolved:
    """A validated query: its unit query vector and everything needed to post-filter."""

    query: SimilarQuery
    vector: np.ndarray
    exclude_rows: np.ndarray
    exclude_songs: np.ndarray
    unknown: list[str]
    include_codes: np.ndarray
    exclude_codes: np.ndarray
    ranges: list[tuple[np.ndarray, float, float]]
    mood_ids: np.ndarray
    targets: list[tuple[np.ndarray, float, float]]
    target_weight: float
    genre_weight: float
    affinity: np.ndarray | None  # the seeds' genre probabilities, when genre re-ranking applies


class Recommender:
    """Query API over one loaded :class:`Bundle` (immutable; swap the whole object to reload)."""

    def __init__(self, bundle: Bundle) -> None:
        self.bundle = bundle
        tracks = bundle.tracks
        self.n = len(tracks)
        self.feature_names = tuple(bundle.preprocessor.feature_names)
        self._feature_index = {n: i for i, n in enumerate(self.feature_names)}
        self.genre_names = tracks.genre_names
        self._genre_code = {g: i for i, g in enumerate(self.genre_names)}
        self._genres = tracks.genre_matrix()
        # Numeric columns usable in ranges and targets: the raw features and numeric metadata.
        self._numeric: dict[str, np.ndarray] = {n: tracks.features[:, i] for i, n in enumerate(self.feature_names)}
        for col, values in tracks.metadata.items():
            if values.dtype.kind in "fiu" and col not in self._numeric:
                self._numeric[col] = values.astype(np.float64)
        lo, hi = {}, {}
        for name, values in self._numeric.items():
            finite = values[np.isfinite(values)]
            lo[name], hi[name] = (np.percentile(finite, [1, 99]) if len(finite) else (0.0, 1.0))
        self._spread = {n: max(float(hi[n] - lo[n]), 1e-9) for n in self._numeric}
        explicit = tracks.metadata.get("explicit")
        self._explicit = explicit if explicit is not None and explicit.dtype == bool else None
        artists = tracks.metadata.get(tracks.artists_column) if tracks.artists_column else None
        sep = tracks.artist_separator
        self.artists: list[tuple[str, ...]] = (
            [tuple(a.strip() for a in str(s).split(sep) if a.strip()) for s in artists]
            if artists is not None else [() for _ in range(self.n)])
        # The dataset re-lists one song under several ids (single, album, compilation). A song key
        # (name + artists) keeps a seed's other listings out of its results and duplicates out of
        # playlists. Without a name column every track is its own song.
        names = tracks.metadata.get(bundle.config.schema.name_column or "")
        self._song = song_keys(names, artists) if names is not None and artists is not None \
            else np.arange(self.n, dtype=np.int64)
        self._moods = bundle.moods
        self._mood_by_name = {c["name"].casefold(): c["id"] for c in self._moods.clusters_}
        self._mood_members = [np.flatnonzero(self._moods.labels_ == c) for c in range(len(self._moods.clusters_))]
        # Display columns as plain Python lists, built once: responses read them without numpy
        # scalar boxing or per-request dict building.
        meta = tracks.metadata
        self.ids: list[str] = [str(t) for t in tracks.ids]
        self.names: list[str] = [str(x) for x in names] if names is not None else [""] * self.n
        album = meta.get("album_name")
        self.albums: list[str] = [str(x) for x in album] if album is not None and album.dtype == object \
            else [""] * self.n
        self.genres: list[tuple[str, ...]] = [tracks.genres_of(i) for i in range(self.n)]
        self.mood_ids: list[int] = self._moods.labels_.astype(int).tolist()
        mood_names = [c["name"] for c in self._moods.clusters_]
        self.mood_names: list[str] = [mood_names[m] for m in self.mood_ids]
        self.mood_core: list[bool] = self._moods.is_core_.astype(bool).tolist()
        self.mood_strength: list[float] = self._moods.strength_.astype(float).tolist()
        self.explicit: list[bool] | None = self._explicit.tolist() if self._explicit is not None else None
        self._explainer = PathExplainer(bundle.classifier.booster_) if bundle.classifier is not None else None
        self._playlist_space = self._make_playlist_space()
        similar = bundle.config.similar
        self.default_genre_weight = similar.genre_weight if bundle.classifier is not None else 0.0
        self._rerank_candidates = similar.candidates
        self._families = family_matrix(self.genre_names)
        self._agreement = GenreAgreement(tracks.genre_indptr, tracks.genre_codes, len(self.genre_names))
        table = bundle.neighbours
        self._table_weight = bundle.neighbour_genre_weight
        self._table_rows = table[0].astype(np.int64) if table is not None else None
        self._table_scores = table[1] if table is not None else None
        self._song_list: list[int] = self._song.tolist()  # the hot path reads single items: lists are faster

    # -- similar tracks ------------------------------------------------------------------------
    def similar(self, query: SimilarQuery) -> SimilarResult:
        return self.similar_batch([query])[0]

    def similar_batch(self, queries: Sequence[SimilarQuery]) -> list[SimilarResult]:
        """Answer many queries with one batched index search (plus a wider one for queries whose
        filters left too few candidates)."""
        if not queries:
            raise InvalidQuery("queries: at least one query is required")
        if len(queries) > MAX_BATCH:
            raise InvalidQuery(f"queries: {len(queries)} queries, at most {MAX_BATCH} per batch")
        t0 = time.perf_counter()
        results: list[SimilarResult | None] = [None] * len(queries)
        resolved: list[_Resolved | None] = [None] * len(queries)
        for i, q in enumerate(queries):
            row = self._table_row(q)
            if row is not None and q.filter.is_empty() and not q.max_per_artist:
                results[i] = self._walk_table(q, row, t0)  # the hot path: no validation work it does not need
            if results[i] is None:
                # the precomputed list (already genre-ranked) answers unless filters starve it: the
                # seed's genre probabilities are only needed, and only computed, when it does not
                resolved[i] = r = self._resolve(q, f"queries[{i}]." if len(queries) > 1 else "",
                                                affinity=row is None)
                if row is not None:
                    results[i] = self._finish(r, self._table_rows[row], self._table_scores[row], t0, ranked=True)
                    if results[i] is None and r.genre_weight > 0:
                        seed_raw = self.bundle.tracks.features[row:row + 1]
                        resolved[i] = dataclasses.replace(r, affinity=self._seed_affinity([seed_raw]))
        pending = [i for i, res in enumerate(results) if res is None]
        if not pending:
            return results  # type: ignore[return-value]
        fetch = {i: self._initial_fetch(resolved[i]) for i in pending}  # type: ignore[arg-type]
        vectors = np.stack([resolved[i].vector for i in pending])  # type: ignore[union-attr]
        scores, rows = self.bundle.index.search(vectors, max(fetch.values()))
        for j, i in enumerate(pending):
            r = resolved[i]
            assert r is not None
            res = self._finish(r, rows[j, :fetch[i]], scores[j, :fetch[i]], t0)
            while res is None:  # not enough survivors: widen the search for this query only
                fetch[i] = min(self.n, fetch[i] * 4)
                s, rr = self.bundle.index.search(r.vector[None, :], fetch[i])
                res = self._finish(r, rr[0], s[0], t0, final=fetch[i] >= self.n)
            results[i] = res
        return results  # type: ignore[return-value]

    def _table_row(self, q: SimilarQuery) -> int | None:
        """The seed row when the neighbour table can answer: one catalog track, nothing that
        re-ranks (negative seeds, targets, diversity) and a valid page that fits in the table.
        Checked on the raw query; unknown ids go the long way, which reports them."""
        if self._table_rows is None or len(q.seeds) != 1 or q.negative_seeds or q.targets or q.diversity \
                or not 1 <= q.k <= MAX_K or q.offset < 0 or q.offset + q.k > self._table_rows.shape[1] // 2 \
                or (self.default_genre_weight if q.genre_weight is None else q.genre_weight) != self._table_weight:
            return None
        seed = q.seeds[0]
        if seed.track_id is None or seed.features is not None or seed.vector is not None:
            return None
        return self.bundle.row_of.get(seed.track_id)

    def _walk_table(self, q: SimilarQuery, row: int, t0: float) -> SimilarResult | None:
        """Walk the precomputed list, skipping the seed's own song and repeated songs: the same
        answer ``_finish`` gives for a query without filters or artist cap, without its array set
        operations, which cost more than the walk for a list this short. None when the list runs out."""
        need = q.offset + q.k
        songs = self._song_list
        seen = {songs[row]}
        rows: list[int] = []
        scores: list[float] = []
        examined = 0
        # usually the head of the list suffices (a few repeated songs at most); the rest only if not
        head = 2 * need
        for cand, score in itertools.chain(
                zip(self._table_rows[row, :head].tolist(), self._table_scores[row, :head].tolist(), strict=True),
                _lazy_zip(self._table_rows[row, head:], self._table_scores[row, head:])):
            if cand < 0:
                break
            examined += 1
            song = songs[cand]
            if song in seen:
                continue
            seen.add(song)
            rows.append(cand)
            scores.append(score)
            if len(rows) == need:
                break
        if len(rows) < need:
            return None
        return SimilarResult(
            rows=np.asarray(rows[q.offset:], dtype=np.int64), scores=np.asarray(scores[q.offset:], dtype=np.float32),
            unknown_seed_ids=[], examined=examined, filtered=examined - len(rows), exhausted=False,
            took_ms=(time.perf_counter() - t0) * 1e3)

    def _initial_fetch(self, r: _Resolved) -> int:
        q = r.query
        need = q.offset + q.k
        factor = 1
        if q.diversity > 0 or r.targets:
            factor = 10  # re-ranking needs a pool to choose from
        elif q.max_per_artist or not q.filter.is_empty():
            factor = 4
        fetch = max(_MIN_FETCH, need * factor + len(r.exclude_rows))
        if r.affinity is not None:
            fetch = max(fetch, self._rerank_candidates + len(r.exclude_rows))
        return min(self.n, fetch)

    def _finish(self, r: _Resolved, rows: np.ndarray, scores: np.ndarray, t0: float,
                final: bool = False, ranked: bool = False) -> SimilarResult | None:
        """Filter and rank candidates by cosine ``scores`` (or, when ``ranked``, scores that already
        include genre agreement); None when more candidates are needed and available."""
        q = r.query
        need = q.offset + q.k
        valid = rows >= 0
        rows, scores = rows[valid], scores[valid]
        examined = len(rows)
        keep = self._filter_mask(r, rows)
        rows, scores = rows[keep], scores[keep]
        removed = examined - len(rows)
        if r.affinity is not None and not ranked:
            scores = hybrid_scores(scores, self._agreement(r.affinity, rows), r.genre_weight)
            order = np.argsort(-scores, kind="stable")
            rows, scores = rows[order], scores[order]
        if r.targets:
            scores = self._blend_targets(r, rows, scores)
            order = np.argsort(-scores, kind="stable")
            rows, scores = rows[order], scores[order]
        chosen, capped = self._select(r, rows, scores, need)
        if len(chosen) < need and not final and examined < self.n:
            return None
        picked = np.asarray(chosen, dtype=np.int64)
        out_rows = rows[picked][q.offset:need] if len(picked) else rows[:0]
        out_scores = scores[picked][q.offset:need] if len(picked) else scores[:0]
        return SimilarResult(
            rows=out_rows, scores=out_scores.astype(np.float32), unknown_seed_ids=r.unknown, examined=examined,
            filtered=removed + capped, exhausted=len(out_rows) < q.k,
            took_ms=(time.perf_counter() - t0) * 1e3)

    def _filter_mask(self, r: _Resolved, rows: np.ndarray) -> np.ndarray:
        f = r.query.filter
        keep = ~np.isin(rows, r.exclude_rows)
        songs = self._song[rows]
        if r.exclude_songs.size:
            keep &= ~np.isin(songs, r.exclude_songs)  # the seed under another id is still the seed
        first = np.zeros(len(rows), dtype=bool)
        first[np.unique(songs, return_index=True)[1]] = True  # one listing per song, the best-scored
        keep &= first
        if r.include_codes.size:
            keep &= self._genres[np.ix_(rows, r.include_codes)].any(axis=1)
        if r.exclude_codes.size:
            keep &= ~self._genres[np.ix_(rows, r.exclude_codes)].any(axis=1)
        if f.explicit is not None and self._explicit is not None:
            keep &= self._explicit[rows] == f.explicit
        for values, lo, hi in r.ranges:
            v = values[rows]
            keep &= (v >= lo) & (v <= hi)
        if r.mood_ids.size:
            keep &= np.isin(self._moods.labels_[rows], r.mood_ids)
        return keep

    def _blend_targets(self, r: _Resolved, rows: np.ndarray, scores: np.ndarray) -> np.ndarray:
        miss = np.zeros(len(rows))
        for values, target, spread in r.targets:
            miss += np.minimum(1.0, np.abs(values[rows] - target) / spread)
        closeness = 1.0 - miss / len(r.targets)
        w = r.target_weight
        return (1 - w) * scores + w * closeness

    def _select(self, r: _Resolved, rows: np.ndarray, scores: np.ndarray, need: int) -> tuple[list[int], int]:
        """Positions of the chosen candidates (artist cap, then MMR if asked); and how many the cap
        skipped."""
        q = r.query
        cap = q.max_per_artist
        counts: dict[str, int] = {}
        capped = 0

        def allowed(pos: int) -> bool:
            return not cap or all(counts.get(a, 0) < cap for a in self.artists[rows[pos]])

        def take(pos: int) -> None:
            for a in self.artists[rows[pos]]:
                counts[a] = counts.get(a, 0) + 1

        chosen: list[int] = []
        if q.diversity <= 0:
            for pos in range(len(rows)):
                if len(chosen) >= need:
                    break
                if allowed(pos):
                    chosen.append(pos)
                    take(pos)
                else:
                    capped += 1
            return chosen, capped
        # Maximal marginal relevance over the candidate pool.
        pool_vectors = self.bundle.vectors[rows]
        relevance = scores.astype(np.float64)
        max_sim = np.full(len(rows), -np.inf)
        available = np.ones(len(rows), dtype=bool)
        lam = q.diversity
        while len(chosen) < need and available.any():
            redundancy = np.where(np.isfinite(max_sim), max_sim, 0.0)
            mmr = np.where(available, (1 - lam) * relevance - lam * redundancy, -np.inf)
            pos = int(np.argmax(mmr))
            available[pos] = False
            if not allowed(pos):
                capped += 1
                continue
            chosen.append(pos)
            take(pos)
            max_sim = np.maximum(max_sim, pool_vectors @ pool_vectors[pos])
        return chosen, capped

    # -- validation ----------------------------------------------------------------------------
    def _resolve(self, q: SimilarQuery, where: str, *, affinity: bool = True) -> _Resolved:
        if not q.seeds:
            raise InvalidQuery(f"{where}seeds: at least one seed is required")
        if len(q.seeds) + len(q.negative_seeds) > MAX_SEEDS:
            raise InvalidQuery(f"{where}seeds: {len(q.seeds) + len(q.negative_seeds)} seeds, at most {MAX_SEEDS}")
        if not 1 <= q.k <= MAX_K:
            raise InvalidQuery(f"{where}k: must be 1..{MAX_K}, got {q.k}")
        if not 0 <= q.offset <= MAX_OFFSET:
            raise InvalidQuery(f"{where}offset: must be 0..{MAX_OFFSET}, got {q.offset}")
        if q.max_per_artist < 0:
            raise InvalidQuery(f"{where}max_per_artist: must be >= 0, got {q.max_per_artist}")
        if not (np.isfinite(q.diversity) and 0 <= q.diversity <= 1):
            raise InvalidQuery(f"{where}diversity: must be 0..1, got {q.diversity}")
        unknown: list[str] = []
        pos, pos_rows, pos_raw = self._seed_vectors(q.seeds, f"{where}seeds", q.skip_unknown_seeds, unknown)
        neg, neg_rows, _ = self._seed_vectors(q.negative_seeds, f"{where}negative_seeds", q.skip_unknown_seeds, unknown)
        if not pos:
            raise InvalidQuery(f"{where}seeds: none of the seed track ids is in the catalog: {unknown[:10]}")
        vector = np.mean(pos, axis=0)
        if neg:
            vector = vector - NEGATIVE_WEIGHT * np.mean(neg, axis=0)
        vector = l2_normalize(vector[None, :])[0]
        if not np.any(vector):
            raise InvalidQuery(f"{where}seeds: the seeds (minus negative seeds) add up to a zero vector")
        f = q.filter
        exclude = [self.bundle.row_of[t] for t in f.exclude_track_ids if t in self.bundle.row_of]
        ranges = []
        for name, (lo, hi) in f.ranges.items():
            values = self._numeric_column(name, f"{where}filter.ranges")
            lo_v = -np.inf if lo is None else float(lo)
            hi_v = np.inf if hi is None else float(hi)
            if np.isnan(lo_v) or np.isnan(hi_v) or lo_v > hi_v:
                raise InvalidQuery(f"{where}filter.ranges[{name!r}]: need min <= max (and not NaN), got {lo}..{hi}")
            ranges.append((values, lo_v, hi_v))
        moods = np.asarray(list(f.mood_ids), dtype=np.int64)
        bad = [m for m in moods if not 0 <= m < len(self._mood_members)]
        if bad:
            last = len(self._mood_members) - 1
            raise InvalidQuery(f"{where}filter.mood_ids: unknown mood id(s) {bad}; ids are 0..{last}")
        targets = []
        for name, value in q.targets.items():
            values = self._numeric_column(name, f"{where}targets")
            if not np.isfinite(value):
                raise InvalidQuery(f"{where}targets[{name!r}]: must be a finite number, got {value}")
            targets.append((values, float(value), self._spread[name]))
        weight = DEFAULT_TARGET_WEIGHT if q.target_weight is None else q.target_weight
        if not (np.isfinite(weight) and 0 <= weight <= 1):
            raise InvalidQuery(f"{where}target_weight: must be 0..1, got {q.target_weight}")
        genre_weight = self.default_genre_weight if q.genre_weight is None else q.genre_weight
        if not (np.isfinite(genre_weight) and 0 <= genre_weight <= 1):
            raise InvalidQuery(f"{where}genre_weight: must be 0..1, got {q.genre_weight}")
        if genre_weight > 0 and self.bundle.classifier is None:
            raise InvalidQuery(f"{where}genre_weight: this bundle has no genre classifier; use 0")
        seed_affinity = self._seed_affinity(pos_raw) if genre_weight > 0 and affinity else None
        seed_rows = np.asarray(sorted({*pos_rows, *neg_rows}), dtype=np.int64)
        return _Resolved(
            query=q, vector=vector, exclude_rows=np.asarray(sorted({*exclude, *seed_rows}), dtype=np.int64),
            exclude_songs=np.unique(self._song[seed_rows]),
            unknown=unknown, include_codes=self._genre_codes(f.include_genres, f"{where}filter.include_genres"),
            exclude_codes=self._genre_codes(f.exclude_genres, f"{where}filter.exclude_genres"),
            ranges=ranges, mood_ids=moods, targets=targets, target_weight=weight, genre_weight=genre_weight,
            affinity=seed_affinity)

    def _seed_affinity(self, raw: list[np.ndarray]) -> np.ndarray | None:
        """Mean genre probabilities of the seeds' raw feature rows (catalog tracks and raw-feature
        seeds; a bare vector has none); None when no seed has features."""
        if not raw:
            return None
        x = self.bundle.preprocessor.transform_features(np.concatenate(raw)).astype(np.float32)
        assert self.bundle.classifier is not None
        return self.bundle.classifier.predict_proba(x).mean(axis=0)

    def _seed_vectors(self, seeds: Sequence[Seed], where: str, tolerate: bool,
                      unknown: list[str]) -> tuple[list[np.ndarray], list[int], list[np.ndarray]]:
        """Unit vectors of the seeds, the catalog rows among them, and the raw feature rows of
        those that have features (catalog tracks and raw-feature seeds)."""
        vectors, rows, raws = [], [], []
        for i, seed in enumerate(seeds):
            given = [x is not None for x in (seed.track_id, seed.features, seed.vector)]
            if sum(given) != 1:
                raise InvalidQuery(f"{where}[{i}]: give exactly one of track_id, features or vector")
            if seed.track_id is not None:
                row = self.bundle.row_of.get(seed.track_id)
                if row is None:
                    if tolerate:
                        unknown.append(seed.track_id)
                        continue
                    raise TrackNotFound(f"{where}[{i}].track_id: track {shown(seed.track_id)} is not in the catalog")
                rows.append(row)
                vectors.append(self.bundle.vectors[row])
                raws.append(self.bundle.tracks.features[row:row + 1])
            elif seed.features is not None:
                raw = self.raw_features(seed.features, f"{where}[{i}].features")
                v = self.bundle.preprocessor.embed(raw)[0]
                if not np.isfinite(v).all():
                    raise InvalidQuery(f"{where}[{i}].features: values too large to place in the vector space "
                                       "(each feature's plausible range is in ServerInfo metrics)")
                if not np.any(v):
                    raise InvalidQuery(f"{where}[{i}].features: these values sit exactly at the catalog's mean "
                                       "and have no direction to search in")
                vectors.append(v)
                raws.append(raw)
            else:
                vectors.append(self._check_vector(seed.vector, f"{where}[{i}].vector"))  # type: ignore[arg-type]
        return vectors, rows, raws

    def _check_vector(self, values: Sequence[float], where: str) -> np.ndarray:
        v = np.asarray(values, dtype=np.float64)
        dim = self.bundle.vectors.shape[1]
        if v.ndim != 1 or len(v) != dim:
            raise InvalidQuery(f"{where}: has {v.size} values, but the bundle's vectors have {dim}")
        if not np.isfinite(v).all():
            raise InvalidQuery(f"{where}: values must be finite numbers (no NaN or infinity)")
        unit = l2_normalize(v[None, :])[0]
        if not np.any(unit):
            raise InvalidQuery(f"{where}: is a zero vector (or too small to normalize)")
        return unit

    def raw_features(self, values: Mapping[str, float], where: str = "features") -> np.ndarray:
        """Validate a feature-name -> value mapping into a raw row of shape (1, n_features)."""
        unknown = sorted(set(values) - set(self.feature_names))
        if unknown:
            raise InvalidQuery(f"{where}: unknown feature(s) {', '.join(shown(u) for u in unknown[:5])}; "
                               "the bundle's features are "
                               f"{list(self.feature_names)}")
        missing = [n for n in self.feature_names if n not in values]
        if missing:
            raise InvalidQuery(f"{where}: missing feature(s) {missing}; every feature of the bundle is required")
        row = np.array([[float(values[n]) for n in self.feature_names]])
        bad = [n for n, v in zip(self.feature_names, row[0], strict=True) if not np.isfinite(v)]
        if bad:
            raise InvalidQuery(f"{where}: {bad} must be finite numbers (no NaN or infinity)")
        return row

    def _numeric_column(self, name: str, where: str) -> np.ndarray:
        try:
            return self._numeric[name]
        except KeyError:
            raise InvalidQuery(f"{where}: unknown column {shown(name)}; numeric columns are "
                               f"{sorted(self._numeric)}") from None

    def _genre_codes(self, names: Sequence[str], where: str) -> np.ndarray:
        unknown = [g for g in names if g not in self._genre_code]
        if unknown:
            raise InvalidQuery(f"{where}: unknown genre(s) {', '.join(shown(u) for u in unknown[:5])}; "
                               f"the catalog has {len(self.genre_names)} "
                               f"genres, e.g. {list(self.genre_names[:5])}")
        return np.asarray(sorted({self._genre_code[g] for g in names}), dtype=np.int64)

    # -- tracks and moods ----------------------------------------------------------------------
    def track(self, track_id: str) -> int:
        return self.bundle.row(track_id)

    def features_of(self, row: int) -> dict[str, float]:
        """Raw feature values and numeric metadata of one track."""
        return {name: float(values[row]) for name, values in self._numeric.items()}

    def track_record(self, row: int) -> dict[str, Any]:
        """JSON-able description of one track (what a client shows)."""
        return {
            "track_id": self.ids[row], "name": self.names[row], "artists": list(self.artists[row]),
            "album": self.albums[row], "genres": list(self.genres[row]), "mood_id": self.mood_ids[row],
            "mood_name": self.mood_names[row], "mood_core": self.mood_core[row],
            "mood_strength": self.mood_strength[row],
            "explicit": self.explicit[row] if self.explicit is not None else None,
            "features": self.features_of(row),
        }

    def moods(self) -> list[dict[str, Any]]:
        return self._moods.clusters_

    def resolve_mood(self, *, mood_id: int | None = None, mood_name: str | None = None) -> int:
        if mood_name is not None:
            found = self._mood_by_name.get(mood_name.strip().casefold())
            if found is None:
                raise InvalidQuery(f"mood_name: unknown mood {shown(mood_name)}; ListMoods gives the names, e.g. "
                                   f"{[c['name'] for c in self._moods.clusters_[:3]]}")
            return int(found)
        if mood_id is None or not 0 <= mood_id < len(self._mood_members):
            raise InvalidQuery(f"mood_id: unknown mood {mood_id}; ids are 0..{len(self._mood_members) - 1}")
        return int(mood_id)

    # -- playlists -----------------------------------------------------------------------------
    def _make_playlist_space(self) -> np.ndarray:
        """Coordinates in which a small step is a smooth transition: standardized tempo and
        energy, and key on the circle of fifths (adjacent keys mix well). Falls back to the
        vectors for schemas without those features."""
        cols = []
        for name in ("tempo", "energy"):
            if name in self._feature_index:
                v = self.bundle.tracks.features[:, self._feature_index[name]]
                cols.append((v - v.mean()) / (v.std() or 1.0))
        if "key" in self._feature_index:
            fifths = (self.bundle.tracks.features[:, self._feature_index["key"]] * 7) % 12
            angle = 2 * np.pi * fifths / 12
            cols += [np.cos(angle) / 2, np.sin(angle) / 2]  # radius 1/2: a full tritone ~ one std of tempo
        if not cols:
            return self.bundle.vectors.astype(np.float64)
        return np.column_stack(cols)

    def playlist(
        self, *, mood_id: int | None = None, mood_name: str | None = None, seed_track_id: str | None = None,
        target: tuple[float, float] | None = None, length: int = DEFAULT_PLAYLIST, max_per_artist: int = 0,
        shuffle_seed: int = 0,
    ) -> tuple[int, Iterator[PlaylistEntry]]:
        """The mood id and a generator of entries in listening order (each yielded when chosen)."""
        sources = sum(x is not None for x in (mood_id, mood_name, seed_track_id, target))
        if sources != 1:
            raise InvalidQuery("source: give exactly one of mood_id, mood_name, seed_track_id or target")
        length = length or DEFAULT_PLAYLIST
        if not 1 <= length <= MAX_PLAYLIST:
            raise InvalidQuery(f"length: must be 1..{MAX_PLAYLIST}, got {length}")
        cap = max_per_artist or DEFAULT_PLAYLIST_ARTIST_CAP
        start: int | None = None
        if seed_track_id is not None:
            start = self.bundle.row(seed_track_id)
            mood = int(self._moods.labels_[start])
            members = self._mood_members[mood]
            # its neighbourhood within its mood: the members closest to the seed
            sims = self.bundle.vectors[members] @ self.bundle.vectors[start]
            ranked = members[np.argsort(-sims, kind="stable")]
        elif target is not None:
            mood, ranked = self._target_candidates(*target)
        else:
            mood = self.resolve_mood(mood_id=mood_id, mood_name=mood_name)
            members = self._mood_members[mood]
            # strongest members first: core tracks before assigned ones
            ranked = members[np.argsort(-self._moods.strength_[members], kind="stable")]
        pool_size = length * (5 if shuffle_seed else 2)
        pool = ranked[:max(pool_size, length)]
        if shuffle_seed:
            pool = np.random.default_rng(shuffle_seed).permutation(pool)
        chosen = self._cap_artists(pool, ranked, length, cap, first=start)
        return mood, self._ordered(chosen, start)

    def _target_candidates(self, valence: float, energy: float) -> tuple[int, np.ndarray]:
        for name, v in (("valence", valence), ("energy", energy)):
            if name not in self._feature_index:
                raise InvalidQuery(f"target: this bundle has no {name!r} feature")
            if not (np.isfinite(v) and 0 <= v <= 1):
                raise InvalidQuery(f"target.{name}: must be 0..1, got {v}")
        centroids = np.array([[c["centroid"]["valence"], c["centroid"]["energy"]] for c in self._moods.clusters_])
        mood = int(np.argmin(((centroids - [valence, energy]) ** 2).sum(axis=1)))
        members = self._mood_members[mood]
        feats = self.bundle.tracks.features
        d = (feats[members, self._feature_index["valence"]] - valence) ** 2 + \
            (feats[members, self._feature_index["energy"]] - energy) ** 2
        return mood, members[np.argsort(d, kind="stable")]

    def _cap_artists(self, pool: np.ndarray, ranked: np.ndarray, length: int, cap: int,
                     first: int | None) -> list[int]:
        counts: dict[str, int] = {}
        chosen: list[int] = []
        seen: set[int] = set()
        candidates = ([first] if first is not None else []) + [int(r) for r in pool] + [int(r) for r in ranked]
        for row in candidates:
            if len(chosen) >= length:
                break
            song = int(self._song[row])
            if song in seen:
                continue
            seen.add(song)
            artists = self.artists[row]
            if any(counts.get(a, 0) >= cap for a in artists):
                continue
            for a in artists:
                counts[a] = counts.get(a, 0) + 1
            chosen.append(row)
        return chosen

    def _ordered(self, rows: list[int], start: int | None) -> Iterator[PlaylistEntry]:
        """Greedy nearest-neighbour path: each next track is the closest remaining one in tempo,
        energy and key, starting from the seed or else from the gentlest (lowest-energy) track."""
        if not rows:
            return
        space = self._playlist_space[rows]
        remaining = np.ones(len(rows), dtype=bool)
        if start is not None and start in rows:
            current = rows.index(start)
        elif "energy" in self._feature_index:
            current = int(np.argmin(self.bundle.tracks.features[rows, self._feature_index["energy"]]))
        else:
            current = 0
        step = 0.0
        for position in range(len(rows)):
            remaining[current] = False
            yield PlaylistEntry(position=position, row=rows[current], transition=float(step))
            if not remaining.any():
                break
            d = np.linalg.norm(space - space[current], axis=1)
            d[~remaining] = np.inf
            nxt = int(np.argmin(d))
            step, current = float(d[nxt]), nxt

    # -- genres --------------------------------------------------------------------------------
    def classify(self, *, track_id: str | None = None, features: Mapping[str, float] | None = None,
                 top_k: int = 5, explain: bool = False) -> Classification:
        t0 = time.perf_counter()
        classifier = self.bundle.classifier
        if classifier is None:
            raise InvalidQuery("this bundle has no genre classifier (its catalog had no genre labels)")
        if (track_id is None) == (features is None):
            raise InvalidQuery("input: give exactly one of track_id or features")
        top_k = top_k or 5
        if not 1 <= top_k <= len(self.genre_names):
            raise InvalidQuery(f"top_k: must be 1..{len(self.genre_names)}, got {top_k}")
        known: tuple[str, ...] = ()
        if track_id is not None:
            row = self.bundle.row(track_id)
            raw = self.bundle.tracks.features[row:row + 1]
            known = self.bundle.tracks.genres_of(row)
        else:
            raw = self.raw_features(features or {}, "features")
        with np.errstate(over="ignore", invalid="ignore"):
            x = self.bundle.preprocessor.transform_features(raw).astype(np.float32)
        if not np.isfinite(x).all():
            raise InvalidQuery("features: values too large for the model (beyond float32 after transforms)")
        proba = classifier.predict_proba(x)[0]
        top = np.argsort(-proba, kind="stable")[:top_k]
        contributions: list[tuple[str, float]] = []
        bias = 0.0
        if explain:
            assert self._explainer is not None  # built with the classifier
            bias, contrib = self._explainer.explain(x[0], int(top[0]))
            names = classifier.feature_names
            order = np.argsort(-np.abs(contrib), kind="stable")
            contributions = [(names[i], float(contrib[i])) for i in order]
        families: list[tuple[str, float]] = []
        if self._families is not None:
            matrix, names = self._families
            family_proba = proba @ matrix
            families = [(names[i], float(family_proba[i])) for i in np.argsort(-family_proba, kind="stable")[:top_k]]
        return Classification(genres=[(self.genre_names[i], float(proba[i])) for i in top],
                              contributions=contributions, bias=float(bias), known_genres=known,
                              took_ms=(time.perf_counter() - t0) * 1e3, families=families)


def _lazy_zip(rows: np.ndarray, scores: np.ndarray) -> Iterator[tuple[int, float]]:
    yield from zip(rows.tolist(), scores.tolist(), strict=True)


def use_one_search_thread() -> None:
    """Serving: one FAISS thread per request. Two threads on two cores make p99 spike whenever
    anything else runs (measured: 16-35 ms), and requests already run in parallel."""
    faiss.omp_set_num_threads(1)
