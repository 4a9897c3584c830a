"""The neighbour table's batched stages agree with the live query's objects, track by track."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from engine import load_bundle
from engine._ranking import Scoring
from engine._rerank import GenreAgreement
from engine._table import _one_by_one, first_blocks, first_fetch, nearest_candidates
from engine._view import CatalogView


def test_batched_entries_equal_one_by_one(bundle_dir: Path) -> None:
    bundle = load_bundle(bundle_dir)
    view = CatalogView(bundle)
    table = bundle.neighbours
    assert table is not None
    tracks = bundle.tracks
    candidates = nearest_candidates(bundle.index, view.vectors, first_fetch(view.n, table.block))
    proba = bundle.genre_proba  # catalog seeds rank with their out-of-fold probabilities (engine/_crossfit.py)
    scoring = Scoring(genre_weight=table.genre_weight,
                      agreement=GenreAgreement(tracks.genre_indptr, tracks.genre_codes, len(tracks.genre_names)))
    width = table.rows.shape[1]
    batched = first_blocks(view.vectors, view.song, candidates, scoring, proba, table.block, width)
    rows = np.arange(view.n)
    one = {"rows": np.full((view.n, width), -1, dtype=np.int32),
           "scores": np.full((view.n, width), -np.inf, dtype=np.float32),
           "consumed": np.full(view.n, -1, dtype=np.int32), "lengths": np.zeros(view.n, dtype=np.int32)}
    _one_by_one(view.vectors, view.song, candidates, scoring, proba, table.block, width, rows, one)
    for key in one:
        np.testing.assert_array_equal(batched[key], one[key], err_msg=key)
    np.testing.assert_array_equal(batched["rows"], table.rows)  # and the build stored exactly these
    assert (batched["consumed"] >= 0).mean() > 0.9


def test_cosine_order_breaks_ties_by_row_as_the_live_query_does() -> None:
    from engine._table import cosine_order

    rng = np.random.default_rng(0)
    c = np.stack([rng.permutation(400)[:60] for _ in range(300)])
    cos = rng.choice(np.float32([0.9, 0.5, 0.5, 0.25, -0.0, 0.0, 0.75]), size=c.shape)  # many exact ties
    cos[::7] = rng.random((len(cos[::7]), 60)).astype(np.float32)  # and rows without any
    got_c, got_cos = cosine_order(c.copy(), cos.copy())
    order = np.lexsort((c, -cos), axis=1)
    assert (got_c == np.take_along_axis(c, order, axis=1)).all()
    assert (got_cos == np.take_along_axis(cos, order, axis=1)).all()



def test_a_table_fetched_by_matrix_products_equals_the_live_searchs_at_near_ties(monkeypatch) -> None:
    """engine/_table.py ``Searched`` fetches by FAISS's matrix-product path, whose float32 roundings can end a
    fetch with other rows than a live query's search where cosines tie within them. Here every track sits in a
    group of 120 a hair apart: one song listed 60 times and 60 other songs. A seed of the listed song loses 60
    rows of its fetch (105) to its own song, so its block 1 (40) ends among near-ties at the fetch's end. The
    table equals the one built from the live search's fetches; without the margin check it would not."""
    import faiss

    import engine._table as table_module
    from engine._table import Searched

    rng = np.random.default_rng(5)
    groups, listed, others = 40, 60, 60
    n = groups * (listed + others)
    vectors = np.repeat(rng.standard_normal((groups, 14)), listed + others, axis=0) + 1e-7 * rng.standard_normal((n, 14))
    vectors = (vectors / np.linalg.norm(vectors, axis=1, keepdims=True)).astype(np.float32)
    songs = np.arange(n)
    for g in range(groups):
        songs[g * (listed + others):g * (listed + others) + listed] = g * (listed + others)
    index = faiss.IndexFlatIP(14)
    index.add(vectors)
    block = 40
    fetch = first_fetch(n, block)
    live = nearest_candidates(index, vectors, fetch)
    searched = Searched(index, vectors, fetch)
    assert searched.by_products
    fetched = np.concatenate([searched[i:i + 512] for i in range(0, n, 512)])
    assert sum(set(a) != set(b) for a, b in zip(fetched, live, strict=True)) > n // 2  # the two fetches differ

    def table() -> dict[str, np.ndarray]:
        return first_blocks(vectors, songs, Searched(index, vectors, fetch), Scoring(), None, block, 16, chunk=512,
                            blocks=True)

    want = first_blocks(vectors, songs, live, Scoring(), None, block, 16, blocks=True)
    assert (want["consumed"] >= 0).all()
    got = table()
    for key in want:
        np.testing.assert_array_equal(got[key], want[key], err_msg=key)
    monkeypatch.setattr(table_module, "boundary_margin", lambda dims: -1.0)  # every products' fetch kept
    unchecked = table()
    assert (unchecked["block_rows"] != want["block_rows"]).any(axis=1).sum() > n // 4
