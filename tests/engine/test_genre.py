from __future__ import annotations

import numpy as np

from engine._genre import baselines, genre_metrics, grouped_split, subset_labels


def test_top1_counts_any_of_the_tracks_genres() -> None:
    truth = np.array([[1, 1, 0], [0, 0, 1], [1, 0, 0]], dtype=bool)
    proba = np.array([[0.1, 0.8, 0.1], [0.6, 0.3, 0.1], [0.2, 0.5, 0.3]])
    m = genre_metrics(proba, truth)
    assert m["top1"] == 1 / 3  # only track 0 (its second genre)
    assert m["top5"] == 1.0


def test_grouped_split_never_puts_an_artist_on_both_sides() -> None:
    groups = np.array([f"artist{i % 37}" for i in range(1000)], dtype=object)
    train, test = grouped_split(groups, 0.2, seed=0)
    assert not set(groups[train]) & set(groups[test])
    assert len(train) + len(test) == 1000


def test_baselines() -> None:
    truth = np.zeros((4, 10), dtype=bool)
    truth[:, 0] = True
    b = baselines(np.array([5, 1, 0, 0, 0, 0, 0, 0, 0, 0]), truth)
    assert b["majority_top1"] == 1.0
    assert b["random_top1"] == 0.1
    assert abs(b["random_top5"] - 0.5) < 1e-12


def test_subset_labels() -> None:
    ptr, codes = np.array([0, 2, 3, 5]), np.array([1, 2, 0, 4, 3])
    p, c = subset_labels(ptr, codes, np.array([2, 0]))
    assert list(p) == [0, 2, 4] and list(c) == [4, 3, 1, 2]
