from __future__ import annotations

import numpy as np
import pytest
from sklearn.metrics import adjusted_rand_score

from engine import MoodConfig, MoodModel, mood_name
from engine._moods import MoodSpace, unique_mood_names

NAMES = ("valence", "energy", "acousticness", "danceability", "tempo")


def planted(n_per: int = 400, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Four moods planted in valence x energy, well separated."""
    rng = np.random.default_rng(seed)
    centers = np.array([[0.85, 0.85, 0.1, 0.8, 125], [0.15, 0.85, 0.05, 0.4, 140],
                        [0.85, 0.15, 0.7, 0.5, 100], [0.15, 0.15, 0.9, 0.3, 75]])
    labels = np.repeat(np.arange(4), n_per)
    raw = centers[labels] + rng.normal(size=(len(labels), 5)) * [0.04, 0.04, 0.05, 0.05, 4]
    return raw, labels


def fit(raw: np.ndarray, **cfg: object) -> MoodModel:
    z = (raw - raw.mean(0)) / raw.std(0)
    space = MoodSpace(columns=(0, 1), weights=(1.0, 1.0))
    config = MoodConfig(**{"min_cluster_size": 50, "min_samples": 5, "selection": "eom", **cfg})  # type: ignore[arg-type]
    return MoodModel(config=config, space=space).fit(space.project(z), raw, NAMES)


def test_planted_moods_are_found_and_named() -> None:
    raw, truth = planted()
    model = fit(raw)
    assert model.metrics_["clusters"] == 4
    assert adjusted_rand_score(truth, model.labels_) > 0.95
    names = {c["name"].split(" · ")[0] for c in model.clusters_}
    assert names == {"happy, energetic", "angry, tense", "calm, content", "sad, reflective"}
    assert model.metrics_["core_coverage"] > 0.8
    assert sum(c["size"] for c in model.clusters_) == len(raw)  # every track has a mood


def test_fitting_on_a_sample_assigns_every_track() -> None:
    raw, truth = planted()
    model = fit(raw, fit_sample=600)
    assert model.metrics_["fit_tracks"] == 600
    assert adjusted_rand_score(truth, model.labels_) > 0.95
    assert ((model.strength_ >= 0) & (model.strength_ <= 1)).all()


def test_outliers_are_flagged_not_core_and_weak() -> None:
    raw, _ = planted()
    model = fit(raw)
    far = model.space.project(np.array([[0.0, 0.0, 0, 0, 0], [9.0, 9.0, 0, 0, 0]]))
    labels, strength, core = model.assign_points(far)
    assert core[1] == np.False_ and strength[1] < 0.2  # far outside every core: assigned, flagged, weak
    assert (labels >= 0).all()


def test_assignment_survives_the_array_round_trip() -> None:
    raw, _ = planted()
    model = fit(raw)
    z = (raw - raw.mean(0)) / raw.std(0)
    arrays = model.to_arrays()
    assert all(a.dtype != object for a in arrays.values())
    again = MoodModel.from_arrays(arrays, model.clusters_, model.config)
    labels, strength, _ = again.assign_points(model.space.project(z))
    np.testing.assert_array_equal(labels, model.labels_)
    np.testing.assert_allclose(strength, model.strength_)


def test_mood_names() -> None:
    assert mood_name({"valence": 1, "energy": 1, "danceability": 1.5, "tempo": 0.2}) == \
        "happy, energetic · danceable"
    assert mood_name({"valence": -1, "energy": -1, "acousticness": 2, "instrumentalness": 1}) == \
        "sad, reflective · acoustic, instrumental"
    assert mood_name({"mfcc1_mean": 2.0, "tempo": -1.0}) == "high mfcc1_mean, low tempo"
    names = unique_mood_names([{"valence": 1, "energy": 1}] * 2)
    assert len(set(names)) == 2


@pytest.mark.parametrize("bad", [{"selection": "tree"}, {"min_cluster_size": 1}, {"weights": {"energy": -1}}])
def test_config_validation(bad: dict[str, object]) -> None:
    from engine import ConfigError

    with pytest.raises(ConfigError):
        MoodConfig(**bad)  # type: ignore[arg-type]
