"""Planted moods for the mood tests (tests/engine/test_moods.py, test_moodcoassoc.py)."""

from __future__ import annotations

import numpy as np

from engine import MoodConfig, MoodModel
from engine._moods import MoodSpace

NAMES = ("valence", "energy", "acousticness", "danceability", "tempo")


def planted(n_per: int = 400, seed: int = 0, middle: bool = False) -> tuple[np.ndarray, np.ndarray]:
    """Four moods planted in valence x energy, well separated (five with ``middle``: one more in the middle)."""
    rng = np.random.default_rng(seed)
    centers = np.array([[0.85, 0.85, 0.1, 0.8, 125], [0.15, 0.85, 0.05, 0.4, 140],
                        [0.85, 0.15, 0.7, 0.5, 100], [0.15, 0.15, 0.9, 0.3, 75], [0.5, 0.5, 0.4, 0.6, 110]])
    centers = centers if middle else centers[:4]
    labels = np.repeat(np.arange(len(centers)), n_per)
    raw = centers[labels] + rng.normal(size=(len(labels), 5)) * [0.04, 0.04, 0.05, 0.05, 4]
    return raw, labels


def fit(raw: np.ndarray, seed: int = 0, **cfg: object) -> MoodModel:
    """The method on planted moods; at least five moods is not asked for (fewest_moods 0), and one HDBSCAN fit
    (bags 0; "auto" would take the consensus of 20 on so few tracks), unless said."""
    z = (raw - raw.mean(0)) / raw.std(0)
    space = MoodSpace(columns=(0, 1), weights=(1.0, 1.0))
    config = MoodConfig(**{"min_cluster_size": 50, "min_samples": 5, "selection": "eom", "fewest_moods": 0,
                           "bags": 0, **cfg})  # type: ignore[arg-type]
    return MoodModel(config=config, space=space, seed=seed).fit(space.project(z), raw, NAMES)


def planted_with_a_small_group() -> tuple[np.ndarray, np.ndarray]:
    """The four planted moods and a fifth group of 30 tracks in the middle, under any default smallest mood."""
    raw, truth = planted()
    return np.vstack([raw, planted(n_per=30, middle=True)[0][-30:]]), np.concatenate([truth, np.full(30, 4)])
