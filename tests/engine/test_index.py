"""One contract for every index backend (flat, HNSW, IVF)."""

from __future__ import annotations

import numpy as np
import pytest

from engine import IndexConfig, build_index, search
from engine._index import measure_recall
from engine._preprocess import l2_normalize


@pytest.fixture(scope="module")
def vectors() -> np.ndarray:
    rng = np.random.default_rng(0)
    centers = rng.normal(size=(20, 10))
    points = centers[rng.integers(0, 20, 4000)] + 0.3 * rng.normal(size=(4000, 10))
    # plant near-duplicate pairs: rows 2i and 2i+1 for i < 50 are almost the same track
    points[1:100:2] = points[0:100:2] + 1e-3 * rng.normal(size=(50, 10))
    return l2_normalize(points)


@pytest.mark.parametrize("kind", ["flat", "hnsw", "ivf", "ivfpq"])
class TestIndexContract:
    def test_near_duplicates_are_each_others_nearest_neighbours(self, vectors: np.ndarray, kind: str) -> None:
        index = build_index(vectors, IndexConfig(kind=kind, ivf_nprobe=8))
        if kind == "ivfpq":
            pytest.skip("PQ codes are lossy: near-duplicates 1e-3 apart are not told apart by design")
        found = search(index, vectors[:100], 2)
        partner = np.arange(100) ^ 1
        # the first hit is the query itself (or its twin at equal score), the pair fills the top 2
        assert all(partner[i] in found.rows[i] for i in range(100))

    def test_scores_are_cosine_and_sorted(self, vectors: np.ndarray, kind: str) -> None:
        index = build_index(vectors, IndexConfig(kind=kind))
        found = search(index, vectors[:50], 10)
        assert np.all(np.diff(found.scores, axis=1) <= 1e-6)
        expected = np.einsum("qd,qkd->qk", vectors[:50], vectors[found.rows])
        np.testing.assert_allclose(found.scores, expected, atol=1e-5 if kind != "ivfpq" else 0.05)

    def test_recall_against_exact(self, vectors: np.ndarray, kind: str) -> None:
        index = build_index(vectors, IndexConfig(kind=kind))
        recall = measure_recall(index, vectors, queries=300)["recall_at_10"]
        assert recall == 1.0 if kind == "flat" else recall >= (0.5 if kind == "ivfpq" else 0.9)


def test_auto_chooses_flat_for_small_and_ivf_for_large_catalogs() -> None:
    from engine._config import AUTO_FLAT_MAX_TRACKS, choose_index_kind

    assert choose_index_kind(IndexConfig(), 90_000).kind == "flat"
    assert choose_index_kind(IndexConfig(), AUTO_FLAT_MAX_TRACKS + 1).kind == "ivf"
    assert choose_index_kind(IndexConfig(kind="hnsw"), 10).kind == "hnsw"  # an explicit choice stands
