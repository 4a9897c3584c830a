"""The compiled kernels of the new-track path (engine/_compiled.py) give the numpy code's answers bit
for bit, and they are off, with a reason, when they cannot be trusted or are not wanted."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest

from engine import Recommender, Seed, SimilarQuery, TrackFilter, _compiled, load_bundle
from tests._seeds import within_rules

pytest.importorskip("numba")  # the test extra installs it (through librosa and the fast extra)


@pytest.fixture
def kernels() -> Iterator[object]:
    was_on = _compiled.active()
    assert _compiled.activate(), _compiled.status()
    yield _compiled.kernels()
    if not was_on:
        _compiled.deactivate()


@pytest.fixture(scope="module")
def rec(bundle_dir: Path) -> Recommender:
    return Recommender(load_bundle(bundle_dir))


def both(fn):
    """``fn()`` with the numpy code, then with the kernels (left on for the caller)."""
    _compiled.deactivate()
    plain = fn()
    assert _compiled.activate()
    return plain, fn()


def feature_queries(rec: Recommender, n: int = 150) -> list[SimilarQuery]:
    rng = np.random.default_rng(7)
    features = rec.bundle.tracks.features
    out = []
    for i, r in enumerate(rng.choice(rec.n, n, replace=False).tolist()):
        values = features[r] if i % 2 == 0 else features[r] * (1 + 0.05 * rng.standard_normal(features.shape[1]))
        seed = Seed(features=within_rules(rec, values))
        weight = (None, 0.0, 0.35, 1.0)[i % 4]
        out.append(SimilarQuery(seeds=[seed], k=10 + i % 25, offset=(0, 3, 190)[i % 3], genre_weight=weight))
    return out


def values_of(rec: Recommender, row: int) -> dict[str, float]:
    return dict(zip(rec.feature_names, rec.bundle.tracks.features[row].tolist(), strict=True))


def same(a: object, b: object) -> bool:
    return (np.array_equal(a.rows, b.rows) and np.array_equal(a.scores, b.scores)  # type: ignore[attr-defined]
            and (a.examined, a.filtered, a.exhausted) == (b.examined, b.filtered, b.exhausted))  # type: ignore[attr-defined]


def test_feature_seeded_answers_are_the_numpy_answers(rec: Recommender, kernels: object) -> None:
    queries = feature_queries(rec)
    plain, compiled = both(lambda: [rec.similar(q) for q in queries])
    differing = [i for i, (a, b) in enumerate(zip(plain, compiled, strict=True)) if not same(a, b)]
    assert not differing, differing
    assert any(q.offset == 190 for q in queries)  # pages past block 1: the second fetch and block


def test_filters_targets_diversity_catalog_seeds_and_two_seeds_answer_the_same(rec: Recommender, kernels: object) -> None:
    seed = Seed(features=values_of(rec, 11))
    genre = rec.view.genre_names[0]
    queries = [SimilarQuery(seeds=[seed], k=20, filter=TrackFilter(exclude_genres=[genre])),
               SimilarQuery(seeds=[seed], k=20, targets={"energy": 0.9}),
               SimilarQuery(seeds=[seed], k=20, diversity=0.5),
               SimilarQuery(seeds=[Seed(track_id=str(rec.bundle.tracks.ids[11]))], k=300),
               SimilarQuery(seeds=[seed, Seed(features=values_of(rec, 12))], k=20)]
    plain, compiled = both(lambda: [rec.similar(q) for q in queries])
    assert all(same(a, b) for a, b in zip(plain, compiled, strict=True))


def test_classification_is_the_numpy_classification(rec: Recommender, kernels: object) -> None:
    rows = range(0, rec.n, 97)
    forest = rec.bundle.classifier._forest()
    assert forest.vector_leaves  # the kernel's case: the default trees' vector leaves

    def classify() -> list[object]:
        return [(c.genres, c.families) for c in (rec.classify(features=values_of(rec, r), top_k=5) for r in rows)]

    plain, compiled = both(classify)
    assert plain == compiled
    inputs = rec.view.model_inputs(rec.bundle.tracks.features[:300])
    inputs[::7, 3] = np.nan  # missing values take each node's default branch
    margins = [forest.predict_margin(inputs[i:i + 1]) for i in range(300)]
    _compiled.deactivate()
    assert all(np.array_equal(m, forest.predict_margin(inputs[i:i + 1])) for i, m in enumerate(margins))


def test_seed_vectors_and_refusals_are_the_numpy_ones(rec: Recommender, kernels: object) -> None:
    features = rec.bundle.tracks.features[:40].astype(np.float64)
    rows = [features[i:i + 1] for i in range(40)] + [features[:1] * 1e300, features[:1] * -1e300, features[:1] * 0]
    plain, compiled = both(lambda: [rec.view.feature_seeds(r) for r in rows])
    for (a_in, a_vec, a_why), (b_in, b_vec, b_why) in zip(plain, compiled, strict=True):
        assert np.array_equal(a_in, b_in, equal_nan=True) and np.array_equal(a_vec, b_vec) and a_why == b_why
    assert plain[40][2] is not None  # an overflowing seed is refused, with the same reason


def test_ordered_fetch_drops_padding_and_keeps_each_songs_nearest(kernels) -> None:
    rng = np.random.default_rng(3)
    vectors = rng.standard_normal((500, 14)).astype(np.float32)
    vectors[10] = vectors[11]  # an exact tie: the lower row first
    songs = rng.integers(0, 120, 500)
    query = vectors[11] / np.linalg.norm(vectors[11])
    fetched = np.concatenate([rng.permutation(500)[:300], [-1, -1]]).astype(np.int64)
    fetched[:2] = [11, 10]
    rows, cos, positions = kernels.ordered_fetch(fetched, vectors, query, songs)
    valid = fetched[fetched >= 0]
    want_cos = np.add.reduce(vectors[valid] * query, axis=1, dtype=np.float32)
    order = np.lexsort((valid, -want_cos))
    assert np.array_equal(rows, valid[order]) and np.array_equal(cos, want_cos[order])
    first = np.unique(songs[rows], return_index=True)[1]
    assert np.array_equal(positions, np.sort(first))
    assert list(rows[:2]) == [10, 11]


def test_first_listings_keep_each_songs_nearest_whatever_the_song_numbers(kernels) -> None:
    rng = np.random.default_rng(4)
    for n, songs_drawn in [(1, 1), (264, 40), (264, 264), (1000, 3), (2000, 10**6)]:
        # song numbers far apart and equal modulo powers of two, so the set's slots collide
        songs = rng.integers(0, songs_drawn, 3000) * 4096 + rng.integers(0, 2, 3000) * (1 << 40)
        rows = rng.permutation(3000)[:n].astype(np.int64)
        want = np.sort(np.unique(songs[rows], return_index=True)[1])
        assert np.array_equal(kernels.first_listings(rows, songs), want), (n, songs_drawn)


@pytest.mark.parametrize("spread", ["uniform", "ties", "near_one", "signed"])
def test_smallest_keys_are_the_n_smallest(kernels, spread: str) -> None:
    rng = np.random.default_rng(6)
    for _ in range(200):
        m = int(rng.integers(1, 6000))
        values = {"uniform": rng.random(m), "ties": np.round(rng.random(m), 2),
                  "near_one": 1 - rng.random(m) * 1e-5, "signed": rng.uniform(-1, 1, m)}[spread]
        keys = kernels.descending_keys(values.astype(np.float32), rng.permutation(m).astype(np.int64))
        for n in {1, int(rng.integers(1, m + 1)), m, m + 3}:
            assert np.array_equal(np.sort(kernels.smallest_keys(keys, n)), np.sort(keys)[:n]), (m, n)


def test_a_scored_block_comes_back_in_a_stable_sort_of_its_scores(kernels) -> None:
    rng = np.random.default_rng(8)
    rows = rng.permutation(5000)[:300].astype(np.int64)
    cos = np.round(rng.random(300), 2).astype(np.float32)  # ties, which keep their order
    codes = rng.integers(0, 6, (5000, 3)).astype(np.int32)  # 5: padding, reads 0
    proba = rng.dirichlet(np.ones(5)).astype(np.float32)
    keys, scores = kernels.score_block(rows, cos, proba, codes, 5, 0.5)
    padded = np.concatenate([proba, np.zeros(1, np.float32)])  # code 5 reads 0
    agree = np.minimum(np.add.reduce(padded[codes[rows]], axis=1, dtype=np.float32), np.float32(1.0))
    assert np.array_equal(scores, np.float32(0.5) * cos + np.float32(0.5) * agree)
    got_rows, got_scores = kernels.in_key_order(np.sort(keys), rows, scores)
    order = np.argsort(-scores, kind="stable")
    assert np.array_equal(got_rows, rows[order]) and np.array_equal(got_scores, scores[order])


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_row_sums_are_numpys(kernels, dtype: type) -> None:
    rng = np.random.default_rng(5)
    for n in range(1, 41):
        rows = rng.standard_normal((200, n)).astype(dtype) * rng.choice([1e-3, 1, 1e3], (200, 1)).astype(dtype)
        want = np.add.reduce(rows, axis=1, dtype=dtype)
        got = np.array([kernels.row_sum(r, dtype(0)) for r in rows], dtype=dtype)
        assert np.array_equal(got, want), n


def test_off_when_asked_or_when_a_check_fails(monkeypatch: pytest.MonkeyPatch) -> None:
    was_on = _compiled.active()
    try:
        _compiled.deactivate()
        monkeypatch.setenv("MUSICREC_COMPILED", "0")
        assert not _compiled.activate() and _compiled.status() == "off: MUSICREC_COMPILED=0"
        monkeypatch.delenv("MUSICREC_COMPILED")
        monkeypatch.setattr(_compiled, "_self_check",
                            lambda compiled: "the seed's transform differs from numpy's on this machine")
        assert not _compiled.activate() and not _compiled.active()
        assert _compiled.status() == "off: the seed's transform differs from numpy's on this machine"
    finally:
        monkeypatch.undo()
        _compiled.deactivate()
        if was_on:
            _compiled.activate()


def test_descending_keys_sort_as_a_stable_sort_of_the_negated_values(kernels) -> None:
    rng = np.random.default_rng(9)
    values = rng.choice(np.array([-1.5, -0.0, 0.0, 1e-30, -1e-30, 0.25, 0.25, 3.0], np.float32), 400)
    assert np.array_equal(np.argsort(kernels.descending_keys(values)), np.argsort(-values, kind="stable"))
    rows = rng.permutation(400).astype(np.int64)
    assert np.array_equal(np.argsort(kernels.descending_keys(values, rows)), np.lexsort((rows, -values)))


def test_a_kernel_that_fails_to_warm_turns_them_off_instead_of_refusing_the_bundle(
        rec: Recommender, monkeypatch: pytest.MonkeyPatch) -> None:
    was_on = _compiled.active()
    assert _compiled.activate()
    try:
        def broken(*args: object) -> None:
            raise RuntimeError("numba could not compile")
        monkeypatch.setattr(_compiled, "_warm", broken)
        rec.warm_compiled()
        assert not _compiled.active() and "failed to compile" in _compiled.status()
    finally:
        monkeypatch.undo()
        if was_on:
            _compiled.activate()
