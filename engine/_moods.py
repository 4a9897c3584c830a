"""Mood clusters: HDBSCAN cores in a mood space, every track assigned, readable names.

How it works
- The clustering space is a weighted subset of the standardized features (``MoodSpace``): mood
  is what a listener hears (valence, energy, danceability, acousticness...), and features such as
  key or duration would only add noise to the density estimate.
- HDBSCAN runs on a random sample of the catalog. Its run time grows faster than linearly with
  the number of points (and with ``min_samples``); the density cores it finds on a sample are the
  same regions, and the sample's core points become the *exemplars*.
- Every track (and any new track) is assigned without pickle: the majority label of its 10
  nearest exemplars. It counts as a *core* member when it lies within the nearest exemplar's core
  distance (the radius at which that exemplar is dense), which is how HDBSCAN itself defines
  membership; otherwise it is an assigned noise point, flagged, with a membership strength.
- Why these defaults (measured on the 89,583 deduplicated Spotify tracks, see the build report):
  the audio features are a continuum whose only real density cores sit at the edges (instrumental
  vs vocal, acoustic vs electric, extreme tempi). PCA of *all* features invents cores from the
  discrete key and mode (70-96% of each such cluster shared one key/mode: clusters that do not
  sound alike), so the space is the six mood features instead, standardized, unweighted (weights
  did not help). Quantile/rank transforms turn the third of tracks with instrumentalness exactly 0
  into a point mass that becomes the only cluster. ``eom`` selection yields 2-3 giant clusters;
  ``leaf`` alone shatters the centre into unstable leaves with 85-90% noise; ``leaf`` with
  ``cluster_selection_epsilon=0.25`` merges leaves closer than a quarter std and keeps about 15
  audibly different moods, with an adjusted Rand index of ~0.71 between seeds. ``min_samples=2``
  keeps the fit at a few seconds, and a 30k sample is as stable as larger fits. Known limit: the
  dense loud, energetic, vocal centre stays one mood of ~40-50% of tracks.
- Names come from the cluster centroid in the original feature space, compared with the catalog:
  a valence x energy quadrant refined by the features that stand out most.
"""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import faiss
import numpy as np

from ._config import MoodConfig
from ._errors import NotFittedError

Progress = Callable[[str], None]
VOTE_NEIGHBOURS = 10
MIN_TRACKS_TO_CLUSTER = 10

_QUADRANTS = {(True, True): "happy, energetic", (False, True): "angry, tense",
              (True, False): "calm, content", (False, False): "sad, reflective"}
# (feature, word when high, word when low): refinements in the order of how far they stand out.
# Only what a listener hears as mood; liveness or loudness describe the recording more than the mood.
_REFINERS = (
    ("acousticness", "acoustic", "electric"),
    ("instrumentalness", "instrumental", None),
    ("danceability", "danceable", "free-flowing"),
    ("tempo", "fast", "slow"),
    ("speechiness", "spoken", None),
)
# Words that tell apart two clusters that got the same name (relative to each other).
_CONTRASTS = {
    "valence": ("brighter", "darker"), "energy": ("more energetic", "gentler"),
    "acousticness": ("more acoustic", "more electric"), "instrumentalness": ("more instrumental", "more vocal"),
    "danceability": ("more danceable", "less danceable"), "tempo": ("faster", "slower"),
    "speechiness": ("wordier", "more sung"),
}
_REFINE_Z = 0.5  # a feature refines the name when the centroid sits this many catalog stds away


@dataclasses.dataclass(frozen=True)
class MoodSpace:
    """Columns (of the standardized feature matrix) and weights that define the clustering space."""

    columns: tuple[int, ...]
    weights: tuple[float, ...]

    def project(self, standardized: np.ndarray) -> np.ndarray:
        return np.ascontiguousarray(standardized[:, list(self.columns)] * np.asarray(self.weights), dtype=np.float32)


def mood_space(transformed_names: Sequence[str], weights: Mapping[str, float]) -> MoodSpace:
    """The mood space for a schema: the weighted columns that exist; every column when none does
    (a librosa feature set has no valence, so its moods are its overall sound)."""
    cols = [(i, weights[n]) for i, n in enumerate(transformed_names) if weights.get(n, 0) > 0]
    if not cols:
        cols = [(i, 1.0) for i in range(len(transformed_names))]
    return MoodSpace(columns=tuple(i for i, _ in cols), weights=tuple(w for _, w in cols))


class MoodModel:
    """HDBSCAN mood clusters with pickle-free assignment of any track."""

    def __init__(self, *, config: MoodConfig, space: MoodSpace, seed: int = 0) -> None:
        self.config = config
        self.space = space
        self.seed = seed

    def fit(
        self, points: np.ndarray, raw: np.ndarray, feature_names: Sequence[str], *,
        genre_matrix: np.ndarray | None = None, genre_names: Sequence[str] = (), progress: Progress | None = None,
    ) -> MoodModel:
        """Cluster ``points`` (mood-space coordinates, shape (n_tracks, d)) and describe each
        cluster from ``raw`` (original feature values, shape (n_tracks, n_features))."""
        import hdbscan  # imported here: only builds need it, and it is slow to import

        say = progress or (lambda _msg: None)
        cfg = self.config
        rng = np.random.default_rng(self.seed)
        n = len(points)
        sample = np.sort(rng.choice(n, size=min(cfg.fit_sample, n), replace=False))
        min_cluster_size = max(2, min(cfg.min_cluster_size, len(sample) // 2))
        min_samples = max(1, min(cfg.min_samples, min_cluster_size))
        t0 = time.perf_counter()
        if len(sample) < max(min_samples + 2, MIN_TRACKS_TO_CLUSTER):
            say(f"only {len(sample)} tracks: too few to find density clusters; one mood holds them all")
            labels = np.full(len(sample), -1, dtype=np.int64)
        else:
            say(f"HDBSCAN on {len(sample)} of {n} tracks ({points.shape[1]}-d mood space, "
                f"min_cluster_size {min_cluster_size}, min_samples {min_samples}, {cfg.selection})")
            clusterer = hdbscan.HDBSCAN(
                min_cluster_size=min_cluster_size, min_samples=min_samples,
                cluster_selection_method=cfg.selection, cluster_selection_epsilon=cfg.epsilon,
                core_dist_n_jobs=2, gen_min_span_tree=True,
            ).fit(points[sample])
            labels = clusterer.labels_
        fit_seconds = time.perf_counter() - t0
        if labels.max() < 0:
            # No density core at all (tiny or uniform catalogs): one mood holding everything is the
            # honest answer, reported as zero cores rather than invented structure.
            say("HDBSCAN found no cluster; every track goes to a single mood")
            labels = np.zeros(len(sample), dtype=np.int64)
            dbcv = float("nan")
        else:
            dbcv = float(clusterer.relative_validity_)  # labels came from the clusterer
        core = labels >= 0
        self.exemplars_ = np.ascontiguousarray(points[sample][core], dtype=np.float32)
        self.exemplar_labels_ = labels[core].astype(np.int32)
        self.exemplar_radius_ = _kth_neighbour_distance(self.exemplars_, min_samples)

        t0 = time.perf_counter()
        self.labels_, self.strength_, self.is_core_ = self.assign_points(points)
        self.is_core_[sample[core]] = True
        assign_seconds = time.perf_counter() - t0
        n_clusters = int(self.exemplar_labels_.max()) + 1
        self.clusters_ = describe_clusters(
            self.labels_, self.is_core_, self.strength_, raw, feature_names, n_clusters,
            genre_matrix=genre_matrix, genre_names=genre_names)
        self.metrics_ = {
            "space_columns": len(self.space.columns),
            "fit_tracks": len(sample),
            "clusters": n_clusters,
            "sample_noise_fraction": round(float(1 - core.mean()), 4),
            "core_coverage": round(float(self.is_core_.mean()), 4),
            "dbcv_sample": round(dbcv, 4) if np.isfinite(dbcv) else None,
            "silhouette": _silhouette(points, self.labels_, cfg.validity_sample, self.seed),
            "largest_cluster_share": round(float(np.bincount(self.labels_).max() / n), 4),
            "fit_seconds": round(fit_seconds, 2),
            "assign_seconds": round(assign_seconds, 2),
        }
        return self

    def assign_points(self, points: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Mood of each point in mood space: (labels int32, strength float32 in [0, 1], is_core bool).

        Label: majority of the nearest exemplars. Strength: the share of them that agree, scaled
        down by how far the point lies outside the nearest exemplar's core radius.
        """
        self._check_fitted()
        index = faiss.IndexFlatL2(self.exemplars_.shape[1])
        index.add(self.exemplars_)
        k = min(VOTE_NEIGHBOURS, len(self.exemplars_))
        sq_dist, nearest = index.search(np.ascontiguousarray(points, dtype=np.float32), k)
        votes = self.exemplar_labels_[nearest]
        n_clusters = int(self.exemplar_labels_.max()) + 1
        counts = np.zeros((len(points), n_clusters), dtype=np.int32)
        np.add.at(counts, (np.repeat(np.arange(len(points)), k), votes.ravel()), 1)
        labels = counts.argmax(axis=1).astype(np.int32)
        share = counts[np.arange(len(points)), labels] / k
        dist = np.sqrt(np.maximum(sq_dist[:, 0], 0))
        radius = self.exemplar_radius_[nearest[:, 0]]
        is_core = dist <= radius
        closeness = np.where(is_core, 1.0, radius / np.maximum(dist, 1e-12))
        return labels, (share * closeness).astype(np.float32), is_core

    def _check_fitted(self) -> None:
        if not hasattr(self, "exemplars_"):
            raise NotFittedError("MoodModel is not fitted; call fit() or from_arrays() first")

    def to_arrays(self) -> dict[str, np.ndarray]:
        self._check_fitted()
        return {
            "labels": self.labels_, "strength": self.strength_, "is_core": self.is_core_,
            "exemplars": self.exemplars_, "exemplar_labels": self.exemplar_labels_,
            "exemplar_radius": self.exemplar_radius_,
            "space_columns": np.asarray(self.space.columns, dtype=np.int64),
            "space_weights": np.asarray(self.space.weights, dtype=np.float64),
        }

    @classmethod
    def from_arrays(cls, arrays: Mapping[str, np.ndarray], clusters: list[dict[str, Any]],
                    config: MoodConfig, metrics: dict[str, Any] | None = None) -> MoodModel:
        space = MoodSpace(columns=tuple(int(c) for c in arrays["space_columns"]),
                          weights=tuple(float(w) for w in arrays["space_weights"]))
        self = cls(config=config, space=space)
        self.labels_ = arrays["labels"]
        self.strength_ = arrays["strength"]
        self.is_core_ = arrays["is_core"]
        self.exemplars_ = np.ascontiguousarray(arrays["exemplars"], dtype=np.float32)
        self.exemplar_labels_ = arrays["exemplar_labels"]
        self.exemplar_radius_ = arrays["exemplar_radius"]
        self.clusters_ = clusters
        self.metrics_ = metrics or {}
        return self


def _kth_neighbour_distance(points: np.ndarray, k: int) -> np.ndarray:
    """Distance of each point to its k-th nearest other point (HDBSCAN's core distance)."""
    index = faiss.IndexFlatL2(points.shape[1])
    index.add(points)
    kk = min(k + 1, len(points))  # +1: the point itself comes back first
    sq, _ = index.search(points, kk)
    return np.sqrt(np.maximum(sq[:, -1], 0)).astype(np.float32)


def _silhouette(points: np.ndarray, labels: np.ndarray, sample: int, seed: int) -> float | None:
    from sklearn.metrics import silhouette_score

    if len(np.unique(labels)) < 2:
        return None
    size = min(sample, len(points))
    return round(float(silhouette_score(points, labels, sample_size=size, random_state=seed)), 4)


def describe_clusters(
    labels: np.ndarray, is_core: np.ndarray, strength: np.ndarray, raw: np.ndarray,
    feature_names: Sequence[str], n_clusters: int, *, genre_matrix: np.ndarray | None = None,
    genre_names: Sequence[str] = (),
) -> list[dict[str, Any]]:
    """One JSON-able description per cluster: name, sizes, centroid of its core members in the
    original feature space, and top genres."""
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
            "z": {n: round(float(z), 3) for n, z in zip(names, (centroid - center) / spread, strict=True)},
            "top_genres": top,
        })
    for cluster, name in zip(out, unique_mood_names([c["z"] for c in out]), strict=True):
        cluster["name"] = name
    return out


def mood_name(z: Mapping[str, float], *, refinements: int = 2) -> str:
    """A readable mood from a centroid's z-scores against the catalog: the valence x energy
    quadrant (when the schema has both) refined by the features that stand out most."""
    # chosen by how far they stand out, printed in a fixed order: "acoustic, slow" == "slow, acoustic"
    chosen = {word for word, _ in _refinements(z)[:refinements]}
    words = [w for feature in _REFINERS for w in feature[1:] if w in chosen]
    if "valence" in z and "energy" in z:
        base = _QUADRANTS[(z["valence"] >= 0, z["energy"] >= 0)]
        return base + (" · " + ", ".join(words) if words else "")
    # Any other feature set: the features that stand out, in the schema's own words.
    ranked = sorted(z.items(), key=lambda kv: -abs(kv[1]))[: max(refinements, 1)]
    return ", ".join(f"{'high' if v >= 0 else 'low'} {k}" for k, v in ranked) or "average"


def _refinements(z: Mapping[str, float]) -> list[tuple[str, float]]:
    found = []
    for feature, high, low in _REFINERS:
        v = z.get(feature)
        if v is None or abs(v) < _REFINE_Z:
            continue
        word = high if v > 0 else low
        if word:
            found.append((word, abs(v)))
    return sorted(found, key=lambda wv: -wv[1])


def unique_mood_names(zs: Sequence[Mapping[str, float]]) -> list[str]:
    """Names for all clusters. Clusters whose names collide are told apart by the feature on which
    they differ most from each other ("brighter", "slower"...), then by a number if still needed."""
    names = [mood_name(z) for z in zs]
    for name in {n for n in names if names.count(n) > 1}:
        group = [i for i, n in enumerate(names) if n == name]
        features = [f for f in _CONTRASTS if all(f in zs[i] for i in group)]
        if not features:
            continue
        group_mean = {f: float(np.mean([zs[i][f] for i in group])) for f in features}
        for i in group:
            f = max(features, key=lambda f: abs(zs[i][f] - group_mean[f]))
            word = _CONTRASTS[f][0 if zs[i][f] >= group_mean[f] else 1]
            names[i] = f"{name}, {word}" if " · " in name else f"{name} · {word}"
    seen: dict[str, int] = {}
    out = []
    for n in names:
        seen[n] = seen.get(n, 0) + 1
        out.append(n if names.count(n) == 1 else f"{n} ({seen[n]})")
    return out
