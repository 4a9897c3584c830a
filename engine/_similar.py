"""Similar tracks: one pipeline for every query.

resolve seeds -> candidate source -> filter -> score -> select -> page (see engine/_ranking.py for
what the ranking is). Every query, whatever its seeds or options, is validated by :meth:`plan`
and ranked by :meth:`rank`; the neighbour table only short-cuts the work when it holds the
answer (it is the same function's output, computed at build time).

Bounds, at the documented limits: a ranking is walked at most ``MAX_DEPTH`` tracks deep over at
most ``MAX_POOL`` survivors; a batch holds at most ``MAX_BATCH`` queries and ``MAX_BATCH_DEPTH``
tracks of depth in all. The worst requests these allow are measured by benchmarks/worst_case.py,
and the loops check the caller's deadline between blocks and every few MMR picks.
"""

from __future__ import annotations

import dataclasses
import math
import time
from collections.abc import Sequence

import numpy as np

from ._candidates import CandidateSource, IndexSource, new_track_source
from ._errors import InvalidQuery, TrackNotFound, shown
from ._loaded import Bundle
from ._preprocess import l2_normalize
from ._ranking import Deadline, RowFilter, Scoring, Selector, Survivors, check_deadline
from ._rerank import GenreAgreement
from ._similar_many import similar_many, together
from ._similar_query import (
    DEFAULT_TARGET_WEIGHT,
    MAX_BATCH,
    MAX_BATCH_DEPTH,
    MAX_DEPTH,
    MAX_K,
    MAX_POOL,
    MAX_SEEDS,
    NEGATIVE_WEIGHT,
    Seed,
    SimilarQuery,
    SimilarResult,
)
from ._view import CatalogView


@dataclasses.dataclass  # not frozen for the same reason as RowFilter (engine/_ranking.py); never changed
class _Plan:
    """A validated query: everything the stages need."""

    query: SimilarQuery
    vector: np.ndarray  # unit float32, shape (dim,)
    row_filter: RowFilter
    scoring: Scoring
    seed_rows: list[int]  # catalog seeds (their genre affinity is computed only when needed)
    seed_inputs: list[np.ndarray]  # classifier inputs of raw-feature seeds, computed while validating
    unknown: list[str]
    table_row: int | None  # the seed row when the neighbour table holds this ranking's head
    source: CandidateSource  # chosen by the query alone, so every page of it searches the same way


class SimilarSearch:
    """The similar-track pipeline over one bundle."""

    def __init__(self, view: CatalogView, source: CandidateSource | None = None) -> None:
        bundle: Bundle = view.bundle
        self.view = view
        self.source: CandidateSource = source or IndexSource(bundle.index)
        self.block = bundle.config.similar.candidates
        self.default_genre_weight = bundle.config.similar.genre_weight if bundle.classifier is not None else 0.0
        tracks = bundle.tracks
        self._agreement = GenreAgreement(tracks.genre_indptr, tracks.genre_codes, len(tracks.genre_names))
        self.table = bundle.neighbours
        # New tracks (no catalog seed) without filters search the approximate index when the bundle
        # has one; a source given by the caller (another vector engine) answers everything.
        self.new_track_source: CandidateSource = self.source if source is not None or \
            bundle.new_track_index is None else new_track_source(bundle.new_track_index, view.vectors)
        # Per-request work that depends on the bundle only, done once: the scoring of every query
        # without targets or weights of its own (immutable, so one object serves them all), and which
        # tracks the neighbour table answers.
        try:
            self._default_scoring: Scoring | None = self._build_scoring(SimilarQuery(seeds=()), "")
        except InvalidQuery:  # each query then reports it
            self._default_scoring = None
        self._table_weight = self.table.genre_weight if self.table is not None and self.table.block == self.block \
            else None
        self._in_table: list[bool] = (self.table.consumed >= 0).tolist() if self.table is not None else []

    # -- the pipeline --------------------------------------------------------------------------
    def similar(self, query: SimilarQuery, *, deadline: float | Deadline | None = None) -> SimilarResult:
        t0 = time.perf_counter()
        return self.rank(self.plan(query, ""), t0, deadline)

    def similar_batch(self, queries: Sequence[SimilarQuery], *,
                      deadline: float | Deadline | None = None) -> list[SimilarResult]:
        """Every query validated first (an error names ``queries[i]``), then ranked: the new-track queries
        together (engine/_similar_many.py), the others one at a time."""
        if not queries:
            raise InvalidQuery("queries: at least one query is required")
        if len(queries) > MAX_BATCH:
            raise InvalidQuery(f"queries: {len(queries)} queries, at most {MAX_BATCH} per batch")
        for i, q in enumerate(queries):  # each query's own bounds first: k = 5000 is queries[i].k's error
            self.check_options(q, f"queries[{i}].")
        depth = sum(max(q.offset, 0) + max(q.k, 0) for q in queries)
        if depth > MAX_BATCH_DEPTH:
            raise InvalidQuery(f"queries: offset + k add up to {depth} over the batch, at most {MAX_BATCH_DEPTH} "
                               "(split the batch)")
        results = similar_many(self, queries, [f"queries[{i}]." for i in range(len(queries))], deadline, strict=True)
        for r in results:
            if isinstance(r, Exception):  # a deadline passed while ranking
                raise r
        return results  # type: ignore[return-value]

    def similar_many(self, queries: Sequence[SimilarQuery], *,
                     deadline: float | Deadline | None = None) -> list[SimilarResult | Exception]:
        """Queries from different callers answered together (a server's concurrent calls): each gets its
        own result or error, as ``similar`` would give it."""
        return similar_many(self, queries, [""] * len(queries), deadline)

    def together(self, query: SimilarQuery) -> bool:
        """Whether ``similar_many`` ranks ``query`` together with others (engine/_similar_many.py)."""
        return together(self, query)

    def rank(self, plan: _Plan, t0: float, deadline: float | Deadline | None) -> SimilarResult:
        q = plan.query
        view = self.view
        need = q.offset + q.k
        if plan.table_row is not None:
            answer = self._from_table(plan, need, t0)
            if answer is not None:
                return answer
        affinity = self._affinity(plan)
        survivors = Survivors(plan.source, view.n, view.vectors, view.song, plan.vector, plan.row_filter, self.block,
                              then=self.source if plan.source is not self.source else None)
        select = Selector(need=need, cap=q.max_per_artist, diversity=q.diversity, artists=view.artists,
                          vectors=view.vectors, deadline=deadline)
        examined = survived = 0
        while not select.done and survived < MAX_POOL:
            check_deadline(deadline)
            block = survivors.next_block()
            if block is None:
                break
            examined, survived = block.consumed, survived + len(block.rows)
            select.feed(*plan.scoring.sorted_block(block, affinity))
        # past the probed lists, positions count in the exact search's order, which the songs already handed
        # out from those lists need not lead: what was looked at is at least what survived
        examined = max(examined, survived)
        return self._page(plan, select, examined, examined - survived + select.capped, t0)

    def _from_table(self, plan: _Plan, need: int, t0: float) -> SimilarResult | None:
        """The walk over the stored head of block 1; None when the head runs out before ``need``."""
        assert self.table is not None and plan.table_row is not None
        row = plan.table_row
        q = plan.query
        length = int(self.table.lengths[row])
        width = min(length, self.table.rows.shape[1])
        if not q.max_per_artist and need <= width:
            # no artist cap: the walk takes the head as it is, so the page is a slice of the stored row
            consumed = int(self.table.consumed[row])
            rows = self.table.rows[row, q.offset:need].astype(np.int64)
            return SimilarResult(rows=rows, scores=self.table.scores[row, q.offset:need].copy(),
                                 unknown_seed_ids=plan.unknown, examined=consumed, filtered=consumed - length,
                                 exhausted=len(rows) < q.k, took_ms=(time.perf_counter() - t0) * 1e3)
        select = Selector(need=need, cap=q.max_per_artist, diversity=0.0, artists=self.view.artists,
                          vectors=self.view.vectors, deadline=None)
        head = min(width, 2 * need)  # a few repeated artists at most, usually: convert only the head first
        select.feed(self.table.rows[row, :head], self.table.scores[row, :head])
        if not select.done and head < width:
            select.feed(self.table.rows[row, head:width], self.table.scores[row, head:width])
        if not select.done and width < length:
            return None
        consumed = int(self.table.consumed[row])
        return self._page(plan, select, consumed, consumed - length + select.capped, t0)

    def _page(self, plan: _Plan, select: Selector, examined: int, filtered: int, t0: float) -> SimilarResult:
        q = plan.query
        rows = np.asarray(select.rows[q.offset:q.offset + q.k], dtype=np.int64)
        return SimilarResult(rows=rows, scores=np.asarray(select.scores[q.offset:q.offset + q.k], dtype=np.float32),
                             unknown_seed_ids=plan.unknown, examined=examined, filtered=filtered,
                             exhausted=len(rows) < q.k, took_ms=(time.perf_counter() - t0) * 1e3)

    def _affinity(self, plan: _Plan) -> np.ndarray | None:
        """Mean genre probabilities of the seeds with features (catalog tracks and raw-feature
        seeds; a bare vector has none); None when genre agreement does not apply."""
        if plan.scoring.genre_weight <= 0 or not (plan.seed_rows or plan.seed_inputs):
            return None
        bundle = self.view.bundle
        classifier = bundle.classifier
        assert classifier is not None
        parts = []
        if plan.seed_rows:
            # a catalog seed's out-of-fold probabilities (engine/_crossfit.py): the shipped model was
            # trained on the seed and knows its genre
            parts.append(bundle.genre_proba[plan.seed_rows] if bundle.genre_proba is not None else
                         classifier.predict_proba(self.view.model_inputs(bundle.tracks.features[plan.seed_rows])))
        if plan.seed_inputs:
            inputs = plan.seed_inputs
            parts.append(classifier.predict_proba(inputs[0] if len(inputs) == 1 else np.concatenate(inputs)))
        proba = parts[0] if len(parts) == 1 else np.concatenate(parts)
        return proba[0] if len(proba) == 1 else proba.mean(axis=0)

    # -- validation: the same for every query --------------------------------------------------
    def plan(self, q: SimilarQuery, where: str, seed: tuple[np.ndarray, np.ndarray] | None = None) -> _Plan:
        """``seed``: the classifier inputs and unit vector of ``q``'s one feature seed, computed already
        (engine/_similar_many.py computes those of many queries at once)."""
        self.check_options(q, where)
        unknown: list[str] = []
        pos, pos_rows, inputs = self._seeds(q.seeds, f"{where}seeds", q.skip_unknown_seeds, unknown, seed)
        neg, neg_rows, _ = self._seeds(q.negative_seeds, f"{where}negative_seeds", q.skip_unknown_seeds, unknown)
        if not pos:
            raise InvalidQuery(f"{where}seeds: none of the seed track ids is in the catalog: {unknown[:10]}")
        if q.genre_weight and not (pos_rows or inputs):  # given, and it would weigh nothing
            found = " found" if unknown else ""
            raise InvalidQuery(f"{where}genre_weight: {q.genre_weight:g} given, but the seeds{found} are vectors only, "
                               "which carry no genre probabilities to agree with: leave it unset (or 0), or seed with "
                               "a track id or features")
        if len(pos) == 1 and not neg:
            # unit already: kept bit for bit, as the neighbour table was built
            vector = pos[0] if pos[0].dtype == np.float32 else pos[0].astype(np.float32)
        else:
            combined = np.mean(pos, axis=0, dtype=np.float64)
            if neg:
                combined = combined - NEGATIVE_WEIGHT * np.mean(neg, axis=0, dtype=np.float64)
            vector = l2_normalize(combined[None, :])[0].astype(np.float32)
            if not np.any(vector):
                raise InvalidQuery(f"{where}seeds: the seeds (minus negative seeds) add up to a zero vector")
        seed_rows = pos_rows if len(pos_rows) == 1 and not neg_rows else sorted({*pos_rows, *neg_rows})
        row_filter = self._row_filter(q, where, np.array(seed_rows, dtype=np.int64))
        scoring = self._scoring(q, where)
        table_row = None
        if (self._table_weight is not None and len(pos_rows) == 1 and len(q.seeds) == 1 and not q.negative_seeds
                and not q.targets and q.diversity == 0 and not row_filter.user_filtered
                and not q.filter.exclude_track_ids and scoring.genre_weight == self._table_weight
                and self._in_table[pos_rows[0]]):
            table_row = pos_rows[0]
        new_tracks_only = not pos_rows and not neg_rows and not row_filter.user_filtered \
            and not q.filter.exclude_track_ids
        return _Plan(query=q, vector=vector, row_filter=row_filter, scoring=scoring, seed_rows=pos_rows,
                     seed_inputs=inputs,
                     unknown=unknown, table_row=table_row,
                     source=self.new_track_source if new_tracks_only else self.source)

    def check(self, q: SimilarQuery, where: str = "") -> None:
        """What ``plan`` refuses before it needs the seeds' vectors: the options, the track-id seeds, the filter
        and the scoring. A server runs it before it analyses a request's audio clips (seconds of work), so a
        request that will be refused costs no analysis; ``plan`` checks the rest."""
        self.check_options(q, where)
        unknown: list[str] = []
        rows = [row for name, seeds in (("seeds", q.seeds), ("negative_seeds", q.negative_seeds))
                for i, seed in enumerate(seeds) if seed.track_id is not None
                and (row := self._seed_row(seed.track_id, f"{where}{name}[{i}]", q.skip_unknown_seeds,
                                           unknown)) is not None]
        self._row_filter(q, where, np.unique(np.array(rows, dtype=np.int64)))
        self._scoring(q, where)

    def check_options(self, q: SimilarQuery, where: str) -> None:
        if not q.seeds:
            raise InvalidQuery(f"{where}seeds: at least one seed is required")
        if len(q.seeds) + len(q.negative_seeds) > MAX_SEEDS:
            raise InvalidQuery(f"{where}seeds: {len(q.seeds) + len(q.negative_seeds)} seeds, at most {MAX_SEEDS}")
        if q.negative_seeds:  # at half a seed's weight, a track in both lists would only weaken its own seed
            both = {s.track_id for s in q.seeds if s.track_id is not None} \
                & {s.track_id for s in q.negative_seeds if s.track_id is not None}
            if both:
                raise InvalidQuery(f"{where}negative_seeds: {', '.join(shown(t) for t in sorted(both)[:5])} "
                                   f"{'is' if len(both) == 1 else 'are'} also among the seeds: give a track as one "
                                   "or the other")
            for j, negative in enumerate(q.negative_seeds):  # the same values, as the same id, cancel to nothing
                # (an empty mapping is a server's stand-in for an audio clip not yet analysed: server/_audio.py)
                if negative.features and any(s.features == negative.features for s in q.seeds):
                    raise InvalidQuery(f"{where}negative_seeds[{j}].features: the same values are also a seed's: "
                                       "give a track as one or the other")
        if not 1 <= q.k <= MAX_K:
            raise InvalidQuery(f"{where}k: must be 1..{MAX_K}, got {q.k}")
        if not 0 <= q.offset <= MAX_DEPTH - q.k:
            raise InvalidQuery(f"{where}offset: must be 0..{MAX_DEPTH - q.k} (offset + k at most {MAX_DEPTH}, "
                               f"the deepest a ranking goes), got {q.offset}")
        if q.max_per_artist < 0:
            raise InvalidQuery(f"{where}max_per_artist: must be >= 0, got {q.max_per_artist}")
        if not (math.isfinite(q.diversity) and 0 <= q.diversity <= 1):
            raise InvalidQuery(f"{where}diversity: must be 0..1, got {q.diversity}")

    def _row_filter(self, q: SimilarQuery, where: str, seed_rows: np.ndarray) -> RowFilter:
        view, f = self.view, q.filter
        if f.empty:  # nothing to validate: only the seeds are kept out (as below, without the walk)
            return RowFilter(exclude_rows=seed_rows, exclude_songs=_songs_of(view.song, seed_rows),
                             include_codes=_NO_ROWS, exclude_codes=_NO_ROWS, genre_matrix=view.genre_matrix)
        row_of = view.bundle.row_of
        excluded = [row_of[t] for t in f.exclude_track_ids if t in row_of]
        ranges = []
        for name, (lo, hi) in f.ranges.items():
            values = view.numeric_column(name, f"{where}filter.ranges")
            lo_v = -np.inf if lo is None else float(lo)
            hi_v = np.inf if hi is None else float(hi)
            if np.isnan(lo_v) or np.isnan(hi_v) or lo_v > hi_v:
                raise InvalidQuery(f"{where}filter.ranges[{name!r}]: need min <= max (and not NaN), got {lo}..{hi}")
            ranges.append((values, lo_v, hi_v))
        explicit = None
        if f.explicit is not None:
            if view.flag_explicit is None:
                raise InvalidQuery(f"{where}filter.explicit: this bundle has no explicit flag to filter on")
            explicit = (view.flag_explicit, int(f.explicit))
        moods = None
        if f.mood_ids:
            moods = (view.mood_labels, view.check_mood_ids(f.mood_ids, f"{where}filter.mood_ids"))
        exclude = seed_rows if not excluded else np.asarray(sorted({*excluded, *seed_rows.tolist()}), dtype=np.int64)
        include_codes = view.genre_codes(f.include_genres, f"{where}filter.include_genres")
        exclude_codes = view.genre_codes(f.exclude_genres, f"{where}filter.exclude_genres")
        if len(both := np.intersect1d(include_codes, exclude_codes)):  # no track could pass: an empty page says less
            names = ", ".join(repr(view.genre_names[c]) for c in both[:5])
            raise InvalidQuery(f"{where}filter: {names} {'is' if len(both) == 1 else 'are'} both in include_genres "
                               "and in exclude_genres: give a genre in one or the other")
        return RowFilter(
            exclude_rows=exclude, exclude_songs=_songs_of(view.song, seed_rows),
            include_codes=include_codes, exclude_codes=exclude_codes,
            genre_matrix=view.genre_matrix, explicit=explicit, ranges=ranges, range_names=tuple(f.ranges),
            moods=moods)

    def _scoring(self, q: SimilarQuery, where: str) -> Scoring:
        if self._default_scoring is not None and not q.targets and q.target_weight is None \
                and q.genre_weight is None:
            return self._default_scoring  # built by _build_scoring for such a query, once
        return self._build_scoring(q, where)

    def _build_scoring(self, q: SimilarQuery, where: str) -> Scoring:
        view = self.view
        targets = []
        for name, value in q.targets.items():
            values = view.numeric_column(name, f"{where}targets")
            if not np.isfinite(value):
                raise InvalidQuery(f"{where}targets[{name!r}]: must be a finite number, got {value}")
            spread, (lo, hi) = view.spread[name], view.value_range[name]
            if not lo - spread < value < hi + spread:  # every track's closeness would be 0: the target moves nothing
                raise InvalidQuery(f"{where}targets[{name!r}]: {value:g} is too far outside the catalog's "
                                   f"{lo:g}..{hi:g} (more than its spread, {spread:g}) to rank any track above another")
            targets.append((values, float(value), spread))
        if q.target_weight is not None and not q.targets:  # it weighs the targets' closeness: alone it means nothing
            raise InvalidQuery(f"{where}target_weight: given without targets; it weighs the closeness to targets, "
                               "so give targets too or leave it out")
        weight = DEFAULT_TARGET_WEIGHT if q.target_weight is None else q.target_weight
        if not (math.isfinite(weight) and 0 <= weight <= 1):
            raise InvalidQuery(f"{where}target_weight: must be 0..1, got {q.target_weight}")
        genre_weight = self.default_genre_weight if q.genre_weight is None else q.genre_weight
        if not (math.isfinite(genre_weight) and 0 <= genre_weight <= 1):
            raise InvalidQuery(f"{where}genre_weight: must be 0..1, got {q.genre_weight}")
        if genre_weight > 0 and view.bundle.classifier is None:
            raise InvalidQuery(f"{where}genre_weight: this bundle has no genre classifier; use 0")
        return Scoring(genre_weight=float(genre_weight), agreement=self._agreement, targets=targets,
                       target_weight=float(weight))

    def _seeds(self, seeds: Sequence[Seed], where: str, tolerate: bool, unknown: list[str],
               computed: tuple[np.ndarray, np.ndarray] | None = None,
               ) -> tuple[list[np.ndarray], list[int], list[np.ndarray]]:
        """Unit vectors of the seeds, the catalog rows among them, and the classifier inputs of
        the raw-feature seeds (``computed``: those of the one feature seed, already known)."""
        view = self.view
        vectors, rows, inputs = [], [], []
        for i, seed in enumerate(seeds):
            if (seed.track_id is not None) + (seed.features is not None) + (seed.vector is not None) != 1:
                raise InvalidQuery(f"{where}[{i}]: give exactly one of track_id, features or vector")
            if seed.track_id is not None:
                row = self._seed_row(seed.track_id, f"{where}[{i}]", tolerate, unknown)
                if row is None:
                    continue
                rows.append(row)
                vectors.append(view.vectors[row])
            elif computed is not None and seed.features is not None:
                seed_inputs, vector = computed
                vectors.append(vector)
                inputs.append(seed_inputs)
            elif seed.features is not None:
                _, seed_inputs, vector = view.feature_seed(seed.features, f"{where}[{i}].features")
                vectors.append(vector)
                inputs.append(seed_inputs)
            else:
                vectors.append(view.check_vector(seed.vector, f"{where}[{i}].vector"))  # type: ignore[arg-type]
        return vectors, rows, inputs


    def _seed_row(self, track_id: str, where: str, tolerate: bool, unknown: list[str]) -> int | None:
        """The catalog row of a seed's track id; None (noted in ``unknown``) for an unknown id when ``tolerate``."""
        row = self.view.bundle.row_of.get(track_id)
        if row is None:
            if not tolerate:
                raise TrackNotFound(f"{where}.track_id: track {shown(track_id)} is not in the catalog")
            unknown.append(track_id)
        return row


_NO_ROWS = np.empty(0, dtype=np.int64)
_NO_ROWS.setflags(write=False)


def _songs_of(songs: np.ndarray, rows: np.ndarray) -> np.ndarray:
    """The sorted songs of sorted ``rows`` (int64)."""
    if len(rows) <= 1:
        return rows if not len(rows) else songs[rows]
    return np.unique(songs[rows]).astype(np.int64)
