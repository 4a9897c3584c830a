"""What each mood is, in the catalog's own numbers: its sizes, means, z-scores, top genres and name,
and how far apart the moods sound (split from engine/_moods.py, which finds the moods)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from ._moodnames import mood_names

# Features a listener hears, whose spread between moods the metrics report.
SPREAD_FEATURES = ("valence", "energy", "tempo", "acousticness")


def describe_clusters(
    labels: np.ndarray, is_core: np.ndarray, strength: np.ndarray, raw: np.ndarray,
    feature_names: Sequence[str], n_clusters: int, *, genre_matrix: np.ndarray | None = None,
    genre_names: Sequence[str] = (), relative_features: Sequence[str] = (),
) -> list[dict[str, Any]]:
    """One JSON-able description per cluster: name, sizes, the mean of its tracks and the centroid
    of its core members in the original feature space, the mean's z-scores against the catalog, and
    top genres. Names come from the means (engine/_moodnames.py), the numbers the report prints."""
    names = list(feature_names)
    center = raw.mean(axis=0)
    spread = raw.std(axis=0)
    spread[spread == 0] = 1.0
    out = []
    for c in range(n_clusters):
        members = labels == c
        core = members & is_core
        basis = core if core.any() else members
        centroid = raw[basis].mean(axis=0) if basis.any() else center
        mean = raw[members].mean(axis=0) if members.any() else center
        top = []
        if genre_matrix is not None and members.any():
            share = genre_matrix[members].mean(axis=0)
            top = [{"genre": genre_names[g], "share": round(float(share[g]), 4)}
                   for g in np.argsort(-share, kind="stable")[:3] if share[g] > 0]
        out.append({
            "id": c,
            "size": int(members.sum()),
            "core_size": int(core.sum()),
            "mean_strength": round(float(strength[members].mean()), 4) if members.any() else 0.0,
            "centroid": {n: round(float(v), 4) for n, v in zip(names, centroid, strict=True)},
            "mean": {n: round(float(v), 4) for n, v in zip(names, mean, strict=True)},
            "z": {n: round(float(z), 3) for n, z in zip(names, (mean - center) / spread, strict=True)},
            "top_genres": top,
        })
    catalog_mean = {n: float(v) for n, v in zip(names, center, strict=True)}
    catalog_std = {n: float(v) for n, v in zip(names, raw.std(axis=0), strict=True)}
    # named from the rounded means the report prints, so a word never disagrees with a shown number
    for cluster, name in zip(out, mood_names([c["mean"] for c in out], catalog_mean, catalog_std,
                                             relative_features), strict=True):
        cluster["name"] = name
    return out


def mood_spread(clusters: Sequence[Mapping[str, Any]], raw: np.ndarray, feature_names: Sequence[str],
                features: Sequence[str] = SPREAD_FEATURES) -> dict[str, dict[str, float]]:
    """How far apart the moods sound: for each feature, the spread of the moods' mean values (over
    all their tracks) -- std across moods, min and max -- next to the catalog's own std."""
    out = {}
    for f in features:
        if f not in feature_names or not clusters:
            continue
        means = np.array([c["mean"][f] for c in clusters])
        out[f] = {"std_of_means": round(float(means.std()), 4), "min_mean": round(float(means.min()), 4),
                  "max_mean": round(float(means.max()), 4),
                  "catalog_std": round(float(raw[:, list(feature_names).index(f)].std()), 4)}
    return out


def silhouette(points: np.ndarray, labels: np.ndarray, sample: int, seed: int) -> float | None:
    """The moods' silhouette in mood space on a random ``sample`` of the tracks (None for one mood)."""
    from sklearn import config_context
    from sklearn.metrics import silhouette_score

    # the sample silhouette_score(sample_size=..., random_state=seed) would draw, drawn here: a sample of one mood,
    # or of one track a mood (moods.validity_sample = 2), has no silhouette, and sklearn stops on it
    picked = np.random.RandomState(seed).permutation(len(points))[:min(sample, len(points))]
    if not 2 <= len(np.unique(labels[picked])) < len(picked):
        return None
    with config_context(working_memory=64):  # MiB per distance chunk; the default 1 GiB spiked the build
        return round(float(silhouette_score(points[picked], labels[picked])), 4)
