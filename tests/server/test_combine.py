"""Concurrent new-track calls ranked together (server/_combine.py): each caller gets its own answer or error,
as one call alone would, and callers that arrive while a batch is ranked are ranked together next."""

from __future__ import annotations

import threading
import time
from pathlib import Path

import numpy as np
import pytest

from engine import DeadlineExceeded, InvalidQuery, Recommender, Seed, SimilarQuery, TrackFilter, load_bundle
from server._combine import Combiner
from tests._seeds import near


@pytest.fixture(scope="module")
def rec(bundle_dir: Path) -> Recommender:
    return Recommender(load_bundle(bundle_dir))


def query(rec: Recommender, row: int, **kw: object) -> SimilarQuery:
    values = near(rec, row, 1.05)
    return SimilarQuery(seeds=[Seed(features=values)], **kw)  # type: ignore[arg-type]


def held_first(rec: Recommender, combiner: Combiner, waiting: int) -> threading.Event:
    """The first batch's ranking holds until ``waiting`` more callers wait: the next batch then holds them all."""
    release = threading.Event()
    alone = rec.similar

    def similar(q: SimilarQuery, **kw: object) -> object:
        if not release.is_set():
            deadline = time.monotonic() + 10
            while len(combiner._waiting) < waiting and time.monotonic() < deadline:
                time.sleep(0.001)
            release.set()
        return alone(q, **kw)  # type: ignore[arg-type]

    rec.similar = similar  # type: ignore[method-assign]
    return release


def call_all(combiner: Combiner, rec: Recommender, queries: list[SimilarQuery],
             deadlines: list[float | None] | None = None) -> list[object]:
    out: list[object] = [None] * len(queries)

    def one(i: int) -> None:
        try:
            out[i] = combiner.similar(rec, queries[i], deadlines[i] if deadlines else None)
        except Exception as exc:
            out[i] = exc

    threads = [threading.Thread(target=one, args=(i,)) for i in range(len(queries))]
    for t in threads:
        t.start()
    for t in threads:
        t.join(30)
    assert not any(t.is_alive() for t in threads)
    return out


def test_callers_waiting_together_are_ranked_together_each_with_its_own_answer(rec: Recommender) -> None:
    sizes: list[int] = []
    combiner = Combiner(on_batch=sizes.append)
    queries = [query(rec, r, k=[10, 5, 30][r % 3]) for r in range(12)]
    expected = [rec.similar(q) for q in queries]
    held_first(rec, combiner, waiting=11)
    try:
        got = call_all(combiner, rec, queries)
    finally:
        del rec.similar  # the instance attribute set by held_first
    assert sizes[0] == 1 and max(sizes) == 11 and sum(sizes) == 12
    for g, e in zip(got, expected, strict=True):
        assert np.array_equal(g.rows, e.rows) and np.array_equal(g.scores, e.scores)  # type: ignore[attr-defined]


def test_one_callers_error_or_lapsed_deadline_is_its_own(rec: Recommender) -> None:
    combiner = Combiner()
    queries = [query(rec, r) for r in range(6)]
    queries[2] = SimilarQuery(seeds=[Seed(features={"energy": 0.5})])  # missing features
    deadlines: list[float | None] = [None] * 6
    deadlines[4] = time.monotonic() - 1  # already past when its batch is ranked
    held_first(rec, combiner, waiting=5)
    try:
        got = call_all(combiner, rec, queries, deadlines)
    finally:
        del rec.similar
    assert isinstance(got[2], InvalidQuery) and "missing feature" in str(got[2])
    assert isinstance(got[4], DeadlineExceeded)
    for i in (0, 1, 3, 5):
        assert np.array_equal(got[i].rows, rec.similar(queries[i]).rows)  # type: ignore[attr-defined]


def test_a_batch_holds_one_bundle_s_queries(rec: Recommender, bundle_dir: Path) -> None:
    other = Recommender(load_bundle(bundle_dir))  # a reload in flight: calls for the old and the new bundle
    seen: list[set[int]] = []
    combiner = Combiner()
    for r in (rec, other):
        many = r.similar_many
        r.similar_many = lambda qs, r=r, many=many, **kw: (seen.append({id(r)}), many(qs, **kw))[1]  # type: ignore
    try:
        out: list[object] = [None] * 10

        def one(i: int) -> None:
            target = rec if i % 2 else other
            out[i] = combiner.similar(target, query(target, i))

        threads = [threading.Thread(target=one, args=(i,)) for i in range(10)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(30)
    finally:
        del rec.similar_many, other.similar_many
    assert all(o is not None for o in out)
    assert all(len(s) == 1 for s in seen)


def test_only_bounded_new_track_queries_are_held_for_a_batch(rec: Recommender) -> None:
    assert rec.together(query(rec, 1))
    assert rec.together(SimilarQuery(seeds=[Seed(vector=rec.bundle.vectors[3].tolist())], k=20))
    block = rec._similar.block
    for q in (SimilarQuery(seeds=[Seed(track_id=rec.ids[1])]),
              query(rec, 1, filter=TrackFilter(exclude_genres=["pop"])),
              query(rec, 1, diversity=0.3),
              query(rec, 1, k=10, offset=block),
              query(rec, 1, max_per_artist=0, targets={"energy": 0.2}),
              SimilarQuery(seeds=[query(rec, 1).seeds[0], query(rec, 2).seeds[0]])):
        assert not rec.together(q), q
