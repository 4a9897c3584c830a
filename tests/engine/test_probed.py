"""The new-track source (engine/_candidates.py ProbedSource): the canonical top of the probed lists,
the compiled kernel identical to the numpy code bit for bit, and with every list probed the answers
of the exact index."""

from __future__ import annotations

import dataclasses
from collections.abc import Iterator
from pathlib import Path

import faiss
import numpy as np
import pytest

from engine import Bundle, Recommender, Seed, SimilarQuery, _compiled, load_bundle
from engine._candidates import IndexSource, ProbedSource, column_cosines, new_track_source
from engine._ranking import cosines
from tests._seeds import within_rules


def ivf(vectors: np.ndarray, nlist: int, nprobe: int) -> faiss.Index:
    quantizer = faiss.IndexFlatIP(vectors.shape[1])
    index = faiss.IndexIVFFlat(quantizer, vectors.shape[1], nlist, faiss.METRIC_INNER_PRODUCT)
    index.train(vectors)
    index.add(vectors)
    index.nprobe = nprobe
    return index


def unit(x: np.ndarray) -> np.ndarray:
    return (x / np.linalg.norm(x, axis=1, keepdims=True)).astype(np.float32)


def catalog(d: int, n: int = 3000, seed: int = 0) -> np.ndarray:
    """Unit vectors with exact duplicates, so that equal cosines (ties) are common."""
    rng = np.random.default_rng(seed)
    base = unit(rng.standard_normal((n // 3, d)))
    return np.ascontiguousarray(np.concatenate([base, base[: n // 3], unit(rng.standard_normal((n - 2 * (n // 3), d)))]))


def reference(source: ProbedSource, vectors: np.ndarray, query: np.ndarray, n: int) -> tuple[np.ndarray, np.ndarray]:
    """The definition, written plainly: lists by centroid cosine (then number), their tracks by the
    pipeline's cosine (then row), the first n."""
    centroid_cos = np.add.reduce(source.centroids * query, axis=1, dtype=np.float32)
    lists = np.lexsort((np.arange(len(centroid_cos)), -centroid_cos))[:source.nprobe]
    rows = np.concatenate([source.list_rows[source.offsets[c]:source.offsets[c + 1]] for c in lists])
    cos = cosines(vectors, rows, query)
    top = np.lexsort((rows, -cos))[:n]
    return rows[top], cos[top]


@pytest.fixture
def numpy_code() -> Iterator[None]:
    was_on = _compiled.active()
    _compiled.deactivate()
    yield
    if was_on:
        assert _compiled.activate()


@pytest.mark.parametrize("d", [5, 8, 14, 16, 21])
def test_column_cosines_are_the_pipelines_cosines(d: int) -> None:
    vectors = catalog(d, 500, seed=d)
    query = vectors[3] * np.float32(0.999)
    got = column_cosines(np.ascontiguousarray(vectors.T), query)
    want = cosines(vectors, np.arange(len(vectors)), query)
    assert np.array_equal(got.view(np.uint32), want.view(np.uint32))


@pytest.mark.parametrize("d", [5, 14, 16])
def test_the_canonical_top_of_the_probed_lists(d: int, numpy_code: None) -> None:
    vectors = catalog(d)
    source = ProbedSource(ivf(vectors, 24, 5), vectors)
    rng = np.random.default_rng(1)
    for i, query in enumerate(np.concatenate([vectors[:20], unit(rng.standard_normal((20, d)))])):
        n = (1, 10, 264, 5000)[i % 4]
        rows, cos = source.scored(query, n)
        want_rows, want_cos = reference(source, vectors, query, n)
        assert np.array_equal(rows, want_rows) and np.array_equal(cos.view(np.uint32), want_cos.view(np.uint32))
        padded = source.nearest(query, n)
        assert len(padded) == min(n, len(vectors)) and np.array_equal(padded[:len(rows)], rows)
        assert (padded[len(rows):] == -1).all()


@pytest.mark.parametrize(("d", "nprobe"), [(5, 3), (14, 5), (16, 24), (21, 1)])
def test_the_kernel_is_the_numpy_code_bit_for_bit(d: int, nprobe: int, numpy_code: None) -> None:
    pytest.importorskip("numba")
    vectors = catalog(d, seed=d)
    source = ProbedSource(ivf(vectors, 24, nprobe), vectors)
    rng = np.random.default_rng(2)
    queries = np.concatenate([vectors[:30], unit(rng.standard_normal((30, d)))])
    sizes = [(1, 7, 264, 1060, 4000)[i % 5] for i in range(len(queries))]
    plain = [source.scored(q, n) for q, n in zip(queries, sizes, strict=True)]
    assert _compiled.activate(), _compiled.status()
    for (rows, cos), q, n in zip(plain, queries, sizes, strict=True):
        got_rows, got_cos = source.scored(q, n)
        assert np.array_equal(got_rows, rows) and np.array_equal(got_cos.view(np.uint32), cos.view(np.uint32))


def test_only_an_inner_product_ivf_flat_index_is_probed() -> None:
    vectors = catalog(8, 1000)
    assert isinstance(new_track_source(ivf(vectors, 8, 2), vectors), ProbedSource)
    hnsw = faiss.IndexHNSWFlat(8, 16, faiss.METRIC_INNER_PRODUCT)
    hnsw.add(vectors)
    assert isinstance(new_track_source(hnsw, vectors), IndexSource)
    l2 = faiss.IndexIVFFlat(faiss.IndexFlatL2(8), 8, 8)
    l2.train(vectors)
    assert isinstance(new_track_source(l2, vectors), IndexSource)
    with pytest.raises(TypeError, match="IVF-Flat"):
        ProbedSource(hnsw, vectors)


def probing(bundle_dir: Path, compiled: bool, *, nlist: int, nprobe: int) -> tuple[Bundle, np.ndarray, Recommender]:
    """The test bundle, its vectors, and a Recommender whose new tracks search an IVF index of ``nlist`` lists,
    ``nprobe`` probed; with the compiled kernels on when ``compiled`` (the caller's ``numpy_code`` turns them off
    again after)."""
    if compiled:
        pytest.importorskip("numba")
        assert _compiled.activate(), _compiled.status()
    bundle = load_bundle(bundle_dir)
    vectors = np.ascontiguousarray(bundle.vectors, dtype=np.float32)
    return bundle, vectors, Recommender(dataclasses.replace(bundle, new_track_index=ivf(vectors, nlist, nprobe)))


@pytest.mark.parametrize("compiled", [False, True])
def test_with_every_list_probed_new_tracks_get_the_exact_answers(bundle_dir: Path, compiled: bool,
                                                                 numpy_code: None) -> None:
    # probing every list is an exact search in the canonical order: every answer, page and score of
    # the approximate path must then be the exact index's, bit for bit
    bundle, _, probed = probing(bundle_dir, compiled, nlist=40, nprobe=40)
    exact = Recommender(dataclasses.replace(bundle, new_track_index=None))
    assert isinstance(probed._similar.new_track_source, ProbedSource)
    rng = np.random.default_rng(3)
    features = bundle.tracks.features
    for i, row in enumerate(rng.choice(len(features), 60, replace=False).tolist()):
        values = features[row] * (1 + 0.03 * rng.standard_normal(features.shape[1])) if i % 2 else features[row]
        seeds = [Seed(features=within_rules(probed, values))]
        query = SimilarQuery(seeds=seeds, k=(10, 40, 250)[i % 3], offset=(0, 5, 230)[i % 3],
                             genre_weight=(None, 0.0, 0.7)[i % 3], diversity=(0.0, 0.0, 0.3)[i % 3])
        a, b = probed.similar(query), exact.similar(query)
        assert np.array_equal(a.rows, b.rows) and np.array_equal(a.scores, b.scores)
        assert (a.examined, a.filtered, a.exhausted) == (b.examined, b.filtered, b.exhausted)


@pytest.mark.parametrize("compiled", [False, True])
def test_a_page_past_the_probed_lists_goes_on_from_an_exact_search(bundle_dir: Path, compiled: bool,
                                                                  numpy_code: None) -> None:
    """Before: the ranking ended where the probed lists did, so an unfiltered page reaching past them came back
    short and "exhausted", while the same query with a filter that removes nothing (the exact path) was full."""
    bundle, vectors, probed = probing(bundle_dir, compiled, nlist=40, nprobe=2)
    source = probed._similar.new_track_source
    assert isinstance(source, ProbedSource)
    features = bundle.tracks.features
    seeds = [Seed(features=within_rules(probed, features[7]))]
    held = len(source.scored(probed._similar.view.vectors[7], len(vectors))[0])
    assert held < 500 < len(vectors) // 2  # the two probed lists hold fewer tracks than the pages below ask
    ranking = probed.similar(SimilarQuery(seeds=seeds, k=1000, genre_weight=0.0))
    assert len(ranking.rows) == 1000 and not ranking.exhausted
    songs = probed._similar.view.song[ranking.rows]
    assert len(set(songs.tolist())) == 1000  # no song twice: the exact search goes on without those handed out
    # the head is the probed lists' own ranking, and every page a slice of the one ranking
    head = probed.similar(SimilarQuery(seeds=seeds, k=50, genre_weight=0.0))
    assert np.array_equal(head.rows, ranking.rows[:50])
    for offset, k in ((300, 200), (900, 100)):
        page = probed.similar(SimilarQuery(seeds=seeds, k=k, offset=offset, genre_weight=0.0))
        assert np.array_equal(page.rows, ranking.rows[offset:offset + k]) and not page.exhausted
        assert page.filtered >= 0 and page.examined >= offset + k  # stats a uint32 on the wire can carry
    # probed lists of half the catalog, and a fetch schedule that reaches the whole: it goes on there too
    half = Recommender(dataclasses.replace(bundle, new_track_index=ivf(vectors, 4, 2)))
    pages = [half.similar(SimilarQuery(seeds=seeds, k=1000, offset=o, genre_weight=0.0)) for o in (0, 1000)]
    assert [len(p.rows) for p in pages] == [1000, 1000] and not any(p.exhausted for p in pages)
    assert all(p.filtered >= 0 for p in pages)


def test_vectors_wider_than_numpys_row_block_go_through_faiss_and_the_numpy_code(numpy_code: None) -> None:
    # numpy sums a row of more than 128 values in halves; the scan and the kernels copy shorter rows
    # only, so wider bundles keep FAISS's search and the numpy code (their answers stay the pipeline's)
    vectors = catalog(140, 600)
    assert isinstance(new_track_source(ivf(vectors, 8, 2), vectors), IndexSource)
    with pytest.raises(ValueError, match="up to 128"):
        ProbedSource(ivf(vectors, 8, 2), vectors)
    pytest.importorskip("numba")
    assert _compiled.activate(), _compiled.status()

    wide = type("WideView", (), {"vectors": vectors})()  # all _warm reads before it refuses
    _compiled.warm(wide, None)
    assert not _compiled.active() and "rows of 140 values" in _compiled.status()
