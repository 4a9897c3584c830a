"""One contract, every candidate source: FAISS flat (the bundle's index), FAISS HNSW, Qdrant local
mode (qdrant-client's Python re-implementation; a server runs the same client code by URL) and
Qdrant Edge (the Qdrant engine itself, in-process: its real filter semantics).

The pipeline re-ranks whatever a source returns, so the assertions are the same for every
source; an exact source must give FAISS flat's answers, an approximate one a recall@10 >= 0.99.
Local mode evaluates filters in Python (~0.1-0.4 s per filtered query at 3,000 points), so the
Qdrant cases run a few queries each.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path

import faiss
import numpy as np
import pytest

from engine import IndexConfig, IndexSource, Recommender, Seed, SimilarQuery, TrackFilter, build_index, load_bundle
from engine._ranking import RowFilter
from tests.engine.test_pipeline import assert_filter_holds, pages

SOURCES = ["faiss-flat", "faiss-hnsw", "qdrant-local", "qdrant-edge"]


@pytest.fixture(scope="module")
def bundle(bundle_dir: Path):  # type: ignore[no-untyped-def]
    # without the neighbour table, so every query reaches the source under test
    return dataclasses.replace(load_bundle(bundle_dir), neighbours=None)


@pytest.fixture(scope="module")
def exact(bundle) -> Recommender:  # type: ignore[no-untyped-def]
    assert bundle.index.__class__.__name__ == "IndexFlatIP"
    return Recommender(bundle)


@pytest.fixture(scope="module", params=SOURCES)
def name(request: pytest.FixtureRequest) -> str:
    return str(request.param)


@pytest.fixture(scope="module")
def rec(name: str, bundle, exact: Recommender,  # type: ignore[no-untyped-def]
        tmp_path_factory: pytest.TempPathFactory) -> Recommender:
    if name == "faiss-flat":
        return exact
    if name == "faiss-hnsw":
        index = build_index(bundle.vectors, IndexConfig(kind="hnsw"))
        return Recommender(bundle, source=IndexSource(index))
    if name == "qdrant-edge":
        pytest.importorskip("qdrant_edge")
        from engine.qdrant import EdgeSource

        return Recommender(bundle, source=EdgeSource.create(bundle, tmp_path_factory.mktemp("edge") / "shard"))
    pytest.importorskip("qdrant_client")
    from qdrant_client import QdrantClient

    from engine.qdrant import QdrantSource, publish_bundle

    client = QdrantClient(":memory:")
    publish_bundle(bundle, client, alias="contract")
    return Recommender(bundle, source=QdrantSource(client, bundle, alias="contract", serialize=True))


def by_id(rec: Recommender, row: int, **kw: object) -> SimilarQuery:
    return SimilarQuery(seeds=[Seed(track_id=rec.ids[row])], **kw)  # type: ignore[arg-type]


FILTERS = [
    TrackFilter(include_genres=["metal", "jazz"]),
    TrackFilter(exclude_genres=["pop"], explicit=False),
    TrackFilter(ranges={"tempo": (90.0, 140.0), "energy": (None, 0.6)}),
]


def explicit_moods(rec: Recommender) -> list[int]:
    """The two moods holding the most explicit tracks: a mood filter with explicit=True that has answers."""
    counts = np.bincount(rec.bundle.moods.labels_[[x is True for x in rec.explicit]])
    return sorted(int(m) for m in np.argsort(counts)[-2:])


def test_filters_always_hold(rec: Recommender, name: str, request: pytest.FixtureRequest) -> None:
    for i, f in enumerate([*FILTERS, TrackFilter(mood_ids=explicit_moods(rec), explicit=True)]):
        res = rec.similar(by_id(rec, 11 * i, k=30, filter=f))
        assert len(res.rows) > 0
        assert_filter_holds(rec, res.rows.tolist(), f)


def test_excluded_ids_never_appear(rec: Recommender, exact: Recommender) -> None:
    first = exact.similar(by_id(exact, 3, k=12, genre_weight=0.0))
    banned = [rec.ids[r] for r in first.rows[:6]]
    res = rec.similar(by_id(rec, 3, k=12, genre_weight=0.0, filter=TrackFilter(exclude_track_ids=banned)))
    got = [rec.ids[r] for r in res.rows]
    assert not set(got) & set(banned) and rec.ids[3] not in got
    assert got[:6] == [exact.ids[r] for r in first.rows[6:]]  # the ranking simply continues


def test_artist_cap(rec: Recommender) -> None:
    res = rec.similar(by_id(rec, 0, k=25, max_per_artist=1))
    artists = [a for r in res.rows for a in rec.artists[r]]
    assert len(artists) == len(set(artists))


def test_mmr_lowers_mean_pairwise_similarity(rec: Recommender) -> None:
    v = rec.bundle.vectors

    def spread(rows: np.ndarray) -> float:
        sims = v[rows] @ v[rows].T
        return float(sims[np.triu_indices(len(rows), 1)].mean())

    plain = rec.similar(by_id(rec, 0, k=10))
    diverse = rec.similar(by_id(rec, 0, k=10, diversity=0.7))
    assert spread(diverse.rows) < spread(plain.rows)


def test_a_negative_seed_pushes_its_neighbours_down(rec: Recommender) -> None:
    v = rec.bundle.vectors
    a, b = 0, int(np.argmax(v @ v[0] < 0.2))
    plain = rec.similar(by_id(rec, a, k=10))
    pushed = rec.similar(SimilarQuery(seeds=[Seed(track_id=rec.ids[a])], negative_seeds=[Seed(track_id=rec.ids[b])],
                                      k=10))
    assert (v[pushed.rows] @ v[b]).mean() < (v[plain.rows] @ v[b]).mean()


@pytest.mark.parametrize("options", [{}, {"filter": FILTERS[1], "max_per_artist": 2}])
def test_pages_are_slices_of_one_ranking(rec: Recommender, options: dict) -> None:
    q = by_id(rec, 42, **options)
    whole = rec.similar(dataclasses.replace(q, k=90))
    got, scores = pages(rec, q, 30, 90)
    assert got == whole.rows.tolist() and scores == whole.scores.tolist()
    assert len(set(got)) == len(got)


def recall_at_10(rec: Recommender, exact: Recommender, filters: list[TrackFilter | None]) -> float:
    hits = total = 0
    for i, row in enumerate(range(5, 3000, 3000 // len(filters))):
        f = filters[i]
        options = {} if f is None else {"filter": f}
        want = exact.similar(by_id(exact, row, k=10, genre_weight=0.0, **options)).rows
        got = rec.similar(by_id(rec, row, k=10, genre_weight=0.0, **options)).rows
        hits += len(set(want.tolist()) & set(got.tolist()))
        total += len(want)
    return hits / total


def test_congruent_with_faiss_exact(rec: Recommender, exact: Recommender) -> None:
    assert recall_at_10(rec, exact, [None] * 12) >= 0.99


def test_congruent_with_faiss_exact_under_filters(rec: Recommender, exact: Recommender, name: str,
                                                 request: pytest.FixtureRequest) -> None:
    assert recall_at_10(rec, exact, [*FILTERS, TrackFilter(mood_ids=explicit_moods(exact), explicit=True)] * 2) >= 0.99


def test_a_pushed_down_filter_returns_only_rows_that_pass(rec: Recommender, exact: Recommender) -> None:
    source = rec.source
    if not getattr(source, "pushes_filters", False):
        pytest.skip("this source does not filter natively")
    view = exact.view
    f = RowFilter(exclude_rows=np.array([0, 1, 2]), exclude_songs=view.song[[5]].astype(np.int64),
                  include_codes=view.genre_codes(["metal", "dance", "jazz"], "x"), genre_matrix=view.genre_matrix,
                  explicit=(view.flag_explicit, 0), ranges=[(view.numeric["tempo"], 100.0, np.inf)],
                  range_names=("tempo",), moods=(view.mood_labels, np.array([0, 1, 2])))
    rows = source.nearest(view.vectors[9], 50, f)  # type: ignore[call-arg]
    assert len(rows) > 0 and f.mask(rows, view.song[rows]).all()
    passing = np.flatnonzero(f.mask(np.arange(view.n), view.song))
    brute = passing[np.argsort(-(view.vectors[passing] @ view.vectors[9]), kind="stable")][:50]
    assert set(rows.tolist()) == set(brute.tolist())


def test_faiss_index_source_is_what_the_bundle_searches(exact: Recommender) -> None:
    assert isinstance(exact.source, IndexSource) and isinstance(exact.source.index, faiss.Index)
