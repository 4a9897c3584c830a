"""Many similar-track queries answered together: the new-track path's stages once per batch.

A query about a track the catalog does not hold (raw feature values, an extracted audio vector) runs
the whole pipeline (engine/_similar.py), and its cost is mostly fixed per call: the seed's transforms
and embedding, the classifier, the candidate search, and the walk to block 1 of its ranking
(engine/_ranking.py) are each a few dozen numpy operations whatever the number of rows. When several
such queries arrive together (a server's concurrent calls, a BatchSimilarTracks request), those stages
run once on whole arrays, as the neighbour table's build runs them (engine/_table.py):

    validate each query -> transform + embed every feature seed -> classify every seed
    -> one search of every vector -> block 1 of every ranking -> each query's page

That is the numpy code's batched path. With the compiled kernels on (engine/_compiled.py), one query at
a time costs less up to 16 together and about as much from 32, and every query is ranked so (``min_together``).

Answers are the one-at-a-time pipeline's, bit for bit (tests/engine/test_similar_many.py): the same
arithmetic row by row. Only the queries whose page block 1 of the first fetch settles take this path
(no catalog seed, no filter, no targets, no diversity, offset + k within a block); every other query,
and any whose first fetch falls short, is ranked one at a time. A query's error is its own: the
others are answered.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from typing import TYPE_CHECKING

import numpy as np

from . import _compiled
from ._candidates import has_batch
from ._errors import InvalidQuery
from ._ranking import SLACK, Deadline, Selector
from ._table import cosine_order

if TYPE_CHECKING:
    from ._similar import SimilarSearch, _Plan
    from ._similar_query import SimilarQuery, SimilarResult

# Fewer queries than this sharing a source and a genre weight are ranked one at a time: on the Spotify bundle
# (benchmarks/similar_many.py, in-process) two together cost 1.04x what one at a time does, four 0.94-1.09x,
# eight 0.75-0.80x, sixteen 0.66x. With the compiled kernels on (engine/_compiled.py: the server's setting)
# the batched path costs more than one query at a time up to 16 together (2.47x for two, 1.31x for eight,
# 1.17x for sixteen) and 0.91-0.99x from 32 to 256 (one run; benchmarks/RESULTS.md, "Selection and sorts where
# they are fast"), so then every query is ranked one at a time (``min_together``): the server's combiner holds
# at most 64, and one path is simpler than a threshold for a few percent at sizes only BatchSimilarTracks sends.
MIN_TOGETHER = 4
MIN_TOGETHER_COMPILED = 1_000  # more than any batch holds: never


def min_together() -> int:
    """The fewest queries of one source and genre weight that are ranked together."""
    return MIN_TOGETHER_COMPILED if _compiled.active() else MIN_TOGETHER


def similar_many(search: SimilarSearch, queries: Sequence[SimilarQuery], where: Sequence[str],
                 deadline: float | Deadline | None = None, *, strict: bool = False) -> list[SimilarResult | Exception]:
    """Each query's result, or the exception its one-at-a-time call would raise (``where[i]`` prefixes
    its messages, as ``plan`` takes it). ``strict``: every query is validated before any is ranked, and
    the first error in query order is raised (BatchSimilarTracks: all or nothing)."""
    t0 = time.perf_counter()
    out: list[SimilarResult | Exception | None] = [None] * len(queries)
    plans = _plans(search, queries, where, out)
    if strict:
        for error in out:
            if error is not None:
                raise error
    batched: dict[tuple[float, bool], list[int]] = {}
    for i, plan in plans.items():
        if together(search, plan.query):  # the new-track source; no targets: the genre weight is the whole scoring
            key = (plan.scoring.genre_weight, bool(plan.seed_inputs) and plan.scoring.genre_weight > 0)
            batched.setdefault(key, []).append(i)
    fewest = min_together()
    for members in batched.values():
        if len(members) < fewest:
            continue  # ranked one at a time below
        for i, result in zip(members, _rank_together(search, [plans[i] for i in members], t0), strict=True):
            if result is not None:
                out[i] = result
    for i, plan in plans.items():
        if out[i] is None:
            try:
                out[i] = search.rank(plan, t0, deadline)
            except Exception as exc:  # the query's own error, returned to its caller
                out[i] = exc
    return out  # type: ignore[return-value]


def _plans(search: SimilarSearch, queries: Sequence[SimilarQuery], where: Sequence[str],
           out: list[SimilarResult | Exception | None]) -> dict[int, _Plan]:
    """Every query validated; the one feature seed of each query that has only that one transformed
    and embedded together with the others'."""
    view = search.view
    single: list[int] = []
    raws = []
    for i, q in enumerate(queries):
        if len(q.seeds) == 1 and not q.negative_seeds and q.seeds[0].features is not None \
                and q.seeds[0].track_id is None and q.seeds[0].vector is None:
            try:
                search.check_options(q, where[i])
                raws.append(view.validated_row(q.seeds[0].features, f"{where[i]}seeds[0].features"))
            except Exception as exc:  # the query's own error, returned to its caller
                out[i] = exc
                continue
            single.append(i)
    computed: dict[int, tuple[np.ndarray, np.ndarray]] = {}
    if single:
        if _compiled.active() and len(single) < min_together():
            # a seed alone is one compiled call: cheaper than the numpy code on a few rows at once
            seeds = [(inputs, vectors[0], problems[0]) for inputs, vectors, problems in map(view.feature_seeds, raws)]
        else:  # the seeds' checks on the arrays at once
            inputs, vectors, problems = view.feature_seeds(np.concatenate(raws))
            seeds = [(inputs[j:j + 1], vectors[j], problems[j]) for j in range(len(single))]
        for i, (seed_inputs, vector, problem) in zip(single, seeds, strict=True):
            if problem is not None:
                out[i] = InvalidQuery(f"{where[i]}seeds[0].features: {problem}")
            else:
                computed[i] = (seed_inputs, vector)
    plans: dict[int, _Plan] = {}
    for i, q in enumerate(queries):
        if out[i] is not None:
            continue
        try:
            plans[i] = search.plan(q, where[i], computed.get(i))
        except Exception as exc:  # the query's own error, returned to its caller
            out[i] = exc
    return plans


def together(search: SimilarSearch, q: SimilarQuery) -> bool:
    """Whether ``q`` is a query this module ranks together with others, from the query alone (no validation):
    one feature or vector seed, no filter, targets or diversity, a page within block 1, a source that
    searches many vectors at once. Such a query costs about the same whatever its values, so a server can
    hold it for a batch without holding it behind a slow one."""
    seed = q.seeds[0] if len(q.seeds) == 1 else None
    return (seed is not None and seed.track_id is None and (seed.features is None) != (seed.vector is None)
            and not q.negative_seeds and not q.targets and q.diversity == 0 and q.k > 0
            and q.offset >= 0 and q.offset + q.k <= search.block and q.filter.empty
            and has_batch(search.new_track_source) and not search.new_track_source.pushes_filters)


def _rank_together(search: SimilarSearch, plans: list[_Plan], t0: float) -> list[SimilarResult | None]:
    """Block 1 of each plan's ranking from one search, then its page; None where the first fetch does not
    settle the page (the caller ranks it one at a time). Every plan is ``together`` and shares a genre weight."""
    view, block = search.view, search.block
    fetch = block + SLACK  # Survivors' first fetch for a query with nothing excluded
    if fetch >= view.n:
        return [None] * len(plans)
    queries = np.stack([p.vector for p in plans])
    source = plans[0].source
    if not has_batch(source):  # ``together`` asked of the search's source; a plan may carry another
        return [None] * len(plans)
    candidates = source.nearest_batch(queries, fetch)
    short = (candidates < 0).any(axis=1)  # a short fetch ends the ranking: one at a time says where
    c = np.where(short[:, None], 0, candidates).astype(np.int64)
    cos = (view.vectors[c] * queries[:, None, :]).sum(axis=2, dtype=np.float32)  # as _ranking.cosines
    c, cos = cosine_order(c, cos)
    songs = view.song[c]
    # one listing per song, the nearest (as engine/_table.py's first_blocks)
    qi = np.repeat(np.arange(len(c)), c.shape[1])
    pos = np.tile(np.arange(c.shape[1]), len(c))
    order = np.argsort(qi * (int(view.song.max(initial=0)) + 1) + songs.ravel(), kind="stable")
    qi, pos, ss = qi[order], pos[order], songs.ravel()[order]
    first = np.ones(len(qi), dtype=bool)
    first[1:] = (qi[1:] != qi[:-1]) | (ss[1:] != ss[:-1])
    survivor = np.zeros(c.shape, dtype=bool)
    survivor[qi[first], pos[first]] = True
    rank = np.cumsum(survivor, axis=1)
    ok = (rank[:, -1] >= block) & ~short
    results: list[SimilarResult | None] = [None] * len(plans)
    if not ok.any():
        return results
    take = np.nonzero(survivor[ok] & (rank[ok] <= block))[1].reshape(-1, block)
    b_rows = np.take_along_axis(c[ok], take, axis=1)
    scores = np.take_along_axis(cos[ok], take, axis=1)
    scoring = plans[0].scoring
    if scoring.genre_weight > 0 and plans[0].seed_inputs:
        assert scoring.agreement is not None
        classifier = view.bundle.classifier
        assert classifier is not None
        kept = [p for p, good in zip(plans, ok.tolist(), strict=True) if good]
        affinity = classifier.predict_proba(np.concatenate([p.seed_inputs[0] for p in kept]))
        w = scoring.genre_weight
        scores = (1.0 - w) * scores + w * scoring.agreement(affinity, b_rows)
    scores = scores.astype(np.float32)
    if scoring.reorders:
        by = np.argsort(-scores, axis=1, kind="stable")
        b_rows, scores = np.take_along_axis(b_rows, by, axis=1), np.take_along_axis(scores, by, axis=1)
    consumed = (take[:, -1] + 1).tolist()
    for j, i in enumerate(np.flatnonzero(ok).tolist()):
        plan = plans[i]
        q = plan.query
        select = Selector(need=q.offset + q.k, cap=q.max_per_artist, diversity=0.0, artists=view.artists,
                          vectors=view.vectors, deadline=None)
        select.feed(b_rows[j], scores[j])
        if select.done:  # else an artist cap needs the next block: one at a time
            results[i] = search._page(plan, select, consumed[j], consumed[j] - block + select.capped, t0)
    return results
