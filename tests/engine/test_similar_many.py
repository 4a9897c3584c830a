"""Queries answered together (engine/_similar_many.py) get the one-at-a-time answers, bit for bit,
and each its own error."""

from __future__ import annotations

import dataclasses
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest

from engine import (
    InvalidQuery,
    Recommender,
    Seed,
    SimilarQuery,
    TrackFilter,
    TrackNotFound,
    _compiled,
    _similar_many,
    load_bundle,
)
from tests._seeds import near


@pytest.fixture(scope="module")
def rec(bundle_dir: Path) -> Recommender:
    return Recommender(load_bundle(bundle_dir))


@pytest.fixture(autouse=True)
def numpy_code() -> Iterator[None]:
    """The batched path is the numpy code's (with the kernels on, queries are ranked one at a time: the
    last test); another test in this process may have left the kernels on."""
    was_on = _compiled.active()
    _compiled.deactivate()
    yield
    if was_on:
        assert _compiled.activate()


def features(rec: Recommender, row: int, scale: float = 1.0) -> dict[str, float]:
    return near(rec, row, scale)


def same(a: object, b: object) -> bool:
    if isinstance(a, Exception) or isinstance(b, Exception):
        return type(a) is type(b) and str(a) == str(b)
    return (np.array_equal(a.rows, b.rows) and a.rows.dtype == b.rows.dtype  # type: ignore[attr-defined]
            and np.array_equal(a.scores, b.scores) and a.scores.dtype == b.scores.dtype  # type: ignore[attr-defined]
            and (a.examined, a.filtered, a.exhausted, a.unknown_seed_ids)  # type: ignore[attr-defined]
            == (b.examined, b.filtered, b.exhausted, b.unknown_seed_ids))  # type: ignore[attr-defined]


def one_at_a_time(rec: Recommender, q: SimilarQuery) -> object:
    try:
        return rec.similar(q)
    except Exception as exc:
        return exc


def test_new_track_queries_together_equal_one_at_a_time(rec: Recommender, monkeypatch: pytest.MonkeyPatch) -> None:
    rng = np.random.default_rng(3)
    rows = rng.choice(rec.n, 120, replace=False).tolist()
    block = rec._similar.block
    queries = []
    for i, row in enumerate(rows):
        # scaled values are tracks the catalog does not hold; every option the batched path takes
        kw = [{}, {"k": 25, "offset": 40}, {"genre_weight": 0.0}, {"genre_weight": 0.8}, {"max_per_artist": 1},
              {"k": 1, "offset": block - 1}][i % 6]
        queries.append(SimilarQuery(seeds=[Seed(features=features(rec, row, 1.0 + 0.05 * (i % 3)))], **kw))
    queries.append(queries[0])  # the same query twice in one batch
    queries.append(SimilarQuery(seeds=[Seed(vector=rec.bundle.vectors[rows[0]].tolist())], k=7))  # no features
    ranked_alone: list[SimilarQuery] = []
    rank = rec._similar.rank
    monkeypatch.setattr(rec._similar, "rank", lambda plan, t0, deadline: ranked_alone.append(plan.query)
                        or rank(plan, t0, deadline))
    together = rec.similar_many(queries)
    # most were ranked together (a few may need the next block: an artist cap, a song listed many times)
    assert len(ranked_alone) < len(queries) // 4
    monkeypatch.undo()
    for q, got in zip(queries, together, strict=True):
        assert same(got, one_at_a_time(rec, q)), q


def test_queries_the_batch_path_does_not_take_are_ranked_one_at_a_time(rec: Recommender) -> None:
    row = 11
    queries = [
        SimilarQuery(seeds=[Seed(track_id=rec.ids[row])]),  # a catalog seed: the neighbour table
        SimilarQuery(seeds=[Seed(features=features(rec, row))], filter=TrackFilter(exclude_genres=["pop"])),
        SimilarQuery(seeds=[Seed(features=features(rec, row))], targets={"energy": 0.9}),
        SimilarQuery(seeds=[Seed(features=features(rec, row))], diversity=0.5, k=5),
        SimilarQuery(seeds=[Seed(features=features(rec, row))], k=30, offset=rec._similar.block),  # past block 1
        SimilarQuery(seeds=[Seed(features=features(rec, row)), Seed(track_id=rec.ids[3])]),
        SimilarQuery(seeds=[Seed(features=features(rec, row))], negative_seeds=[Seed(features=features(rec, 4))]),
    ] + [SimilarQuery(seeds=[Seed(features=features(rec, r, 1.1))]) for r in range(8)]
    for q, got in zip(queries, rec.similar_many(queries), strict=True):
        assert same(got, one_at_a_time(rec, q)), q


def test_each_query_gets_its_own_error_and_the_others_their_answers(rec: Recommender) -> None:
    good = [SimilarQuery(seeds=[Seed(features=features(rec, r, 0.9))]) for r in range(6)]
    huge = {n: 1e308 for n in rec.feature_names}
    bad = [
        SimilarQuery(seeds=[Seed(features={"energy": 0.5})]),  # missing features
        SimilarQuery(seeds=[Seed(features=huge)]),  # too large once transformed
        SimilarQuery(seeds=[Seed(features=features(rec, 1))], k=0),
        SimilarQuery(seeds=[Seed(features={**features(rec, 1), "tempo": float("nan")})]),
        SimilarQuery(seeds=[Seed(track_id="no-such-track")]),
        SimilarQuery(seeds=[Seed(features=features(rec, 1))], genre_weight=2.0),
    ]
    queries = good[:3] + bad + good[3:]
    got = rec.similar_many(queries)
    for q, g in zip(queries, got, strict=True):
        assert same(g, one_at_a_time(rec, q)), q
    errors = [g for g in got if isinstance(g, Exception)]
    assert len(errors) == len(bad)
    assert sum(isinstance(e, TrackNotFound) for e in errors) == 1
    assert all(isinstance(e, InvalidQuery) for e in errors if not isinstance(e, TrackNotFound))


def test_a_batch_request_is_all_or_nothing_and_names_the_query(rec: Recommender) -> None:
    queries = [SimilarQuery(seeds=[Seed(features=features(rec, r, 1.2))]) for r in range(6)]
    broken = [*queries[:4], SimilarQuery(seeds=[Seed(features={"energy": 0.5})]), *queries[4:]]
    with pytest.raises(InvalidQuery, match=r"^queries\[4\]\.seeds\[0\]\.features: missing feature"):
        rec.similar_batch(broken)
    answers = rec.similar_batch(queries)
    assert all(same(a, rec.similar(q)) for q, a in zip(queries, answers, strict=True))


def test_a_short_first_fetch_is_left_to_the_one_at_a_time_walk(rec: Recommender) -> None:
    """A source that runs out (an approximate index's short answer) ends the ranking where the live walk
    says: the batched stages leave such queries alone."""
    plans = [rec._similar.plan(SimilarQuery(seeds=[Seed(features=features(rec, r, 1.1))]), "") for r in range(5)]

    class Short:
        def __init__(self, inner: object) -> None:
            self.inner = inner

        def nearest_batch(self, vectors: np.ndarray, n: int) -> np.ndarray:
            rows = self.inner.nearest_batch(vectors, n)  # type: ignore[attr-defined]
            rows[1, n // 2:] = -1
            return rows

    plans = [dataclasses.replace(p, source=Short(p.source)) for p in plans]
    got = _similar_many._rank_together(rec._similar, plans, 0.0)
    assert got[1] is None and all(g is not None for i, g in enumerate(got) if i != 1)


def test_with_the_compiled_kernels_on_a_few_queries_are_ranked_one_at_a_time(
        rec: Recommender, monkeypatch: pytest.MonkeyPatch) -> None:
    """With the kernels on the batched path is not taken (it costs more up to 16 together, about as
    much from 32: benchmarks/RESULTS.md), seeds included, and the answers and errors are the same."""
    pytest.importorskip("numba")
    assert _compiled.activate(), _compiled.status()
    try:
        assert _similar_many.min_together() == _similar_many.MIN_TOGETHER_COMPILED
        batched: list[int] = []
        seeds_at_once: list[int] = []
        rank_together, feature_seeds = _similar_many._rank_together, rec.view.feature_seeds
        monkeypatch.setattr(_similar_many, "_rank_together", lambda search, plans, t0: batched.append(len(plans))
                            or rank_together(search, plans, t0))
        monkeypatch.setattr(rec.view, "feature_seeds", lambda raw: seeds_at_once.append(len(raw)) or feature_seeds(raw))
        queries = [SimilarQuery(seeds=[Seed(features=features(rec, r, 1.07))]) for r in range(20)]
        # refused before the seeds are placed: within the catalog's value rules, but beyond float32 (as the
        # catalog's indexing drops it)
        queries.insert(5, SimilarQuery(seeds=[Seed(features={**features(rec, 0), "loudness": 1e308})]))
        got = rec.similar_many(queries)
        assert not batched and set(seeds_at_once) == {1} and isinstance(got[5], InvalidQuery)
        monkeypatch.setattr(_similar_many, "MIN_TOGETHER_COMPILED", 8)  # a group that size is ranked together
        got_together = rec.similar_many(queries)
        assert batched == [20] and max(seeds_at_once) == 20  # the 20 seeds that passed, placed at once
        monkeypatch.undo()
        for q, a, b in zip(queries, got, got_together, strict=True):
            want = one_at_a_time(rec, q)
            assert same(a, want) and same(b, want), q
    finally:
        _compiled.deactivate()  # the fixture turns them back on if they were
